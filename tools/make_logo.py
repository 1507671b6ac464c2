"""Draw logo.png: two synthetic cells, each beside a blurred, noisy copy (the challenge in one picture)."""
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

import cells

TILE = 128
LOGO = Path(__file__).resolve().parents[1] / "logo.png"


def draw_logo(seed: int = 7) -> Image.Image:
    """A 2x2 grid: pristine cells on the left, degraded copies on the right, quantised to stay small."""
    rng = np.random.default_rng(seed)
    logo = Image.new("RGB", (2 * TILE, 2 * TILE), (255, 255, 255))
    mask = Image.new("L", (TILE, TILE), 0)
    ImageDraw.Draw(mask).ellipse((4, 4, TILE - 5, TILE - 5), fill=255)
    for row, label in enumerate(("SNE", "EO")):
        cell = cells.render_cell(label, rng)
        margin = cell.width // 4
        crop = cell.crop((margin, margin, cell.width - margin, cell.width - margin)).resize((TILE, TILE), Image.LANCZOS)
        blurred = np.asarray(crop.filter(ImageFilter.GaussianBlur(2.2)), dtype=np.float32)
        noisy = (blurred + rng.normal(0, 14, (TILE, TILE, 3))) * np.array([1.0, 0.93, 1.08])
        degraded = Image.fromarray(np.clip(noisy, 0, 255).astype(np.uint8))
        logo.paste(crop, (0, row * TILE), mask)
        logo.paste(degraded, (TILE, row * TILE), mask)
    return logo.quantize(colors=192, dither=Image.Dither.NONE)


if __name__ == "__main__":
    draw_logo().save(LOGO, optimize=True)
    print(f"wrote {LOGO}")
