"""prepare --hub with no network: a local copy of the hub repository, read through `datasets`, gives the same bundle."""
import hashlib
import json
import os
import subprocess
import sys

import pytest

from conftest import REPO
from prepare import DEFAULT_HUB, prepare
from release_reader import ReleaseError

OFFLINE = {"HF_HUB_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}


def _run_prepare(args, tmp_path):
    """tools/prepare.py as the organizer runs it, offline, with a throwaway hub and datasets cache."""
    env = dict(os.environ, **OFFLINE, HF_HOME=str(tmp_path / "hf_home"))
    return subprocess.run([sys.executable, str(REPO / "tools" / "prepare.py"), *args], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)


def _digests(root):
    return {str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
            for folder in ("input_data", "reference_data") for path in sorted((root / folder).rglob("*"))
            if path.is_file() and path.name not in ("manifest.json", ".complete")}


def test_hub_layout_gives_byte_identical_bundle_data(small_release, small_bundle, tmp_path):
    pytest.importorskip("datasets", reason="the organizer extra `datasets` is not installed (make organizer-venv)")
    result = _run_prepare(["--hub", str(small_release), "--out", str(tmp_path / "out"), "--seed", "0", "--demo"],
                          tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    hub, folder = tmp_path / "out", small_bundle
    assert _digests(hub) == _digests(folder) and len(_digests(hub)) == 8
    hub_manifest, folder_manifest = (json.loads((root / "reference_data" / "manifest.json").read_text())
                                     for root in (hub, folder))
    assert hub_manifest.pop("release") == f"hub:{small_release}"
    folder_manifest.pop("release")
    assert hub_manifest == folder_manifest


def test_default_hub_offline_is_a_clear_error(tmp_path):
    pytest.importorskip("datasets", reason="the organizer extra `datasets` is not installed (make organizer-venv)")
    result = _run_prepare(["--hub", "--out", str(tmp_path / "out"), "--seed", "7"], tmp_path)
    assert result.returncode == 2
    assert f"prepare: error: hub:{DEFAULT_HUB}: could not download metadata/class_legend.csv" in result.stderr
    assert "is the machine online and logged in (hf auth login)" in result.stderr
    assert not (tmp_path / "out" / "input_data").exists()


def test_hub_without_datasets_says_how_to_install_it(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "datasets", None)  # as if it were not installed
    with pytest.raises(ReleaseError, match=r"--hub Xin-Tian/wbcbench2026: the 'datasets' package is not installed; "
                                           r"run `make organizer-venv`"):
        prepare(None, tmp_path, seed=1, hub=DEFAULT_HUB)
