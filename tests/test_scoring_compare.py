"""tools/compare.py: ranking, rank stability and paired p-values for several submissions on one reference."""
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest

from compare import compare, compare_files, plot
from scoring_errors import SubmissionOutputError
from scoring_inputs import REPO, predictions_frame, reference_frame, write_output


@pytest.fixture(scope="module")
def submissions(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    reference = reference_frame(cells_per_class=20)
    reference.to_csv(root / "reference.csv", index=False)
    paths = []
    for name, error_rate in (("strong", 0.1), ("weak", 0.6), ("strong_twin", 0.1)):
        write_output(root / name, reference, predictions_frame(reference, error_rate=error_rate, seed=1))
        paths.append(root / name / "predictions.csv")
    return root, paths


def test_compare_cli_ranks_and_draws(submissions):
    root, paths = submissions
    run = subprocess.run([sys.executable, str(REPO / "tools" / "compare.py"), *map(str, paths),
                          "--reference", str(root / "reference.csv"), "--out", str(root / "compare.png"),
                          "--bootstrap", "300"], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    ranking = [line.split()[:2] for line in run.stdout.splitlines()[1:4]]
    # identical submissions tie for first place; the weak one is last
    assert ranking == [["1", "strong"], ["1", "strong_twin"], ["3", "weak"]]
    assert (root / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_compare_cli_names_the_broken_file(submissions, tmp_path):
    root, paths = submissions
    broken = tmp_path / "broken.csv"
    broken.write_text("image_id,set,label\n")
    (tmp_path / "run_report.json").write_text((paths[0].parent / "run_report.json").read_text())
    run = subprocess.run([sys.executable, str(REPO / "tools" / "compare.py"), str(paths[0]), str(broken),
                          "--reference", str(root / "reference.csv"), "--out", str(tmp_path / "c.png")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 1
    assert run.stderr.strip() == (f"Submission error: {broken}: broken.csv has a header but no rows: "
                                  "expected one row per image")


def test_accepted_failures_are_compared_as_the_scorer_scores_them(submissions, tmp_path):
    """Images whose predict() failed in an accepted run have no row: scored as wrong, never a missing-rows error."""
    root, paths = submissions
    reference = pd.read_csv(root / "reference.csv", dtype=str)
    failed = tuple(reference.loc[reference["set"] == "degraded", "image_id"][:3])
    complete = pd.read_csv(paths[0], dtype=str)
    flaky = write_output(tmp_path / "flaky", reference, complete, failed)
    result = compare_files([paths[0].parent, flaky], root / "reference.csv", n_boot=50)
    assert result["names"] == ["strong", "flaky"]
    assert result["macro_f1"][1] < result["macro_f1"][0]

    (flaky / "run_report.json").unlink()
    with pytest.raises(SubmissionOutputError, match=f"^{flaky}: run_report.json not found in {flaky}"):
        compare_files([paths[0].parent, flaky], root / "reference.csv", n_boot=50)


def test_paired_p_values_and_rank_stability():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 13, size=2000)
    noise = rng.integers(0, 13, size=2000)
    good = np.where(rng.random(2000) < 0.8, y_true, noise)
    slightly_worse = np.where(rng.random(2000) < 0.02, noise, good)  # same errors plus 2% more: paired test sees it
    bad = np.where(rng.random(2000) < 0.4, y_true, noise)
    result = compare(y_true, np.stack([good, slightly_worse, bad, good]), ["good", "worse", "bad", "twin"],
                     n_boot=500, seed=0)
    p = result["p_value"]
    assert list(result["rank"]) == [1, 3, 4, 1]
    assert p[0, 3] == 1.0 and p[0, 2] == pytest.approx(2 / 501)
    assert p[0, 1] < 0.05  # a small but consistent gain is significant when paired
    assert (p == p.T).all()
    assert result["rank_stability"][2] == 1.0  # the bad one is always last
    assert result["rank_stability"][0] == 1.0 and result["rank_stability"][3] == 1.0  # twins always tie first
    low, high = result["interval"][0]
    assert low < result["macro_f1"][0] < high


def test_a_teams_interval_and_p_values_do_not_depend_on_who_else_is_ranked():
    """The draws depend on the reference alone, and more replicates extend the sequence: adding a team (which may
    also raise the replicate count) moves no other team's interval, rank range or pairwise p-value."""
    rng = np.random.default_rng(3)
    y_true = rng.integers(0, 13, size=1500)
    noise = rng.integers(0, 13, size=1500)
    a = np.where(rng.random(1500) < 0.75, y_true, noise)
    b = np.where(rng.random(1500) < 0.72, y_true, noise)
    late = np.where(rng.random(1500) < 0.5, y_true, rng.integers(0, 13, size=1500))
    two = compare(y_true, np.stack([a, b]), ["a", "b"], n_boot=1000, seed=0)
    three = compare(y_true, np.stack([a, b, late]), ["a", "b", "late"], n_boot=1000, seed=0)
    more = compare(y_true, np.stack([a, b, late]), ["a", "b", "late"], n_boot=2500, seed=0)
    assert (two["interval"] == three["interval"][:2]).all()
    assert two["p_value"][0, 1] == three["p_value"][0, 1]
    assert (two["replicate_ranks"] == three["replicate_ranks"][:, :2]).all()  # `late` is never above them here
    assert (three["replicate_ranks"] == more["replicate_ranks"][:1000]).all()


def test_the_figure_draws_an_interval_that_misses_the_observed_value(tmp_path):
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 13, size=300)
    result = compare(y_true, np.stack([y_true, rng.integers(0, 13, size=300)]), ["right", "random"], n_boot=50)
    result["interval"][0] = (0.5, 0.6)  # wholly below the observed 1.0
    plot(result, tmp_path / "compare.png")
    assert (tmp_path / "compare.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
