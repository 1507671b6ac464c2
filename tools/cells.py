"""Synthetic single-cell blood-smear images for the 13 WBCBench classes, drawn from WBCAtt+ attributes."""
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from scipy.ndimage import gaussian_filter

import project_folders  # noqa: F401  (the program folders, tools/ and baselines/ importable by name)
from label_space import CLASSES

CELL_TYPES = {
    "BA": "Basophil", "BL": "Blast cell", "BNE": "Band-form neutrophil", "EO": "Eosinophil",
    "LY": "Lymphocyte", "MMY": "Metamyelocyte", "MO": "Monocyte", "MY": "Myelocyte", "PC": "Plasma cell",
    "PLY": "Prolymphocyte", "PMY": "Promyelocyte", "SNE": "Segmented neutrophil",
    "VLY": "Variant (atypical) lymphocyte",
}
IMAGE_SIZE = 368

# Stain colours as optical densities (R, G, B) over the plasma background: pixel = background * exp(-density).
BACKGROUND = np.array([252.0, 229.0, 204.0])
RBC_OD = np.array([0.17, 0.31, 0.19])
CHROMATIN_OD = np.array([0.95, 1.55, 0.40])
NUCLEOLUS_OD = np.array([0.45, 0.50, 0.05])  # nucleoli look pale blue-grey inside the purple nucleus
PLATELET_OD = np.array([0.55, 0.85, 0.25])
CYTOPLASM = {  # colour names used by the class table
    "pale_pink": (0.10, 0.13, -0.01),
    "lilac": (0.16, 0.17, 0.00),
    "sky_blue": (0.36, 0.22, -0.06),
    "deep_blue": (0.58, 0.40, -0.04),
    "grey_blue": (0.24, 0.21, -0.01),
    "blue_lilac": (0.30, 0.24, -0.03),
}
GRANULES = {
    "none": (0.0, 0.0, 0.0),
    "neutrophilic": (0.22, 0.30, 0.04),  # fine lilac dust
    "azurophilic": (0.45, 1.05, 0.40),  # coarse red-purple
    "eosinophilic": (0.08, 0.44, 0.52),  # large orange-red
    "basophilic": (1.05, 1.45, 0.55),  # large dark purple-black, also over the nucleus
}


@dataclass(frozen=True)
class Morphology:
    """Per-class attribute distributions. Pairs are (mean, sd) of a normal draw; dicts are category weights."""

    cell_radius: tuple  # px; the image is 368 px and a red cell about 66 px across
    cell_aspect: tuple  # long / short axis
    cell_irregularity: tuple  # amplitude of the boundary's low harmonics (monocytes, reactive lymphocytes)
    nucleus_width: tuple  # half-thickness of the nucleus / cell radius: with nucleus_length, the N:C ratio
    nucleus_length: tuple  # centreline length / cell radius: 0 round, ~0.7 kidney, >1.3 band or segmented
    nucleus_bend: tuple  # radians the centreline turns: an indented, C- or U-shaped nucleus
    lobes: dict  # lobe count -> weight
    constriction: tuple  # 0: no narrowing between lobes .. 1: thread-like filaments
    nucleus_offset: tuple  # distance of the nucleus centre from the cell centre / cell radius
    chromatin_density: tuple
    chromatin_clumping: tuple  # 0 fine (blast) .. 1 coarse clumps (mature lymphocyte, plasma cell)
    nucleoli: dict  # count -> weight
    cytoplasm: dict  # colour name -> weight
    cytoplasm_density: tuple
    cytoplasm_texture: tuple
    cytoplasm_rim: tuple  # darker (more basophilic) cell edge of reactive lymphocytes
    vacuoles: float  # mean count (Poisson)
    granules: dict  # granule type -> weight
    granule_size: tuple  # px (Gaussian sigma)
    granule_density: tuple  # granules per 100 px^2 of cytoplasm
    granules_over_nucleus: float  # fraction also spread over the nucleus (basophils)
    halo: tuple  # perinuclear pale zone (plasma cell Golgi zone)


