"""PID 1 of one lab droplet: private mounts, sshd, cron and the process manager.

Runs (stdlib only, under /usr/bin/python3) inside fresh PID, mount and UTS namespaces
that ``Lab.up`` created inside the host's network namespace::

    hostinit.py HOSTDIR

``HOSTDIR/host.json`` says the host's name and manager.  Per-host directories under
HOSTDIR are bind-mounted over the shared system paths, then sshd, cron and the manager
are started.  PID 1 reaps zombies; SIGTERM stops everything; SIGUSR1 restarts sshd if
it is not running.

A ``systemd`` host instead becomes a container for real systemd (:func:`boot_systemd`):
after the same private mounts it moves into a cgroup of its own, enters a cgroup namespace,
makes ``/proc/sys`` read-only, hides the machine's generators and console, and ``exec``s
``/lib/systemd/systemd --system`` as the host's PID 1 (``container=other``). systemd then
starts sshd, cron and the app's units from the host's private ``/etc/systemd/system``.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

MS_RDONLY = 1
MS_NOSUID = 2
MS_NODEV = 4
MS_NOEXEC = 8
MS_REMOUNT = 32
MS_BIND = 4096
MNT_DETACH = 2
CLONE_NEWCGROUP = 0x02000000

#: Inside path -> path under HOSTDIR bind-mounted over it (directories, then files).
BIND_DIRS = (
    "/root",
    "/run",
    "/tmp",
    "/var/spool/cron",
    "/var/log",
    "/etc/supervisor",
    "/etc/cron.d",
    "/usr/local/bin",
    "/etc/systemd",
)
#: Files bind-mounted when HOSTDIR has them (/etc/machine-id and /etc/hostname: systemd hosts).
BIND_FILES = ("/etc/crontab", "/etc/machine-id", "/etc/hostname")

#: systemd as a systemd host's PID 1, and what it must not see of the machine.
SYSTEMD = "/lib/systemd/systemd"
GENERATORS = "/usr/lib/systemd/system-generators"
#: Where a systemd host's cgroup lives in the machine's cgroup2 hierarchy (plus its namespace).
CGROUP_PARENT = "guardian-lab"

SSHD_PIDFILE = "/run/sshd.pid"
INIT_STATE = "/run/lab-init.json"


class _Stop(Exception):
    """Raised by the SIGTERM handler to leave the reaping loop."""


def _log(msg: str) -> None:
    sys.stderr.write(f"[hostinit {time.strftime('%H:%M:%S')}] {msg}\n")
    sys.stderr.flush()


def _libc() -> Any:
    return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)


def _mount(source: str, target: str, fstype: str | None, flags: int) -> None:
    kind = fstype.encode() if fstype else None
    if _libc().mount(source.encode(), target.encode(), kind, flags, None) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"mount {source} -> {target} ({fstype or 'bind'}): {os.strerror(err)}")


def _bind(source: str, target: str) -> None:
    _mount(source, target, None, MS_BIND)


def setup_mounts(hostdir: Path) -> None:
    """Bind the per-host directories and files over the shared system paths."""
    for inside in BIND_DIRS:
        (hostdir / inside.lstrip("/")).mkdir(parents=True, exist_ok=True)
        Path(inside).mkdir(parents=True, exist_ok=True)
    # Sources go through an fd so mounting over /tmp or /root cannot hide HOSTDIR.
    keep = os.open(hostdir, os.O_RDONLY | os.O_DIRECTORY)
    base = f"/proc/self/fd/{keep}"
    for inside in BIND_DIRS:
        _bind(f"{base}/{inside.lstrip('/')}", inside)
    for inside in BIND_FILES:
        if (hostdir / inside.lstrip("/")).exists() and Path(inside).exists():
            _bind(f"{base}/{inside.lstrip('/')}", inside)
    # If HOSTDIR lives under an overlaid path (e.g. /tmp), re-expose it at its own path
    # so sshd_config, host keys and logs keep their absolute paths inside the host.
    if not (hostdir / "host.json").exists():
        hostdir.mkdir(parents=True, exist_ok=True)
        _bind(base, str(hostdir))
    os.close(keep)


def prepare_dirs() -> None:
    """Create the runtime directories the services expect."""
    Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)
    os.chmod("/run/sshd", 0o755)  # noqa: S103 - sshd privilege-separation dir
    Path("/var/log/supervisor").mkdir(parents=True, exist_ok=True)
    crontabs = Path("/var/spool/cron/crontabs")
    crontabs.mkdir(parents=True, exist_ok=True)
    try:
        import grp

        gid = grp.getgrnam("crontab").gr_gid
    except KeyError:
        gid = 0
    os.chown(crontabs, 0, gid)
    os.chmod(crontabs, 0o1730)  # noqa: S103 - Debian spool mode (sticky, group crontab)
    Path("/root/.ssh").mkdir(mode=0o700, exist_ok=True)


class Init:
    """Starts and supervises the host's services as PID 1."""

    def __init__(self, hostdir: Path, conf: dict[str, Any]) -> None:
        """Remember the host directory and its configuration."""
        self.hostdir = hostdir
        self.conf = conf
        self.children: dict[str, subprocess.Popen[bytes]] = {}

    def _spawn(self, name: str, argv: list[str], cwd: str = "/") -> None:
        self.children[name] = subprocess.Popen(argv, cwd=cwd, stdin=subprocess.DEVNULL)
        _log(f"started {name} pid {self.children[name].pid}: {' '.join(argv)}")
        self._write_state()

    def _write_state(self) -> None:
        state = {name: proc.pid for name, proc in self.children.items() if proc.returncode is None}
        tmp = INIT_STATE + ".tmp"
        Path(tmp).write_text(json.dumps(state))
        os.replace(tmp, INIT_STATE)

    def sshd_running(self) -> bool:
        """Whether the sshd started by this init (or a restart) is alive."""
        proc = self.children.get("sshd")
        return proc is not None and proc.returncode is None and proc.poll() is None

    def start_sshd(self) -> None:
        """Start the OpenSSH daemon in the foreground."""
        self._spawn(
            "sshd",
            [
                "/usr/sbin/sshd",
                "-D",
                "-f",
                str(self.hostdir / "ssh" / "sshd_config"),
                "-E",
                "/var/log/sshd.log",
            ],
        )

    def running(self, name: str) -> bool:
        """Whether the child ``name`` started by this init (or a restart) is alive."""
        proc = self.children.get(name)
        return proc is not None and proc.returncode is None and proc.poll() is None

    def start_cron(self) -> None:
        """Start the cron daemon in the foreground."""
        self._spawn("cron", ["/usr/sbin/cron", "-f"])

    def start_all(self) -> None:
        """Start sshd, cron and the configured process manager."""
        self.start_sshd()
        self.start_cron()
        manager = self.conf["manager"]
        if manager == "supervisor":
            argv = ["/usr/bin/supervisord", "-n", "-c", "/etc/supervisor/supervisord.conf"]
        elif manager == "process-compose":
            argv = [
                "/usr/local/bin/process-compose",
                "up",
                "-f",
                "/root/stock-bot/process-compose.yaml",
                "-t=false",
            ]
        elif manager == "signal":
            argv = ["/usr/bin/python3", "/root/stock-bot/deploy_supervisor.py"]
        else:
            raise SystemExit(f"unknown manager {manager!r}")
        self._spawn("manager", argv, cwd="/root/stock-bot")

    def on_usr1(self, signum: int, frame: object) -> None:
        """Restart sshd and cron if they are not running (used by the lab's ``reset``)."""
        if not self.sshd_running():
            self.start_sshd()
        if not self.running("cron"):
            self.start_cron()

    def reap_forever(self) -> None:
        """Reap every child (including orphans) until SIGTERM."""
        while True:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                time.sleep(1)
                continue
            for name, proc in self.children.items():
                if proc.pid == pid and proc.returncode is None:
                    proc.returncode = os.waitstatus_to_exitcode(status)
                    _log(f"{name} (pid {pid}) exited with {proc.returncode}")
                    self._write_state()

    def shutdown(self) -> None:
        """Terminate everything in the namespace and reap it."""
        _log("shutting down")
        for sig, grace in ((signal.SIGTERM, 3.0), (signal.SIGKILL, 2.0)):
            try:
                os.kill(-1, sig)
            except ProcessLookupError:
                return
            deadline = time.monotonic() + grace
            while time.monotonic() < deadline:
                try:
                    pid, _ = os.waitpid(-1, os.WNOHANG)
                except ChildProcessError:
                    return
                if pid == 0:
                    time.sleep(0.05)


