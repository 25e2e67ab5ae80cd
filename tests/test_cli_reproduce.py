"""``scratchgan reproduce`` is wired into the main command and behaves as
``python -m scratchgan.reproduce``."""
from scratchgan.cli import main
from scratchgan.reproduce import list_studies


def test_reproduce_list_through_the_main_command(capsys):
    assert main(["reproduce", "--list"]) == 0
    out = capsys.readouterr().out
    for study in list_studies():
        assert f"{study.stem}:" in out


def test_reproduce_needs_one_mode(capsys):
    try:
        main(["reproduce"])
    except SystemExit as e:
        assert e.code == 2
    else:
        raise AssertionError("reproduce with no study, --list or --report must exit 2")
    assert "give one of STUDY, --list or --report" in capsys.readouterr().err


def test_reproduce_dry_run_through_the_main_command(tmp_path, capsys):
    assert main(["reproduce", "gan-official", "--dry-run", "--no-progress",
                 "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "nothing written to the ledger" in out
    assert (tmp_path / "out").is_dir()
