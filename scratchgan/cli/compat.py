"""Which data sets a model can train on, derived from what the models and data sets declare,
so that ``scratchgan train`` refuses a pair that cannot work before anything is written.

A data set's *form* comes from its ``dataset_info``:

* ``"toy"``, ``"image"``: its ``kind`` (points; single images, any number of channels);
* ``"translation-paired"`` / ``"translation-unpaired"``: image-to-image sets, which declare
  ``a_channels`` (the channels of domain A in ``x = concat(A, B)``) and ``paired``;
* otherwise its ``kind`` as declared (``"image-pair"`` for ``mnist-quadrants``: the channels
  ``[x, y]`` of a completion task, no A/B split).

A model declares the forms it trains on in its class attribute ``data_kinds``
(:class:`scratchgan.models.base.GenerativeModel`: ``("image", "toy")``). A pair works when the
form is one of them and the model can be built for the set's example shape and number of
classes with the hyperparameters given (the model's own checks: image sizes, toy data,
label counts ...).
"""
from __future__ import annotations

import functools

import numpy as np

from ..data.datasets import DATASETS, dataset_info

__all__ = ["FORM_WORDS", "DEFAULT_KINDS", "data_form", "model_kinds", "dataset_problem",
           "usable_datasets", "compatibility_table"]

#: the forms in words, for messages and the README's table
FORM_WORDS = {
    "toy": "toy points",
    "image": "images",
    "image-pair": "two-channel completion pairs [x, y]",
    "translation-paired": "a paired image-to-image set",
    "translation-unpaired": "an unpaired image-to-image set",
}
#: the forms a model trains on when its class declares no ``data_kinds``
DEFAULT_KINDS = ("image", "toy")


def data_form(name):
    """The form of the data set ``name`` (see the module's docstring)."""
    info = dataset_info(name)
    if "a_channels" in info:
        return "translation-paired" if info.get("paired") else "translation-unpaired"
    return info["kind"]


def model_kinds(cls):
    """The data forms the model class ``cls`` trains on."""
    return tuple(getattr(cls, "data_kinds", None) or DEFAULT_KINDS)


def _words(form):
    return FORM_WORDS.get(form, form)


@functools.lru_cache(maxsize=None)
def _build_problem(cls, name, hyper_items):
    info = dataset_info(name)
    try:
        # its own generator: the probe leaves scratchgan's global random stream alone
        cls(tuple(info["shape"]), num_classes=int(info["num_classes"]),
            rng=np.random.default_rng(0), **dict(hyper_items))
    except (ValueError, TypeError) as e:
        return str(e)
    return None


def dataset_problem(cls, name, hyper=None):
    """Why the model class ``cls`` (with the hyperparameters ``hyper``) cannot train on the
    data set ``name``, or None when it can."""
    form, kinds = data_form(name), model_kinds(cls)
    if form not in kinds:
        return (f"it trains on {' or '.join(_words(k) for k in kinds)}, and {name} is "
                f"{'' if form.startswith('translation') else 'made of '}{_words(form)}")
    try:
        items = tuple(sorted((hyper or {}).items()))
        hash(items)
    except TypeError:               # an unhashable value: no caching
        items = None
    if items is None:
        return _build_problem.__wrapped__(cls, name, tuple(sorted((hyper or {}).items())))
    return _build_problem(cls, name, items)


def usable_datasets(cls, hyper=None):
    """The data sets the model class ``cls`` can train on, in ``DATASETS`` order."""
    return [d for d in DATASETS if dataset_problem(cls, d, hyper) is None]


def compatibility_table(registry, names=None):
    """A Markdown table: one row per model (``names``, default every model of ``registry``)
    with the data sets it trains on (its default first marked ``*``)."""
    rows = ["| model | data sets it trains on (`*` the default) |", "|---|---|"]
    for name in names or registry:
        cls = registry[name]
        default = getattr(cls, "default_dataset", None)
        sets = [f"`{d}`*" if d == default else f"`{d}`" for d in usable_datasets(cls)]
        rows.append(f"| `{name}` | {', '.join(sets)} |")
    return "\n".join(rows) + "\n"
