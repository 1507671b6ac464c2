"""Ranking: competition.yaml's column order, pages/evaluation.md and tools/rank.py agree with CodaBench's order."""
import csv
import json
import re
import subprocess
import sys

import pytest

from bundle_copies import REPO
from competition_rules import load_competition
from rank import RankingError, leaderboard_columns, rank, read_codabench_csv, read_scores_files
from scoring_inputs import predictions_frame, reference_frame, write_output

# WBCBench 2026's tie-breakers right after the primary score; hardware-dependent speed last.
TIE_BREAK_ORDER = ("degraded_macro_f1", "degraded_balanced_accuracy", "degraded_macro_precision",
                   "degraded_macro_specificity")


@pytest.fixture(scope="module")
def columns():
    return leaderboard_columns(load_competition(REPO / "competition.yaml"))


def page_order() -> list:
    """The numbered list of pages/evaluation.md's 'Ranking and ties': one leaderboard title per step."""
    text = (REPO / "pages" / "evaluation.md").read_text()
    section = text[text.index("### Ranking and ties"):text.index("## Detailed results")]
    steps = re.findall(r"^\d+\. (?:then )?(.+?)(?:, (?:higher|lower|earlier) first)[;.]$", section, re.M)
    assert steps, "no numbered ranking steps in pages/evaluation.md"
    return steps


def test_column_order_applies_the_tie_breakers(columns):
    keys = [c["key"] for c in columns]
    assert tuple(keys[:4]) == TIE_BREAK_ORDER
    assert keys[-1] == "images_per_second"
    assert [c["index"] for c in columns] == sorted(c["index"] for c in columns)  # primary_index 0 is the first


def test_page_states_the_yaml_order(columns):
    steps = page_order()
    assert steps == [c["title"] for c in columns] + ["submission time"]
    text = (REPO / "pages" / "evaluation.md").read_text()
    assert "rounded to 10\ndecimals" in text or "rounded to 10 decimals" in text
    for column in columns:  # every column's sorting is what the page says ("higher first" = desc)
        assert column["sorting"] == "desc"


def scores(primary, balanced=0.5, precision=0.5, specificity=0.9, speed=10.0, **rest):
    values = {"degraded_macro_f1": primary, "degraded_balanced_accuracy": balanced,
              "degraded_macro_precision": precision, "degraded_macro_specificity": specificity,
              "pristine_macro_f1": 0.7, "severity_pristine_macro_f1": 0.7, "severity_mild_macro_f1": 0.6,
              "severity_moderate_macro_f1": 0.5, "severity_extreme_macro_f1": 0.4, "images_per_second": speed}
    return {**values, **rest}


SUBMISSIONS = {  # in submission order
    "early_twin": scores(0.7, 0.6),
    "shown_equal_low": scores(0.80000001, 0.9),  # equal to "stored_higher" at 4 decimals, lower at 8
    "stored_higher": scores(0.80000004, 0.1),
    "by_precision_low": scores(0.75, 0.6, 0.50),
    "by_precision_high": scores(0.75, 0.6, 0.55),
    "late_twin": scores(0.7, 0.6),
    "faster_but_worse": scores(0.69, 0.6, speed=1e6),
    "by_speed": scores(0.75, 0.6, 0.50, speed=20.0),
}
EXPECTED = [("stored_higher", ""), ("shown_equal_low", "degraded_macro_f1"),
            ("by_precision_high", "degraded_macro_f1"), ("by_speed", "degraded_macro_precision"),
            ("by_precision_low", "images_per_second"), ("early_twin", "degraded_macro_f1"),
            ("late_twin", "submission time"), ("faster_but_worse", "degraded_macro_f1")]


@pytest.fixture(scope="module")
def scores_files(tmp_path_factory):
    root = tmp_path_factory.mktemp("rank")
    paths = []
    for name, values in SUBMISSIONS.items():
        (root / name).mkdir()
        (root / name / "scores.json").write_text(json.dumps(values))
        paths.append(root / name / "scores.json")
    return paths


def test_rank_applies_codabench_order_on_stored_values(scores_files, columns):
    ordered = rank(read_scores_files(scores_files, columns), columns)
    assert [(row["name"], row["decided_by"]) for row in ordered] == EXPECTED
    assert [row["position"] for row in ordered] == list(range(1, len(EXPECTED) + 1))


def test_codabench_results_export_ranks_the_same(scores_files, columns, tmp_path):
    """The export CodaBench writes (Username, fact_sheet_answers, '<task>(<id>)-<column title>'), in its order."""
    export = tmp_path / "Results - Final(7).csv"
    header = ["Username", "fact_sheet_answers"] + [f"Final (phase2 test)(12)-{c['title']}" for c in columns]
    with export.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        for name, values in SUBMISSIONS.items():
            writer.writerow([name, ""] + [f"{values[c['key']]:.10f}" for c in columns])
    ordered = rank(read_codabench_csv(export, columns), columns)
    assert [(row["name"], row["decided_by"]) for row in ordered] == EXPECTED

    with export.open("a", newline="") as handle:
        csv.writer(handle).writerow(["broken", ""] + ["n/a"] * len(columns))
    with pytest.raises(RankingError, match=r"line 10 column 'Final \(phase2 test\)\(12\)-Degraded macro-F1 "
                                           r"\(primary\)': 'n/a' is not a number"):
        read_codabench_csv(export, columns)


def test_missing_score_names_the_file(scores_files, columns, tmp_path):
    broken = tmp_path / "broken" / "scores.json"
    broken.parent.mkdir()
    broken.write_text(json.dumps({"degraded_macro_f1": 0.5}))
    with pytest.raises(RankingError, match=r"broken/scores.json: no degraded_balanced_accuracy, "):
        read_scores_files([scores_files[0], broken], columns)


def test_command_line_with_rank_stability(tmp_path):
    """scores.json files and their prediction outputs: the table adds compare.py's bootstrap rank stability."""
    reference = reference_frame(cells_per_class=10)
    reference.to_csv(tmp_path / "reference.csv", index=False)
    scores_paths, prediction_paths = [], []
    for name, error_rate, primary in (("weak", 0.7, 0.3), ("strong", 0.05, 0.9)):
        # the weak run is scored with two accepted predict() failures: no rows, counted as wrong
        failed = tuple(reference["image_id"][:2]) if name == "weak" else ()
        write_output(tmp_path / name, reference, predictions_frame(reference, error_rate=error_rate), failed)
        (tmp_path / name / "scores.json").write_text(json.dumps(scores(primary)))
        scores_paths.append(tmp_path / name / "scores.json")
        prediction_paths.append(tmp_path / name / "predictions.csv")
    run = subprocess.run([sys.executable, str(REPO / "tools" / "rank.py"), *map(str, scores_paths),
                          "--predictions", *map(str, prediction_paths), "--reference", str(tmp_path / "reference.csv"),
                          "--bootstrap", "200"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0].split()[-4:] == ["keeps", "rank", "rank", "range"]
    assert lines[1].split()[:2] == ["1", "strong"] and lines[1].endswith("100.0%  1-1")
    assert lines[2].split()[:2] == ["2", "weak"] and lines[2].split()[3] == "degraded_macro_f1"
    assert lines[-1].startswith("Order: degraded_macro_f1, then degraded_balanced_accuracy, then ")
