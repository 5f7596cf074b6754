"""Where ``HostSpec``, ``Inventory`` and ``load_inventory`` used to live, kept so that importers
of ``remediation.inventory.hosts`` keep working: the model is in :mod:`.model`, loading in
:mod:`.loader`, Guardian's own format in :mod:`.native`. New code imports ``remediation.inventory``.
"""

from __future__ import annotations

from .loader import inventory_files, load_inventory
from .model import LOCAL_HOST, HostSpec, Inventory, how_to_start, select_names

__all__ = ["LOCAL_HOST", "HostSpec", "Inventory", "how_to_start", "inventory_files", "load_inventory", "select_names"]
