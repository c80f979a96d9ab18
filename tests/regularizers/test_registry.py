"""The regularizer registry: each regularizer registers itself with its keys; a new one is one new file."""

from __future__ import annotations

import yaml

import transferlab.regularizers as package
from tests.clitools import REPO
from transferlab.regularizers import registry
from transferlab.regularizers.factory import build_regularizer, parse_regularizer
from transferlab.regularizers.source import StartingPoint


def test_every_shipped_regularizer_config_is_registered_and_every_registered_one_is_shipped():
    names = {yaml.safe_load(p.read_text())["name"] for p in (REPO / "conf" / "regularizer").glob("*.yaml")}
    assert names == set(registry.registered()), (names, sorted(registry.registered()))


def test_a_new_regularizer_file_is_found_with_its_keys(tmp_path, monkeypatch, tiny_backbone):
    (tmp_path / "zero.py").write_text(
        "import torch\n"
        "from transferlab.regularizers.registry import Key, register\n"
        "class Zero(torch.nn.Module):\n"
        "    def forward(self, module, x, features):\n"
        "        return features.new_zeros(())\n"
        "@register('zero', {'strength': Key(1.0)})\n"
        "def build(backbone, start, values):\n"
        "    return Zero()\n"
    )
    monkeypatch.setattr(package, "__path__", [*package.__path__, str(tmp_path)])
    monkeypatch.setattr(registry, "_DISCOVERED", False)
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))
    assert parse_regularizer({"name": "zero"}) == ("zero", {"strength": 1.0}), "its keys and defaults"
    assert type(build_regularizer({"name": "zero"}, tiny_backbone, StartingPoint("tiny", None))).__name__ == "Zero"
