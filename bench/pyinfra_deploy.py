"""Guardian's per-host premarket job as a pyinfra deploy (bench peer).

Uploads and runs ``peer_job.sh`` (check, heal, settle, verify, pack logs), then downloads the
packed logs. Host data from the generated inventory: manager, settle, out_dir, pid_dir.
"""

from pathlib import Path

from pyinfra import host
from pyinfra.operations import files, server

HERE = Path(__file__).resolve().parent

server.script(
    name="Premarket job",
    src=str(HERE / "peer_job.sh"),
    args=(host.data.manager, str(host.data.settle), "/tmp/gb-bench-logs.tar", host.data.pid_dir),
)
files.get(
    name="Fetch the logs",
    src="/tmp/gb-bench-logs.tar",
    dest=f"{host.data.out_dir}/{host.name}.tar",
    add_deploy_dir=False,
    force=True,
)
