"""Lab fleet: isolated namespace droplets running real OpenSSH servers, for end-to-end tests."""

from __future__ import annotations

from remediation.lab.fleet import HostStatus, Lab, LabError, LabHost

__all__ = ["HostStatus", "Lab", "LabError", "LabHost"]
