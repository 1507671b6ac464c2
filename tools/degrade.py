"""Image degradations at the WBCBench severities (mild, moderate, extreme), with per-image recorded parameters."""
import io
from collections.abc import Iterable, Iterator

import numpy as np
from PIL import Image, ImageFilter

import project_folders  # noqa: F401  (the program folders, tools/ and baselines/ importable by name)
from jpeg_encoding import encode_jpeg
from label_space import SEVERITIES

DEGRADED_SEVERITIES = tuple(s for s in SEVERITIES if s != "pristine")  # the ones that change an image

# Every severity records the same keys (identity values where unused), so degradation_params.csv is one table.
PARAM_KEYS = ("blur", "blur_sigma", "motion_length", "motion_angle", "noise_sigma", "brightness", "contrast",
              "saturation", "gain_r", "gain_g", "gain_b", "noise_seed")
IDENTITY = {"blur": "none", "blur_sigma": 0.0, "motion_length": 0.0, "motion_angle": 0.0, "noise_sigma": 0.0,
            "brightness": 1.0, "contrast": 1.0, "saturation": 1.0, "gain_r": 1.0, "gain_g": 1.0, "gain_b": 1.0,
            "noise_seed": 0}

# Per severity: the chance of motion (vs Gaussian) blur, and uniform ranges of each magnitude.
# Blur in px on the 368 px image; noise sigma on the 0-255 scale; colour factors multiply (1 = unchanged).
SEVERITY_RANGES = {
    "mild": {"motion_chance": 0.0, "blur_sigma": (0.4, 1.0), "motion_length": (0, 0), "noise_sigma": (2, 6),
             "brightness": 0.06, "contrast": 0.06, "saturation": 0.10, "gain": 0.04},
    "moderate": {"motion_chance": 0.5, "blur_sigma": (1.3, 2.3), "motion_length": (5, 11), "noise_sigma": (8, 15),
                 "brightness": 0.12, "contrast": 0.15, "saturation": 0.20, "gain": 0.08},
    "extreme": {"motion_chance": 1.0, "blur_sigma": (0, 0), "motion_length": (15, 27), "noise_sigma": (18, 32),
                "brightness": 0.25, "contrast": 0.30, "saturation": 0.45, "gain": 0.20},
}


def _check_severity(severity):
    if severity not in SEVERITIES:
        raise ValueError(f"unknown severity {severity!r}; expected one of {', '.join(SEVERITIES)}")


def sample_params(severity, rng, strength=1.0):
    """Draw one image's degradation parameters (plain JSON-able values); strength in [0, 1] scales magnitudes."""
    _check_severity(severity)
    if not 0.0 <= strength <= 1.0:
        raise ValueError(f"strength must be in [0, 1], got {strength!r}")
    params = dict(IDENTITY)
    if severity == "pristine":
        return params
    r = SEVERITY_RANGES[severity]

    def factor(spread):
        return 1.0 + strength * float(rng.uniform(-spread, spread))

    if rng.random() < r["motion_chance"]:
        params["blur"] = "motion"
        params["motion_length"] = strength * float(rng.uniform(*r["motion_length"]))
        params["motion_angle"] = float(rng.uniform(0.0, 180.0))
    else:
        params["blur"] = "gaussian"
        params["blur_sigma"] = strength * float(rng.uniform(*r["blur_sigma"]))
    params["noise_sigma"] = strength * float(rng.uniform(*r["noise_sigma"]))
    params["brightness"] = factor(r["brightness"])
    params["contrast"] = factor(r["contrast"])
    params["saturation"] = factor(r["saturation"])
    params["gain_r"], params["gain_g"], params["gain_b"] = (factor(r["gain"]) for _ in range(3))
    params["noise_seed"] = int(rng.integers(0, 2**31 - 1))
    # rounded as recorded in degradation_params.csv, so the recorded values reproduce the image exactly
    return {k: round(v, 4) if isinstance(v, float) else v for k, v in params.items()}


def _channels(image):
    """Channel-first float32 pixels (3, h, w): per-channel arithmetic is several times faster than on (h, w, 3)."""
    return np.stack([np.asarray(band, np.float32) for band in image.split()])


