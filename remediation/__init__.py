"""Guardian: check, heal, verify and report on a fleet of trading-bot droplets."""

from .agent import VERSION
from .errors import ConnectError, GuardianError, HostKeyError, InventoryError, ReportError
from .inventory import HostSpec, Inventory, load_inventory
from .reporting.report import HostReport, RunReport

__version__ = VERSION
__all__ = [
    "VERSION",
    "ConnectError",
    "GuardianError",
    "HostKeyError",
    "HostReport",
    "HostSpec",
    "Inventory",
    "InventoryError",
    "ReportError",
    "RunReport",
    "load_inventory",
]
