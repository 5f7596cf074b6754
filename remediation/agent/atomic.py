"""Replace a file atomically: write a temporary file beside it, then rename it over the old one,
so a reader (the next run, node_exporter) never sees half a file. Never follows a symlink at the
temporary path. Standard library only."""

from __future__ import annotations

import os


def write_atomic(path: str, text: str, *, mode: int = 0o600, durable: bool = False) -> None:
    """Write ``text`` to ``path`` through ``path.<pid>.tmp``; ``durable`` also fsyncs it first.
    Raises OSError (the temporary file is removed)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            if durable:
                fh.flush()
                os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise
