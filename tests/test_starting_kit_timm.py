"""The deep-learning starting kit: a short real training run, the dry run and the emulator on its output."""
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from bundle_copies import copy_bundle
from codabench_run import run_submission
from kit_files import load_module
from leaderboard_scores import LEADERBOARD_KEYS
from submission_loader import import_model_module

REPO = Path(__file__).resolve().parents[1]
KIT = REPO / "starting_kit_timm"
CLASSES = ("BA", "BL", "BNE", "EO", "LY", "MMY", "MO", "MY", "PC", "PLY", "PMY", "SNE", "VLY")


@pytest.fixture(scope="module")
def trained_kit(small_release, tmp_path_factory):
    """A copy of the kit trained for one short epoch at 32 px: fast, and a complete submission folder."""
    folder = tmp_path_factory.mktemp("kit_timm") / "submission"
    shutil.copytree(KIT, folder, ignore=shutil.ignore_patterns("weights.safetensors", "card.json", "__pycache__"))
    card = load_module(folder / "train.py").train(small_release, folder, input_size=32, epochs=1, limit=96,
                                                  threads=1)
    assert card["trained"]["images"] == 96 and set(card["trained"]["phase2_eval"]) == {
        "pristine_macro_f1", "degraded_macro_f1"}
    return folder


def test_the_kit_is_a_complete_submission(trained_kit):
    names = {path.name for path in trained_kit.iterdir()}
    assert {"model.py", "weights.safetensors", "card.json", "metadata", "requirements.txt"} <= names


def test_predictions_are_probabilities_in_class_order(trained_kit, small_release):
    module = import_model_module(trained_kit / "model.py")
    model = module.Model()
    model.load()
    assert module.CLASSES == CLASSES and model.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    rng = np.random.default_rng(0)
    from PIL import Image

    images = [Image.fromarray(rng.integers(0, 255, (370, 368, 3), dtype=np.uint8)) for _ in range(3)]
    batch = np.array(model.predict_batch(images))
    assert batch.shape == (3, 13) and (batch >= 0).all()
    np.testing.assert_allclose(batch.sum(axis=1), 1.0, atol=1e-5)
    np.testing.assert_allclose(model.predict(images[1]), batch[1], atol=1e-5)


def test_dry_run_and_emulator_score_the_kit(trained_kit, small_bundle, tmp_path):
    """The dry run (ingestion + scoring as subprocesses, CodaBench's arguments) and the worker emulator."""
    output = tmp_path / "res"
    ingestion = subprocess.run(
        [sys.executable, str(REPO / "ingestion_program" / "ingestion.py"), str(small_bundle / "input_data" / "eval"),
         str(output), str(REPO / "ingestion_program"), str(trained_kit)], capture_output=True, text=True, timeout=300)
    assert ingestion.returncode == 0, ingestion.stderr[-2000:]
    (tmp_path / "input").mkdir()
    shutil.copytree(output, tmp_path / "input" / "res")
    shutil.copytree(small_bundle / "reference_data" / "eval", tmp_path / "input" / "ref")
    scoring = subprocess.run(
        [sys.executable, str(REPO / "scoring_program" / "score.py"), str(tmp_path / "input"), str(tmp_path / "scores"),
         "--bootstrap", "20"], capture_output=True, text=True, timeout=300)
    assert scoring.returncode == 0, scoring.stderr
    assert list(json.loads((tmp_path / "scores" / "scores.json").read_text())) == list(LEADERBOARD_KEYS)

    bundle = copy_bundle(small_bundle, tmp_path / "bundle")
    result = run_submission(trained_kit, "eval", bundle, workdir=tmp_path / "emulator")
    assert result.status == "Finished", (result.reason, result.prediction.stderr_text()[-2000:])
    assert list(result.scores) == list(LEADERBOARD_KEYS)


def test_missing_weights_name_the_file_and_the_command(tmp_path):
    shutil.copy(KIT / "model.py", tmp_path / "model.py")
    with pytest.raises(FileNotFoundError) as error:
        import_model_module(tmp_path / "model.py").Model().load()
    assert str(tmp_path / "card.json") in str(error.value)
    assert "put weights.safetensors and card.json in the submission zip, next to model.py" in str(error.value)
    assert "python starting_kit_timm/train.py build/demo_release" in str(error.value)


def test_decoding_shows_its_progress(small_release, capsys):
    """Decoding the training images is the long silent start of a run: it shows a progress bar."""
    train = load_module(KIT / "train.py")
    train.training_data(small_release, 16, limit=8)
    assert "decoding 8 images at 16 px" in capsys.readouterr().err


def test_pretrained_falls_back_to_random_weights_when_offline(capsys, monkeypatch):
    train = load_module(KIT / "train.py")

    def offline(*args, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(train.socket, "create_connection", offline)
    network = train.create_network("resnet18", pretrained=True)
    assert isinstance(network, torch.nn.Module)
    assert "--pretrained: ImageNet weights for resnet18 unavailable (OSError: network is unreachable); training " \
           "from random initialisation instead" in capsys.readouterr().err


def test_degradations_follow_the_severity_order():
    """Blur and noise grow with severity, as in tools/degrade.py: extreme changes an image most, pristine not at all."""
    augment = load_module(KIT / "augment.py")
    image = torch.from_numpy(np.random.default_rng(1).integers(0, 255, (3, 64, 64))).float()
    change = {}
    for severity in augment.SEVERITIES:
        generator = torch.Generator().manual_seed(0)
        changes = [(augment.degrade(image, severity, generator) - image).abs().mean().item() for _ in range(20)]
        change[severity] = float(np.mean(changes))
    assert change["pristine"] == 0 < change["mild"] < change["moderate"] < change["extreme"]
    out = augment.augment_batch(image[None].to(torch.uint8).repeat(4, 1, 1, 1), torch.Generator().manual_seed(0))
    assert out.shape == (4, 3, 64, 64) and 0 <= out.min() and out.max() <= 255


def test_kit_degradations_are_a_faithful_copy_of_tools_degrade():
    """The kit is self-contained, so augment.py copies tools/degrade.py's severities and ranges: the copy must match."""
    import cells
    import degrade

    augment = load_module(KIT / "augment.py")
    assert augment.SEVERITIES == degrade.SEVERITIES
    assert augment.RANGES == degrade.SEVERITY_RANGES
    assert augment.SOURCE_SIZE == cells.IMAGE_SIZE
