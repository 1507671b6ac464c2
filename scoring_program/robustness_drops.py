"""Robustness figures: macro-F1 drop per severity from pristine, and prediction flips of the same cells."""
import numpy as np

from label_space import SEVERITIES


def macro_f1_drops(pristine_f1: float, severity_f1: dict[str, float]) -> list[dict]:
    """Per severity: absolute drop (pristine - severity) and relative drop (absolute / pristine).

    The reference is the pristine set's macro-F1, as in ImageNet-C / MedMNIST-C; the degraded set's
    "pristine" severity (undegraded, re-encoded copies of the pristine cells) is listed too as a sanity check near 0.
    """
    rows = []
    for severity in SEVERITIES:
        drop = pristine_f1 - severity_f1[severity]
        relative = drop / pristine_f1 if pristine_f1 > 0 else float("nan")
        rows.append({"severity": severity, "macro_f1": severity_f1[severity], "abs_drop": drop, "rel_drop": relative})
    return rows


def paired_flips(set_: np.ndarray, severity: np.ndarray, cell_id: np.ndarray, correct: np.ndarray) -> list[dict]:
    """Per severity, over degraded images whose cell_id links them to a pristine-set image of the same cell.

    flip_rate: fraction of the cells classified correctly on pristine that are wrong once degraded;
    fix_rate: fraction of the cells wrong on pristine that become correct. All arrays have shape (n,).
    """
    pristine = (set_ == "pristine") & (cell_id != "")
    correct_on_pristine = dict(zip(cell_id[pristine], correct[pristine]))
    degraded = (set_ == "degraded") & np.isin(cell_id, cell_id[pristine])
    twin_correct = np.array([correct_on_pristine[c] for c in cell_id[degraded]], dtype=bool)
    rows = []
    for level in SEVERITIES:
        mask = severity[degraded] == level
        before, after = twin_correct[mask], correct[degraded][mask]
        rows.append({
            "severity": level,
            "pairs": int(mask.sum()),
            "correct_on_pristine": int(before.sum()),
            "flipped": int((before & ~after).sum()),
            "flip_rate": float((before & ~after).sum() / before.sum()) if before.any() else float("nan"),
            "fixed": int((~before & after).sum()),
            "fix_rate": float((~before & after).sum() / (~before).sum()) if (~before).any() else float("nan"),
        })
    return rows
