"""Synthetic cell renderer: every class renders, seeds reproduce, and the class table drives what is drawn."""
from dataclasses import fields

import numpy as np
import pytest

import cells


def render(label, seed):
    return cells.render_cell(label, np.random.default_rng(seed))


def nucleus_pixels(image):
    """Pixels dark in green (chromatin absorbs green strongly; red cells and plain cytoplasm do not)."""
    return int((np.asarray(image)[..., 1] < 110).sum())


def test_class_table_covers_every_class_in_order():
    assert cells.CLASSES == ("BA", "BL", "BNE", "EO", "LY", "MMY", "MO", "MY", "PC", "PLY", "PMY", "SNE", "VLY")
    assert set(cells.MORPHOLOGY) == set(cells.CLASSES) == set(cells.CELL_TYPES)
    for label, morphology in cells.MORPHOLOGY.items():
        for field in fields(morphology):
            value = getattr(morphology, field.name)
            if isinstance(value, dict):
                assert value and all(w > 0 for w in value.values()), (label, field.name)


@pytest.mark.parametrize("label", cells.CLASSES)
def test_every_class_renders_a_smear_field(label):
    image = render(label, 0)
    assert image.size == (cells.IMAGE_SIZE, cells.IMAGE_SIZE) and image.mode == "RGB"
    pixels = np.asarray(image, np.float32)
    green = pixels[..., 1]
    background = green > 200  # pale plasma
    red_cells = (green > 130) & (green <= 200) & (pixels[..., 0] > 170)
    assert background.mean() > 0.1 and red_cells.mean() > 0.1, label
    # the white cell sits in the middle: its centre is darker than the field on average
    middle = green[144:224, 144:224].mean()
    assert middle < green.mean() - 10, label


def test_same_seed_same_pixels_and_different_seed_differs():
    a, b, c = render("MO", 11), render("MO", 11), render("MO", 12)
    assert np.array_equal(np.asarray(a), np.asarray(b))
    assert not np.array_equal(np.asarray(a), np.asarray(c))


def test_unknown_class_is_a_clear_error():
    with pytest.raises(ValueError, match="unknown class 'NEU'"):
        render("NEU", 0)


def test_attributes_follow_the_class_table():
    """Sampled attributes reflect the table: blasts have a bigger N:C than neutrophils, SNE more lobes than BNE."""
    rng = np.random.default_rng(0)
    drawn = {label: [cells.sample_attributes(label, rng) for _ in range(200)] for label in ("SNE", "BNE", "LY", "MO")}
    lobes = {label: np.mean([a["lobes"] for a in drawn[label]]) for label in ("SNE", "BNE")}
    assert lobes["SNE"] > lobes["BNE"] + 1
    radius = {label: np.mean([a["cell_radius"] for a in drawn[label]]) for label in ("LY", "MO")}
    assert radius["MO"] > radius["LY"] + 15
    # distributions overlap: some band neutrophils are more constricted than some segmented ones
    constriction = {label: [a["constriction"] for a in drawn[label]] for label in ("SNE", "BNE")}
    assert max(constriction["BNE"]) > min(constriction["SNE"])


def test_rendered_nucleus_size_follows_the_class():
    """Blasts (high N:C, large) show far more chromatin than small lymphocytes or thin-lobed neutrophils."""
    area = {label: np.mean([nucleus_pixels(render(label, seed)) for seed in range(4)]) for label in ("BL", "SNE")}
    assert area["BL"] > 1.5 * area["SNE"], area
