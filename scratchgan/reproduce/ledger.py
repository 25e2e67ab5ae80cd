"""The results ledger: one JSON line per (study, variant, metric, seed).

A row holds the value and its spread, the paper's value and source, the target and who set
it, the direction, the updates done against the authors' updates, the status word, the
device, date, commit and the exact command. The status word is computed by
:func:`compute_status` from the row's numbers, never typed; :func:`read_ledger` refuses a
line whose stored status contradicts the rules, naming the line.

Status words (one fixed set): ``met``, ``short by X``, ``variant``,
``not comparable: REASON``, ``historical``.

* ``variant``: the row departs from the paper's setting (its ``variant`` is not "").
* ``met`` needs the target reached, ``protocol_matches`` and at least half of the authors'
  updates; a target the project set (``target_by`` "project") needs no share of the authors'
  updates. Reached with fewer updates: ``not comparable: reached at N of the authors' M
  updates``; with the authors' schedule unknown: ``not comparable: the authors' schedule is
  unknown``.
* ``short by X`` when the target is missed (X in the metric's unit); under half of the
  authors' updates the status says so (``... at N of the authors' M updates``).
* ``not comparable: REASON`` when the protocol departs (``protocol_note`` says how), or
  when there is no number to compare with.
* ``historical``: a row of an older run whose command cannot be rerun as is, with no target
  to judge it against (a historical row with a target is judged like any other).

Appending is atomic (a temporary file moved over the ledger, under a lock), so a reader
never sees a torn line and concurrent seeds do not lose each other's rows.
"""
from __future__ import annotations

import json
import os
import pathlib
import re
import tempfile
from typing import Dict, Iterable, List

try:
    import fcntl
except ImportError:                                # pragma: no cover - not POSIX
    fcntl = None

__all__ = ["FIELDS", "LedgerError", "STATUS_PATTERN", "append_rows", "check_row",
           "compute_status", "format_number", "read_ledger", "write_text_atomic"]

#: every key of a ledger row (rows are written with exactly these, in this order)
FIELDS = ("study", "title", "paper", "model", "variant", "variant_note", "metric",
          "metric_label", "unit", "seed", "value", "spread", "paper_value", "paper_spread",
          "paper_source", "protocol", "protocol_matches", "protocol_note", "target",
          "target_by", "direction", "updates", "authors_updates", "authors_updates_source",
          "status", "historical", "device", "date", "commit", "command", "note")

STATUS_PATTERN = re.compile(r"^(met|variant|historical|short by .+|not comparable: .+)$")


class LedgerError(ValueError):
    """A ledger line that is malformed or whose status contradicts the rules."""


def format_number(x) -> str:
    """A gap or value for a status: 43, 6.5, 0.69, 0.0042."""
    a = abs(float(x))
    if a >= 10:
        return f"{x:,.0f}"
    if a >= 1:
        return f"{x:.1f}"
    if a >= 0.01:
        return f"{x:.2f}"
    return f"{x:.2g}"


def _gap(row) -> str:
    gap = abs(float(row["value"]) - float(row["target"]))
    unit = row.get("unit") or ""
    if unit == "%":
        return f"{format_number(gap)} points"
    if unit:
        return f"{format_number(gap)} {unit}"
    if row.get("metric", "").endswith(("_error", "_accuracy")) and gap < 1:
        return f"{format_number(100 * gap)} points"
    return format_number(gap)


