"""What Guardian acts on: inventory files (native YAML or Ansible INI/YAML), their settings with
defaults and validation, and the selection of hosts by pattern.

``model`` (HostSpec, Inventory, host patterns) <- ``loader`` (files, format dispatch) <- ``native``
(Guardian's format and the settings layering), ``ansible_ini`` / ``ansible_yaml`` / ``ansible_vars``
(Ansible inventories, converted to native); ``settings`` validates every value, ``yamlfile``
remembers lines for errors, ``sshconfig`` reads ssh_config for the transport and ``invoke inventory``.
"""

from .loader import inventory_files, load_inventory
from .model import HostSpec, Inventory, select_names

__all__ = ["HostSpec", "Inventory", "inventory_files", "load_inventory", "select_names"]
