"""The registry: names, suggestions, wildcards, weight sources and the offline hub error."""

from __future__ import annotations

from urllib.error import URLError

import pytest
import torch
from omegaconf import OmegaConf

from transferlab.backbones import create_backbone, list_backbones
from transferlab.config.paths import conf_dir
from transferlab.errors import TransferlabError, UnknownBackboneError, WeightsError


# ---- names ----------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("typo", "expected"),
    [
        ("tv:resnt18", "tv:resnet18"),
        ("resnet18", "tv:resnet18"),
        ("efficientnet_lite", "efficientnet_lite0"),
        ("timm:convnext_attto", "timm:convnext_atto"),
    ],
)
def test_unknown_name_suggests_close_matches(typo, expected):
    with pytest.raises(UnknownBackboneError) as info:
        create_backbone(typo)
    message = str(info.value)
    assert expected in message, f"{typo!r}: suggestion {expected!r} missing from: {message}"
    assert "transferlab ls backbone" in message, f"the message must say how to list names: {message}"
    assert isinstance(info.value, TransferlabError), "must be a user error (the CLI prints it without a trace)"


def test_list_backbones_wildcards():
    resnets = list_backbones("tv:resnet*")
    assert {"tv:resnet18", "tv:resnet34", "tv:resnet50"} <= set(resnets), f"tv:resnet* gave {resnets}"
    assert all(n.startswith("tv:resnet") for n in resnets), f"tv:resnet* leaked other names: {resnets}"
    lites = list_backbones("efficientnet_lite?")
    assert lites == ["efficientnet_lite0", "efficientnet_lite1", "efficientnet_lite2"], f"lites: {lites}"
    timm_names = list_backbones("timm:convnext_at*")
    assert "timm:convnext_atto" in timm_names, f"timm names must be listed with the prefix: {timm_names}"
    everything = list_backbones()
    assert {"checkpoint", "tv:vit_b_16", "timm:resnet18"} <= set(everything), "'*' must list every family"
    assert (
        everything.index("efficientnet_lite0") < everything.index("tv:resnet18") < everything.index("timm:resnet18")
    ), "order: packaged and checkpoint, then tv:, then timm:"
    assert list_backbones("no_such_thing*") == [], "a pattern without hits gives an empty list"


@pytest.mark.parametrize("weights", [None, "none", "random", "null", "None"])
def test_random_weight_spellings(weights):
    backbone = create_backbone("tv:resnet18", weights=weights)
    assert backbone.name == "tv:resnet18", f"weights={weights!r} must build a random-init backbone"


# ---- packaged ----------------------------------------------------------------------------------------------
def test_package_on_a_model_without_package():
    with pytest.raises(WeightsError, match="no pip-packaged weights") as info:
        create_backbone("tv:resnet18", weights="package")
    assert "efficientnet_lite0" in str(info.value), f"the fix must name the packaged backbone: {info.value}"


def test_package_also_serves_the_timm_name():
    a = create_backbone("efficientnet_lite0", weights="package").state_dict()
    b = create_backbone("timm:tf_efficientnet_lite0", weights="package").state_dict()
    assert a.keys() == b.keys(), "the packaged name and the timm name must be the same architecture"
    assert all(torch.equal(a[k], b[k]) for k in a), "both names must load the same packaged tensors"


# ---- hub, offline: only the download boundary is mocked ----------------------------------------------------
OFFLINE = "mocked-offline:"


@pytest.fixture
def offline(monkeypatch, tmp_path):
    """Downloads fail like they do without network; caches point at an empty folder."""
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))

    def no_network(*args, **kwargs):
        raise URLError(f"{OFFLINE} [Errno -2] Name or service not known")

    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    import timm.models._hub as timm_hub
    from huggingface_hub.errors import LocalEntryNotFoundError

    def no_hf(*args, **kwargs):
        raise LocalEntryNotFoundError(f"{OFFLINE} cannot reach the Hub, file not in the local cache")

    monkeypatch.setattr(timm_hub, "hf_hub_download", no_hf)


@pytest.mark.timeout(60)
@pytest.mark.parametrize("name", ["tv:resnet18", "timm:resnet18", "efficientnet_lite0"])
def test_hub_offline_error_is_one_clear_line(offline, name):
    with pytest.raises(WeightsError) as info:
        create_backbone(name, weights="hub")
    message = str(info.value)
    assert "\n" not in message, f"the offline error must be one line: {message!r}"
    for alternative in ("backbone=efficientnet_lite0", "backbone.weights=<local file>", "backbone.weights=null"):
        assert alternative in message, f"offline alternative {alternative!r} missing: {message}"
    assert name in message, f"the message must name the backbone: {message}"
    assert OFFLINE in message, f"the failure must come from the mocked download, not the network: {message}"


def test_checkpoint_with_hub_weights_is_refused():
    with pytest.raises(WeightsError, match="backbone=checkpoint needs"):
        create_backbone("checkpoint", weights="hub")


# ---- conf/backbone ------------------------------------------------------------------------------------------
def test_backbone_configs_are_valid():
    files = sorted((conf_dir() / "backbone").glob("*.yaml"))
    assert len(files) >= 12, f"expected the shipped backbone choices, found {[f.stem for f in files]}"
    registered = set(list_backbones())
    for path in files:
        first = path.read_text().splitlines()[0]
        assert first.startswith("# ") and "e.g." in first, f"{path.name}: first line must describe + example"
        cfg = OmegaConf.load(path)
        assert set(cfg.keys()) == {"name", "weights"}, f"{path.name}: keys must be name and weights"
        assert cfg.name in registered, f"{path.name}: {cfg.name} is not a registered backbone"
        weights = OmegaConf.to_container(cfg)["weights"]
        assert weights in (None, "hub", "package", "???"), f"{path.name}: unexpected weights {weights!r}"
        if weights == "package":
            assert cfg.name.startswith("efficientnet_lite"), f"{path.name}: only lites have packaged weights"
