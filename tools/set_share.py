"""How wide the scores' 95% intervals are for each share of a phase's cells given to the degraded set.

Each source cell of a phase is scored once, in the pristine set or in the degraded set (tools/prepare.py,
--degraded-share). A larger degraded share narrows the primary score's interval and widens the pristine score's;
the robustness gaps (a severity against the pristine set) need both. This prints, per phase size and share, the
bootstrap interval widths the scorer would report for a model of the given accuracy, so the default share is a
measured choice (pages/data.md quotes the table).

    python tools/set_share.py                                    # WBCBench's sizes, the demo's class shape
    python tools/set_share.py --manifest reference_data/manifest.json --phase test   # the real class counts

The model is simple and stated: each image is right with probability --pristine-recall (pristine set) or
--degraded-recall (degraded set), and a wrong answer names another class in proportion to the class frequencies.
"""
import argparse
import json
import sys
from pathlib import Path

import numpy as np

import project_folders  # noqa: F401  (the program folders, tools/ and baselines/ importable by name)
from bootstrap_ci import bootstrap_confusions, percentile_interval
from classification_metrics import confusion_metrics
from label_space import CLASSES
from make_demo_release import CLASS_FREQUENCY, SEVERITY_FREQUENCY

SIZES = {"Final (phase2_test)": 16477, "Development (phase2_eval)": 5350, "Development, default queue": 300}
SHARES = (0.5, 0.6, 2 / 3, 0.75, 0.8)
REPEATS = 10  # simulated submissions per row: one draw alone is noisy at small sizes


def class_counts(total: int, frequency: dict) -> np.ndarray:
    """Images per class code for `total` images in proportion to `frequency` (every class at least one)."""
    weights = np.array([frequency.get(c, 0.0) for c in CLASSES], dtype=float)
    counts = np.maximum(1, np.floor(total * weights / weights.sum())).astype(int) * (weights > 0)
    counts[np.argmax(weights)] += total - counts.sum()
    return counts


def simulated_predictions(counts: np.ndarray, recall: float, rng: np.random.Generator) -> tuple:
    """(y_true, y_pred): right with probability `recall`, else another class drawn by frequency."""
    y_true = np.repeat(np.arange(len(counts)), counts)
    frequency = counts / counts.sum()
    wrong = rng.random(y_true.size) >= recall
    y_pred = y_true.copy()
    for index in np.flatnonzero(wrong):
        others = frequency.copy()
        others[y_true[index]] = 0
        y_pred[index] = rng.choice(len(counts), p=others / others.sum())
    return y_true, y_pred


def macro_f1_replicates(counts: np.ndarray, recall: float, n_boot: int, rng: np.random.Generator) -> np.ndarray:
    """Bootstrap replicates of macro-F1 for one simulated subset, exactly as the scorer draws them."""
    y_true, y_pred = simulated_predictions(counts, recall, rng)
    confusions = bootstrap_confusions(y_true, y_pred[None, :], n_boot, rng)[:, 0]
    return confusion_metrics(confusions, np.flatnonzero(counts))["macro_f1"]


def widths(cells: int, share: float, frequency: dict, recalls: tuple, n_boot: int, seed: int,
           repeats: int = REPEATS) -> dict:
    """Mean 95% interval widths of the primary (degraded), the pristine score, the extreme severity, and the gap
    extreme - pristine set, for one phase size and degraded share, over `repeats` simulated submissions."""
    rng = np.random.default_rng([seed, cells, int(share * 1000)])
    degraded = round(cells * share)
    extreme_images = round(degraded * SEVERITY_FREQUENCY["extreme"] / sum(SEVERITY_FREQUENCY.values()))

    def width(values):
        low, high = percentile_interval(values)
        return high - low

    found = {"degraded": [], "pristine": [], "extreme": [], "extreme - pristine": []}
    for _ in range(repeats):
        pristine = macro_f1_replicates(class_counts(cells - degraded, frequency), recalls[0], n_boot, rng)
        primary = macro_f1_replicates(class_counts(degraded, frequency), recalls[1], n_boot, rng)
        extreme = macro_f1_replicates(class_counts(extreme_images, frequency), recalls[1], n_boot, rng)
        for key, values in (("degraded", primary), ("pristine", pristine), ("extreme", extreme),
                            ("extreme - pristine", extreme - pristine)):
            found[key].append(width(values))
    return {key: float(np.mean(values)) for key, values in found.items()}


def table(sizes: dict, shares, frequency: dict, recalls: tuple, n_boot: int, seed: int) -> str:
    """The markdown table of interval widths, one row per phase size and share."""
    lines = ["| phase | cells | degraded share | degraded (primary) | pristine | extreme | extreme - pristine |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, cells in sizes.items():
        for share in shares:
            w = widths(cells, share, frequency, recalls, n_boot, seed)
            lines.append(f"| {name} | {cells:,} | {share:.2f} | " + " | ".join(f"{w[k]:.3f}" for k in
                         ("degraded", "pristine", "extreme", "extreme - pristine")) + " |")
    return "\n".join(lines)


def manifest_frequency(path: Path, phase: str) -> tuple[dict, int]:
    """A prepared phase's class counts (both sets) and cell count, from reference_data/manifest.json."""
    counts = json.loads(Path(path).read_text(encoding="utf-8"))["phases"][phase]["counts"]
    frequency = {c: sum(counts[s]["by_class"].get(c, 0) for s in counts) for c in CLASSES}
    return frequency, sum(frequency.values())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--manifest", type=Path, help="take the class counts and size of a prepared phase")
    parser.add_argument("--phase", default="test", help="the manifest's phase (default test)")
    parser.add_argument("--cells", type=int, action="append", help="phase size(s) in cells (default WBCBench's)")
    parser.add_argument("--shares", type=float, nargs="+", default=SHARES, help="degraded shares to compare")
    parser.add_argument("--pristine-recall", type=float, default=0.85, help="the model's accuracy on pristine cells")
    parser.add_argument("--degraded-recall", type=float, default=0.78, help="the model's accuracy on degraded cells")
    parser.add_argument("--bootstrap", type=int, default=1000, help="bootstrap replicates (the scorer's 1000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    frequency, sizes = CLASS_FREQUENCY, SIZES
    if args.manifest:
        frequency, cells = manifest_frequency(args.manifest, args.phase)
        sizes = {args.phase: cells}
    if args.cells:
        sizes = {f"{n} cells": n for n in args.cells}
    print(table(sizes, args.shares, frequency, (args.pristine_recall, args.degraded_recall), args.bootstrap,
                args.seed))
    return 0


if __name__ == "__main__":
    sys.exit(main())
