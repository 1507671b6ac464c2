"""Training augmentation: HED stain and colour jitter, D4 + affine geometry, and the noise/blur curriculum."""
import math
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

import project_folders  # noqa: F401  (the program folders, tools/ and baselines/ importable by name)
import degrade  # tools/degrade.py: the one way degraded versions are made

# Haematoxylin, eosin and DAB optical-density vectors (Ruifrok & Johnston 2001), rows scaled to unit length below.
RGB_FROM_HED = torch.tensor([[0.65, 0.70, 0.29], [0.07, 0.99, 0.11], [0.27, 0.57, 0.78]])
RGB_FROM_HED = RGB_FROM_HED / RGB_FROM_HED.norm(dim=1, keepdim=True)
HED_FROM_RGB = torch.linalg.inv(RGB_FROM_HED)


def hed_jitter(image: torch.Tensor, generator: torch.Generator, strength: float = 1.0) -> torch.Tensor:
    """Scale and shift each stain's concentration (each by up to ±5 % x strength): (3, H, W) float in [0, 1] -> same,
    a new staining of the slide."""
    sigma = bias = 0.05 * strength
    density = -torch.log(image.clamp(min=1 / 255))  # optical density per RGB channel
    stains = torch.einsum("chw,cs->shw", density, HED_FROM_RGB)
    scale = 1 + (torch.rand(3, 1, 1, generator=generator) * 2 - 1) * sigma
    shift = (torch.rand(3, 1, 1, generator=generator) * 2 - 1) * bias
    density = torch.einsum("shw,sc->chw", stains * scale + shift, RGB_FROM_HED)
    return torch.exp(-density).clamp(0, 1)


def colour_jitter(image: torch.Tensor, rng: np.random.Generator, strength: float = 1.0) -> torch.Tensor:
    """Brightness, contrast and saturation (±15 % x strength) and hue (±0.03 x strength) jitter with factors drawn
    from `rng` (reproducible per sample)."""
    amount, hue = 0.15 * strength, 0.03 * strength
    image = F.adjust_brightness(image, float(rng.uniform(1 - amount, 1 + amount)))
    image = F.adjust_contrast(image, float(rng.uniform(1 - amount, 1 + amount)))
    image = F.adjust_saturation(image, float(rng.uniform(1 - amount, 1 + amount)))
    return F.adjust_hue(image, float(rng.uniform(-hue, hue))).clamp(0, 1)


def border_colour(image: torch.Tensor) -> torch.Tensor:
    """Mean colour of the image border (3, 1, 1): the smear background, which fills corners the affine uncovers."""
    edges = torch.cat([image[:, 0], image[:, -1], image[:, :, 0], image[:, :, -1]], dim=1)
    return edges.mean(dim=1).view(3, 1, 1)


@dataclass
class Curriculum:
    """Noise/blur curriculum: probability and strength of a synthetic degradation, ramped linearly over epochs.

    From epoch 0 to `ramp_epochs` the probability goes start_probability -> probability and the strength (the
    `strength` argument of tools/degrade.py, scaling its magnitudes) start_strength -> 1; constant afterwards.
    Disabled: no synthetic degradation at all (the release's own degraded rows are still used).
    """

    enabled: bool = True
    ramp_epochs: int = 10
    start_probability: float = 0.1
    probability: float = 0.6
    start_strength: float = 0.25

    def at(self, epoch: int) -> tuple[float, float]:
        """(probability, strength) for this epoch (0-based); ramp_epochs 0 holds them from the first epoch."""
        if not self.enabled:
            return 0.0, 0.0
        progress = 1.0 if self.ramp_epochs == 0 else min(1.0, epoch / self.ramp_epochs)
        return (self.start_probability + (self.probability - self.start_probability) * progress,
                self.start_strength + (1 - self.start_strength) * progress)


class TrainAugment:
    """PIL cell image -> augmented float tensor (3, H, W) in [0, 1] at the member's input size.

    Noise and blur (tools/degrade.py) are applied at full resolution, as in the release, then the image is resized
    exactly as model.py resizes it; stain (HED) and colour jitter follow at the small size (they act per pixel, and
    the full-resolution version cost ~100 ms per image; `jitter` scales both, 0 turns them off), then geometry:
    any D4 view, since a cell has no orientation, and a small affine.
    """

    def __init__(self, input_size, interpolation, to_array, crop_fraction=1.0, jitter=1.0, severity_weights=(1, 1, 1)):
        self.input_size, self.interpolation, self.to_array = input_size, interpolation, to_array
        self.crop_fraction, self.jitter = crop_fraction, jitter
        self.severity_odds = np.asarray(severity_weights, dtype=float) / np.sum(severity_weights)

    def __call__(self, image: Image.Image, seed: int, probability: float, strength: float) -> torch.Tensor:
        generator = torch.Generator().manual_seed(seed)
        rng = np.random.default_rng(seed)
        if rng.random() < probability:
            severity = degrade.DEGRADED_SEVERITIES[rng.choice(len(degrade.DEGRADED_SEVERITIES), p=self.severity_odds)]
            image = degrade.apply(image, degrade.sample_params(severity, rng, strength))
        array = self.to_array(image, self.input_size, self.interpolation, self.crop_fraction)
        tensor = torch.from_numpy(array).permute(2, 0, 1)
        tensor = F.to_dtype(tensor, torch.float32, scale=True)
        if self.jitter:
            tensor = colour_jitter(hed_jitter(tensor, generator, self.jitter), rng, self.jitter)
        tensor = torch.rot90(tensor, int(rng.integers(4)), dims=(1, 2))
        if rng.random() < 0.5:
            tensor = torch.flip(tensor, dims=(2,))
        angle = float(rng.uniform(-15, 15))
        translate = [float(v) for v in rng.uniform(-0.05, 0.05, 2) * tensor.shape[-1]]
        scale = float(math.exp(rng.uniform(-0.1, 0.1)))
        # Shifted so that the smear's colour is zero: torchvision pads with zeros, and its `fill` blends a bilinear
        # edge with black (a dark seam at 3/4 brightness), while zero padding here blends it into the smear.
        background = border_colour(tensor)
        shifted = F.affine(tensor - background, angle=angle, translate=translate, scale=scale, shear=[0.0, 0.0],
                           interpolation=v2.InterpolationMode.BILINEAR, fill=0.0)
        return shifted + background
