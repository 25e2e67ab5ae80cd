"""Study files: load and validate one ``scratchgan/studies/NAME.toml`` (keys: SCHEMA.md).

:func:`load_study` returns a :class:`Study`; every error names the file and the key that is
wrong and says what was expected, before anything is trained or written.
"""
from __future__ import annotations

import inspect
import pathlib
import tomllib
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

from ..data.datasets import DATASETS
from ..metrics.evaluators import EVALUATORS
from ..models import REGISTRY

__all__ = ["STUDIES_DIR", "Study", "StudyError", "list_studies", "load_study", "study_path"]

#: the folder of the study files shipped with the package
STUDIES_DIR = pathlib.Path(__file__).resolve().parents[1] / "studies"

_TOP = {"name": str, "title": str, "citation": str, "model": str, "variant": str,
        "variant_note": str, "dataset": str, "seeds": list, "set": dict, "schedule": dict,
        "evaluations": list, "paper": list, "paper_note": str, "data": dict, "seed_hyper": list}
_REQUIRED = ("name", "title", "citation", "model", "dataset", "schedule", "evaluations")
_SCHEDULE = {"batch": int, "full": int, "full_source": str, "short": int, "eval_every": int,
             "short_set": dict, "short_note": str, "full_is_authors": bool}
_SCHEDULE_REQUIRED = ("batch", "full", "full_source", "short", "eval_every")
_DATA = {"limit": int, "binarize": bool}
_PAPER = {"metric": str, "value": (int, float), "spread": (int, float), "direction": str,
          "source": str, "protocol": str, "target": (int, float), "target_by": str,
          "protocol_matches": bool, "protocol_note": str}
_PAPER_REQUIRED = ("metric", "value", "direction", "source", "protocol")


class StudyError(ValueError):
    """A study file that cannot be used: the message names the file and the key."""


@dataclass
class Study:
    """One study, validated. ``paper`` holds the ``[[paper]]`` entries with their defaults
    filled in (``target`` = ``value``, ``target_by`` = "paper", ``protocol_matches`` = True)."""

    name: str
    title: str
    citation: str
    model: str
    dataset: str
    schedule: Dict[str, Any]
    evaluations: List[Dict[str, Any]]
    paper: List[Dict[str, Any]] = field(default_factory=list)
    variant: str = ""
    variant_note: str = ""
    seeds: List[int] = field(default_factory=lambda: [0])
    hyper: Dict[str, Any] = field(default_factory=dict)
    data: Dict[str, Any] = field(default_factory=dict)
    paper_note: str = ""
    seed_hyper: List[str] = field(default_factory=list)
    path: Optional[pathlib.Path] = None

    @property
    def authors_updates(self) -> Optional[int]:
        """``schedule.full`` when it is the authors' schedule; None when the authors' length
        is unknown and ``full`` stands in for it (``full_is_authors = false``)."""
        return int(self.schedule["full"]) if self.schedule.get("full_is_authors", True) else None

    def updates(self, schedule: str) -> int:
        return int(self.schedule[schedule])

    def hyper_for(self, schedule: str, seed: Optional[int] = None) -> Dict[str, Any]:
        """``[set]``, with ``schedule.short_set`` over it for a short run, and every name of
        ``seed_hyper`` set to ``seed`` (one draw per seed, e.g. M2's labelled subset)."""
        out = dict(self.hyper)
        if schedule == "short":
            out.update(self.schedule.get("short_set", {}))
        if seed is not None:
            out.update({k: int(seed) for k in self.seed_hyper})
        return out

    def variant_for(self, schedule: str):
        """(variant, variant_note) of a run on ``schedule``: a short run with ``short_set``
        departs from the study's setting."""
        if schedule == "short" and self.schedule.get("short_set"):
            name = self.variant or "short-set"
            note = "; ".join(x for x in (self.variant_note, self.schedule["short_note"]) if x)
            return name, note
        return self.variant, self.variant_note

    def paper_entry(self, metric: str) -> Optional[Dict[str, Any]]:
        for p in self.paper:
            if p["metric"] == metric:
                return p
        return None


def study_path(name, studies_dir=None) -> pathlib.Path:
    """The file of study ``name`` (a stem in ``studies_dir``, or a path to a .toml file)."""
    p = pathlib.Path(name)
    if p.suffix == ".toml":
        if not p.exists():
            raise StudyError(f"study file {p} does not exist")
        return p
    d = pathlib.Path(studies_dir) if studies_dir is not None else STUDIES_DIR
    p = d / f"{name}.toml"
    if not p.exists():
        known = ", ".join(s.stem for s in sorted(d.glob("*.toml"))) or "none"
        raise StudyError(f"unknown study {name!r}: no {p}; studies in {d}: {known}")
    return p