def _m(**kw):
    """A class's Morphology: the attributes it sets, over the defaults most classes share."""
    base = dict(
        cell_aspect=(1.06, 0.04), cell_irregularity=(0.015, 0.01), nucleus_bend=(0.0, 0.3), lobes={1: 1},
        constriction=(0.0, 0.0), nucleus_offset=(0.05, 0.04), nucleoli={0: 1}, cytoplasm_texture=(0.15, 0.05),
        cytoplasm_rim=(0.0, 0.0), vacuoles=0.0, granules={"none": 1}, granule_size=(1.0, 0.2),
        granule_density=(0.0, 0.0), granules_over_nucleus=0.0, halo=(0.0, 0.0),
    )
    base.update(kw)
    return Morphology(**base)


MORPHOLOGY = {
    "SNE": _m(cell_radius=(55, 5), nucleus_width=(0.24, 0.04), nucleus_length=(1.8, 0.3), nucleus_bend=(2.8, 1.0),
              lobes={2: 0.15, 3: 0.45, 4: 0.3, 5: 0.1}, constriction=(0.72, 0.17), chromatin_density=(0.95, 0.1),
              chromatin_clumping=(0.6, 0.15), cytoplasm={"pale_pink": 0.6, "lilac": 0.4},
              cytoplasm_density=(1.0, 0.2), granules={"neutrophilic": 1}, granule_size=(0.9, 0.2),
              granule_density=(2.0, 0.6)),
    "BNE": _m(cell_radius=(55, 5), nucleus_width=(0.22, 0.04), nucleus_length=(1.4, 0.3), nucleus_bend=(2.6, 0.8),
              lobes={1: 0.55, 2: 0.3, 3: 0.15}, constriction=(0.3, 0.18), chromatin_density=(0.92, 0.1),
              chromatin_clumping=(0.55, 0.15), cytoplasm={"pale_pink": 0.6, "lilac": 0.4},
              cytoplasm_density=(1.0, 0.2), granules={"neutrophilic": 1}, granule_size=(0.9, 0.2),
              granule_density=(2.0, 0.6)),
    "EO": _m(cell_radius=(58, 5), nucleus_width=(0.25, 0.04), nucleus_length=(1.2, 0.25), nucleus_bend=(2.0, 0.6),
             lobes={2: 0.75, 3: 0.2, 1: 0.05}, constriction=(0.7, 0.15), chromatin_density=(0.9, 0.1),
             chromatin_clumping=(0.5, 0.15), cytoplasm={"pale_pink": 1}, cytoplasm_density=(0.8, 0.2),
             granules={"eosinophilic": 1}, granule_size=(1.9, 0.35), granule_density=(4.5, 1.2)),
    "BA": _m(cell_radius=(50, 5), nucleus_width=(0.3, 0.05), nucleus_length=(0.8, 0.4), nucleus_bend=(1.5, 0.8),
             lobes={1: 0.5, 2: 0.5}, constriction=(0.4, 0.2), chromatin_density=(0.75, 0.12),
             chromatin_clumping=(0.3, 0.1), cytoplasm={"lilac": 0.6, "pale_pink": 0.4}, cytoplasm_density=(0.9, 0.2),
             granules={"basophilic": 1}, granule_size=(1.8, 0.4), granule_density=(2.4, 0.9),
             granules_over_nucleus=0.8),
    "LY": _m(cell_radius=(38, 4), nucleus_width=(0.78, 0.06), nucleus_length=(0.1, 0.1), nucleus_bend=(0.0, 1.0),
             nucleus_offset=(0.1, 0.06), chromatin_density=(1.05, 0.1), chromatin_clumping=(0.75, 0.15),
             cytoplasm={"sky_blue": 0.8, "blue_lilac": 0.2}, cytoplasm_density=(0.9, 0.2),
             granules={"none": 0.85, "azurophilic": 0.15}, granule_size=(1.0, 0.2), granule_density=(0.3, 0.2)),
    "VLY": _m(cell_radius=(50, 7), cell_aspect=(1.12, 0.08), cell_irregularity=(0.05, 0.025),
              nucleus_width=(0.58, 0.08), nucleus_length=(0.25, 0.2), nucleus_bend=(0.5, 1.2),
              nucleus_offset=(0.18, 0.08), chromatin_density=(0.9, 0.12), chromatin_clumping=(0.5, 0.15),
              nucleoli={0: 0.8, 1: 0.2}, cytoplasm={"deep_blue": 0.5, "sky_blue": 0.3, "grey_blue": 0.2},
              cytoplasm_density=(0.95, 0.25), cytoplasm_rim=(0.7, 0.3), vacuoles=0.4,
              granules={"none": 0.8, "azurophilic": 0.2}, granule_density=(0.3, 0.2)),
    "PLY": _m(cell_radius=(45, 5), nucleus_width=(0.7, 0.07), nucleus_length=(0.12, 0.12),
              nucleus_offset=(0.1, 0.06), chromatin_density=(0.95, 0.1), chromatin_clumping=(0.55, 0.15),
              nucleoli={1: 0.8, 0: 0.15, 2: 0.05}, cytoplasm={"sky_blue": 0.6, "deep_blue": 0.2, "grey_blue": 0.2},
              cytoplasm_density=(1.0, 0.2)),
    "BL": _m(cell_radius=(55, 7), nucleus_width=(0.76, 0.06), nucleus_length=(0.15, 0.15), nucleus_bend=(0.0, 1.0),
             nucleus_offset=(0.08, 0.05), chromatin_density=(0.78, 0.1), chromatin_clumping=(0.2, 0.1),
             nucleoli={0: 0.15, 1: 0.35, 2: 0.35, 3: 0.15}, cytoplasm={"sky_blue": 0.5, "deep_blue": 0.5},
             cytoplasm_density=(1.0, 0.25), granules={"none": 0.75, "azurophilic": 0.25},
             granule_density=(0.3, 0.2)),
    "PMY": _m(cell_radius=(64, 6), nucleus_width=(0.55, 0.07), nucleus_length=(0.3, 0.25), nucleus_bend=(0.8, 0.8),
              nucleus_offset=(0.22, 0.08), chromatin_density=(0.82, 0.1), chromatin_clumping=(0.3, 0.12),
              nucleoli={0: 0.5, 1: 0.3, 2: 0.2}, cytoplasm={"blue_lilac": 0.6, "sky_blue": 0.4},
              cytoplasm_density=(1.0, 0.2), granules={"azurophilic": 1}, granule_size=(1.4, 0.3),
              granule_density=(2.2, 0.8), granules_over_nucleus=0.15, halo=(0.25, 0.15)),
    "MY": _m(cell_radius=(58, 5), nucleus_width=(0.5, 0.06), nucleus_length=(0.45, 0.25), nucleus_bend=(1.4, 0.7),
             nucleus_offset=(0.22, 0.08), chromatin_density=(0.88, 0.1), chromatin_clumping=(0.45, 0.12),
             cytoplasm={"lilac": 0.6, "blue_lilac": 0.4}, cytoplasm_density=(1.0, 0.2),
             granules={"neutrophilic": 0.7, "azurophilic": 0.3}, granule_size=(1.1, 0.25),
             granule_density=(2.0, 0.7)),
    "MMY": _m(cell_radius=(55, 5), nucleus_width=(0.4, 0.06), nucleus_length=(0.8, 0.25), nucleus_bend=(2.4, 0.6),
              nucleus_offset=(0.15, 0.07), chromatin_density=(0.9, 0.1), chromatin_clumping=(0.5, 0.12),
              cytoplasm={"pale_pink": 0.5, "lilac": 0.5}, cytoplasm_density=(1.0, 0.2),
              granules={"neutrophilic": 1}, granule_size=(0.95, 0.2), granule_density=(2.0, 0.6)),
    "MO": _m(cell_radius=(66, 7), cell_aspect=(1.1, 0.07), cell_irregularity=(0.05, 0.02),
             nucleus_width=(0.4, 0.07), nucleus_length=(0.9, 0.35), nucleus_bend=(2.2, 1.0), lobes={1: 0.8, 2: 0.2},
             constriction=(0.25, 0.15), nucleus_offset=(0.12, 0.07), chromatin_density=(0.78, 0.1),
             chromatin_clumping=(0.3, 0.1), cytoplasm={"grey_blue": 0.7, "blue_lilac": 0.3},
             cytoplasm_density=(1.0, 0.2), cytoplasm_texture=(0.3, 0.08), vacuoles=1.8,
             granules={"neutrophilic": 0.6, "none": 0.4}, granule_size=(0.8, 0.15), granule_density=(0.8, 0.4)),
    "PC": _m(cell_radius=(47, 5), cell_aspect=(1.25, 0.1), nucleus_width=(0.5, 0.06), nucleus_length=(0.1, 0.1),
             nucleus_offset=(0.42, 0.08), chromatin_density=(1.0, 0.1), chromatin_clumping=(0.85, 0.12),
             cytoplasm={"deep_blue": 0.8, "sky_blue": 0.2}, cytoplasm_density=(1.15, 0.2), vacuoles=0.7,
             halo=(0.6, 0.15)),
}


