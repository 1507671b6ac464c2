"""The 13 class codes are written once per self-contained folder: every copy must agree with the scorer's."""
import csv

import pytest

import label_space
import model_outputs
import output_files
from conftest import REPO
from submission_loader import import_model_module

# The abbreviations of metadata/class_legend.csv in the WBCBench 2026 release (hub dataset Xin-Tian/wbcbench2026), in
# its order (alphabetical), written out from the release: the one expectation here not derived from label_space.
RELEASE_LEGEND = ("BA", "BL", "BNE", "EO", "LY", "MMY", "MO", "MY", "PC", "PLY", "PMY", "SNE", "VLY")


def _module_from(path):
    """The module at path, imported as the ingestion imports a submission's model.py (by path)."""
    return import_model_module(path)


def test_every_program_folder_uses_the_scorers_classes_and_sets():
    assert model_outputs.CLASSES == label_space.CLASSES
    assert output_files.SETS == label_space.SETS
    assert _module_from(REPO / "starting_kit" / "model.py").CLASSES == label_space.CLASSES
    assert _module_from(REPO / "starting_kit_timm" / "model.py").CLASSES == label_space.CLASSES
    assert _module_from(REPO / "baselines" / "baseline_model.py").CLASSES == label_space.CLASSES


def test_the_scorers_classes_are_the_release_legend_in_order():
    assert label_space.CLASSES == RELEASE_LEGEND


@pytest.mark.parametrize("release", ["small_release", "pbc_release"])
def test_the_classes_are_the_release_legend_in_order(release, request):
    """The demo release writes its legend from the scorer's classes (tools/make_demo_release.py), the PBC cells keep
    the release's: each is compared with the legend as the release gives it, not with the classes it was made from."""
    folder = request.getfixturevalue(release)
    with open(folder / "metadata" / "class_legend.csv", newline="") as handle:
        assert tuple(row["abbreviation"] for row in csv.DictReader(handle)) == RELEASE_LEGEND