def enter_own_cgroup(path: str) -> None:
    """Move this process into cgroup ``path`` of the machine's cgroup2 hierarchy, then into a
    cgroup namespace rooted there, with ``/sys/fs/cgroup`` showing only that subtree: systemd
    manages its own tree, as under systemd-nspawn, and never the machine's (or another host's)."""
    cgroot = "/sys/fs/cgroup"  # in this mount namespace: the host's own sysfs, nothing mounted yet
    flags = MS_NOSUID | MS_NODEV | MS_NOEXEC
    _mount("cgroup2", cgroot, "cgroup2", flags)
    own = os.path.join(cgroot, path)
    os.makedirs(own, exist_ok=True)
    with open(os.path.join(own, "cgroup.procs"), "w") as fh:
        fh.write("0\n")
    libc = _libc()
    if libc.unshare(CLONE_NEWCGROUP) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare(CLONE_NEWCGROUP): {os.strerror(err)}")
    if libc.umount2(cgroot.encode(), MNT_DETACH) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"umount {cgroot}: {os.strerror(err)}")
    _mount("cgroup2", cgroot, "cgroup2", flags)


def seal_for_systemd(hostdir: Path) -> None:
    """What a container manager does before systemd starts: ``/proc/sys`` read-only (no sysctl
    reaches the machine), no generators (nothing from the machine's fstab or init scripts), and
    ``/dev/console`` a sink (no emergency shell or status line on the machine's console)."""
    _bind("/proc/sys", "/proc/sys")
    _mount("/proc/sys", "/proc/sys", None, MS_BIND | MS_REMOUNT | MS_RDONLY)
    empty = hostdir / "empty"
    empty.mkdir(exist_ok=True)
    if os.path.isdir(GENERATORS):
        _bind(str(empty), GENERATORS)
    if os.path.exists("/dev/console"):
        _bind("/dev/null", "/dev/console")