def _normal(rng, pair, low, high):
    """A normal draw clipped to the attribute's plausible range (tails would draw impossible cells)."""
    return float(np.clip(rng.normal(*pair), low, high))


def _category(rng, weights):
    keys = list(weights)
    p = np.array([weights[k] for k in keys], dtype=float)
    return keys[rng.choice(len(keys), p=p / p.sum())]


def sample_attributes(label, rng):
    """Draw one cell's attributes from its class distributions (plus per-image stain variation)."""
    if label not in MORPHOLOGY:
        raise ValueError(f"unknown class {label!r}; expected one of {', '.join(CLASSES)}")
    m = MORPHOLOGY[label]
    cytoplasm = np.array(CYTOPLASM[_category(rng, m.cytoplasm)]) + rng.normal(0, 0.04, 3)
    granule_type = _category(rng, m.granules)
    return {
        "label": label,
        "cell_radius": _normal(rng, m.cell_radius, 30, 90),
        "cell_aspect": _normal(rng, m.cell_aspect, 1.0, 1.6),
        "cell_angle": float(rng.uniform(0, np.pi)),
        "cell_irregularity": _normal(rng, m.cell_irregularity, 0.0, 0.15),
        "nucleus_width": _normal(rng, m.nucleus_width, 0.1, 0.88),
        "nucleus_length": _normal(rng, m.nucleus_length, 0.0, 2.2),
        "nucleus_bend": _normal(rng, m.nucleus_bend, -3.5, 3.5),
        "lobes": int(_category(rng, m.lobes)),
        "constriction": _normal(rng, m.constriction, 0.0, 0.95),
        "nucleus_offset": _normal(rng, m.nucleus_offset, 0.0, 0.6),
        "chromatin_density": _normal(rng, m.chromatin_density, 0.4, 1.4),
        "chromatin_clumping": _normal(rng, m.chromatin_clumping, 0.05, 1.0),
        "nucleoli": int(_category(rng, m.nucleoli)),
        "cytoplasm_od": cytoplasm,
        "cytoplasm_density": _normal(rng, m.cytoplasm_density, 0.3, 1.6),
        "cytoplasm_texture": _normal(rng, m.cytoplasm_texture, 0.0, 0.6),
        "cytoplasm_rim": _normal(rng, m.cytoplasm_rim, 0.0, 1.5),
        "vacuoles": int(rng.poisson(m.vacuoles)),
        "granule_od": np.array(GRANULES[granule_type]) * rng.uniform(0.8, 1.2),
        "granule_size": _normal(rng, m.granule_size, 0.5, 3.0),
        "granule_density": _normal(rng, m.granule_density, 0.0, 8.0) if granule_type != "none" else 0.0,
        "granules_over_nucleus": m.granules_over_nucleus,
        "halo": _normal(rng, m.halo, 0.0, 0.9),
        "stain": float(rng.normal(1.0, 0.08)),  # smear-to-smear stain intensity
        "background": BACKGROUND + rng.normal(0, 3.0, 3),
    }


