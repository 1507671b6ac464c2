"""Calibration of probability outputs: top-label expected calibration error, Brier score, reliability bins."""
import numpy as np
from sklearn.metrics import brier_score_loss

from label_space import CLASSES

N_BINS = 15


def reliability_bins(probs: np.ndarray, y_true: np.ndarray, n_bins: int = N_BINS,
                     top: np.ndarray | None = None) -> dict[str, np.ndarray]:
    """Per equal-width confidence bin ((k/n, (k+1)/n], the first including 0): image count, mean
    top-label confidence and accuracy of the top label. probs: (n, 13) rows summing to 1; y_true: (n,);
    top: each image's scored label (default: its most probable class), which decides between classes whose
    probabilities tie as written (6 decimals)."""
    top = probs.argmax(axis=1) if top is None else top
    confidence = probs[np.arange(len(top)), top]
    correct = (top == y_true).astype(np.float64)
    index = np.clip(np.ceil(confidence * n_bins).astype(np.int64) - 1, 0, n_bins - 1)
    count = np.bincount(index, minlength=n_bins)
    safe = np.maximum(count, 1)
    return {
        "count": count,
        "confidence": np.bincount(index, weights=confidence, minlength=n_bins) / safe,
        "accuracy": np.bincount(index, weights=correct, minlength=n_bins) / safe,
    }


def expected_calibration_error(probs: np.ndarray, y_true: np.ndarray, n_bins: int = N_BINS,
                               top: np.ndarray | None = None) -> float:
    """Top-label ECE: sum over bins of (bin share of images) x |accuracy - confidence|; NaN for no images."""
    if len(y_true) == 0:
        return float("nan")
    bins = reliability_bins(probs, y_true, n_bins, top)
    return float(np.sum(bins["count"] / len(y_true) * np.abs(bins["accuracy"] - bins["confidence"])))


def brier_score(probs: np.ndarray, y_true: np.ndarray) -> float:
    """Multiclass Brier score: mean over images of sum over the 13 classes of (p - 1[class is true])^2, in [0, 2];
    NaN for no images (a run whose every image of a set failed)."""
    if len(y_true) == 0:
        return float("nan")
    return float(brier_score_loss(y_true, probs, labels=np.arange(len(CLASSES)), scale_by_half=False))
