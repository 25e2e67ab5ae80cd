"""``scratchgan export RUN [--format safetensors|torch] [--out FILE]``: a trained run's networks
as a file PyTorch reads, with a manifest (:mod:`scratchgan.interop` does the work)."""
from __future__ import annotations

from .. import interop
from .common import EPILOG, HelpFormatter

__all__ = ["register"]


def _run(args, parser, registry):
    return interop.run(args)


def register(sub):
    p = sub.add_parser("export", help="export a run's networks to PyTorch (safetensors or torch)",
                       description="Export a trained run's networks to PyTorch (safetensors or "
                                   "torch.save) with a manifest; scratchgan.interop loads the "
                                   "file into PyTorch modules built to match.",
                       formatter_class=HelpFormatter, epilog=EPILOG)
    interop.add_arguments(p)
    p.set_defaults(func=_run)
    return p
