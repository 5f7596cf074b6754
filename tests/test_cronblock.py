"""The crontab block and schedule validation (pure text functions)."""

from __future__ import annotations

from pathlib import Path

import pytest

from remediation.agent.cronblock import BEGIN, END, ScheduleError, render_block, replace_block, validate_schedule
from remediation.agent.deploy import cron_lines
from remediation.errors import InventoryError
from remediation.inventory import load_inventory

USER_CRONTAB = "MAILTO=ops@example.com\n# my backup\n0 3 * * * /usr/local/bin/backup --all\n"


@pytest.mark.parametrize(
    "schedule",
    [
        "15 14 * * 1-5",
        "30 20 * * 5",
        "*/5 * * * *",
        "0 0 1,15 jan-jun mon-fri",
        "@daily",
        "0 9-17/2 * * *",
        "  15  14 * *   1-5 ",
    ],
)
def test_valid_schedules(schedule: str) -> None:
    assert validate_schedule(schedule) == (
        schedule.split()[0] if schedule.startswith("@") else " ".join(schedule.split())
    )


@pytest.mark.parametrize(
    ("schedule", "words"),
    [
        ("15 14 * *", "expected 5 fields"),
        ("61 * * * *", "minute: 61"),
        ("* 24 * * *", "hour: 24"),
        ("* * 0 * *", "day of month: 0"),
        ("* * * 13 *", "month: 13"),
        ("* * * * 8", "day of week: 8"),
        ("*/0 * * * *", "step"),
        ("5-1 * * * *", "backwards"),
        ("* * * * * rm -rf /", "expected 5 fields"),
        ("0 0 * * *\n* * * * * evil", "one line"),
        ("0 0 * * % ", "one line"),
        ("@sometimes", "expected 5 fields"),
    ],
)
def test_invalid_schedules(schedule: str, words: str) -> None:
    with pytest.raises(ScheduleError, match=words):
        validate_schedule(schedule)


def test_install_twice_leaves_one_block_and_user_lines_intact() -> None:
    block = render_block(["15 14 * * 1-5 run-it"])
    once = replace_block(USER_CRONTAB, block)
    twice = replace_block(once, block)
    assert once == twice
    assert once.startswith(USER_CRONTAB)
    assert once.count(BEGIN) == 1 and once.count(END) == 1
    updated = replace_block(once, render_block(["0 9 * * * other"]))
    assert "run-it" not in updated and "other" in updated and updated.startswith(USER_CRONTAB)
    assert replace_block(updated, None) == USER_CRONTAB


def test_block_in_the_middle_is_replaced_in_place() -> None:
    text = "A\n" + render_block(["x"]) + "B\n"
    assert replace_block(text, render_block(["y"])) == "A\n" + render_block(["y"]) + "B\n"
    assert replace_block(text, None) == "A\nB\n"


def test_unterminated_block_is_refused() -> None:
    with pytest.raises(ValueError, match="no '# END GUARDIAN'"):
        replace_block(f"{BEGIN}\n* * * * * x\n", render_block(["y"]))


def test_cron_lines_quote_every_value() -> None:
    lines = cron_lines(
        "/srv/my app",
        "/usr/bin/python3",
        "/srv/my app/.guardian",
        [{"name": "pm", "schedule": "15 14 * * 1-5", "check": "check it.py", "log": "logs/pm.log"}],
    )
    assert lines[0] == (
        "15 14 * * 1-5 cd '/srv/my app' && /usr/bin/python3 -I -S '/srv/my app/.guardian/guardian-runner.py' "
        "--config '/srv/my app/.guardian/config.json' --runner cron --format text --check 'check it.py' "
        ">> logs/pm.log 2>&1"
    )
    with pytest.raises(ScheduleError):
        cron_lines("/srv/100%", "python3", "/srv/100%/.g", [])


def test_inventory_schedules_are_validated_with_file_line_and_key(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    path.write_text(
        "groups:\n  g:\n    vars:\n      schedules:\n        - {name: pm, schedule: '99 * * * *', check: c.py}\n"
        "    hosts:\n      h1: {address: 192.0.2.1}\n"
    )
    with pytest.raises(InventoryError) as info:
        load_inventory([path])
    assert info.value.key == "groups.g.vars.schedules[0]" and info.value.line == 5 and "minute: 99" in str(info.value)


def test_a_schedules_optional_flag_must_be_true_or_false(tmp_path: Path) -> None:
    path = tmp_path / "inv.yml"
    path.write_text(
        "groups:\n  g:\n    vars:\n      schedules:\n        - name: audit\n          schedule: '30 20 * * 5'\n"
        "          check: audit.py\n          optional: 'yes'\n    hosts:\n      h1: {address: 192.0.2.1}\n"
    )
    with pytest.raises(InventoryError) as info:
        load_inventory([path])
    assert info.value.key == "groups.g.vars.schedules[0].optional" and info.value.line == 8
    assert "expected true or false" in str(info.value) and "'yes'" in str(info.value)
    path.write_text(path.read_text().replace("'yes'", "true"))
    host = load_inventory([path]).hosts["h1"]
    assert host.settings["schedules"] == [
        {"name": "audit", "schedule": "30 20 * * 5", "check": "audit.py", "log": "logs/audit.log", "optional": True}
    ]
