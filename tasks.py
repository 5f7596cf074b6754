"""Invoke entry point: ``invoke --list``. The tasks live in ``remediation.cli`` so that the
``guardian`` console script serves exactly the same collection."""

from remediation.cli import namespace as ns

__all__ = ["ns"]