def _tint(density, colour):
    """Channel-first (3, h, w) optical density of a density map in one stain colour (float32: speed)."""
    return np.asarray(colour, np.float32)[:, None, None] * density


def _noise(rng, shape, scale):
    """Smooth unit-variance noise with features about `scale` px across (bicubic-upsampled white noise)."""
    h, w = shape
    small = rng.standard_normal((max(2, int(h / scale) + 2), max(2, int(w / scale) + 2))).astype(np.float32)
    field = np.asarray(Image.fromarray(small, mode="F").resize((w, h), Image.BICUBIC))
    return field / (field.std() + 1e-6)


def _nucleus_centreline(attrs, rng, radius):
    """The nucleus as a chain of discs along a (bent) centreline, plus a round lobe on it per segment.

    Returns chain points (n, 2), their disc radii (n,), and the lobes as (chain index, half-length, half-width):
    a band or kidney nucleus is the chain alone; a segmented one is lobes joined by a neck that thins to a
    filament as the constriction goes to 1.
    """
    length = attrs["nucleus_length"] * radius
    width = attrs["nucleus_width"] * radius
    n = 1 if length < 2 else int(np.clip(length / 1.5, 8, 60))
    s = np.linspace(0.0, 1.0, n)
    heading = attrs["nucleus_bend"] * (s - 0.5) + rng.normal(0, 0.35, n).cumsum() * (attrs["lobes"] > 2) * 0.3
    step = length / max(n - 1, 1)
    xy = np.zeros((n, 2))
    xy[1:, 0] = np.cumsum(np.cos(heading[:-1]) * step)
    xy[1:, 1] = np.cumsum(np.sin(heading[:-1]) * step)
    xy -= (xy.min(0) + xy.max(0)) / 2
    lobes = attrs["lobes"] if n > 1 else 1
    if lobes > 1:
        half_width = np.full(n, width * (1 - attrs["constriction"]) ** 1.5)
        centres = np.round((np.arange(lobes) + 0.5) / lobes * (n - 1)).astype(int)
        lobe_length = min(0.5 * length / lobes, 1.3 * width)
        lobe_list = [(k, lobe_length, width * rng.uniform(0.85, 1.0)) for k in centres]
        lobe_reach = (np.hypot(*xy[centres].T) + max(lobe_length, width)).max()
    else:
        half_width = width * (1 - 0.25 * np.abs(2 * s - 1) ** 4 * (n > 1))  # slightly tapered band ends
        lobe_list, lobe_reach = [], 0.0
    # keep the nucleus inside the cell: shrink it (shape kept) if it reaches the membrane
    extent = max((np.hypot(*xy.T) + half_width).max(), lobe_reach)
    scale = min(1.0, 0.9 * radius / extent)
    lobe_list = [(k, a * scale, b * scale) for k, a, b in lobe_list]
    return xy * scale, np.maximum(half_width * scale, 0.6), lobe_list