def _motion_blur(pixels, length, angle_degrees):
    """Mean of the image shifted along a line of `length` px at `angle_degrees`: a line-kernel convolution."""
    taps = max(int(round(length)), 1)
    offsets = np.linspace(-(length - 1) / 2, (length - 1) / 2, taps)
    angle = np.deg2rad(angle_degrees)
    dx = np.round(offsets * np.cos(angle)).astype(int)
    dy = np.round(offsets * np.sin(angle)).astype(int)
    pad = int(np.ceil(length / 2)) + 1
    padded = np.pad(pixels, ((0, 0), (pad, pad), (pad, pad)), mode="reflect")
    h, w = pixels.shape[1:]
    total = np.zeros(pixels.shape, np.float32)
    for x, y in zip(dx, dy):
        total += padded[:, pad + y:pad + y + h, pad + x:pad + x + w]
    return total / np.float32(taps)


def apply(image, params):
    """Degrade `image` with recorded `params` (from sample_params): blur, then colour changes, then noise."""
    image = image.convert("RGB")
    p = {**IDENTITY, **params}
    if p["blur"] not in ("none", "gaussian", "motion"):
        raise ValueError(f"unknown blur {p['blur']!r} in degradation params; expected none, gaussian or motion")
    if p["blur"] == "gaussian" and p["blur_sigma"] > 0:
        image = image.filter(ImageFilter.GaussianBlur(p["blur_sigma"]))
    colour = [p[k] for k in ("brightness", "contrast", "saturation", "gain_r", "gain_g", "gain_b")]
    motion = p["blur"] == "motion" and p["motion_length"] > 1
    if not motion and p["noise_sigma"] <= 0 and colour == [1.0] * 6:
        return image  # nothing left to do (identity parameters: the image unchanged)
    pixels = _channels(image)
    if motion:
        pixels = _motion_blur(pixels, p["motion_length"], p["motion_angle"])
    if colour != [1.0] * 6:
        gains = np.array([p["gain_r"], p["gain_g"], p["gain_b"]], np.float32) * np.float32(p["brightness"])
        pixels = pixels * gains[:, None, None]
        grey = pixels.mean(axis=0)
        pixels = grey + (pixels - grey) * np.float32(p["saturation"])
        mean = pixels.mean()
        pixels = (pixels - mean) * np.float32(p["contrast"]) + mean
    if p["noise_sigma"] > 0:
        noise = np.random.default_rng(p["noise_seed"]).standard_normal(pixels.shape, dtype=np.float32)
        pixels = pixels + noise * np.float32(p["noise_sigma"])
    bands = np.clip(pixels + 0.5, 0, 255).astype(np.uint8)
    return Image.merge("RGB", [Image.fromarray(band) for band in bands])


def degrade(image, severity, rng, strength=1.0):
    """Draw parameters for `severity` and apply them: returns (degraded image, params)."""
    params = sample_params(severity, rng, strength)
    return apply(image, params), params


def degraded_version(jpeg, rng):
    """A degraded version of a pristine JPEG, severity drawn uniformly from the four: (severity, JPEG bytes, params).

    The one rule for degraded sets made from pristine images (tools/prepare.py, the baselines' validation). The
    result is always re-encoded, so even a "pristine" draw is no byte copy of its source.
    """
    severity = SEVERITIES[rng.integers(len(SEVERITIES))]
    with Image.open(io.BytesIO(jpeg)) as source:
        image, params = degrade(source.convert("RGB"), severity, rng)
    return severity, encode_jpeg(image), params


def synthesized_versions(jpegs: Iterable[bytes], seed: int, stream: int = 0) -> Iterator[tuple[str, bytes, dict]]:
    """degraded_version of each pristine JPEG in turn, the one way degraded sets are synthesized (tools/prepare.py,
    the baselines' validation set). Image `index` of `stream` (prepare.py: the phase's number) draws from the
    generator [seed, 2, stream, index], so a version depends on neither the other images nor how many there are."""
    for index, jpeg in enumerate(jpegs):
        yield degraded_version(jpeg, np.random.default_rng([seed, 2, stream, index]))


def version_id(image_id: str) -> str:
    """The release-side id of the synthesized degraded version of `image_id` (reference side only: participants see
    fresh ids)."""
    return f"{image_id}_degraded"
