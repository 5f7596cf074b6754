"""supervisord's own XML-RPC interface on its unix socket, with the standard library alone.

A ``supervisorctl`` call is a Python program of its own, about a third of a CPU-second per call
on a small droplet; a restart confirmed by polling it costs seconds of CPU on a busy host. The
same answers come from supervisord itself over the socket supervisorctl uses: one HTTP request
on ``AF_UNIX`` per call (``supervisor.getProcessInfo``, ``stopProcess``, ``startProcess``).

Two parts, both following supervisor 4.x (``supervisor/options.py``, ``xmlrpc.py``):

* :func:`find_endpoint`: where that socket is, read from the config supervisorctl would read
  (``supervisor_conf``, else supervisorctl's own search order): ``[supervisorctl] serverurl`` when
  it is a ``unix://`` URL, else ``[unix_http_server] file``, with the HTTP basic-auth credentials
  the server asks for. No socket (``inet_http_server`` only, no config, a missing socket file):
  the manager uses ``supervisorctl``, as before, and the record says why.
* :func:`run_calls`: the executor for a :class:`~.commands.Command` made of RPC calls.

``xmlrpc.client`` (and ``http.client``, ``configparser``) are imported only when a status or a
restart is needed: a healthy host's run never loads them.
"""

from __future__ import annotations

import os
import stat
from typing import TYPE_CHECKING, Any, List, Mapping, Optional, Tuple

from .records import field, record

if TYPE_CHECKING:  # pragma: no cover
    import http.client
    import xmlrpc.client

    from .commands import Command, CommandResult

#: ``supervisor.xmlrpc.Faults``: fault codes and their names (supervisor 3.x and 4.x).
FAULT_NAMES = {
    1: "UNKNOWN_METHOD",
    2: "INCORRECT_PARAMETERS",
    3: "BAD_ARGUMENTS",
    4: "SIGNATURE_UNSUPPORTED",
    6: "SHUTDOWN_STATE",
    10: "BAD_NAME",
    11: "BAD_SIGNAL",
    20: "NO_FILE",
    21: "NOT_EXECUTABLE",
    30: "FAILED",
    40: "ABNORMAL_TERMINATION",
    50: "SPAWN_ERROR",
    60: "ALREADY_STARTED",
    70: "NOT_RUNNING",
    80: "SUCCESS",
    90: "ALREADY_ADDED",
    91: "STILL_RUNNING",
    92: "CANT_REREAD",
}
#: supervisorctl's default config search, after ``HERE/etc`` and ``HERE`` (HERE: the directory
#: above supervisorctl's own, e.g. /usr for /usr/bin/supervisorctl); relative paths are the cwd's.
SEARCH_TAIL = ("supervisord.conf", "etc/supervisord.conf", "/etc/supervisord.conf", "/etc/supervisor/supervisord.conf")


@record(frozen=True)
class Endpoint:
    """Where the host's supervisord takes XML-RPC calls, or why it cannot be reached that way."""

    config: str  # the config file read ("" when none was found)
    socket: str = ""  # the unix socket's absolute path ("": none to use, see ``reason``)
    auth: Optional[Tuple[str, str]] = field(default=None, repr=False, compare=False)  # never shown
    reason: str = ""  # why there is no socket to use


def search_paths(supervisorctl: str, *, path_env: Optional[str] = None) -> List[str]:
    """supervisorctl's own config search order (``Options.__init__`` in supervisor/options.py),
    for the supervisorctl program the host would run."""
    program = supervisorctl
    if os.sep not in program:
        dirs = (path_env if path_env is not None else os.environ.get("PATH", os.defpath)).split(os.pathsep)
        for directory in dirs:
            candidate = os.path.join(directory, program)
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                program = candidate
                break
    here = os.path.dirname(os.path.dirname(program))
    return [os.path.join(here, "etc", "supervisord.conf"), os.path.join(here, "supervisord.conf"), *SEARCH_TAIL]


def _normalize(path: str) -> str:
    return os.path.normpath(os.path.abspath(os.path.expanduser(path)))


def parse_endpoint(text: str, config: str, environ: Optional[Mapping[str, str]] = None) -> Endpoint:
    """The socket and credentials a supervisor config names (pure: the config's text in).

    As supervisor reads them: ``;``/``#`` inline comments, ``%(here)s`` (the config's directory)
    and ``%(ENV_X)s`` expansions, paths made absolute."""
    import configparser

    parser = configparser.RawConfigParser(inline_comment_prefixes=(";", "#"), strict=False)
    try:
        parser.read_string(text, source=config)
    except configparser.Error as exc:
        return Endpoint(config, reason=f"cannot parse {config}: {str(exc).splitlines()[0]}")
    expansions = {f"ENV_{k}": v for k, v in (os.environ if environ is None else environ).items()}
    expansions["here"] = os.path.dirname(_normalize(config))

    def get(section: str, option: str) -> Optional[str]:
        if not parser.has_option(section, option):
            return None
        raw = parser.get(section, option)
        try:
            return raw % expansions
        except (KeyError, ValueError):
            raise ValueError(f"{config}: [{section}] {option}={raw!r} has an unknown %(name)s expansion") from None

    try:
        serverurl = (get("supervisorctl", "serverurl") or "").strip()
        ctl_auth = _auth(get("supervisorctl", "username"), get("supervisorctl", "password"))
        server_file = (get("unix_http_server", "file") or "").strip()
        server_auth = _auth(get("unix_http_server", "username"), get("unix_http_server", "password"))
    except ValueError as exc:
        return Endpoint(config, reason=str(exc))
    if serverurl.startswith("unix://"):
        return Endpoint(config, _normalize(serverurl[len("unix://") :]), ctl_auth)
    if server_file:  # supervisorctl would go by serverurl (default http://localhost:9001); the
        # unix socket belongs to the same supervisord, and takes its own credentials
        return Endpoint(config, _normalize(server_file), server_auth or ctl_auth)
    where = f"serverurl={serverurl}" if serverurl else "no [unix_http_server]"
    return Endpoint(config, reason=f"{config} names no unix socket ({where}: inet_http_server only)")


