"""Degradations: the severity API, exact reproduction from recorded parameters, and measurable severity order."""
import json

import numpy as np
import pytest
from PIL import Image, ImageFilter

import cells
import degrade

DEGRADED = ("mild", "moderate", "extreme")


@pytest.fixture(scope="module")
def images():
    return [cells.render_cell(label, np.random.default_rng([3, i])) for i, label in enumerate(("SNE", "LY", "MO",
                                                                                              "EO", "PMY", "BA"))]


def sharpness(image):
    """Mean gradient magnitude after a light denoising blur: falls with blur, barely moved by noise."""
    grey = np.asarray(image.convert("L").filter(ImageFilter.GaussianBlur(2)), np.float32)
    return float(np.hypot(*np.gradient(grey)).mean())


def difference(a, b):
    return float(np.abs(np.asarray(a, np.float32) - np.asarray(b, np.float32)).mean())


@pytest.mark.parametrize("call", [
    lambda rng: degrade.sample_params("severe", rng),
    lambda rng: degrade.degrade(Image.new("RGB", (8, 8)), "Extreme", rng),
])
def test_unknown_severity_is_a_clear_error(call):
    with pytest.raises(ValueError, match="unknown severity .*pristine, mild, moderate, extreme"):
        call(np.random.default_rng(0))


@pytest.mark.parametrize("strength", [-0.1, 1.5])
def test_strength_outside_unit_interval_is_an_error(strength):
    with pytest.raises(ValueError, match="strength must be in"):
        degrade.sample_params("mild", np.random.default_rng(0), strength)


def test_unknown_blur_in_params_is_an_error(images):
    with pytest.raises(ValueError, match="unknown blur 'box'"):
        degrade.apply(images[0], {"blur": "box"})


@pytest.mark.parametrize("severity", degrade.SEVERITIES)
def test_params_are_plain_json_with_every_key(severity):
    params = degrade.sample_params(severity, np.random.default_rng(1))
    assert tuple(params) == degrade.PARAM_KEYS
    assert json.loads(json.dumps(params)) == params


@pytest.mark.parametrize("severity", degrade.SEVERITIES)
def test_strength_zero_and_pristine_leave_the_image_unchanged(images, severity):
    for image in images[:3]:
        out, _ = degrade.degrade(image, severity, np.random.default_rng(2), strength=0.0)
        assert np.array_equal(np.asarray(out), np.asarray(image))
    out, params = degrade.degrade(images[0], "pristine", np.random.default_rng(2))
    assert params == degrade.IDENTITY and np.array_equal(np.asarray(out), np.asarray(images[0]))


@pytest.mark.parametrize("severity", DEGRADED)
def test_recorded_params_reproduce_the_degraded_image(images, severity):
    out, params = degrade.degrade(images[1], severity, np.random.default_rng(5))
    again = degrade.apply(images[1], json.loads(json.dumps(params)))
    assert np.array_equal(np.asarray(out), np.asarray(again))
    assert out.size == images[1].size and out.mode == "RGB"


def test_same_rng_same_degradation_and_different_rng_differs(images):
    a, _ = degrade.degrade(images[2], "moderate", np.random.default_rng(9))
    b, _ = degrade.degrade(images[2], "moderate", np.random.default_rng(9))
    c, _ = degrade.degrade(images[2], "moderate", np.random.default_rng(10))
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))


def test_severities_degrade_measurably_in_order(images):
    """Extreme loses more sharpness and moves pixels further than moderate, and moderate more than mild."""
    loss = {s: [] for s in DEGRADED}
    change = {s: [] for s in DEGRADED}
    for i, image in enumerate(images):
        for severity in DEGRADED:
            out, _ = degrade.degrade(image, severity, np.random.default_rng([i, 7]))
            loss[severity].append(sharpness(image) - sharpness(out))
            change[severity].append(difference(image, out))
    mean_loss = {s: np.mean(v) for s, v in loss.items()}
    mean_change = {s: np.mean(v) for s, v in change.items()}
    assert 0 < mean_loss["mild"] < mean_loss["moderate"] < mean_loss["extreme"], mean_loss
    assert 0 < mean_change["mild"] < mean_change["moderate"] < mean_change["extreme"], mean_change


def test_strength_scales_the_degradation(images):
    changes = [difference(images[0], degrade.degrade(images[0], "extreme", np.random.default_rng(4), s)[0])
               for s in (0.25, 0.5, 1.0)]
    assert 0 < changes[0] < changes[1] < changes[2], changes


def test_synthesized_versions_depend_only_on_seed_stream_and_position(images):
    """prepare.py and the baselines' validation set share this rule: a version does not move when images are added."""
    from jpeg_encoding import encode_jpeg

    jpegs = [encode_jpeg(image) for image in images[:3]]
    three = list(degrade.synthesized_versions(jpegs, seed=5, stream=1))
    assert list(degrade.synthesized_versions(jpegs[:2], seed=5, stream=1)) == three[:2]
    assert [version[1] for version in degrade.synthesized_versions(jpegs, seed=5, stream=2)] != [version[1] for version in three]
    assert all(severity in degrade.SEVERITIES and data[:2] == b"\xff\xd8" for severity, data, _ in three)
