"""``scratchgan reproduce``: run a study (a paper's table row group) through the library and
record its figures in the ledger; ``--list`` and ``--report`` read the ledger.

The options and their handling live in :mod:`scratchgan.reproduce.command`, which
``python -m scratchgan.reproduce`` runs as well; this module only registers the subcommand.
"""
from __future__ import annotations

import argparse

from ..reproduce import command

__all__ = ["register"]


def _run(args, parser, registry):
    argv = list(args._argv)
    if argv and argv[0] == "reproduce":
        argv = argv[1:]
    return command.run(args, parser, argv)


def register(sub):
    p = sub.add_parser("reproduce", help="reproduce a paper's study and record it in the ledger",
                       description=command.DESCRIPTION, epilog=command.EPILOG,
                       formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    command.add_arguments(p)
    p.set_defaults(func=_run)
    return p
