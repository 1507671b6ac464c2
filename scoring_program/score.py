"""WBCBench scoring program: predictions + reference -> scores.json and detailed_results.html.

CodaBench: `python3 /app/program/score.py /app/input/ /app/output/` (reference in <input>/ref,
predictions and run report in <input>/res). No arguments: the local dry run's folders, resolved
from this file's location (<repo>/reference_data/<phase>, <repo>/output/res, <repo>/output/scores).
Any unusable input prints one line `<kind>: <message>` to stderr, exits 1 and writes no scores
(every message is asserted in tests/test_scoring_failures.py and listed in pages/starting_kit.md).
A missing run_report.json fails too: without it a complete run cannot be told from a killed one,
and images_per_second is a leaderboard column.
"""
import argparse
import json
import math
import sys
from pathlib import Path

from prediction_output import read_prediction_output, read_run_report
from reference_file import read_reference
from run_report import TEXT_CAP, RunReport, clean_text
from scoring_errors import ScoringError

REPO = Path(__file__).resolve().parent.parent
OUTPUT_FILES = ("scores.json", "detailed_results.html")
PHASES = ("eval", "test")


def score(res_dir: Path, ref_dir: Path, out_dir: Path, n_boot: int | None = None, seed: int = 0) -> dict:
    """Validate, score and write scores.json + detailed_results.html into out_dir; returns the scores.

    Raises ScoringError (nothing written) when the inputs cannot be scored.
    """
    return score_run(read_run(res_dir, out_dir), res_dir, ref_dir, out_dir, n_boot, seed)


def read_run(res_dir: Path, out_dir: Path) -> RunReport | None:
    """Remove out_dir's stale outputs, refuse a prediction step in which the submission's own program ran, then read
    res_dir's run report (None when absent).

    In that order: a stale file from an earlier local run must not survive a failure, the report's included, and
    a report such a program could have rewritten is never read.
    """
    for name in OUTPUT_FILES:
        (Path(out_dir) / name).unlink(missing_ok=True)
    return read_run_report(res_dir)


def score_run(report: RunReport | None, res_dir: Path, ref_dir: Path, out_dir: Path, n_boot: int | None = None,
              seed: int = 0) -> dict:
    """score() once the run report is read (by read_run)."""
    ref_dir, out_dir = Path(ref_dir), Path(out_dir)
    output = read_prediction_output(res_dir, report, read_reference(ref_dir / "reference.csv"))

    # Imported only now: failures above are reported without loading scikit-learn and matplotlib (~2 s).
    from bootstrap_ci import N_BOOTSTRAP
    from detailed_results import render
    from leaderboard_scores import compute_scores, detailed_results_data, subset_figures

    figures = subset_figures(output.table)
    scores = compute_scores(figures, output.images_per_second)
    details = detailed_results_data(output.table, figures, N_BOOTSTRAP if n_boot is None else n_boot, seed)
    page = render(scores, details, run_report=report.to_dict() if report else None,
                  phase=report.phase if report else None)
    text = scores_json(scores)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "detailed_results.html").write_text(page, encoding="utf-8")
    (out_dir / "scores.json").write_text(text, encoding="utf-8")
    return scores


def scores_json(scores: dict) -> str:
    """scores.json's text; a score that is not a finite number is an error, never `NaN` or `Infinity` in the file."""
    bad = [key for key, value in scores.items() if not math.isfinite(value)]
    if bad:
        raise ScoringError(f"scores {', '.join(bad)} are not finite numbers ({', '.join(repr(scores[k]) for k in bad)});"
                           " no scores.json was written")
    return json.dumps(scores, indent=2, allow_nan=False) + "\n"


def local_phase(report: RunReport | None) -> str:
    """The phase the local ingestion run used (its run report's `phase`), else eval."""
    phase = report.phase if report else None
    return phase if phase in PHASES else "eval"


def format_row(scores: dict) -> str:
    """The leaderboard row as aligned `key value` lines."""
    return "\n".join(f"  {key:<28} {value:.4f}" for key, value in scores.items())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("input", nargs="?", type=Path, help="CodaBench input folder holding ref/ and res/")
    parser.add_argument("output", nargs="?", type=Path, help="folder for scores.json and detailed_results.html")
    parser.add_argument("--phase", choices=PHASES, default=None,
                        help="reference phase of the no-argument local run (default: the phase of the local "
                             "ingestion run, from output/res/run_report.json; else eval)")
    parser.add_argument("--bootstrap", type=int, default=None, help="bootstrap replicates (default: 1000)")
    args = parser.parse_args(argv)
    local = args.input is None
    res_dir = REPO / "output" / "res" if local else args.input / "res"
    out_dir = args.output or REPO / "output" / "scores"
    try:
        report = read_run(res_dir, out_dir)
        if local:
            phase = args.phase or local_phase(report)
            ref_dir = REPO / "reference_data" / phase
            print(f"Local run: scoring {res_dir} against reference_data/{phase}"
                  + ("" if args.phase else " (the phase of the ingestion run; --phase overrides)"))
        else:
            ref_dir = args.input / "ref"
        scores = score_run(report, res_dir, ref_dir, out_dir, n_boot=args.bootstrap)
    except ScoringError as err:
        print(f"{err.kind}: {clean_text(str(err), 2 * TEXT_CAP)}", file=sys.stderr)
        return 1
    print(f"Wrote {out_dir / 'scores.json'} and {out_dir / 'detailed_results.html'}")
    print("Leaderboard row:")
    print(format_row(scores))
    return 0


if __name__ == "__main__":
    sys.exit(main())
