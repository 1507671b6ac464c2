"""Robustness figures: what each degradation severity costs in macro-F1, each drop with a bootstrap interval.

Every source cell of a phase is scored once (in the pristine set or in the degraded set), so no image has a copy
elsewhere in the run and the comparisons are unpaired: a severity's images are other cells than the pristine set's.
A drop is compared against two references:
- the pristine set (as in ImageNet-C / MedMNIST-C): what the severity costs against undegraded cells;
- the degraded set's own severity-pristine images (undegraded cells, re-encoded like the degraded ones): the same
  cost with the degraded set's encoding on both sides.
The two subsets of a drop hold different images, so their bootstrap replicates are drawn independently and the
drop's interval is the percentile interval of the replicate differences.
"""
import numpy as np

from bootstrap_ci import percentile_interval
from label_space import SEVERITIES

REFERENCES = {"pristine_set": "pristine", "severity_pristine": "severity_pristine"}  # drop name -> subset


def macro_f1_drops(macro_f1: dict[str, float], replicates: dict[str, np.ndarray]) -> list[dict]:
    """Per severity: its macro-F1 and, against each reference of REFERENCES, the drop (reference - severity, so a
    loss is positive), the relative drop (drop / reference) and the drop's 95% interval.

    macro_f1: subset name -> macro-F1 (subsets "pristine" and "severity_<s>"); replicates: the same names ->
    bootstrap replicates of macro-F1, shape (n_boot,), drawn independently per subset.
    """
    rows = []
    for severity in SEVERITIES:
        name = f"severity_{severity}"
        row = {"severity": severity, "macro_f1": macro_f1[name]}
        for drop, reference in REFERENCES.items():
            if reference == name:  # severity pristine against itself: nothing to compare
                row[drop] = None
                continue
            value = macro_f1[reference] - macro_f1[name]
            row[drop] = {"drop": value,
                         "relative": value / macro_f1[reference] if macro_f1[reference] > 0 else float("nan"),
                         "interval": percentile_interval(replicates[reference] - replicates[name])}
        rows.append(row)
    return rows
