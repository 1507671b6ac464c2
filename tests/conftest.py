"""Shared fixtures: small generated data (always) and the real PBC cells (when ../shared is present)."""
from pathlib import Path

import pytest

import project_folders  # noqa: F401  (the tests import from every folder, as the organizer code does)
from kit_files import trained_starting_kit_copy

REPO = Path(__file__).resolve().parents[1]
PBC_RELEASE = REPO.parent / "shared" / "data" / "pbc_wbcbench"

# Cells per split of the small demo release the tests build (each has a pristine image and a degraded version).
SMALL_SPLITS = {"phase2_train": 260, "phase2_eval": 80, "phase2_test": 80}


@pytest.fixture(scope="session")
def pbc_release():
    """The real PBC cells laid out like the WBCBench release; skips when ../shared is absent."""
    if not (PBC_RELEASE / "pristine").is_dir():
        pytest.skip(f"real PBC cells not found at {PBC_RELEASE} (../shared is absent on this machine)")
    return PBC_RELEASE


@pytest.fixture(scope="session")
def small_release(tmp_path_factory):
    """A small synthetic release in the WBCBench parquet layout (pristine + degraded configs)."""
    from make_demo_release import build_release

    return build_release(tmp_path_factory.mktemp("release"), seed=0, split_sizes=SMALL_SPLITS)


@pytest.fixture(scope="session")
def small_bundle(small_release, tmp_path_factory):
    """Bundle data (input_data/ and reference_data/ for eval and test) prepared from the small release."""
    from prepare import prepare

    root = tmp_path_factory.mktemp("bundle")
    prepare(small_release, root, seed=0, demo=True)
    return root


@pytest.fixture(scope="session")
def trained_starting_kit(small_release, tmp_path_factory):
    """A copy of the starting kit trained on the small release: a ready submission folder."""
    return trained_starting_kit_copy(small_release, tmp_path_factory.mktemp("starting_kit") / "submission")
