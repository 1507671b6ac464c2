"""Compare submissions on one reference: ranking on degraded macro-F1, bootstrap rank stability, paired p-values.

Usage: python tools/compare.py OUTPUT1 OUTPUT2 ... --reference REF.csv [--out compare.png]
Each OUTPUT is a prediction step's output folder (predictions.csv + run_report.json) or its predictions file, read
as the scorer reads it (scoring_program/prediction_output.py): images whose predict() failed in an accepted run
count as wrong. Every replicate resamples the same degraded images (stratified by class) for all submissions, so the
differences are paired: a p-value is two-sided, 2 x the smaller share of replicates on either side of 0
(with the +1 correction, so never below 2/(B+1)). The images drawn depend on the reference and the seed alone: a
submission's interval, and its p-value against another, are the same whoever else is compared.
"""
import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import rankdata

import project_folders  # noqa: F401  (the program folders, tools/ and baselines/ importable by name)
from bootstrap_ci import N_BOOTSTRAP, bootstrap_confusions, percentile_interval
from classification_metrics import confusion_metrics, macro_f1, present_classes
from prediction_output import PredictionOutput, read_prediction_output, read_run_report
from reference_file import read_reference
from scoring_errors import ScoringError

# Replicates drawn at once: the confusions of a chunk take chunk x submissions x 14 x 14 integers.
CHUNK = 1000


def read_output(path: Path, reference: pd.DataFrame) -> PredictionOutput:
    """A prediction step's output folder, or its predictions file (read in place of predictions.csv), read as the
    scorer reads it; an error names `path`, since several submissions' files are all called predictions.csv."""
    path = Path(path)
    folder, predictions = (path, None) if path.is_dir() else (path.parent, path)
    try:
        return read_prediction_output(folder, read_run_report(folder), reference, predictions)
    except ScoringError as err:
        raise type(err)(f"{path}: {err}") from None


def submission_names(paths: list[Path]) -> list[str]:
    """Short names: a folder's name, the file stem, or its folder's name for files called predictions.csv or
    scores.json; paths if ambiguous."""
    names = [p.name if p.is_dir() else p.parent.name if p.stem in ("predictions", "scores") else p.stem
             for p in paths]
    return names if len(set(names)) == len(names) else [str(p) for p in paths]


def bootstrap_macro_f1(y_true: np.ndarray, y_preds: np.ndarray, n_boot: int = N_BOOTSTRAP,
                       seed: int = 0) -> np.ndarray:
    """(n_boot, m) macro-F1 of m submissions (y_preds: (m, n)) in class-stratified replicates of the same images,
    drawn in whole chunks so that tens of thousands of replicates fit in memory and the first k replicates are the
    same for any n_boot >= k (more teams, hence more replicates, extend the sequence; they do not redraw it)."""
    rng = np.random.default_rng(seed)
    present = present_classes(y_true)
    chunks = [confusion_metrics(bootstrap_confusions(y_true, y_preds, CHUNK, rng), present)["macro_f1"]
              for _ in range(0, n_boot, CHUNK)]
    return np.concatenate(chunks)[:n_boot]


def paired_p_values(replicates: np.ndarray) -> np.ndarray:
    """(m, m) two-sided paired bootstrap p-values of the difference of every two columns of (B, m) replicates:
    2 x the smaller share of replicates on either side of 0, +1 corrected; 1 on the diagonal. One row at a time, so
    that tens of thousands of replicates of dozens of submissions stay small."""
    n_boot = replicates.shape[0]
    below = np.stack([(replicates[:, [i]] - replicates <= 0).sum(axis=0) for i in range(replicates.shape[1])])
    above = np.stack([(replicates[:, [i]] - replicates >= 0).sum(axis=0) for i in range(replicates.shape[1])])
    p_value = np.minimum(1.0, 2 * (np.minimum(below, above) + 1) / (n_boot + 1))
    np.fill_diagonal(p_value, 1.0)
    return p_value


def ranks(values: np.ndarray) -> np.ndarray:
    """Ranks along the last axis: 1 = the highest value, ties share the better rank."""
    return rankdata(-np.asarray(values), method="min", axis=-1).astype(int)


def compare(y_true: np.ndarray, y_preds: np.ndarray, names: list[str], n_boot: int = N_BOOTSTRAP,
            seed: int = 0) -> dict:
    """Rank submissions; y_true: (n,) degraded-set reference codes, y_preds: (m, n) their predictions.

    Returns names, macro_f1 (m,), interval (m, 2), rank (m,) (1 = best, ties share the better rank),
    rank_stability (m,) (share of replicates in which each keeps its rank), rank_range (m, 2) (95% of
    replicate ranks), p_value (m, m) for the paired difference of macro-F1, and the replicates' ranks (B, m).
    """
    observed = np.array([macro_f1(y_true, p) for p in y_preds])
    replicates = bootstrap_macro_f1(y_true, y_preds, n_boot, seed)  # (B, m)
    rank = ranks(observed)
    replicate_ranks = ranks(replicates)
    return {
        "names": list(names),
        "n_boot": n_boot,
        "macro_f1": observed,
        "interval": np.array([percentile_interval(replicates[:, m]) for m in range(len(names))]),
        "rank": rank,
        "rank_stability": (replicate_ranks == rank).mean(axis=0),
        "rank_range": np.percentile(replicate_ranks, [2.5, 97.5], axis=0, method="lower").T.astype(int),
        "p_value": paired_p_values(replicates),
        "replicate_ranks": replicate_ranks,
    }


