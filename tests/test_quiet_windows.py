"""Quiet windows in a named zone, judged with an injected clock on both sides of each DST change
(America/New_York: 2026-03-08 02:00 -> 03:00 EDT, 2026-11-01 02:00 -> 01:00 EST), and the
inventory's validation of them."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from remediation.agent.windows import QuietWindow, WindowError, judge, parse_window
from remediation.errors import InventoryError
from remediation.inventory import load_inventory

UTC = dt.timezone.utc
MARKET = {"name": "market", "services": ["trading-bot"], "days": "mon-fri", "start": "09:30", "end": "16:00",
          "tz": "America/New_York"}  # fmt: skip


def at(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text).replace(tzinfo=UTC)


def window(**changes: object) -> QuietWindow:
    return parse_window({**MARKET, **changes})


@pytest.mark.parametrize(
    ("now", "quiet", "until"),
    [
        # winter (EST, UTC-5): 09:30-16:00 New York is 14:30-21:00 UTC
        ("2026-03-06T14:29:00", False, None),  # Friday before the change, 09:29 EST
        ("2026-03-06T14:30:00", True, "2026-03-06T21:00:00"),
        ("2026-03-06T20:59:00", True, "2026-03-06T21:00:00"),
        ("2026-03-06T21:00:00", False, None),  # the end is not in the window
        # summer (EDT, UTC-4) from Sunday 2026-03-08: the same wall clock is an hour earlier in UTC
        ("2026-03-09T13:29:00", False, None),  # Monday 09:29 EDT
        ("2026-03-09T13:30:00", True, "2026-03-09T20:00:00"),
        ("2026-03-09T14:30:00", True, "2026-03-09T20:00:00"),  # 10:30 EDT (was 09:30 EST on Friday)
        ("2026-03-09T20:00:00", False, None),
        # back to EST on Sunday 2026-11-01
        ("2026-10-30T13:30:00", True, "2026-10-30T20:00:00"),  # Friday, still EDT
        ("2026-11-02T13:30:00", False, None),  # Monday 08:30 EST
        ("2026-11-02T14:30:00", True, "2026-11-02T21:00:00"),
        ("2026-11-02T20:30:00", True, "2026-11-02T21:00:00"),  # 15:30 EST: still in
        # weekends are outside a mon-fri window
        ("2026-03-07T15:00:00", False, None),
        ("2026-11-01T15:00:00", False, None),
    ],
)
def test_the_market_window_follows_new_york_wall_clock_across_dst(now: str, quiet: bool, until: str | None) -> None:
    verdict = judge("trading-bot", [window()], at(now))
    assert verdict.quiet is quiet
    assert verdict.until == (at(until) if until else None)
    assert not verdict.problem


def test_a_window_over_midnight_belongs_to_the_day_it_starts_and_covers_the_dst_night() -> None:
    night = window(start="22:00", end="03:00", days="sat")
    # Saturday 2026-10-31 22:00 EDT -> Sunday 03:00 EST (the clock goes back at 02:00): 6 real hours
    assert not judge("trading-bot", [night], at("2026-11-01T01:59:00")).quiet  # 21:59 EDT Saturday
    start = judge("trading-bot", [night], at("2026-11-01T02:00:00"))  # 22:00 EDT Saturday
    assert start.quiet and start.until == at("2026-11-01T08:00:00")  # 03:00 EST
    assert judge("trading-bot", [night], at("2026-11-01T07:59:00")).quiet  # 02:59 EST Sunday
    assert not judge("trading-bot", [night], at("2026-11-01T08:00:00")).quiet
    # Friday night is not in a Saturday window, nor is Sunday night
    assert not judge("trading-bot", [night], at("2026-10-31T03:00:00")).quiet
    assert not judge("trading-bot", [night], at("2026-11-02T04:00:00")).quiet


def test_spring_forward_night_window_is_an_hour_shorter() -> None:
    night = window(start="01:00", end="04:00", days="sun")  # the clock skips 02:00-03:00 that night
    assert judge("trading-bot", [night], at("2026-03-08T06:00:00")).quiet  # 01:00 EST
    last = judge("trading-bot", [night], at("2026-03-08T07:59:00"))  # 03:59 EDT
    assert last.quiet and last.until == at("2026-03-08T08:00:00")
    assert not judge("trading-bot", [night], at("2026-03-08T08:00:00")).quiet  # 04:00 EDT


def test_windows_apply_only_to_their_services_and_the_latest_end_wins() -> None:
    bot_only = window()
    everyone = window(services=[], start="15:00", end="17:00", name="late")
    now = at("2026-12-02T20:30:00")  # Wednesday 15:30 EST: inside both
    verdict = judge("trading-bot", [bot_only, everyone], now)
    assert verdict.window == everyone and verdict.until == at("2026-12-02T22:00:00")
    uw = judge("uw-daemon", [bot_only, everyone], now)
    assert uw.window == everyone
    assert not judge("uw-daemon", [bot_only], now).quiet


def test_a_zone_this_machine_does_not_know_counts_as_quiet_never_restarts_blind() -> None:
    unknown = QuietWindow(("trading-bot",), frozenset(range(7)), dt.time(9, 30), dt.time(16, 0), "Mars/Olympus_Mons")
    verdict = judge("trading-bot", [unknown], at("2026-12-02T12:00:00"))
    assert verdict.quiet and "Mars/Olympus_Mons" in verdict.problem
    assert "cannot be judged" in verdict.describe()


@pytest.mark.parametrize(
    ("changes", "key", "message"),
    [
        ({"start": "9:3"}, "start", "HH:MM"),
        ({"end": "24:00"}, "end", "HH:MM"),
        ({"end": "09:30"}, "end", "same time"),
        ({"days": "mon-funday"}, "days", "unknown day"),
        ({"tz": ""}, "tz", "time zone"),
        ({"services": "trading-bot"}, "", ""),  # a single name is accepted
        ({"every": "day"}, "every", "unknown key"),
    ],
)
def test_malformed_windows_name_the_key(changes: dict[str, object], key: str, message: str) -> None:
    if not message:
        assert parse_window({**MARKET, **changes}).services == ("trading-bot",)
        return
    with pytest.raises(WindowError, match=message) as caught:
        parse_window({**MARKET, **changes})
    assert caught.value.key == key


def test_days_ranges_lists_and_wraparound() -> None:
    assert window(days="mon-fri").days == frozenset(range(5))
    assert window(days="sat,sun").days == frozenset({5, 6})
    assert window(days=["fri", "mon"]).days == frozenset({0, 4})
    assert window(days="fri-mon").days == frozenset({4, 5, 6, 0})
    assert window(days="daily").days == frozenset(range(7))


def test_the_inventory_refuses_a_bad_window_naming_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    path.write_text(
        "groups:\n"
        "  prod:\n"
        "    vars:\n"
        "      quiet_windows:\n"
        "        - {services: [trading-bot], start: '09:30', end: '16:00', tz: America/Nowhere}\n"
        "    hosts:\n"
        "      d1: {address: 127.0.0.1}\n"
    )
    with pytest.raises(InventoryError) as caught:
        load_inventory([path])
    text = str(caught.value)
    assert "inv.yml:5" in text and "quiet_windows[0].tz" in text and "America/Nowhere" in text


def test_the_inventory_normalises_hooks_and_refuses_a_shell_string(tmp_path: Path) -> None:
    good = tmp_path / "good.yml"
    good.write_text(
        "vars:\n"
        "  services:\n"
        "    trading-bot:\n"
        "      safe_to_restart: [python3, hooks/safe.py]\n"
        "      pre_restart: {run: [python3, hooks/pre.py], timeout: 5}\n"
        "      heartbeat: state/bot_heartbeat\n"
        "groups:\n"
        "  prod:\n"
        "    hosts:\n"
        "      d1: {address: 127.0.0.1}\n"
    )
    [host] = load_inventory([good]).select("d1")
    bot = host.get("services")["trading-bot"]
    assert bot["safe_to_restart"] == {"run": ["python3", "hooks/safe.py"], "timeout": 10.0}
    assert bot["pre_restart"] == {"run": ["python3", "hooks/pre.py"], "timeout": 5.0}
    assert bot["program"] == "main.py"  # the defaults for a known service stay
    bad = tmp_path / "bad.yml"
    bad.write_text(
        "vars:\n  services:\n    trading-bot:\n      pre_restart: 'cancel_orders.sh && sleep 1'\n"
        "groups:\n  prod:\n    hosts:\n      d1: {address: 127.0.0.1}\n"
    )
    with pytest.raises(InventoryError) as caught:
        load_inventory([bad])
    assert "trading-bot.pre_restart" in str(caught.value) and "list of arguments" in str(caught.value)
