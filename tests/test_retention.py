"""Disk use stays bounded: a host keeps at most journal_retain journals and alert_retain of
Guardian's alert files, and the controller's report folder at most report_keep runs."""

from __future__ import annotations

import json
import os
from pathlib import Path

from remediation.agent.journal import prune
from remediation.config import load_config
from remediation.reporting.report import ReportStore, RunReport


def test_journals_beyond_the_limit_go_oldest_first_and_nothing_else_is_touched(tmp_path: Path) -> None:
    for stamp in range(10):
        (tmp_path / f"2026120{stamp}T141500Z-cron-{stamp}.json").write_text("{}")
    (tmp_path / "notes.txt").write_text("the operator's")
    os.symlink("/etc/passwd", tmp_path / "zz-link.json")
    removed = prune(str(tmp_path), keep=3)
    assert removed == [f"2026120{n}T141500Z-cron-{n}.json" for n in range(7)]
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "20261207T141500Z-cron-7.json",
        "20261208T141500Z-cron-8.json",
        "20261209T141500Z-cron-9.json",
        "notes.txt",
        "zz-link.json",  # a symlink is never followed, nor removed
    ]


def test_only_guardians_alert_files_are_pruned(tmp_path: Path) -> None:
    for n in range(5):
        path = tmp_path / f"alpaca_sip_alert_20261202_14150{n}.txt"
        path.write_text("alert")
        os.utime(path, (1000 + n, 1000 + n))
    (tmp_path / "my_alert_notes.txt").write_text("not Guardian's naming")
    (tmp_path / "guardian.log").write_text("log")
    assert prune(str(tmp_path), keep=2, alerts=True) == [f"alpaca_sip_alert_20261202_14150{n}.txt" for n in range(3)]
    assert (tmp_path / "my_alert_notes.txt").exists() and (tmp_path / "guardian.log").exists()


def test_the_report_folder_keeps_the_newest_runs_and_never_the_latest_or_one_under_way(tmp_path: Path) -> None:
    store = ReportStore(tmp_path)
    for n in range(6):
        store.save(RunReport(f"20261202T00000{n}Z-abcd", "premarket", "t", complete=n != 2))
    (tmp_path / "stray").mkdir()  # not a run: left alone
    assert store.latest_run_id() == "20261202T000005Z-abcd"
    removed = store.prune(2, protect=("20261202T000000Z-abcd",))
    assert removed == ["20261202T000001Z-abcd", "20261202T000003Z-abcd"]
    assert store.run_ids() == [
        "20261202T000000Z-abcd",  # protected (the run that just finished)
        "20261202T000002Z-abcd",  # not complete and fresh: another command may be writing it
        "20261202T000004Z-abcd",
        "20261202T000005Z-abcd",
    ]
    assert (tmp_path / "stray").is_dir() and store.prune(0) == []


def test_a_limit_of_zero_keeps_everything(tmp_path: Path) -> None:
    for n in range(3):
        (tmp_path / f"2026120{n}T141500Z-cron-{n}.json").write_text("{}")
    assert prune(str(tmp_path), keep=0) == [] and len(list(tmp_path.iterdir())) == 3


def test_report_keep_is_read_from_guardian_yaml_and_checked(tmp_path: Path) -> None:
    assert load_config(tmp_path).report_keep == 200
    (tmp_path / "guardian.yaml").write_text("report_keep: 30\n")
    assert load_config(tmp_path).report_keep == 30
    (tmp_path / "guardian.yaml").write_text("report_keep: many\n")
    try:
        load_config(tmp_path)
    except Exception as exc:  # ConfigError names the file, line and key
        assert "report_keep" in str(exc) and "guardian.yaml" in json.dumps(str(exc))
    else:
        raise AssertionError("a report_keep that is not a number must be refused")
