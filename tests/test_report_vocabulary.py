"""One vocabulary: every outcome and every action result has its description, terminal style,
HTML colour, history glyph or mark, and its entry in the published schema, and nothing styles a
name that does not exist."""

from __future__ import annotations

import json
import re
import typing
from pathlib import Path

from remediation.agent.outcomes import ACTION_RESULTS, DESCRIPTIONS, OUTCOMES
from remediation.reporting import history, htmlpage, render
from remediation.reporting.views import RESULT_MARKS

DOCS_SCHEMA = Path(__file__).resolve().parent.parent / "docs" / "report.schema.json"


def published_schema() -> dict[str, typing.Any]:
    return json.loads(DOCS_SCHEMA.read_text(encoding="utf-8"))


def test_every_outcome_has_a_description_style_colour_glyph_and_schema_entry() -> None:
    known = set(OUTCOMES)
    for outcome in OUTCOMES:
        assert DESCRIPTIONS[outcome], outcome
        assert outcome in render.OUTCOME_STYLE, f"{outcome}: no terminal style (render.OUTCOME_STYLE)"
        assert outcome in htmlpage.OUTCOME_COLOURS, f"{outcome}: no HTML colour (htmlpage.OUTCOME_COLOURS)"
        assert outcome in history.GLYPHS, f"{outcome}: no history glyph (history.GLYPHS)"
    # and the other way: nothing styles an outcome that does not exist (a renamed one left behind)
    assert set(render.OUTCOME_STYLE) == known
    assert set(htmlpage.OUTCOME_COLOURS) == known
    assert set(history.GLYPHS) == known
    assert published_schema()["$defs"]["outcome"]["enum"] == list(OUTCOMES)


def test_every_action_result_has_a_mark_style_css_class_and_schema_entry() -> None:
    assert set(RESULT_MARKS) == set(ACTION_RESULTS)
    assert set(render.RESULT_STYLE) == set(ACTION_RESULTS)
    for result in ACTION_RESULTS:
        assert re.search(rf"\.r-{result}\b", htmlpage.CSS), f"{result}: no CSS class .r-{result}"
    action = published_schema()["$defs"]["action"]["properties"]["result"]
    assert action["enum"] == list(ACTION_RESULTS)
