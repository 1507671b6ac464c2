"""Starting-kit submission: colour and texture features of the centred cell, classified by scikit-learn."""
from pathlib import Path

import numpy as np
from PIL import Image
from threadpoolctl import threadpool_limits  # installed with scikit-learn

CLASSES = ("BA", "BL", "BNE", "EO", "LY", "MMY", "MO", "MY", "PC", "PLY", "PMY", "SNE", "VLY")
WEIGHTS_FILE = "classifier.joblib"
MAKE_WEIGHTS = "python starting_kit/train.py build/demo_release  (or: make starting-kit)"

SIZE = 96  # features are computed on a SIZE x SIZE thumbnail: about 1 ms per image
CENTRE = slice(SIZE // 4, SIZE - SIZE // 4)  # the white cell sits in the middle of every crop
RINGS = 4  # concentric rings for radial profiles (cell size, nucleus-to-cytoplasm ratio)
HSV_BINS = (12, 8, 8)


def _uniform_lbp_table():
    """Map each 8-bit local binary pattern to its rotation-invariant uniform code (0-8 set bits, 9 = other)."""
    table = np.empty(256, dtype=np.int64)
    for code in range(256):
        bits = [(code >> i) & 1 for i in range(8)]
        transitions = sum(bits[i] != bits[(i + 1) % 8] for i in range(8))
        table[code] = sum(bits) if transitions <= 2 else 9
    return table


LBP_TABLE = _uniform_lbp_table()
_yy, _xx = np.mgrid[:SIZE, :SIZE]
_RADIUS = np.hypot(_yy - (SIZE - 1) / 2, _xx - (SIZE - 1) / 2) / (SIZE / 2)
RING_INDEX = np.minimum((_RADIUS * RINGS).astype(np.int64), RINGS)  # RINGS = the corners outside the disc


def _hsv_histograms(hsv):
    """Normalised hue, saturation and value histograms (stain colour, granule colour)."""
    return [np.bincount(hsv[..., c].ravel() * bins // 256, minlength=bins) / hsv[..., c].size
            for c, bins in enumerate(HSV_BINS)]


def _lbp_histogram(gray):
    """Histogram of uniform local binary patterns (chromatin and granule texture)."""
    centre = gray[1:-1, 1:-1]
    code = np.zeros(centre.shape, dtype=np.int64)
    shifts = ((0, 0), (0, 1), (0, 2), (1, 2), (2, 2), (2, 1), (2, 0), (1, 0))
    for bit, (dy, dx) in enumerate(shifts):
        neighbour = gray[dy:dy + centre.shape[0], dx:dx + centre.shape[1]]
        code |= (neighbour >= centre).astype(np.int64) << bit
    return np.bincount(LBP_TABLE[code].ravel(), minlength=10) / code.size


def _gradient_stats(gray):
    """Edge strength statistics; blur lowers them, noise raises them, lobed nuclei add edges."""
    gy, gx = np.gradient(gray)
    magnitude = np.hypot(gx, gy)
    laplacian = gray[1:-1, :-2] + gray[1:-1, 2:] + gray[:-2, 1:-1] + gray[2:, 1:-1] - 4 * gray[1:-1, 1:-1]
    return [magnitude.mean(), magnitude.std(), *np.percentile(magnitude, (50, 90)), laplacian.var() ** 0.5]


def features(image):
    """Feature vector (float32) of one RGB cell image of any size; train.py and predict() share it."""
    small = image.convert("RGB").resize((SIZE, SIZE), Image.BILINEAR)
    rgb = np.asarray(small, dtype=np.float64) / 255.0
    hsv = np.asarray(small.convert("HSV"), dtype=np.int64)
    gray = rgb @ np.array([0.299, 0.587, 0.114])
    saturation, value = hsv[..., 1] / 255.0, hsv[..., 2] / 255.0
    # Nucleus: the darkest stained pixels relative to this image's own brightness (robust to colour shift).
    nucleus = value < 0.75 * np.median(value)
    stained = saturation > np.percentile(saturation, 50) + 0.1

    parts = []
    for region in (np.s_[CENTRE, CENTRE], np.s_[:, :]):
        parts += _hsv_histograms(hsv[region])
        parts.append(rgb[region].reshape(-1, 3).mean(axis=0))
        parts.append(rgb[region].reshape(-1, 3).std(axis=0))
        parts.append(np.percentile(saturation[region], (10, 50, 90)))
        parts.append(np.percentile(value[region], (10, 50, 90)))
        parts.append(_lbp_histogram(gray[region]))
        parts.append(_gradient_stats(gray[region]))
    ring_sizes = np.bincount(RING_INDEX.ravel(), minlength=RINGS + 1)
    for mask in (nucleus, stained):
        parts.append(np.bincount(RING_INDEX.ravel(), weights=mask.ravel(), minlength=RINGS + 1) / ring_sizes)
    parts.append(np.bincount(RING_INDEX.ravel(), weights=value.ravel(), minlength=RINGS + 1) / ring_sizes)
    return np.concatenate([np.ravel(p) for p in parts]).astype(np.float32)


class Model:
    """The participant contract: Model(), load(), predict(image), predict_batch(images)."""

    def __init__(self):
        self.classifier = None

    def load(self):
        path = Path(__file__).parent / WEIGHTS_FILE
        if not path.is_file():
            raise FileNotFoundError(f"{path} not found: put {WEIGHTS_FILE} in the submission zip, next to model.py "
                                    f"(train.py makes it: `{MAKE_WEIGHTS}`)")
        import joblib  # installed with scikit-learn

        self.classifier = joblib.load(path)

    def predict(self, image):
        return self.predict_batch([image])[0]

    def predict_batch(self, images):
        """13 probabilities per image in CLASSES order (0 for classes absent from the training data)."""
        x = np.stack([features(image) for image in images])
        with threadpool_limits(1):  # small batches: threads would only compete with the ingestion's decoders
            proba = self.classifier.predict_proba(x)
        full = np.zeros((len(images), len(CLASSES)))
        full[:, [CLASSES.index(label) for label in self.classifier.classes_]] = proba
        return full.tolist()