def format_table(result: dict) -> str:
    """Ranking table then the matrix of pairwise p-values, as plain text."""
    order = np.argsort(result["rank"], kind="stable")
    width = max(len("submission"), *(len(n) for n in result["names"]))
    lines = [f"{'rank':<5} {'submission':<{width}}  degraded_macro_f1  95% CI            keeps rank  rank range"]
    for m in order:
        low, high = result["interval"][m]
        r_low, r_high = result["rank_range"][m]
        lines.append(f"{result['rank'][m]:<5} {result['names'][m]:<{width}}  {result['macro_f1'][m]:<17.4f}  "
                     f"[{low:.4f}, {high:.4f}]  {result['rank_stability'][m]:>9.1%}  {r_low}-{r_high}")
    lines.append("")
    lines.append(f"Paired bootstrap p-values ({result['n_boot']} replicates), H0: equal degraded macro-F1")
    lines.append(" " * (width + 2) + "".join(f"{result['names'][m][:10]:>12}" for m in order))
    for i in order:
        lines.append(f"{result['names'][i]:<{width}}  " + "".join(
            f"{'-':>12}" if i == j else f"{result['p_value'][i, j]:>12.4f}" for j in order))
    return "\n".join(lines)


def plot(result: dict, out_path: Path) -> None:
    """PNG: macro-F1 with 95% intervals and rank stability (left), pairwise p-values (right)."""
    from matplotlib.figure import Figure

    order = np.argsort(result["rank"], kind="stable")
    names = [result["names"][m] for m in order]
    values, intervals = result["macro_f1"][order], result["interval"][order]
    fig = Figure(figsize=(11, 0.5 * len(names) + 3))
    left, right = fig.subplots(1, 2)
    y = np.arange(len(names))[::-1]
    # a percentile interval need not contain the observed value, so it is drawn from its ends
    left.hlines(y, intervals[:, 0], intervals[:, 1], color="black")
    left.scatter(intervals.ravel(), np.repeat(y, 2), marker="|", s=80, color="black")
    left.plot(values, y, "o")
    left.set_yticks(y, [f"#{result['rank'][m]} {result['names'][m]}\nkeeps rank {result['rank_stability'][m]:.0%}"
                        for m in order])
    left.set_xlabel("degraded macro-F1 (95% bootstrap CI)")
    p = result["p_value"][np.ix_(order, order)]
    image = right.imshow(np.where(np.eye(len(names), dtype=bool), np.nan, p), vmin=0, vmax=1, cmap="viridis_r")
    right.set_xticks(range(len(names)), names, rotation=45, ha="right")
    right.set_yticks(range(len(names)), names)
    for i in range(len(names)):
        for j in range(len(names)):
            if i != j:
                right.text(j, i, f"{p[i, j]:.3f}", ha="center", va="center",
                           color="white" if p[i, j] < 0.5 else "black")
    right.set_title("paired bootstrap p-value")
    fig.colorbar(image, ax=right, fraction=0.046)
    fig.savefig(out_path, dpi=100, bbox_inches="tight")


def compare_files(paths: list[Path], reference_path: Path, n_boot: int = N_BOOTSTRAP, seed: int = 0) -> dict:
    """Read every prediction output against the reference as the scorer does and compare on the degraded set."""
    reference = read_reference(reference_path)
    tables = [read_output(path, reference).table for path in paths]
    degraded = tables[0].set == "degraded"
    y_preds = np.stack([t.y_pred[degraded] for t in tables])
    return compare(tables[0].y_true[degraded], y_preds, submission_names(paths), n_boot, seed)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("predictions", nargs="+", type=Path,
                        help="prediction output folders (predictions.csv + run_report.json) or their predictions files")
    parser.add_argument("--reference", required=True, type=Path, help="the phase's reference.csv")
    parser.add_argument("--out", type=Path, default=Path("compare.png"), help="PNG to write (default compare.png)")
    parser.add_argument("--bootstrap", type=int, default=N_BOOTSTRAP, help="bootstrap replicates (default 1000)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if len(args.predictions) < 2:
        parser.error("give at least two prediction outputs to compare")
    try:
        result = compare_files(args.predictions, args.reference, args.bootstrap, args.seed)
    except ScoringError as err:
        print(f"{err.kind}: {err}", file=sys.stderr)
        return 1
    print(format_table(result))
    plot(result, args.out)
    print(f"\nWrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