def _draw_nucleus(size, centre, xy, half_width, lobes):
    canvas = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(canvas)
    points = xy + centre
    for (x, y), r in zip(points, half_width):
        draw.ellipse((x - r, y - r, x + r, y + r), fill=255)
    t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    for k, along, across in lobes:
        tangent = points[min(k + 1, len(points) - 1)] - points[max(k - 1, 0)]
        tangent = tangent / (np.hypot(*tangent) + 1e-9)
        normal = np.array([-tangent[1], tangent[0]])
        outline = points[k] + np.outer(along * np.cos(t), tangent) + np.outer(across * np.sin(t), normal)
        draw.polygon([tuple(p) for p in outline], fill=255)
    return canvas


def _stamp_granules(rng, shape, mask, count, size):
    """Density map of `count` round granules of Gaussian radius `size` placed where `mask` is high."""
    if count <= 0:
        return np.zeros(shape, np.float32)
    ys, xs = np.nonzero(mask > 0.5)
    if len(ys) == 0:
        return np.zeros(shape, np.float32)
    pick = rng.integers(0, len(ys), count)
    impulses = np.zeros(shape, np.float32)
    np.add.at(impulses, (ys[pick], xs[pick]), rng.uniform(0.6, 1.4, count).astype(np.float32))
    return gaussian_filter(impulses, size, truncate=2.5) * (2 * np.pi * size * size)


