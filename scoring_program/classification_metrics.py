"""Pure metric functions on class-code arrays: scikit-learn for the scores, numpy for bootstrap replicates.

Averaging rule (every macro figure): the unweighted mean over the classes present in the reference
of the subset scored; a predicted class absent from that reference still counts as a false positive
for the others but is not averaged. Undefined ratios (no positive predictions) count as 0.
Predicted codes may include NO_PREDICTION (an image whose predict() failed): every figure counts it as a wrong answer
(label_space.STAND_IN), through scored_predictions or scored_counts.
"""
import warnings

import numpy as np
from sklearn.metrics import (
    balanced_accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    precision_score,
)

from label_space import CLASSES, NO_PREDICTION, PREDICTED_NAMES, STAND_IN, STAND_IN_FOR_ITSELF

N_CODES = len(PREDICTED_NAMES)  # 13 classes + NO_PREDICTION
# The answer an unanswered image counts as, by its reference code (the last row, NO_PREDICTION, is never a reference).
STAND_INS = np.array([CLASSES.index(STAND_IN_FOR_ITSELF if name == STAND_IN else STAND_IN) for name in PREDICTED_NAMES])


def scored_predictions(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """y_pred as the figures count it: NO_PREDICTION replaced by the stand-in answer for its reference class."""
    return np.where(y_pred == NO_PREDICTION, STAND_INS[y_true], y_pred)


def scored_probabilities(y_true: np.ndarray, probs: np.ndarray) -> np.ndarray:
    """Probability rows as the calibration figures count them: an unanswered image's (NaN) row becomes a certain
    answer of its stand-in, so leaving out the least confident images cannot improve them either."""
    probs = np.array(probs, dtype=np.float64)
    unanswered = ~np.isfinite(probs).all(axis=1)
    probs[unanswered] = np.eye(len(CLASSES))[STAND_INS[y_true[unanswered]]]
    return probs


def scored_counts(cm: np.ndarray) -> np.ndarray:
    """Confusion counts (..., 14, 14) as the figures count them: the NO_PREDICTION column moved, row by row, into
    the stand-in answer's column (scored_predictions on counts)."""
    cm = np.array(cm, dtype=np.float64)
    rows = np.arange(N_CODES)
    cm[..., rows, STAND_INS] += cm[..., rows, NO_PREDICTION]
    cm[..., NO_PREDICTION] = 0
    return cm


def present_classes(y_true: np.ndarray) -> np.ndarray:
    """Sorted class codes that occur in `y_true` (the classes every macro average runs over)."""
    return np.unique(y_true)


def macro_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Macro-F1 over the classes present in y_true (int codes, shape (n,))."""
    return float(f1_score(y_true, scored_predictions(y_true, y_pred), labels=present_classes(y_true),
                          average="macro", zero_division=0))


def macro_specificity(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean over the classes present in y_true of TN / (TN + FP), from the full confusion matrix.

    The full matrix keeps images predicted as an absent class as true negatives of the other classes.
    """
    cm = confusion_matrix(y_true, y_pred, labels=np.arange(N_CODES))
    return float(confusion_metrics(cm, present_classes(y_true))["macro_specificity"])


def subset_metrics(y_true: np.ndarray, y_pred: np.ndarray) -> dict[str, float]:
    """The four leaderboard figures of one subset, computed by scikit-learn."""
    labels = present_classes(y_true)
    y_pred = scored_predictions(y_true, y_pred)
    with warnings.catch_warnings():
        # "y_pred contains classes not in y_true": expected, such classes are not averaged.
        warnings.simplefilter("ignore", UserWarning)
        balanced = balanced_accuracy_score(y_true, y_pred)
    return {
        "macro_f1": macro_f1(y_true, y_pred),
        "balanced_accuracy": float(balanced),
        "macro_precision": float(precision_score(y_true, y_pred, labels=labels, average="macro", zero_division=0)),
        "macro_specificity": macro_specificity(y_true, y_pred),
    }


def per_class_table(y_true: np.ndarray, y_pred: np.ndarray) -> list[dict]:
    """Precision, recall, F1 and support of every class present in y_true (scikit-learn)."""
    labels = present_classes(y_true)
    precision, recall, f1, support = precision_recall_fscore_support(
        y_true, scored_predictions(y_true, y_pred), labels=labels, zero_division=0
    )
    return [
        {"class": CLASSES[c], "precision": float(p), "recall": float(r), "f1": float(f), "support": int(s)}
        for c, p, r, f, s in zip(labels, precision, recall, f1, support)
    ]


def confusion_counts(y_true: np.ndarray, y_pred: np.ndarray) -> np.ndarray:
    """(14, 14) counts indexed by code (13 classes + NO_PREDICTION), rows = reference, columns = predicted."""
    return np.bincount(y_true * N_CODES + y_pred, minlength=N_CODES**2).reshape(N_CODES, N_CODES)


def confusion_metrics(cm: np.ndarray, present: np.ndarray) -> dict[str, np.ndarray]:
    """The four leaderboard figures from confusion counts of shape (..., 14, 14), vectorised over `...`.

    Same rule as subset_metrics (tests check equality); used for thousands of bootstrap replicates
    where calling scikit-learn per replicate would be far too slow.
    """
    cm = scored_counts(cm)
    tp = np.diagonal(cm, axis1=-2, axis2=-1)
    predicted = cm.sum(axis=-2)
    actual = cm.sum(axis=-1)
    total = actual.sum(axis=-1, keepdims=True)
    fp, fn = predicted - tp, actual - tp
    tn = total - tp - fp - fn

    def ratio(num, den):
        return np.divide(num, den, out=np.zeros_like(num), where=den > 0)[..., present].mean(axis=-1)

    return {
        "macro_f1": ratio(2 * tp, 2 * tp + fp + fn),
        "balanced_accuracy": ratio(tp, actual),
        "macro_precision": ratio(tp, predicted),
        "macro_specificity": ratio(tn, tn + fp),
    }
