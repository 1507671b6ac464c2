"""The starting kit trains, loads and predicts valid, deterministic probabilities; the bundle's pages exist."""
import io
import shutil
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image
from sklearn.metrics import f1_score

from kit_files import load_module
from submission_loader import import_model_module

REPO = Path(__file__).resolve().parents[1]
CLASSES = ("BA", "BL", "BNE", "EO", "LY", "MMY", "MO", "MY", "PC", "PLY", "PMY", "SNE", "VLY")
# The scores.json keys of the team brief, in leaderboard order: primary, the tie-breakers, the rest, speed last.
LEADERBOARD_KEYS = [
    "degraded_macro_f1", "degraded_balanced_accuracy", "degraded_macro_precision", "degraded_macro_specificity",
    "pristine_macro_f1", "severity_pristine_macro_f1", "severity_mild_macro_f1", "severity_moderate_macro_f1",
    "severity_extreme_macro_f1", "images_per_second",
]


def loaded_model(folder):
    model = import_model_module(Path(folder) / "model.py").Model()
    model.load()
    return model


@pytest.fixture(scope="module")
def eval_rows(small_release):
    """(image, label) of the small release's phase2_eval split, pristine and degraded."""
    rows = []
    for config in ("pristine", "degraded"):
        for shard in sorted((Path(small_release) / config).glob("phase2_eval-*.parquet")):
            for row in pq.read_table(shard, columns=["image", "label"]).to_pylist():
                rows.append((Image.open(io.BytesIO(row["image"]["bytes"])).convert("RGB"), row["label"]))
    return rows


def test_predictions_are_valid_probabilities(trained_starting_kit, eval_rows):
    model = loaded_model(trained_starting_kit)
    images = [image for image, _ in eval_rows[:8]]
    images.append(images[0].resize((360, 363)))  # real release crops are not all square
    batch = model.predict_batch(images)
    assert len(batch) == len(images)
    probs = np.array(batch)
    assert probs.shape == (len(images), len(CLASSES))
    assert np.isfinite(probs).all() and (probs >= 0).all()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-9)
    np.testing.assert_allclose(model.predict(images[3]), batch[3])


def test_predictions_beat_chance(trained_starting_kit, eval_rows):
    model = loaded_model(trained_starting_kit)
    labels = np.array([label for _, label in eval_rows])
    predicted = np.array(CLASSES)[np.argmax(model.predict_batch([image for image, _ in eval_rows]), axis=1)]
    present = sorted(set(labels))
    # Chance level (uniform guessing) is about 1/13 macro-F1; the kit must have learnt something.
    assert f1_score(labels, predicted, labels=present, average="macro", zero_division=0) > 0.25


def test_training_and_prediction_are_deterministic(trained_starting_kit, small_release, eval_rows, tmp_path):
    again = tmp_path / "submission"
    shutil.copytree(trained_starting_kit, again, ignore=shutil.ignore_patterns("*.joblib", "__pycache__"))
    load_module(again / "train.py").train(small_release, again / "classifier.joblib", seed=0)
    images = [image for image, _ in eval_rows[:16]]
    first = loaded_model(trained_starting_kit).predict_batch(images)
    assert loaded_model(again).predict_batch(images) == first
    assert loaded_model(trained_starting_kit).predict_batch(images) == first


def test_missing_weights_error_names_the_file_and_the_command(tmp_path):
    shutil.copy(REPO / "starting_kit" / "model.py", tmp_path / "model.py")
    model = import_model_module(tmp_path / "model.py").Model()
    with pytest.raises(FileNotFoundError) as error:
        model.load()
    message = str(error.value)
    assert str(tmp_path / "classifier.joblib") in message
    assert "put classifier.joblib in the submission zip, next to model.py" in message
    assert "python starting_kit/train.py build/demo_release" in message and "make starting-kit" in message


def test_training_without_a_train_split_names_what_is_missing(tmp_path):
    train = load_module(REPO / "starting_kit" / "train.py")
    with pytest.raises(FileNotFoundError, match="phase2_train"):
        train.train(tmp_path, tmp_path / "classifier.joblib")


@pytest.mark.parametrize("kit", ["starting_kit", "starting_kit_timm"])
def test_kits_carry_metadata_and_pin_the_images_versions(kit):
    """A description-only metadata file (else the worker copies the whole submission) and the image's pins."""
    assert list(yaml.safe_load((REPO / kit / "metadata").read_text())) == ["description"]
    pins = {}
    for name in ("requirements.txt", "constraints.txt"):
        pins |= dict(line.split("==") for line in (REPO / name).read_text().splitlines()
                     if "==" in line and not line.startswith("#"))
    for line in (REPO / kit / "requirements.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            assert pins[name] == version, f"{kit}/requirements.txt pins {line}, the image {pins[name]}"


def test_leaderboard_keys_are_the_briefs_scores_keys():
    competition = yaml.safe_load((REPO / "competition.yaml").read_text())
    (leaderboard,) = competition["leaderboards"]
    columns = sorted(leaderboard["columns"], key=lambda column: column["index"])
    assert [column["key"] for column in columns] == LEADERBOARD_KEYS


def test_every_page_the_yaml_references_exists():
    competition = yaml.safe_load((REPO / "competition.yaml").read_text())
    files = [competition["terms"], competition["image"]] + [page["file"] for page in competition["pages"]]
    for name in files:
        path = REPO / name
        assert path.is_file() and path.stat().st_size > 0, f"{name} is referenced by competition.yaml but missing or empty"
    assert (REPO / competition["image"]).stat().st_size < 100_000
