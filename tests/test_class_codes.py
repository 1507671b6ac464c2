"""The 13 class codes are written once per self-contained folder: every copy must agree with the scorer's."""
import csv

import pytest

import label_space
import model_outputs
import output_files
from conftest import REPO
from submission_loader import import_model_module


def _module_from(path):
    """The module at path, imported as the ingestion imports a submission's model.py (by path)."""
    return import_model_module(path)


def test_every_program_folder_uses_the_scorers_classes_and_sets():
    assert model_outputs.CLASSES == label_space.CLASSES
    assert output_files.SETS == label_space.SETS
    assert _module_from(REPO / "starting_kit" / "model.py").CLASSES == label_space.CLASSES
    assert _module_from(REPO / "starting_kit_timm" / "model.py").CLASSES == label_space.CLASSES
    assert _module_from(REPO / "baselines" / "baseline_model.py").CLASSES == label_space.CLASSES


@pytest.mark.parametrize("release", ["small_release", "pbc_release"])
def test_the_classes_are_the_release_legend_in_order(release, request):
    folder = request.getfixturevalue(release)
    with open(folder / "metadata" / "class_legend.csv", newline="") as handle:
        assert tuple(row["abbreviation"] for row in csv.DictReader(handle)) == label_space.CLASSES
