"""Loading inventories: which files, which format each is in, and the hosts they add up to.

Each file is read and parsed once. Its format is decided from its name, its first significant
line and its parsed YAML: an ``.ini``/``.cfg`` name, a ``[section]`` or a host line is Ansible INI
(:mod:`.ansible_ini`); a YAML mapping with ``all`` or group-shaped values and no ``vars``/``groups``
key is Ansible YAML (:mod:`.ansible_yaml`); anything else is Guardian's own format
(:mod:`.native`), whose errors then apply. Ansible files are converted into native documents
(:mod:`.ansible_vars`), so every host is validated and layered the same way.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import yaml

from ..errors import InventoryError
from .ansible_ini import looks_like_ini, parse_ini
from .ansible_model import AnsibleDocument, AnsibleModel
from .ansible_vars import read_vars_dirs, to_document
from .ansible_yaml import looks_like_ansible_yaml, parse_yaml
from .model import INVENTORY_SUFFIXES, Inventory, how_to_start
from .native import Layers, read_document, resolve
from .yamlfile import LocatedYaml, compose, locate, plain_data, read_text


def inventory_files(path: Path) -> list[Path]:
    """``path`` itself, or every ``*.yml``/``*.yaml``/``*.ini`` file in it, sorted."""
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in INVENTORY_SUFFIXES and p.is_file())
    if not path.exists():
        raise InventoryError(f"no such inventory file or directory. {how_to_start([str(path)])}", path=str(path))
    return [path]


def load_inventory(paths: Sequence[Path], *, overrides: Mapping[str, Any] | None = None) -> Inventory:
    """Load and validate inventory files; raises InventoryError naming file, line and key.

    Groups may be spread over several files (one file may only add ``vars`` to a group another
    file lists hosts for); a group's vars apply to all its hosts, parents before children.
    """
    inventory = Inventory(paths=[str(p) for p in paths])
    layers = Layers()
    for path in [p for given in paths for p in inventory_files(given)]:
        doc = load_inventory_document(path)  # Guardian's own format, or an Ansible INI/YAML inventory
        inventory.files.append(str(path))
        read_document(doc, inventory, layers)
    resolve(inventory, layers, overrides or {})
    return inventory


def load_inventory_document(path: Path) -> LocatedYaml:
    """The document of one inventory file: native as is, Ansible converted to native."""
    text = read_text(path)
    first = _first_significant(text)
    if first is not None and looks_like_ini(path, first):
        return _converted(parse_ini(path, text))
    node = compose(path, text)
    doc = locate(path, node)  # a malformed document is reported the same whichever format it looks like
    if first is not None and _safe_data_looks_like_ansible(node):
        return _converted(parse_yaml(doc))
    return doc


def load_ansible_inventory(path: Path) -> AnsibleDocument:
    """Read an Ansible inventory file (INI, else YAML) and convert it into Guardian's native document.

    Raises:
        InventoryError: naming the file, line and key of anything malformed.
    """
    text = read_text(path)
    first = _first_significant(text)
    if first is not None and looks_like_ini(path, first):
        return _converted(parse_ini(path, text))
    return _converted(parse_yaml(locate(path, compose(path, text))))


def is_ansible_inventory(path: Path, text: str) -> bool:
    """Whether ``text`` (the contents of ``path``) is an Ansible inventory, INI or YAML."""
    first = _first_significant(text)
    if first is None:
        return False
    if looks_like_ini(path, first):
        return True
    try:
        return looks_like_ansible_yaml(yaml.safe_load(text))
    except yaml.YAMLError:
        return False  # the native loader reports the syntax error


def _converted(model: AnsibleModel) -> AnsibleDocument:
    """``model`` with the group_vars/host_vars next to its file merged in, as a native document."""
    read_vars_dirs(model, model.path.parent)
    return to_document(model)


def _safe_data_looks_like_ansible(node: yaml.Node | None) -> bool:
    """The YAML sniff on what ``yaml.safe_load`` would return, from the already parsed ``node``."""
    try:
        data = plain_data(node)
    except yaml.YAMLError:
        return False
    return looks_like_ansible_yaml(data)


def _first_significant(text: str) -> str | None:
    for raw in text.splitlines():
        line = raw.strip()
        if line and line[0] not in "#;":
            return line
    return None
