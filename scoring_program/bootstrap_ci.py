"""Class-stratified bootstrap of confusion counts, drawn jointly for one or several submissions.

Each replicate draws, within each reference class, as many images as the class holds, with replacement, and counts
each image's copies. The draws depend only on the reference and the generator, never on the predictions: a
submission's replicates are the same whoever else is compared with it, so adding a team to a ranking moves no other
team's interval or pairwise p-value. Every submission is scored on the same drawn images, which paired comparisons
need. 1,000 replicates of 100,000 images take about a second.
"""
import numpy as np

from label_space import PREDICTED_NAMES

N_BOOTSTRAP = 1000
N_CODES = len(PREDICTED_NAMES)
DRAWS_AT_ONCE = 2_000_000  # image draws held in memory at a time (8 MB, and as much for their predictions)


def bootstrap_confusions(y_true: np.ndarray, y_preds: np.ndarray, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Confusion counts of `n_boot` stratified bootstrap replicates.

    y_true: (n,) reference class codes; y_preds: (m, n) predicted codes of m submissions on the same
    images. Returns int64 counts of shape (n_boot, m, 14, 14) (codes incl. NO_PREDICTION); each
    replicate keeps every class's image count (stratified), so the classes present never change.
    """
    y_preds = np.atleast_2d(y_preds)
    out = np.zeros((n_boot, y_preds.shape[0], N_CODES, N_CODES), dtype=np.int64)
    for c in np.unique(y_true):
        members = np.flatnonzero(y_true == c)
        predicted = y_preds[:, members].astype(np.int32)  # (m, n_c)
        per_block = max(1, DRAWS_AT_ONCE // members.size)  # replicates drawn at a time
        for start in range(0, n_boot, per_block):
            size = min(per_block, n_boot - start)
            drawn = rng.integers(0, members.size, size=(size, members.size), dtype=np.uint32)
            row_offsets = (N_CODES * np.arange(size, dtype=np.int32))[:, None]
            codes = np.empty(drawn.shape, dtype=np.int32)
            for m in range(predicted.shape[0]):
                np.take(predicted[m], drawn, out=codes)  # each drawn image's prediction,
                codes += row_offsets  # numbered apart by replicate, so that one bincount counts them all
                counts = np.bincount(codes.ravel(), minlength=size * N_CODES)
                out[start:start + size, m, c, :] = counts.reshape(size, N_CODES)
    return out


def percentile_interval(values: np.ndarray, level: float = 0.95) -> tuple[float, float]:
    """The percentile bootstrap interval of replicate values (shape (n_boot,))."""
    tail = (1.0 - level) / 2 * 100
    low, high = np.percentile(values, [tail, 100 - tail])
    return float(low), float(high)
