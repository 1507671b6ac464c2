"""Training augmentation: random flips and quarter turns, and degradations that mirror tools/degrade.py's rules.

tools/degrade.py (the bundle repository) makes the degraded test images: per severity, a Gaussian or motion blur,
brightness, contrast, saturation and per-channel gains, then Gaussian noise, in that order, with the ranges below
(blur in px and noise sigma on the 0-255 scale, both on the 368 px image). This kit is self-contained, so it keeps
its own copy of those ranges and applies them to the small training images: blur lengths and the noise sigma are
scaled by input_size / 368, as downsizing a degraded 368 px image would shrink them.
"""
import math

import torch
import torch.nn.functional as F

SEVERITIES = ("pristine", "mild", "moderate", "extreme")  # drawn uniformly, as in the degraded test sets
SOURCE_SIZE = 368
# Per severity: chance of motion (vs Gaussian) blur, ranges of the blur and noise, +/- spreads of colour factors.
RANGES = {
    "mild": {"motion_chance": 0.0, "blur_sigma": (0.4, 1.0), "motion_length": (0, 0), "noise_sigma": (2, 6),
             "brightness": 0.06, "contrast": 0.06, "saturation": 0.10, "gain": 0.04},
    "moderate": {"motion_chance": 0.5, "blur_sigma": (1.3, 2.3), "motion_length": (5, 11), "noise_sigma": (8, 15),
                 "brightness": 0.12, "contrast": 0.15, "saturation": 0.20, "gain": 0.08},
    "extreme": {"motion_chance": 1.0, "blur_sigma": (0, 0), "motion_length": (15, 27), "noise_sigma": (18, 32),
                "brightness": 0.25, "contrast": 0.30, "saturation": 0.45, "gain": 0.20},
}


def _uniform(generator, low, high):
    return low + (high - low) * torch.rand((), generator=generator).item()


def _gaussian_kernel(sigma):
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=torch.float32)
    line = torch.exp(-x ** 2 / (2 * sigma ** 2))
    kernel = line[:, None] * line[None, :]
    return kernel / kernel.sum()


def _motion_kernel(length, angle_degrees):
    """A line of `length` px at `angle_degrees`: the mean of the image shifted along it."""
    taps = max(round(length), 1)
    radius = math.ceil(length / 2)
    kernel = torch.zeros(2 * radius + 1, 2 * radius + 1)
    angle = math.radians(angle_degrees)
    for offset in torch.linspace(-(length - 1) / 2, (length - 1) / 2, taps).tolist():
        kernel[radius + round(offset * math.sin(angle)), radius + round(offset * math.cos(angle))] += 1
    return kernel / kernel.sum()


def _blur(image, kernel):
    """Convolve a (3, h, w) image with a 2-D kernel, reflecting at the borders."""
    radius = kernel.shape[0] // 2  # a few px at the kit's input sizes, always below the image size
    padded = F.pad(image[None], (radius,) * 4, mode="reflect")
    return F.conv2d(padded, kernel.expand(3, 1, -1, -1), groups=3)[0]


def degrade(image, severity, generator):
    """One (3, h, w) float image on the 0-255 scale degraded at `severity`: blur, colour, then noise."""
    if severity == "pristine":
        return image
    r = RANGES[severity]
    scale = image.shape[-1] / SOURCE_SIZE
    if torch.rand((), generator=generator).item() < r["motion_chance"]:
        length = _uniform(generator, *r["motion_length"]) * scale
        if length > 1:
            image = _blur(image, _motion_kernel(length, _uniform(generator, 0.0, 180.0)))
    else:
        sigma = _uniform(generator, *r["blur_sigma"]) * scale
        if sigma > 0.05:
            image = _blur(image, _gaussian_kernel(sigma))

    def factor(spread):
        return 1.0 + _uniform(generator, -spread, spread)

    brightness, contrast, saturation = factor(r["brightness"]), factor(r["contrast"]), factor(r["saturation"])
    gains = torch.tensor([factor(r["gain"]) for _ in range(3)]) * brightness
    image = image * gains[:, None, None]
    grey = image.mean(dim=0)
    image = grey + (image - grey) * saturation
    mean = image.mean()
    image = (image - mean) * contrast + mean
    noise_sigma = _uniform(generator, *r["noise_sigma"]) * scale
    noise = torch.randn(image.shape, generator=generator) * noise_sigma
    return (image + noise).clamp(0, 255)


def augment_batch(pixels, generator, degrade_chance=0.5):
    """(n, 3, h, w) uint8 -> float 0-255: a random flip/quarter turn each, and a degradation with degrade_chance."""
    images = []
    for image in pixels.float():
        image = torch.rot90(image, int(torch.randint(4, (), generator=generator)), dims=(1, 2))
        if torch.rand((), generator=generator).item() < 0.5:
            image = image.flip(2)
        if torch.rand((), generator=generator).item() < degrade_chance:
            severity = SEVERITIES[int(torch.randint(len(SEVERITIES), (), generator=generator))]
            image = degrade(image, severity, generator)
        images.append(image)
    return torch.stack(images)
