"""The clinical grouping of the 13 classes (cell lines and lineages), and the error groups and blast figures it gives.

The one owner of the grouping: detailed_results.html and tools/ranking_report.py state it from here, and
pages/evaluation.md repeats it (checked by tests/test_clinical_groups.py). It describes the structure of the errors
and puts no cost on any of them: no standard clinical cost matrix exists for a differential, and none is invented.
"""
from dataclasses import dataclass

import numpy as np

from bootstrap_ci import percentile_interval
from label_space import CLASSES, NO_PREDICTION, PREDICTED_NAMES

SOURCE = (
    "The neutrophil maturation sequence (promyelocyte, myelocyte, metamyelocyte, band, segmented neutrophil) and the "
    "myeloid and lymphoid lineages as hematology textbooks teach them, e.g. Keohane, Otto and Walenga, Rodak's "
    "Hematology: Clinical Principles and Applications (Elsevier), chapter 'Leukocyte development, kinetics, and "
    "functions'. Blasts are kept apart because the differential counts them as one category whatever their lineage, "
    "which morphology alone cannot assign (the WHO classification assigns it by immunophenotype)."
)


@dataclass(frozen=True)
class CellLine:
    """Classes of one cell line; `ordered` lines list their classes from least to most mature."""

    name: str
    lineage: str
    classes: tuple[str, ...]
    ordered: bool


CELL_LINES = (
    CellLine("neutrophil granulocytes (maturation line)", "myeloid", ("PMY", "MY", "MMY", "BNE", "SNE"), True),
    CellLine("eosinophil granulocytes", "myeloid", ("EO",), False),
    CellLine("basophil granulocytes", "myeloid", ("BA",), False),
    CellLine("monocytes", "myeloid", ("MO",), False),
    # Lymphoid forms, not one maturation sequence: prolymphocytes, reactive (variant) lymphocytes and plasma cells.
    CellLine("lymphoid cells", "lymphoid", ("PLY", "LY", "VLY", "PC"), False),
)
BLAST = "BL"

# Every error (reference class != predicted class) falls in exactly one group: no prediction first, then a blast on
# either side, then by line and lineage (error_group). Listed from the closest confusion to the furthest:
# key -> (short title, meaning).
ERROR_GROUPS = {
    "neighbour_stage": ("neighbouring stage", "neighbouring stages of the neutrophil maturation line (e.g. MY and MMY, "
                                              "BNE and SNE)"),
    "same_line": ("same line, further", "two or more maturation stages apart (e.g. PMY and BNE), or two lymphoid "
                                        "forms (e.g. LY and VLY)"),
    "other_line": ("other line", "another line of the same lineage (myeloid: e.g. SNE and EO, MO and MMY)"),
    "other_lineage": ("other lineage", "across the myeloid and lymphoid lineages (e.g. MO and LY)"),
    "blast": ("blast", "a blast called something else, or another cell called a blast"),
    "no_prediction": ("no prediction", "predict() failed on the image"),
}
ON_ONE_LINE = ("neighbour_stage", "same_line")


def _line_of(code: str) -> CellLine:
    return next(line for line in CELL_LINES if code in line.classes)


def error_group(reference: str, predicted: str) -> str | None:
    """The group of one confusion (class codes, predicted may be 'no prediction'); None when it is no error."""
    if reference == predicted:
        return None
    if predicted == PREDICTED_NAMES[NO_PREDICTION]:
        return "no_prediction"
    if BLAST in (reference, predicted):
        return "blast"
    line, other = _line_of(reference), _line_of(predicted)
    if line is other:
        stages = line.classes.index(reference) - line.classes.index(predicted)
        return "neighbour_stage" if line.ordered and abs(stages) == 1 else "same_line"
    return "other_line" if line.lineage == other.lineage else "other_lineage"


def _group_matrix() -> np.ndarray:
    """(14, 14) index into ERROR_GROUPS per (reference, predicted) code; -1 where there is no error (the diagonal,
    and the row of 'no prediction', which is never a reference class)."""
    groups = list(ERROR_GROUPS)
    rows = [[groups.index(error_group(r, p)) if r != p else -1 for p in PREDICTED_NAMES] for r in CLASSES]
    return np.array(rows + [[-1] * len(PREDICTED_NAMES)])


GROUP_MATRIX = _group_matrix()


def grouped_errors(cm: np.ndarray) -> np.ndarray:
    """Error counts per group (ERROR_GROUPS order) from confusion counts of shape (..., 14, 14): shape (..., 6)."""
    cm = np.asarray(cm)
    return np.stack([cm[..., GROUP_MATRIX == g].sum(axis=-1) for g in range(len(ERROR_GROUPS))], axis=-1)


def blast_recall_precision(cm: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Blast recall (NaN where the reference has no blast) and precision (0 where no image is called a blast, the
    scorer's zero_division rule), from confusion counts of shape (..., 14, 14)."""
    cm = np.asarray(cm, dtype=np.float64)
    b = CLASSES.index(BLAST)
    found, blasts, called = cm[..., b, b], cm[..., b, :].sum(axis=-1), cm[..., :, b].sum(axis=-1)
    recall = np.divide(found, blasts, out=np.full_like(found, np.nan), where=blasts > 0)
    precision = np.divide(found, called, out=np.zeros_like(found), where=called > 0)
    return recall, precision


def clinical_summary(cm: np.ndarray, replicates: np.ndarray) -> dict:
    """One subset's grouped errors and blast figures with 95% percentile intervals.

    cm: (14, 14) confusion counts; replicates: (B, 14, 14) bootstrap confusions of the same subset (stratified by
    class, so every replicate keeps the subset's blasts). Recall and its interval are None without blasts.
    """
    counts = grouped_errors(cm)
    recall, precision = blast_recall_precision(cm)
    replicate_recall, replicate_precision = blast_recall_precision(replicates)
    b = CLASSES.index(BLAST)
    has_blasts = bool(cm[b].sum())
    return {
        "errors": {name: int(n) for name, n in zip(ERROR_GROUPS, counts)},
        "total_errors": int(counts.sum()),
        "blasts": int(cm[b].sum()),
        "blasts_found": int(cm[b, b]),
        "called_blast": int(cm[:, b].sum()),
        "recall": float(recall) if has_blasts else None,
        "recall_interval": percentile_interval(replicate_recall) if has_blasts else None,
        "precision": float(precision),
        "precision_interval": percentile_interval(replicate_precision),
    }