def _white_cell(attrs, rng):
    """Optical-density map (3, h, w) of the white cell and its body mask, in a square crop around it.

    The steps draw from `rng` in a fixed order (body, nucleus, chromatin, cytoplasm, vacuoles, granules, nucleoli):
    reordering them would change every demo image.
    """
    cell = _cell_body(attrs, rng)
    nucleus, centre, xy, half_width = _nucleus(attrs, rng, cell)
    chromatin = _chromatin(attrs, rng, nucleus, cell.size)
    cytoplasm = _cytoplasm(attrs, rng, nucleus, cell)
    holes = _vacuoles(attrs, rng, cell)
    cytoplasm *= 1 - 0.85 * holes
    granules = _granules(attrs, rng, nucleus, holes, cell)
    od = _tint(cytoplasm, attrs["cytoplasm_od"]) + _tint(chromatin, CHROMATIN_OD) + _tint(granules, attrs["granule_od"])
    od = _nucleoli(attrs, rng, od, nucleus, centre, xy, half_width, cell)
    return od * np.float32(attrs["stain"]), cell.body


@dataclass
class _CellFrame:
    """The white cell's square crop: its half size, pixel grid, ellipse axes, elliptic radius and body mask."""

    half: int
    size: int
    xx: np.ndarray
    yy: np.ndarray
    a: float
    b: float
    rho: np.ndarray
    body: np.ndarray


def _cell_body(attrs, rng):
    """The crop around the cell and the cell's body: an ellipse with a wobbly membrane."""
    radius = attrs["cell_radius"]
    aspect = attrs["cell_aspect"]
    half = int(radius * np.sqrt(aspect) * (1 + 3 * attrs["cell_irregularity"]) + 6)
    size = 2 * half
    yy, xx = np.mgrid[:size, :size].astype(np.float32) - (half - 0.5)
    ca, sa = np.cos(attrs["cell_angle"]), np.sin(attrs["cell_angle"])
    u, v = xx * ca + yy * sa, -xx * sa + yy * ca
    a, b = radius * np.sqrt(aspect), radius / np.sqrt(aspect)
    rho = np.sqrt((u / a) ** 2 + (v / b) ** 2)
    phi = np.arctan2(v, u)
    wobble = sum(rng.normal(0, 1) * np.cos(k * phi + rng.uniform(0, 2 * np.pi)) for k in (2, 3, 4, 5))
    rho = rho / (1 + attrs["cell_irregularity"] * wobble)
    body = np.clip((1 - rho) * radius / 1.5 + 0.5, 0, 1)
    return _CellFrame(half, size, xx, yy, a, b, rho, body)


def _nucleus(attrs, rng, cell):
    """(nucleus mask, its centre, centreline points, half widths): discs along a (bent, lobed) centreline, offset
    from the cell centre but kept inside the membrane."""
    radius = attrs["cell_radius"]
    angle = rng.uniform(0, 2 * np.pi)
    offset = attrs["nucleus_offset"] * radius * np.array([np.cos(angle), np.sin(angle)])
    xy, half_width, lobes = _nucleus_centreline(attrs, rng, radius)
    rot = rng.uniform(0, 2 * np.pi)
    xy = xy @ np.array([[np.cos(rot), np.sin(rot)], [-np.sin(rot), np.cos(rot)]])
    # an eccentric nucleus may reach the membrane but not cross it
    extent = max([(np.hypot(*xy.T) + half_width).max()] + [np.hypot(*xy[k]) + max(p, q) for k, p, q in lobes])
    room = max(0.97 * min(cell.a, cell.b) - extent, 0.0)
    offset *= min(1.0, room / (np.hypot(*offset) + 1e-9))
    centre = np.array([cell.half, cell.half]) + offset
    nucleus = np.asarray(_draw_nucleus(cell.size, centre, xy, half_width, lobes).filter(ImageFilter.GaussianBlur(1.0)),
                         np.float32) / 255.0
    nucleus *= cell.body
    return nucleus, centre, xy, half_width


