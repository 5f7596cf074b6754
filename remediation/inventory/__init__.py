"""What Guardian acts on: inventory files (native YAML or Ansible INI/YAML), their settings with
defaults and validation, and the selection of hosts by pattern."""

from .hosts import HostSpec, Inventory, inventory_files, load_inventory, select_names

__all__ = ["HostSpec", "Inventory", "inventory_files", "load_inventory", "select_names"]
