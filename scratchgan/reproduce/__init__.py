"""Paper reproduction: study files, the runner, the results ledger and its tables.

``python -m scratchgan.reproduce STUDY`` (``scratchgan reproduce``) trains a study
(``scratchgan/studies/NAME.toml``, keys in SCHEMA.md) with the library's Trainer, scores it
with the evaluators of :mod:`scratchgan.metrics` and appends its results to the ledger
(``benchmarks/results/ledger.jsonl``); ``--list`` shows every study with its status and
``--report`` regenerates ``benchmarks/results/reproduction.md`` and the study pages.
"""
from .command import EXIT_STOPPED, build_parser, main
from .ledger import (FIELDS, LedgerError, append_rows, check_row, compute_status,
                     read_ledger)
from .report import render_report, summary_rows, write_report
from .runner import CheckpointTooLarge, RunnerError, RunOptions, run_seed
from .study import STUDIES_DIR, Study, StudyError, list_studies, load_study

__all__ = ["EXIT_STOPPED", "FIELDS", "STUDIES_DIR", "CheckpointTooLarge", "LedgerError",
           "RunOptions", "RunnerError", "Study", "StudyError", "append_rows", "build_parser",
           "check_row", "compute_status", "list_studies", "load_study", "main", "read_ledger",
           "render_report", "run_seed", "summary_rows", "write_report"]
