"""The data-source registry: every source registers itself; a new source is one new file."""

from __future__ import annotations

import yaml

import transferlab.data as data_package
from tests.clitools import REPO
from transferlab.data import registry
from transferlab.data.factory import build_data


def test_every_shipped_data_config_names_a_registered_source_and_every_source_has_one():
    names = {yaml.safe_load(p.read_text())["name"] for p in (REPO / "conf" / "data").glob("*.yaml")}
    sources = set(registry.data_modules())
    assert names <= sources, f"conf/data names without a source: {sorted(names - sources)}"
    assert sources <= names, f"sources without a conf/data/*.yaml: {sorted(sources - names)}"


def test_a_new_source_file_is_found_without_editing_any_list(tmp_path, monkeypatch):
    (tmp_path / "my_source.py").write_text(
        "from transferlab.data.registry import register_data\n"
        "@register_data\n"
        "class MySource:\n"
        "    name = 'my_source'\n"
        "    KEYS = ('name', 'size')\n"
        "    @classmethod\n"
        "    def from_config(cls, cfg, data_config):\n"
        "        out = cls(); out.size = cfg['size']; return out\n"
    )
    monkeypatch.setattr(data_package, "__path__", [*data_package.__path__, str(tmp_path)])
    monkeypatch.setattr(registry, "_DISCOVERED", False)
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    assert "my_source" in registry.data_modules()
    assert build_data({"name": "my_source", "size": 3}, None).size == 3, "the factory builds it by its name"