def list_studies(studies_dir=None) -> List[pathlib.Path]:
    d = pathlib.Path(studies_dir) if studies_dir is not None else STUDIES_DIR
    return sorted(d.glob("*.toml"))


def _type_name(t) -> str:
    if isinstance(t, tuple):
        return "a number"
    return {str: "a string", int: "an integer", list: "an array", dict: "a table",
            bool: "true or false"}[t]


def _check_type(where, key, value, t):
    ok = isinstance(value, t) and not (t is int and isinstance(value, bool)) and \
        not (isinstance(t, tuple) and isinstance(value, bool))
    if not ok:
        raise StudyError(f"{where}: {key} must be {_type_name(t)}, got {value!r}")


def load_study(name, studies_dir=None, registry=None, evaluators=None) -> Study:
    """Read and validate a study. ``registry`` (model names) and ``evaluators`` (evaluator
    names) default to :data:`scratchgan.models.REGISTRY` and the evaluator registry."""
    path = study_path(name, studies_dir)
    try:
        raw = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as e:
        raise StudyError(f"{path}: not valid TOML: {e}") from None
    where = str(path)
    raw = dict(raw)
    for key in raw:
        if key not in _TOP:
            raise StudyError(f"{where}: unknown key {key!r}; valid keys: "
                             f"{', '.join(sorted(_TOP))}")
    for key in _REQUIRED:
        if key not in raw:
            raise StudyError(f"{where}: missing required key {key!r}")
    for key, value in raw.items():
        _check_type(where, "[[paper]]" if key == "paper" else key, value, _TOP[key])
    if raw["name"] != path.stem:
        raise StudyError(f"{where}: name = {raw['name']!r} must equal the file's stem "
                         f"{path.stem!r}")
    if registry is None:
        registry = REGISTRY
    if raw["model"] not in registry:
        raise StudyError(f"{where}: model = {raw['model']!r} is not a registered model; "
                         f"valid: {', '.join(sorted(registry))}")
    if raw["dataset"] not in DATASETS:
        raise StudyError(f"{where}: dataset = {raw['dataset']!r} is not a data set the CLI "
                         f"accepts; valid: {', '.join(sorted(DATASETS))}")
    defaults = getattr(registry[raw["model"]], "defaults", None)
    if isinstance(defaults, dict):
        for table, keys in (("set", raw.get("set", {})),
                            ("schedule.short_set", raw["schedule"].get("short_set", {})
                             if isinstance(raw["schedule"], dict) else {})):
            unknown = sorted(k for k in keys if k not in defaults)
            if unknown:
                raise StudyError(f"{where}: [{table}] {', '.join(unknown)} "
                                 f"{'is not a hyperparameter' if len(unknown) == 1 else 'are not hyperparameters'} "
                                 f"of {raw['model']}; valid: {', '.join(sorted(defaults))}")
    seed_hyper = raw.get("seed_hyper", [])
    for k in seed_hyper:
        if not isinstance(k, str) or (isinstance(defaults, dict) and k not in defaults):
            raise StudyError(f"{where}: seed_hyper names {k!r}, which is not a hyperparameter "
                             f"of {raw['model']}")
        if k in raw.get("set", {}):
            raise StudyError(f"{where}: {k!r} is in both seed_hyper and [set]; the seed sets it")
    seeds = raw.get("seeds", [0])
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                            for s in seeds):
        raise StudyError(f"{where}: seeds must be a non-empty array of integers >= 0, "
                         f"got {seeds!r}")
    sched = raw["schedule"]
    for key in sched:
        if key not in _SCHEDULE:
            raise StudyError(f"{where}: unknown key schedule.{key}; valid: "
                             f"{', '.join(_SCHEDULE)}")
    for key in _SCHEDULE_REQUIRED:
        if key not in sched:
            raise StudyError(f"{where}: missing required key schedule.{key}")
    for key, t in _SCHEDULE.items():
        if key not in sched:
            continue
        _check_type(where, f"schedule.{key}", sched[key], t)
        if t is int and sched[key] <= 0:
            raise StudyError(f"{where}: schedule.{key} must be > 0, got {sched[key]}")
    if sched["short"] > sched["full"]:
        raise StudyError(f"{where}: schedule.short ({sched['short']}) is longer than "
                         f"schedule.full ({sched['full']})")
    if "short_set" in sched and not sched.get("short_note"):
        raise StudyError(f"{where}: schedule.short_set needs schedule.short_note (what it "
                         f"changes and why)")
    if raw.get("variant") and not raw.get("variant_note"):
        raise StudyError(f"{where}: variant = {raw['variant']!r} needs variant_note (what the "
                         f"variant changes, said plainly)")
    if not raw.get("paper") and not raw.get("paper_note"):
        raise StudyError(f"{where}: no [[paper]] entry and no paper_note; say why the study has "
                         f"no paper number in paper_note")
    data = raw.get("data", {})
    for key, value in data.items():
        if key not in _DATA:
            raise StudyError(f"{where}: unknown key data.{key}; valid: {', '.join(_DATA)}")
        _check_type(where, f"data.{key}", value, _DATA[key])
    if evaluators is None:
        evaluators = EVALUATORS       # scratchgan.metrics registers them on import
    evals = []
    if not raw["evaluations"]:
        raise StudyError(f"{where}: [[evaluations]] is empty; a study needs at least one")
    for i, ev in enumerate(raw["evaluations"]):
        at = f"{where}: evaluations[{i}]"
        if not isinstance(ev, dict) or "name" not in ev:
            raise StudyError(f"{at}: each [[evaluations]] entry needs a name")
        extra = set(ev) - {"name", "options"}
        if extra:
            raise StudyError(f"{at}: unknown key(s) {sorted(extra)}; valid: name, options")
        _check_type(at, "name", ev["name"], str)
        if ev["name"] not in evaluators:
            raise StudyError(f"{at}: name = {ev['name']!r} is not a registered evaluator; "
                             f"registered: {', '.join(sorted(evaluators)) or 'none'}")
        opts = ev.get("options", {})
        _check_type(at, "options", opts, dict)
        if "record" in opts and not (isinstance(opts["record"], list) and
                                     all(isinstance(m, str) for m in opts["record"])):
            raise StudyError(f"{at}: options.record must be an array of metric names, got "
                             f"{opts['record']!r}")
        try:
            params = inspect.signature(evaluators[ev["name"]]).parameters
        except (TypeError, ValueError):
            params = {}
        if params and not any(p.kind is p.VAR_KEYWORD for p in params.values()):
            names = [n for n in list(params)[1:]]
            bad = sorted(k for k in opts if k != "record" and k not in names)
            if bad:
                raise StudyError(f"{at}: {ev['name']} takes no option {bad[0]!r}; its options: "
                                 f"{', '.join(names) or 'none'}")
        evals.append({"name": ev["name"], "options": dict(opts)})
    papers = []
    for i, p in enumerate(raw.get("paper", [])):
        at = f"{where}: paper[{i}]"
        if not isinstance(p, dict):
            raise StudyError(f"{at}: each [[paper]] entry must be a table")
        for key in p:
            if key not in _PAPER:
                raise StudyError(f"{at}: unknown key {key!r}; valid: {', '.join(_PAPER)}")
        for key in _PAPER_REQUIRED:
            if key not in p:
                raise StudyError(f"{at}: missing required key {key!r}")
        for key, value in p.items():
            _check_type(at, key, value, _PAPER[key])
        if p["direction"] not in ("higher", "lower"):
            raise StudyError(f"{at}: direction must be 'higher' or 'lower', got "
                             f"{p['direction']!r}")
        tb = p.get("target_by", "paper")
        if tb not in ("paper", "project"):
            raise StudyError(f"{at}: target_by must be 'paper' or 'project', got {tb!r}")
        if not p.get("protocol_matches", True) and not p.get("protocol_note"):
            raise StudyError(f"{at}: protocol_matches = false needs protocol_note (why our "
                             f"evaluation is not the paper's)")
        entry = {"spread": None, "target": p["value"], "target_by": "paper",
                 "protocol_matches": True, "protocol_note": ""}
        entry.update(p)
        papers.append(entry)
    return Study(name=raw["name"], title=raw["title"], citation=raw["citation"],
                 model=raw["model"], dataset=raw["dataset"], schedule=dict(sched),
                 evaluations=evals, paper=papers, variant=raw.get("variant", ""),
                 variant_note=raw.get("variant_note", ""), seeds=list(seeds),
                 hyper=dict(raw.get("set", {})), data=dict(data),
                 paper_note=raw.get("paper_note", ""),
                 seed_hyper=list(raw.get("seed_hyper", [])), path=path)
