"""The clinical grouping: every confusion in one group, blast figures, the detailed results section, and the page."""
import re

import numpy as np
import pytest

from classification_metrics import confusion_counts
from clinical_groups import (BLAST, CELL_LINES, ERROR_GROUPS, GROUP_MATRIX, blast_recall_precision, clinical_summary,
                             error_group, grouped_errors)
from detailed_results import render
from label_space import CLASSES, NO_PREDICTION
from leaderboard_scores import compute_scores, detailed_results_data, subset_figures
from prediction_file import NO_FAILURES, read_predictions
from reference_file import read_reference
from scoring_inputs import REPO, predictions_frame, reference_frame, run_report, write_input

NEUTROPHIL_LINE = next(line for line in CELL_LINES if line.ordered).classes


def neighbour(label: str) -> str:
    """The next stage of the neutrophil line (the previous one for its last stage); other classes unchanged."""
    if label not in NEUTROPHIL_LINE:
        return label
    k = NEUTROPHIL_LINE.index(label)
    return NEUTROPHIL_LINE[k + 1] if k + 1 < len(NEUTROPHIL_LINE) else NEUTROPHIL_LINE[k - 1]


def test_every_class_is_on_one_line_and_every_error_in_one_group():
    on_lines = [code for line in CELL_LINES for code in line.classes]
    assert sorted(on_lines + [BLAST]) == sorted(CLASSES)
    assert len(set(on_lines)) == len(on_lines)
    errors = GROUP_MATRIX[:len(CLASSES)]
    assert (np.diag(errors) == -1).all() and (errors[~np.eye(len(CLASSES), 14, dtype=bool)] >= 0).all()
    assert (GROUP_MATRIX[NO_PREDICTION] == -1).all()  # never a reference class


@pytest.mark.parametrize("reference, predicted, group", [
    ("MY", "MMY", "neighbour_stage"), ("SNE", "BNE", "neighbour_stage"), ("PMY", "BNE", "same_line"),
    ("LY", "VLY", "same_line"), ("PC", "PLY", "same_line"), ("SNE", "EO", "other_line"), ("MO", "MMY", "other_line"),
    ("MO", "LY", "other_lineage"), ("PC", "SNE", "other_lineage"), ("BL", "LY", "blast"), ("PMY", "BL", "blast"),
    ("BL", "no prediction", "no_prediction"), ("SNE", "SNE", None),
])
def test_groups_in_a_hematologists_words(reference, predicted, group):
    assert error_group(reference, predicted) == group


def test_grouped_errors_and_blast_figures_from_counts():
    y_true = np.array([CLASSES.index(c) for c in ("BL", "BL", "BL", "BL", "LY", "MY", "MO")])
    y_pred = np.array([CLASSES.index("BL"), CLASSES.index("BL"), CLASSES.index("LY"), NO_PREDICTION,
                       CLASSES.index("BL"), CLASSES.index("MMY"), CLASSES.index("LY")])
    cm = confusion_counts(y_true, y_pred)
    assert dict(zip(ERROR_GROUPS, grouped_errors(cm))) == {
        "neighbour_stage": 1, "same_line": 0, "other_line": 0, "other_lineage": 1, "blast": 2, "no_prediction": 1}
    recall, precision = blast_recall_precision(cm)
    assert recall == pytest.approx(2 / 4) and precision == pytest.approx(2 / 3)
    recall, precision = blast_recall_precision(confusion_counts(y_true[4:], y_pred[4:]))
    assert np.isnan(recall) and precision == 0.0  # no blast in the reference, one called: precision 0
    summary = clinical_summary(confusion_counts(y_true[4:], y_pred[4:]), np.stack([cm] * 3))
    assert summary["recall"] is None and summary["recall_interval"] is None and summary["total_errors"] == 3


def scored_page(tmp_path, predictions):
    """detailed_results.html of `predictions` on the small reference, and its data."""
    reference = reference_frame(cells_per_class=4)
    input_dir = write_input(tmp_path, reference, predictions(reference), run_report(reference))
    table = read_predictions(input_dir / "res" / "predictions.csv", read_reference(input_dir / "ref" / "reference.csv"),
                             NO_FAILURES)
    figures = subset_figures(table)
    details = detailed_results_data(table, figures, n_boot=50)
    return render(compute_scores(figures, 10.0), details), details


def test_a_team_that_only_swaps_maturation_neighbours_has_all_its_errors_on_one_line(tmp_path):
    def swapper(reference):
        frame = predictions_frame(reference, error_rate=0.0)
        frame["label"] = frame["label"].map(neighbour)
        return frame

    page, details = scored_page(tmp_path, swapper)
    for subset in details["subsets"]:
        errors = subset["clinical"]["errors"]
        assert errors["neighbour_stage"] == subset["clinical"]["total_errors"] > 0, subset["name"]
    shares = re.findall(r"<tr data-subset='degraded'>.*?</tr>", page)[0]
    assert "class='neighbour_stage' data-value='1.0'" in shares
    assert "class='other_lineage' data-value='0.0'" in shares


def test_the_page_states_the_grouping_and_the_blast_figures(tmp_path):
    page, details = scored_page(tmp_path, lambda reference: predictions_frame(reference, error_rate=0.3))
    section = page[page.index("<section id='clinical-errors'>"):]
    section = section[:section.index("</section>")]
    for line in CELL_LINES:
        assert line.name in section
    assert "Rodak" in section and "id='grouping-source'" in section
    degraded = next(s for s in details["subsets"] if s["name"] == "degraded")["clinical"]
    row = re.search(r"<table id='blast-figures'>.*?<tr data-subset='degraded'>(.*?)</tr>", section).group(1)
    assert f"<td class='blasts'>{degraded['blasts']}</td>" in row
    assert f"data-value='{degraded['recall']!r}'" in row
    low, high = degraded["recall_interval"]
    assert low <= degraded["recall"] <= high


def test_the_evaluation_page_repeats_the_owners_grouping():
    text = (REPO / "pages" / "evaluation.md").read_text()
    paragraph = " ".join(text[text.index("## Detailed results"):text.index("## The final ranking report")].split())
    for line in CELL_LINES:
        listed = " → ".join(line.classes) if line.ordered else ", ".join(line.classes)
        assert listed in paragraph, line.name
    assert f"blast ({BLAST}, no lineage assigned)" in paragraph