def _chromatin(attrs, rng, nucleus, size):
    """Chromatin density inside the nucleus: clumped texture and a darker nuclear membrane."""
    clump = attrs["chromatin_clumping"]
    chromatin = 1 + clump * 0.45 * _noise(rng, (size, size), 4.0) + 0.12 * _noise(rng, (size, size), 2.0)
    chromatin = nucleus * attrs["chromatin_density"] * np.clip(chromatin, 0.3, 1.8)
    chromatin += nucleus * 0.25 * np.clip(1 - np.abs(nucleus - 0.6) * 4, 0, 1)  # darker nuclear membrane
    return chromatin


def _cytoplasm(attrs, rng, nucleus, cell):
    """Cytoplasm density: textured, a denser rim, a paler halo around the nucleus where the class has one."""
    cytoplasm = attrs["cytoplasm_density"] * (1 + attrs["cytoplasm_texture"] * _noise(rng, (cell.size,) * 2, 6.0))
    cytoplasm = cytoplasm * (1 + attrs["cytoplasm_rim"] * np.clip((cell.rho - 0.7) / 0.3, 0, 1) ** 2)
    if attrs["halo"] > 0:
        near = gaussian_filter(nucleus, 5.0)
        cytoplasm = cytoplasm * (1 - attrs["halo"] * np.clip(near * 2.2, 0, 1) * (1 - nucleus))
    return np.clip(cytoplasm, 0, None) * cell.body * (1 - nucleus)


def _vacuoles(attrs, rng, cell):
    """Clear round holes in the cytoplasm (1 inside a hole)."""
    holes = np.zeros((cell.size, cell.size), np.float32)
    for _ in range(attrs["vacuoles"]):
        r = rng.uniform(2.5, 6.5)
        t, d = rng.uniform(0, 2 * np.pi), rng.uniform(0.4, 0.85)
        cx, cy = cell.half + d * cell.a * np.cos(t), cell.half + d * cell.b * np.sin(t)
        holes = np.maximum(holes, np.clip(r - np.hypot(cell.xx + cell.half - 0.5 - cx,
                                                       cell.yy + cell.half - 0.5 - cy), 0, 1))
    return holes


def _granules(attrs, rng, nucleus, holes, cell):
    """Granule density in the cytoplasm (outside the holes) and, for some classes, over the nucleus."""
    cytoplasm_area = float((cell.body * (1 - nucleus)).sum())
    count = int(attrs["granule_density"] * cytoplasm_area / 100)
    over = attrs["granules_over_nucleus"]
    shape = (cell.size, cell.size)
    granules = _stamp_granules(rng, shape, cell.body * (1 - nucleus) * (1 - holes), count, attrs["granule_size"])
    if over > 0:
        granules += _stamp_granules(rng, shape, nucleus, int(count * over * nucleus.sum() / max(
            cytoplasm_area, 1)), attrs["granule_size"])
    granules *= cell.body
    return granules


def _nucleoli(attrs, rng, od, nucleus, centre, xy, half_width, cell):
    """The optical density with pale nucleoli (blast-like cells) set into the nucleus."""
    for _ in range(attrs["nucleoli"]):
        k = rng.integers(len(xy))
        spot = centre + xy[k] + rng.normal(0, 0.3, 2) * half_width[k]
        r = rng.uniform(0.18, 0.32) * half_width[k] + 1.5
        d = np.hypot(cell.xx + cell.half - 0.5 - spot[0], cell.yy + cell.half - 0.5 - spot[1])
        nucleolus = np.clip((r - d) / 1.5, 0, 1) * nucleus
        od = od * (1 - 0.55 * nucleolus) + _tint(0.55 * nucleolus, NUCLEOLUS_OD)
    return od


