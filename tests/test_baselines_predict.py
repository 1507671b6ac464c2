"""The baselines' model.py on CPU: cards with random-weight members, TTA views, probabilities, clear load errors."""
import json

import numpy as np
import pytest
from PIL import Image

import baseline_model
from recipe_settings import Member
from submission_loader import import_model_module
from untrained_submission import write_untrained_submission

CLASSES = baseline_model.CLASSES
# Tiny stand-ins of the two baselines: the same architectures (ensemble: one per family), small inputs.
RESNET50 = [Member("resnet50", 32)]
ENSEMBLE = [Member("swin_tiny_patch4_window7_224", 32, model_kwargs={"img_size": 32, "window_size": 4}),
            Member("convnextv2_atto", 48), Member("resnet18", 32)]
TINY = [Member("resnet18", 32)]  # for checks of the shared code paths


def load_model(folder):
    """Import <folder>/model.py by path with the ingestion program's loader and return a loaded Model."""
    model = import_model_module(folder / "model.py").Model()
    model.load()
    return model


def cell_images(count, size=(368, 370), seed=0):
    """Cell-sized RGB images with structure (a dark disc on a light background, noise), not flat colour."""
    rng = np.random.default_rng(seed)
    images = []
    for _ in range(count):
        yy, xx = np.mgrid[:size[1], :size[0]]
        centre = rng.uniform(0.3, 0.7, 2) * size
        disc = np.hypot(xx - centre[0], yy - centre[1]) < rng.uniform(40, 120)
        pixels = np.where(disc[..., None], rng.uniform(60, 140, 3), rng.uniform(200, 240, 3))
        pixels = pixels + rng.normal(0, 12, pixels.shape)
        images.append(Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)))
    return images


@pytest.fixture(scope="module")
def submissions(tmp_path_factory):
    root = tmp_path_factory.mktemp("baselines")
    return {"resnet50": write_untrained_submission(root / "resnet50", "resnet50", RESNET50, tta="flip"),
            "ensemble": write_untrained_submission(root / "ensemble", "ensemble", ENSEMBLE, tta="flip")}


@pytest.mark.parametrize("baseline", ["resnet50", "ensemble"])
def test_predict_batch_gives_13_probabilities(submissions, baseline):
    model = load_model(submissions[baseline])
    images = cell_images(3)
    probabilities = np.array(model.predict_batch(images))
    assert probabilities.shape == (3, len(CLASSES))
    assert (probabilities >= 0).all()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
    assert not np.allclose(probabilities[0], probabilities[1])  # the images differ, so must the outputs
    np.testing.assert_allclose(model.predict(images[1]), probabilities[1], atol=1e-5)
    assert model.device.type == "cpu"


@pytest.mark.parametrize("tta, views", [("none", 1), ("flip", 4), ("d4", 8)])
def test_each_member_sees_every_tta_view(tmp_path, tta, views):
    folder = write_untrained_submission(tmp_path / "ensemble", "ensemble", ENSEMBLE[1:], tta=tta)
    model = load_model(folder)
    calls = []
    for network in model.networks:
        network.register_forward_hook(lambda module, inputs, output: calls.append((module, inputs[0].shape)))
    model.predict_batch(cell_images(2))
    assert len(calls) == views * len(model.networks)
    shapes = {tuple(shape) for _, shape in calls}
    assert shapes == {(2, 3, 48, 48), (2, 3, 32, 32)}  # each member at its own input size


@pytest.mark.parametrize("tta, transform", [("d4", lambda im: im.transpose(Image.Transpose.ROTATE_90)),
                                            ("flip", lambda im: im.transpose(Image.Transpose.FLIP_TOP_BOTTOM))])