def boot_systemd(hostdir: Path, conf: dict[str, Any]) -> None:
    """Become the container systemd boots in, then ``exec`` it as this host's PID 1."""
    setup_mounts(hostdir)
    socket.sethostname(conf["name"])
    prepare_dirs()
    seal_for_systemd(hostdir)
    enter_own_cgroup(conf["cgroup"])
    os.chdir("/")
    env = {"container": "other", "PATH": os.environ.get("PATH", "/usr/sbin:/usr/bin:/sbin:/bin"), "LANG": "C.UTF-8"}
    _log(f"exec {SYSTEMD} --system (cgroup {conf['cgroup']})")
    os.execve(SYSTEMD, [SYSTEMD, "--system", "--log-target=console", "--show-status=false"], env)  # noqa: S606


def _raise_stop(signum: int, frame: object) -> None:
    raise _Stop


def main(argv: list[str]) -> int:
    """Entry point: ``hostinit.py HOSTDIR``."""
    hostdir = Path(argv[1]).resolve()
    conf: dict[str, Any] = json.loads((hostdir / "host.json").read_text())
    if conf["manager"] == "systemd":
        boot_systemd(hostdir, conf)  # does not return
    signal.signal(signal.SIGTERM, _raise_stop)
    signal.signal(signal.SIGINT, _raise_stop)
    init = Init(hostdir, conf)
    signal.signal(signal.SIGUSR1, init.on_usr1)
    try:
        setup_mounts(hostdir)
        socket.sethostname(conf["name"])
        subprocess.run(["/usr/sbin/ip", "link", "set", "lo", "up"], check=False)
        prepare_dirs()
        os.chdir("/root")
        init.start_all()
        _log("up")
        init.reap_forever()
    except _Stop:
        pass
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        init.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
