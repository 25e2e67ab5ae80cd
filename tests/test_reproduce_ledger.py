"""The results ledger: computed status words, checked lines, atomic appends, and the tables
generated from it (the committed reproduction.md is what the generator makes)."""
import json
import pathlib

import pytest

from scratchgan.reproduce import (FIELDS, LedgerError, append_rows, compute_status, main,
                                  read_ledger, render_report, summary_rows)
from scratchgan.reproduce.report import render_study_page

REPO = pathlib.Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results"


def make_row(**kw):
    r = {k: None for k in FIELDS}
    r.update(study="s", title="t", paper="p", model="gan", variant="", variant_note="",
             metric="parzen_ll", metric_label="Parzen LL", unit="nats", seed=0, value=200.0,
             spread=1.0, paper_value=225.0, paper_spread=2.0, paper_source="Table 1",
             protocol="Parzen", protocol_matches=True, protocol_note="", target=225.0,
             target_by="paper", direction="higher", updates=125000, authors_updates=125000,
             authors_updates_source="yaml", status="", historical=False, device="cpu",
             date="2026-12-08", commit="abc", command="python -m scratchgan.reproduce s", note="")
    r.update(kw)
    return r


@pytest.mark.parametrize("kw, status", [
    (dict(value=230.0), "met"),
    (dict(value=181.6), "short by 43 nats"),
    (dict(value=230.0, updates=60000), "not comparable: reached at 60,000 of the authors' 125,000 updates"),
    (dict(value=181.6, updates=10000), "short by 43 nats at 10,000 of the authors' 125,000 updates"),
    (dict(value=230.0, updates=62500), "met"),                       # exactly half
    (dict(value=230.0, authors_updates=None), "not comparable: the authors' schedule is unknown"),
    (dict(value=200.0, authors_updates=None), "short by 25 nats (the authors' schedule is unknown)"),
    (dict(value=230.0, updates=100, target_by="project"), "met"),   # a project target: no share
    (dict(value=230.0, protocol_matches=False, protocol_note="3% within 3 sigma"),
     "not comparable: 3% within 3 sigma"),
    (dict(value=230.0, variant="uniform-noise"), "variant"),
    (dict(paper_value=None, target=None, target_by=None), "not comparable: no published number or target for this metric"),
    (dict(paper_value=None, target=None, target_by=None, historical=True), "historical"),
    (dict(metric="code_error", unit="", direction="lower", value=0.028, target=0.05), "met"),
    (dict(metric="code_error", unit="", direction="lower", value=0.244, target=0.05,
          updates=1404, authors_updates=5000), "short by 19 points at 1,404 of the authors' 5,000 updates"),
    (dict(unit="%", direction="lower", value=6.13, target=3.33, updates=120000, authors_updates=300000),
     "short by 2.8 points at 120,000 of the authors' 300,000 updates"),
])
def test_status_rules(kw, status):
    assert compute_status(make_row(**kw)) == status


def test_read_ledger_names_the_line_whose_status_contradicts_the_rules(tmp_path):
    good = make_row(value=230.0, status="met")
    bad = make_row(value=230.0, updates=100, status="met")      # met at 100 of 125,000 updates
    path = tmp_path / "ledger.jsonl"
    path.write_text(json.dumps(good) + "\n" + json.dumps(bad) + "\n")
    with pytest.raises(LedgerError) as e:
        read_ledger(path)
    assert f"{path}:2: stored status 'met' contradicts the rules" in str(e.value)
    assert "reached at 100 of the authors' 125,000 updates" in str(e.value)
    path.write_text(json.dumps(make_row(value=230.0, status="meets the paper")) + "\n")
    with pytest.raises(LedgerError, match=r":1: status 'meets the paper' is not one of"):
        read_ledger(path)
    path.write_text(json.dumps({**good, "colour": 1}) + "\n")
    with pytest.raises(LedgerError, match=r":1: unknown key\(s\) colour"):
        read_ledger(path)
    path.write_text("{not json\n")
    with pytest.raises(LedgerError, match=r":1: not valid JSON"):
        read_ledger(path)


def test_append_computes_the_status_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "ledger.jsonl"
    assert append_rows(path, [make_row(value=230.0, status="short by 1")]) == 1
    assert append_rows(path, [make_row(value=100.0, seed=1)]) == 1
    rows = read_ledger(path)
    assert [r["status"] for r in rows] == ["met", "short by 125 nats"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ledger.jsonl"]
    with pytest.raises(LedgerError, match="missing key"):
        append_rows(path, [{"study": "s"}])
    assert len(read_ledger(path)) == 2                   # a refused row writes nothing


def test_summary_combines_the_latest_row_of_each_seed():
    rows = [make_row(seed=0, value=100.0), make_row(seed=0, value=220.0),
            make_row(seed=1, value=230.0), make_row(seed=2, value=240.0)]
    (s,) = summary_rows(rows)
    assert s["seeds"] == [0, 1, 2] and s["value"] == pytest.approx(230.0)
    assert s["spread"] == pytest.approx(10.0) and s["status"] == "met"
    text = render_report(rows)
    assert "| 230 ± 10 |" in text and "**met**" in text and "| 0, 1, 2 |" in text
    page = render_study_page("s", rows)
    assert page.count("python -m scratchgan.reproduce s") == 4     # every row, earlier ones too


def test_committed_tables_are_what_the_generator_makes(tmp_path):
    """reproduction.md and the study pages are generated from the committed ledger, never
    typed: regenerating them (from a copy of the ledger, into tmp) changes nothing."""
    ledger = tmp_path / "ledger.jsonl"
    ledger.write_text((RESULTS / "ledger.jsonl").read_text())
    rows = read_ledger(ledger)
    assert rows, "the committed ledger is empty"
    assert main(["--report", "--ledger", str(ledger)]) == 0
    assert (tmp_path / "reproduction.md").read_text() == (RESULTS / "reproduction.md").read_text()
    pages = sorted(p.name for p in (tmp_path / "studies").iterdir())
    assert pages == sorted(f"{s}.md" for s in {r["study"] for r in rows})
    for name in pages:
        assert (tmp_path / "studies" / name).read_text() == \
            (RESULTS / "studies" / name).read_text(), name


def test_committed_ledger_keeps_the_known_corrections():
    rows = read_ledger(RESULTS / "ledger.jsonl")
    ali = [r for r in rows if r["study"] == "ali-25gaussians" and r["metric"] == "modes"]
    assert ali and all(r["status"].startswith("not comparable:") and "3%" in r["status"]
                       and r["updates"] == 10000 and r["authors_updates"] == 200000 for r in ali)
    m2 = [r for r in rows if r["study"] == "m2-100labels" and r["variant"] == ""
          and r["metric"] == "test_error"]
    assert m2 and {r["authors_updates"] for r in m2} == {300000}
    assert max(r["updates"] for r in m2) == 300000          # 500 epochs of 600 updates
    assert not any("%" in r["status"] and "authors' 3,000" in r["status"] for r in rows)