def test_tta_makes_predictions_invariant_to_its_views(tmp_path, tta, transform):
    """Averaging over a group of views gives the same probabilities for any view of the image (and without TTA
    the network alone does not: the check is sensitive)."""
    image = cell_images(1, size=(32, 32))[0]  # already at the input size: no resize between the views
    model = load_model(write_untrained_submission(tmp_path / tta, "resnet50", TINY, tta=tta))
    np.testing.assert_allclose(model.predict(transform(image)), model.predict(image), atol=1e-5)
    plain = load_model(write_untrained_submission(tmp_path / "none", "resnet50", TINY, tta="none"))
    assert not np.allclose(plain.predict(transform(image)), plain.predict(image), atol=1e-5)


def test_missing_weights_name_the_file_and_the_command(tmp_path):
    folder = write_untrained_submission(tmp_path / "resnet50", "resnet50", TINY, tta="flip")
    (folder / "weights_resnet18.safetensors").unlink()
    with pytest.raises(FileNotFoundError, match=r"weights_resnet18\.safetensors.*`make resnet50`"):
        load_model(folder)


def test_missing_card_names_the_command(tmp_path):
    folder = write_untrained_submission(tmp_path / "ensemble", "ensemble", TINY, tta="flip")
    (folder / "card.json").unlink()
    with pytest.raises(FileNotFoundError, match=r"card\.json not found.*`make ensemble`"):
        load_model(folder)


@pytest.mark.parametrize("change, message", [
    ({"classes": list(reversed(CLASSES))}, "'classes' must be"),
    ({"tta": "rot45"}, "'tta' must be one of"),
    ({"members": []}, "'members' must list"),
])
def test_bad_card_is_refused_with_a_reason(tmp_path, change, message):
    folder = write_untrained_submission(tmp_path / "resnet50", "resnet50", TINY, tta="flip")
    card = json.loads((folder / "card.json").read_text())
    (folder / "card.json").write_text(json.dumps({**card, **change}))
    with pytest.raises(ValueError, match=message):
        load_model(folder)


def test_crop_fraction_keeps_the_centre_before_resizing():
    """crop_fraction 0.5 sees exactly the centre half of each side, resized; 1 is the plain resize."""
    image = cell_images(1, size=(200, 200))[0]
    centre = image.crop((50, 50, 150, 150)).resize((32, 32), Image.Resampling.BICUBIC)
    np.testing.assert_array_equal(baseline_model.image_to_array(image, (32, 32), "bicubic", 0.5), np.array(centre))
    plain = image.resize((32, 32), Image.Resampling.BICUBIC)
    np.testing.assert_array_equal(baseline_model.image_to_array(image, (32, 32), "bicubic"), np.array(plain))


def test_model_uses_the_card_crop_fraction(tmp_path):
    """A member's crop_fraction reaches predict_batch: with 0.5 the border of the image no longer matters."""
    folder = write_untrained_submission(tmp_path / "resnet50", "resnet50", TINY, tta="flip")
    card = json.loads((folder / "card.json").read_text())
    card["members"][0]["crop_fraction"] = 0.5
    (folder / "card.json").write_text(json.dumps(card))
    model = load_model(folder)
    image = cell_images(1, size=(128, 128))[0]
    bordered = np.array(image)
    bordered[:20], bordered[-20:], bordered[:, :20], bordered[:, -20:] = 0, 0, 0, 0  # outside the centre half
    np.testing.assert_allclose(model.predict(Image.fromarray(bordered)), model.predict(image), atol=1e-6)
    uncropped = load_model(write_untrained_submission(tmp_path / "plain", "resnet50", TINY, tta="flip"))
    assert not np.allclose(uncropped.predict(Image.fromarray(bordered)), uncropped.predict(image), atol=1e-6)


@pytest.mark.parametrize("crop", [0, 1.5, "centre"])
def test_bad_crop_fraction_is_refused(tmp_path, crop):
    folder = write_untrained_submission(tmp_path / "resnet50", "resnet50", TINY, tta="flip")
    card = json.loads((folder / "card.json").read_text())
    card["members"][0]["crop_fraction"] = crop
    (folder / "card.json").write_text(json.dumps(card))
    with pytest.raises(ValueError, match="member 0 crop_fraction must be a number in"):
        load_model(folder)