def compute_status(row: Dict) -> str:
    """The status word of a ledger row (see the module doc for the rules)."""
    if row.get("variant"):
        return "variant"
    value, target = row.get("value"), row.get("target")
    if value is None or target is None:
        if row.get("historical"):
            return "historical"
        return "not comparable: no published number or target for this metric"
    higher = row.get("direction", "higher") == "higher"
    reached = float(value) >= float(target) if higher else float(value) <= float(target)
    updates, authors = row.get("updates"), row.get("authors_updates")
    half = updates is not None and authors is not None and 2 * int(updates) >= int(authors)
    if authors is None:
        where = "the authors' schedule is unknown"
    elif updates is None:
        where = f"an unrecorded number of the authors' {int(authors):,} updates"
    else:
        where = f"{int(updates):,} of the authors' {int(authors):,} updates"
    if not row.get("protocol_matches", True):
        return f"not comparable: {row.get('protocol_note') or 'the protocol differs'}"
    if row.get("target_by") == "project":
        return "met" if reached else f"short by {_gap(row)}"
    if reached:
        return "met" if half else (f"not comparable: {where}" if authors is None or updates is None
                                   else f"not comparable: reached at {where}")
    if half:
        return f"short by {_gap(row)}"
    return f"short by {_gap(row)}" + (f" ({where})" if authors is None or updates is None
                                       else f" at {where}")


def check_row(row: Dict, where: str = "row") -> None:
    """Raise :class:`LedgerError` (naming ``where``) when the row lacks a key, its status is
    not of the fixed set, or its status is not what the rules compute."""
    missing = [k for k in FIELDS if k not in row]
    if missing:
        raise LedgerError(f"{where}: missing key(s) {', '.join(missing)}")
    extra = [k for k in row if k not in FIELDS]
    if extra:
        raise LedgerError(f"{where}: unknown key(s) {', '.join(extra)}")
    if row["direction"] not in ("higher", "lower"):
        raise LedgerError(f"{where}: direction must be 'higher' or 'lower', got "
                          f"{row['direction']!r}")
    if row["target_by"] not in ("paper", "project", None):
        raise LedgerError(f"{where}: target_by must be 'paper', 'project' or null, got "
                          f"{row['target_by']!r}")
    status = row["status"]
    if not isinstance(status, str) or not STATUS_PATTERN.match(status):
        raise LedgerError(f"{where}: status {status!r} is not one of met, short by X, variant, "
                          f"not comparable: REASON, historical")
    want = compute_status(row)
    if status != want:
        raise LedgerError(f"{where}: stored status {status!r} contradicts the rules, which "
                          f"give {want!r} (study {row['study']}, metric {row['metric']}, seed "
                          f"{row['seed']})")


def read_ledger(path) -> List[Dict]:
    """Every row of the ledger at ``path``, each checked (an error names the line)."""
    path = pathlib.Path(path)
    if not path.exists():
        return []
    rows = []
    for i, line in enumerate(path.read_text().splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}:{i}"
        try:
            row = json.loads(line)
        except json.JSONDecodeError as e:
            raise LedgerError(f"{where}: not valid JSON: {e}") from None
        if not isinstance(row, dict):
            raise LedgerError(f"{where}: a ledger line must be a JSON object")
        check_row(row, where)
        rows.append(row)
    return rows


def _dump(row) -> str:
    return json.dumps({k: row[k] for k in FIELDS}, ensure_ascii=False)


def write_text_atomic(path: pathlib.Path, text: str) -> int:
    """Write ``text`` to ``path`` through a temporary file in the same folder, synced and then
    renamed over it: a reader sees the old file or the new one, never a part. Returns the
    bytes written."""
    path = pathlib.Path(path)
    fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return len(text.encode())


def append_rows(path, rows: Iterable[Dict]) -> int:
    """Append ``rows`` to the ledger at ``path`` atomically; each row gets its computed
    status first and is checked. Returns the number of rows written."""
    rows = [dict(r) for r in rows]
    for i, r in enumerate(rows):
        r["status"] = compute_status(r)
        check_row(r, f"new row {i}")
    if not rows:
        return 0
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = os.open(path.parent, os.O_RDONLY)      # the folder: no lock file is left behind
    try:
        if fcntl is not None:
            fcntl.flock(lock, fcntl.LOCK_EX)
        old = path.read_text() if path.exists() else ""
        if old and not old.endswith("\n"):
            old += "\n"
        write_text_atomic(path, old + "".join(_dump(r) + "\n" for r in rows))
    finally:
        os.close(lock)                            # closing releases the lock
    return len(rows)
