"""report.json's shape is written once, as typed records: the published schema is the one they
generate, the report dataclasses list the same fields, and records keep keys this version does
not know."""

from __future__ import annotations

import dataclasses
import json
import typing
from pathlib import Path

import jsonschema
from report_samples import extra_keys_host, full_host, full_run

from remediation.reporting import schema
from remediation.reporting.records import FileRecord, HostRecord, RunRecord
from remediation.reporting.report import CollectedFile, HostReport, ReportStore

DOCS_SCHEMA = Path(__file__).resolve().parent.parent / "docs" / "report.schema.json"


def published_schema() -> dict[str, typing.Any]:
    return json.loads(DOCS_SCHEMA.read_text(encoding="utf-8"))


def test_the_published_schema_is_the_one_the_record_types_generate() -> None:
    """docs/report.schema.json is written by `python -m remediation.reporting.schema`: edit the
    records (remediation/reporting/records.py), then run it."""
    assert DOCS_SCHEMA.read_text(encoding="utf-8") == schema.render_schema()
    assert schema.main(["--check", str(DOCS_SCHEMA)]) == 0


def test_schema_check_fails_on_a_stale_file(tmp_path: Path) -> None:
    stale = tmp_path / "schema.json"
    stale.write_text(DOCS_SCHEMA.read_text().replace('"deferred"', '"deferred-old"'))
    assert schema.main(["--check", str(stale)]) == 1
    assert schema.main([str(stale)]) == 0 and stale.read_text() == schema.render_schema()


def test_the_report_dataclasses_and_the_records_list_the_same_fields() -> None:
    host_fields = {f.name for f in dataclasses.fields(HostReport)}
    assert set(typing.get_type_hints(HostRecord)) == host_fields | {"matched_signatures"}
    assert set(typing.get_type_hints(FileRecord)) == {f.name for f in dataclasses.fields(CollectedFile)}
    assert set(typing.get_type_hints(RunRecord)) == set(full_run().to_dict())
    assert set(full_host().to_dict()) == set(typing.get_type_hints(HostRecord))


def test_the_full_report_validates_against_the_published_schema() -> None:
    jsonschema.validate(full_run().to_dict(), published_schema())


def test_records_keep_keys_this_version_does_not_know(tmp_path: Path) -> None:
    """Another Guardian (older, newer, the agent side) may send keys this one does not know, and
    results from an interrupted run: they are kept on the wire and validate."""
    report = full_run(extra_keys_host())
    store = ReportStore(tmp_path)
    store.save(report)
    loaded = store.load()
    assert loaded.to_dict() == report.to_dict()
    assert loaded.hosts[0].actions[0]["surprise"] == {"nested": [1, 2]}
    jsonschema.validate(json.loads((tmp_path / report.run_id / "report.json").read_text()), published_schema())
