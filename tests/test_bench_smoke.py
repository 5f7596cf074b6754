"""Smoke test of the fan-out benchmark: bench/fanout.py --smoke on its own 4-host lab."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


@pytest.mark.lab
@pytest.mark.timeout(300)
def test_fanout_smoke() -> None:
    """--smoke exits 0, prints a table with every smoke peer's row, and every host healed."""
    if os.geteuid() != 0:
        pytest.skip("the lab fleet needs root")
    for tool in ("ip", "unshare", "nsenter", "/usr/sbin/sshd", "ssh", "ssh-keygen", "supervisord", "tar"):
        if shutil.which(tool) is None:
            pytest.skip(f"the lab fleet needs {tool}")
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "fanout.py"), "--smoke"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=280,
        check=False,
    )
    out = proc.stdout
    assert proc.returncode == 0, out[-3000:] + proc.stderr[-3000:]
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 8 and cells[0] == "4-nopid":
            rows[cells[1]] = cells
    assert {"guardian", "guardian-installed", "floor", "guardian-floor", "openssh"} <= set(rows), out
    for peer, cells in rows.items():
        assert cells[2] == "1/1", f"{peer}: {cells}"  # ok/runs
        assert cells[7] == "4/4", f"{peer}: {cells}"  # every host healed
    assert re.search(r"^\s+4-nopid guardian\s+run 1: .* healed 4/4", out, re.M), out
    for peer, cells in rows.items():  # the on-host CPU of a healthy host, measured for every peer
        assert float(cells[11]) > 0, f"{peer}: {cells}"
