"""detailed_results.html for a person: run header, leaderboard titles, legend, warnings and errors, self-contained."""
import re
from datetime import datetime, timezone

import yaml

from detailed_results import ERRORS_SHOWN, render
from leaderboard_scores import LEADERBOARD_TITLES, compute_scores, detailed_results_data, subset_figures
from prediction_file import NO_FAILURES, read_predictions
from reference_file import read_reference
from scoring_inputs import REPO, predictions_frame, reference_frame, run_report, write_input

SCORED_AT = datetime(2026, 11, 26, 13, 5, tzinfo=timezone.utc)


def page_for(tmp_path, report):
    """The page of a small scored run, rendered with `report` as its run report."""
    reference = reference_frame()
    input_dir = write_input(tmp_path, reference, predictions_frame(reference, probs=True), run_report(reference))
    table = read_predictions(input_dir / "res" / "predictions.csv", read_reference(input_dir / "ref" / "reference.csv"),
                             NO_FAILURES)
    figures = subset_figures(table)
    scores = compute_scores(figures, 12.345)
    return render(scores, detailed_results_data(table, figures, n_boot=20), run_report=report, phase="eval",
                  scored_at=SCORED_AT)


def facts(page):
    return dict(re.findall(r"<tr data-fact='([\w-]+)'><th>[^<]*</th><td>([^<]*)</td></tr>", page))


def test_the_scorer_titles_are_the_leaderboards():
    competition = yaml.safe_load((REPO / "competition.yaml").read_text())
    (leaderboard,) = competition["leaderboards"]
    columns = sorted(leaderboard["columns"], key=lambda column: column["index"])
    assert {column["key"]: column["title"] for column in columns} == LEADERBOARD_TITLES
    assert [column["key"] for column in columns] == list(LEADERBOARD_TITLES)


def test_header_titles_legend_and_how_to_read(tmp_path):
    report = run_report(reference_frame()) | {"submission": "/tmp/x/my_submission.zip", "device": "cuda (NVIDIA H100)",
                                              "warnings": [], "errors": [], "errors_total": 0}
    page = page_for(tmp_path, report)
    header = facts(page)
    assert re.fullmatch(r"Degraded macro-F1 \(primary\) 0\.\d{4} \(95% interval 0\.\d{4} to 0\.\d{4}\)",
                        header.pop("primary-score"))
    assert header == {"phase": "Development (eval)", "submission": "my_submission.zip",
                      "scored-at": "2026-11-26 13:05 UTC",
                      "ingestion-status": "ok, 0 per-image error(s), 0 warning(s)",
                      "device": "cuda (NVIDIA H100) (as the submission&#x27;s process reported it)",
                      "speed": "12.3 images/s over 26 pristine + 26 degraded images"}
    for key, title in LEADERBOARD_TITLES.items():
        assert f"<td class='name'>{title}<small class='key'>{key}</small></td>" in page
    assert "id='how-to-read'" in page and "id='run-clean'" in page
    assert page.count("class='legend'") == 1 + page.count("class='confusion-matrix'")
    assert not re.search(r"(src|href)=['\"](?!data:|#)", page), "the page must not load anything from elsewhere"
    anchors = re.findall(r"<a href='#([\w-]+)'>", page)  # the table of contents: every entry leads somewhere
    assert len(anchors) >= 10 and all(f"id='{anchor}'" in page for anchor in anchors)
    heads = re.findall(r"<table class='confusion-matrix'>.*?</tr>", page)
    assert len(heads) == 6 and len(set(heads)) == 1  # one class in the same place in every matrix


def test_warnings_and_first_errors_are_shown(tmp_path):
    errors = [{"set": "degraded", "image_id": f"id{i:03d}", "error": f"predict raised ValueError: bad <cell> {i}"}
              for i in range(ERRORS_SHOWN + 5)]
    report = run_report(reference_frame()) | {
        "submission": "/app/ingested_program", "errors": errors, "errors_total": 40,
        "warnings": ["predict_batch returned 4 predictions for 5 images; that batch was predicted image by image"]}
    page = page_for(tmp_path, report)
    assert "<li>predict_batch returned 4 predictions for 5 images; that batch was predicted image by image</li>" in page
    assert "40 image(s) could not be predicted (each scored as wrong); the first 10:" in page
    assert page.count("<td class='error'>") == ERRORS_SHOWN and "bad &lt;cell&gt; 9" in page
    assert facts(page)["submission"] == "your uploaded zip (the platform does not pass its file name)"
    assert facts(page)["ingestion-status"] == "ok, 40 per-image error(s), 1 warning(s)"


def test_without_a_run_report_the_page_says_so(tmp_path):
    page = page_for(tmp_path, None)
    assert facts(page)["submission"] == "not recorded" and "id='run-unknown'" in page


def test_an_interval_that_misses_the_observed_value_is_still_drawn(tmp_path):
    """A percentile interval of a small subset may lie wholly above or below its observed macro-F1 (macro-F1 is
    biased in small samples): the robustness figure draws the interval from its ends instead of refusing it."""
    reference = reference_frame()
    input_dir = write_input(tmp_path, reference, predictions_frame(reference), run_report(reference))
    table = read_predictions(input_dir / "res" / "predictions.csv", read_reference(input_dir / "ref" / "reference.csv"),
                             NO_FAILURES)
    figures = subset_figures(table)
    details = detailed_results_data(table, figures, n_boot=20)
    for subset, shift in zip(details["subsets"][:2], (0.05, -0.2)):
        value = subset["metrics"]["macro_f1"]
        subset["macro_f1_interval"] = (value + shift, value + shift + 0.1)
    page = render(compute_scores(figures, 1.0), details, run_report=None, phase="eval", scored_at=SCORED_AT)
    assert "<img id='robustness-figure'" in page
