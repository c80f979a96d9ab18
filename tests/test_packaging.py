"""conf/ ships inside the wheel and is found from a wheel install as well as from this checkout."""

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_checkout_finds_the_top_level_conf_tree():
    from transferlab.config.paths import conf_dir

    assert (conf_dir() / "train.yaml").is_file(), conf_dir()


@pytest.mark.timeout(300)
def test_wheel_ships_conf_and_finds_it_when_installed(tmp_path):
    build = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(tmp_path),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
    )
    assert build.returncode == 0, build.stderr
    wheel = next(tmp_path.glob("transferlab-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    for rel in ("train.yaml", "strategy/lp_ft.yaml", "backbone/efficientnet_lite0.yaml", "data/digits.yaml"):
        assert f"transferlab/conf/{rel}" in names, f"{rel} missing from {wheel.name}"
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    probe = subprocess.run(
        [
            sys.executable,
            "-c",
            "import transferlab.config.paths as p, transferlab as t; print(t.__file__); print(p.conf_dir())",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env={"PYTHONPATH": str(site), "PATH": ""},
    )
    assert probe.returncode == 0, probe.stderr
    module_file, conf = probe.stdout.split()
    assert module_file.startswith(str(site)), f"imported {module_file}, not the wheel's copy"
    assert conf == str(site / "transferlab" / "conf"), f"wheel install found conf at {conf}"