def _auth(username: Optional[str], password: Optional[str]) -> Optional[Tuple[str, str]]:
    return (username, password) if username is not None and password is not None else None


def find_endpoint(conf: Optional[str], supervisorctl: str = "supervisorctl") -> Endpoint:
    """The endpoint of the supervisord that ``supervisorctl [-c conf]`` would talk to. Read-only:
    reads the config and looks at the socket file; connects to nothing."""
    if conf:
        config = conf
    else:
        config = next((p for p in search_paths(supervisorctl) if os.path.exists(p)), "")
        if not config:
            return Endpoint("", reason="no supervisor config at supervisorctl's default paths")
    try:
        with open(config, encoding="utf-8", errors="replace") as fh:
            endpoint = parse_endpoint(fh.read(), config)
    except OSError as exc:
        return Endpoint(config, reason=f"cannot read {config}: {exc.strerror or exc}")
    if not endpoint.socket:
        return endpoint
    try:
        mode = os.stat(endpoint.socket).st_mode
    except OSError as exc:
        return Endpoint(config, reason=f"socket {endpoint.socket}: {exc.strerror or exc}")
    if not stat.S_ISSOCK(mode):
        return Endpoint(config, reason=f"{endpoint.socket} is not a socket")
    return endpoint


# ---------------------------------------------------------------------------------------------
# The executor: XML-RPC over AF_UNIX


def _transport(path: str, timeout: float, auth: Optional[Tuple[str, str]]) -> xmlrpc.client.Transport:
    import base64
    import http.client
    import socket
    import xmlrpc.client

    class UnixHTTPConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            try:
                sock.connect(path)
            except OSError:
                sock.close()
                raise
            self.sock = sock

    class UnixTransport(xmlrpc.client.Transport):
        def make_connection(self, host: Any) -> http.client.HTTPConnection:
            connection = self._connection[1]
            if connection is None:
                self._extra_headers = []
                connection = UnixHTTPConnection("localhost", timeout=timeout)
                self._connection = host, connection
            return connection

    headers: List[Tuple[str, str]] = []
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode("ascii")
        headers.append(("Authorization", f"Basic {token}"))
    return UnixTransport(headers=headers)


def call_text(method: str, args: Tuple[Any, ...]) -> str:
    """A call as the report shows it: ``supervisor.stopProcess('uw-daemon', True)``."""
    return f"{method}({', '.join(repr(a) for a in args)})"


def run_calls(command: Command, *, timeout: float) -> CommandResult:
    """Make ``command``'s calls in order on its socket. A fault the call tolerates (``NOT_RUNNING``
    for a stop) is noted and the next call made; any other fault ends the command with the fault
    code as its exit code. Raises NotDelivered when the first call could not be made at all,
    ManagerError when supervisord went away or did not answer in time after that."""
    import http.client
    import xmlrpc.client

    from .commands import CommandResult, ManagerError, NotDelivered

    transport = _transport(command.socket, timeout, command.auth)
    proxy = xmlrpc.client.ServerProxy("http://localhost/RPC2", transport=transport)
    lines: List[str] = []
    value: Any = None
    for n, call in enumerate(command.calls):
        shown = call_text(call.method, call.args)
        try:
            value = getattr(proxy, call.method)(*call.args)
        except xmlrpc.client.Fault as fault:
            name = FAULT_NAMES.get(fault.faultCode, "UNKNOWN")
            if n == 0 and name == "UNKNOWN_METHOD":
                missing = f"has no {call.method} ([rpcinterface:supervisor] missing?)"
                raise NotDelivered(f"supervisord on {command.socket} {missing}") from None
            lines.append(f"{shown}: fault {name} ({fault.faultCode}): {fault.faultString}")
            if name in call.tolerate:
                lines[-1] += " (fine)"
                continue
            return CommandResult(fault.faultCode, "\n".join(lines), {"fault": name, "message": fault.faultString})
        except xmlrpc.client.ProtocolError as exc:
            what = "refused the credentials" if exc.errcode == 401 else f"answered HTTP {exc.errcode} {exc.errmsg}"
            if n == 0:
                raise NotDelivered(f"supervisord on {command.socket} {what}") from None
            raise ManagerError(f"{shown}: supervisord on {command.socket} {what}") from None
        except (OSError, http.client.HTTPException) as exc:
            reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
            if n == 0 and isinstance(exc, (FileNotFoundError, ConnectionRefusedError, PermissionError)):
                raise NotDelivered(f"socket {command.socket}: {reason}") from None
            raise ManagerError(f"{shown}: no answer from supervisord on {command.socket}: {reason}") from None
        lines.append(f"{shown}: {value!r}")
    return CommandResult(0, "\n".join(lines), value)
