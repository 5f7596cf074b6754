"""Signature rules: the shipped defaults match the seed's patterns; bad rules are rejected."""

from __future__ import annotations

import time

import pytest

from remediation.agent.signatures import MAX_LINE_CHARS, RuleError, classify, load_signatures, signatures_to_data
from remediation.rules import load_rules

SEED_UW = ["connection_error", "timeout", "UW.*fail", "socket.*fail"]
SEED_SIP = ["SIP.*delay", "sip_feed.*error", "sip_feed.*no_data"]


def test_defaults_equal_the_seed_patterns_in_recovery_order() -> None:
    rules = load_rules()
    assert [s.name for s in rules] == ["uw_socket", "alpaca_sip_delay"]
    assert list(rules[0].patterns) == SEED_UW
    assert list(rules[1].patterns) == SEED_SIP
    assert [(a.kind, a.target) for a in rules[0].actions] == [("restart", "uw-daemon")]
    assert [(a.kind, a.target) for a in rules[1].actions] == [
        ("alert", "alpaca_sip"),
        ("restart", "trading-bot"),
    ]


@pytest.mark.parametrize(
    ("line", "expected"),
    [
        ("[FAIL] UW socket failure: connection_error talking to flow API (pid 12)", ["uw_socket"]),
        ("[FAIL] UW flow daemon not running: socket failed (no process)", ["uw_socket"]),
        ("request timeout after 30s", ["uw_socket"]),
        ("[WARN] Alpaca SIP delay: last quote 45.0s old (sip_feed: no_data)", ["alpaca_sip_delay"]),
        ("[FAIL] sip_feed error: trading bot not running", ["alpaca_sip_delay"]),
        ("[OK] UW flow daemon: connected (pid 3)", []),
        ("[OK] Alpaca data: streaming (pid 4)", []),
        ("[WARN] stale lock state/metadata.lock held by dead pid 99", []),
        ("RESULT: HEALTHY", []),
    ],
)
def test_example_app_lines_classify_as_the_seed_would(line: str, expected: list[str]) -> None:
    assert sorted({m.signature for m in classify(line, load_rules())}) == expected


def test_matches_carry_line_numbers_and_keep_signature_order() -> None:
    output = "ok\nsip_feed error here\nUW socket fail\n"
    matches = classify(output, load_rules())
    assert [(m.signature, m.line_no) for m in matches] == [("uw_socket", 3), ("alpaca_sip_delay", 2)]


@pytest.mark.parametrize(
    ("doc", "key"),
    [
        ({"signatures": [{"name": "x", "patterns": ["("], "actions": []}]}, "signatures[0].patterns[0]"),
        ({"signatures": [{"name": "x", "patterns": []}]}, "signatures[0].patterns"),
        (
            {"signatures": [{"name": "x", "patterns": ["a"], "actions": [{"reboot": "y"}]}]},
            "signatures[0].actions[0]",
        ),
        (
            {"signatures": [{"name": "x", "patterns": ["a"], "actions": [{"restart": "a; rm -rf /"}]}]},
            "signatures[0].actions[0].restart",
        ),
        ({"signatures": [{"name": "bad name", "patterns": ["a"]}]}, "signatures[0].name"),
        ({"signatures": [{"name": "x", "patterns": ["a"], "colour": 1}]}, "signatures[0].colour"),
        ({"signatures": [{"name": "x", "patterns": ["(a+)+$"]}]}, "signatures[0].patterns[0]"),
        ({"signatures": "nope"}, "signatures"),
    ],
)
def test_invalid_rules_are_rejected_naming_the_key(doc: object, key: str) -> None:
    with pytest.raises(RuleError) as info:
        load_signatures(doc)
    assert info.value.key == key


def test_rules_round_trip() -> None:
    rules = load_rules()
    assert load_signatures(signatures_to_data(rules)) == rules


def test_text_past_the_line_cap_is_not_matched() -> None:
    """Only the first MAX_LINE_CHARS characters of a line are matched (which bounds the work per
    line): a failure that ends on the last character counted matches, one a character later does not."""
    rules = load_rules()
    hit = "UW socket fail"
    within = "x" * (MAX_LINE_CHARS - len(hit)) + hit
    beyond = "x" * (MAX_LINE_CHARS - len(hit) + 1) + hit
    assert len(within) == MAX_LINE_CHARS and len(beyond) == MAX_LINE_CHARS + 1
    assert [(m.signature, m.line_no) for m in classify(within, rules)] == [("uw_socket", 1)]
    assert classify(beyond, rules) == []
    # The cap is per line: the next line is matched from its own start.
    assert [(m.signature, m.line_no) for m in classify(f"{beyond}\n{hit}", rules)] == [("uw_socket", 2)]


def test_matching_huge_output_is_bounded() -> None:
    rules = load_rules()
    line = "x" * 200_000 + "UW fail"
    started = time.monotonic()
    assert classify("\n".join([line] * 50), rules) == []  # the failure is far past the cap
    assert time.monotonic() - started < 5