def _red_cell_sprite(rng):
    """Density of one red cell: a disc with a soft edge, a slightly darker rim and a pale centre."""
    r = rng.normal(33, 2.5)
    aspect = 1 + abs(rng.normal(0, 0.06))
    angle = rng.uniform(0, np.pi)
    half = int(r * aspect) + 3
    yy, xx = np.mgrid[-half:half + 1, -half:half + 1].astype(np.float32)
    u = (xx * np.cos(angle) + yy * np.sin(angle)) / (r * np.sqrt(aspect))
    v = (-xx * np.sin(angle) + yy * np.cos(angle)) * np.sqrt(aspect) / r
    rho = np.sqrt(u * u + v * v)
    edge = np.clip((1 - rho) * r / 1.3 + 0.5, 0, 1)
    pallor = rng.uniform(0.45, 0.85) * np.exp(-((rho / 0.55) ** 2))
    rim = 0.18 * np.exp(-(((rho - 0.86) / 0.1) ** 2))
    return (edge * (1 - pallor + rim)).astype(np.float32), r


# Red cells are stamped from a fixed bank of sprites: drawing each one afresh would triple the render time.
RED_CELL_BANK = [_red_cell_sprite(np.random.default_rng([7, i])) for i in range(64)]


def _red_cells(rng, size, centre, keep_out):
    """Optical density of the red cells around the white cell, some overlapping, some cut by the border."""
    pad = 80  # room for red cells cut by the border
    density = np.zeros((size + 2 * pad, size + 2 * pad), np.float32)
    placed = []
    target = rng.integers(14, 26)
    for _ in range(150):
        if len(placed) >= target:
            break
        sprite, r = RED_CELL_BANK[rng.integers(len(RED_CELL_BANK))]
        x, y = rng.uniform(-r * 0.6, size + r * 0.6, 2)
        if np.hypot(x - centre[0], y - centre[1]) < keep_out + 0.55 * r:
            continue
        gap = 1.25 if rng.random() < 0.2 else 1.9  # a few red cells overlap their neighbours
        if any((x - px) ** 2 + (y - py) ** 2 < (gap * 0.5 * (r + pr)) ** 2 for px, py, pr in placed):
            continue
        placed.append((x, y, r))
        half = sprite.shape[0] // 2
        x0, y0 = int(x) + pad - half, int(y) + pad - half
        density[y0:y0 + sprite.shape[0], x0:x0 + sprite.shape[1]] += sprite * rng.normal(1.0, 0.08)
    return density[pad:pad + size, pad:pad + size]


def render(attrs, rng):
    """Pixels of one smear field (IMAGE_SIZE square, RGB) with the white cell described by `attrs` centred."""
    size = IMAGE_SIZE
    cx, cy = size / 2 + rng.normal(0, 4, 2)
    cell_od, body = _white_cell(attrs, rng)
    h = cell_od.shape[1]
    x0, y0 = int(round(cx - h / 2)), int(round(cy - h / 2))

    density = _red_cells(rng, size, (cx, cy), attrs["cell_radius"] * np.sqrt(attrs["cell_aspect"]))
    for _ in range(rng.poisson(0.8)):  # platelets: small purple fragments between the red cells
        px, py = rng.uniform(10, size - 10, 2).astype(int)
        pr = rng.uniform(2.0, 4.0)
        yy, xx = np.mgrid[py - 6:py + 7, px - 6:px + 7]
        density[py - 6:py + 7, px - 6:px + 7] += 2.2 * np.clip(pr - np.hypot(xx - px, yy - py), 0, 1)
    od = _tint(density, RBC_OD * attrs["stain"])
    window = od[:, y0:y0 + h, x0:x0 + h]
    window *= 1 - body  # the white cell lies on top of any red cell
    window += cell_od

    light = _tint(1 + 0.03 * _noise(rng, (size, size), 120.0), attrs["background"])  # uneven illumination
    pixels = light * np.exp(-od) + rng.integers(-2, 3, (size, size), dtype=np.int8)  # sensor noise
    channels = np.clip(pixels, 0, 255).astype(np.uint8)
    return Image.merge("RGB", [Image.fromarray(c) for c in channels])


def render_cell(label, rng):
    """One synthetic image of class `label` drawn with `rng` (a numpy Generator): the usual entry point."""
    return render(sample_attributes(label, rng), rng)
