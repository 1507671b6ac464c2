"""score.py's outputs: the exact scores.json keys, the CodaBench command, local defaults, and the HTML page."""
import base64
import json
import shlex
import subprocess
import sys
from html.parser import HTMLParser

import numpy as np
import pytest
import yaml
from sklearn.metrics import f1_score

import score as score_module
from calibration_metrics import expected_calibration_error
from label_space import CLASSES, SEVERITIES
from leaderboard_scores import LEADERBOARD_KEYS
from scoring_inputs import REPO, predictions_frame, reference_frame, run_report, valid_input, write_input

N_BOOT = 200


class Page(HTMLParser):
    """Collects, per element id / data-* row, the text and data-value of classed cells, and the images."""

    def __init__(self, text):
        super().__init__()
        self.ids, self.rows, self.images, self.sections = set(), {}, {}, []
        self._table, self._row, self._cell = None, None, None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        if tag == "section":
            self.sections.append(attrs.get("id"))
        if tag == "table":
            self._table = attrs.get("id") or f"{self.sections[-1]}/{attrs.get('class')}"
        if tag == "tr":
            key = next((attrs[a] for a in ("data-key", "data-severity", "data-set", "data-class") if a in attrs), None)
            self._row = self.rows.setdefault((self._table, key), {}) if key else None
        if tag == "td" and self._row is not None and attrs.get("class", "name") != "name":
            self._cell = attrs["class"]
            self._row[self._cell] = float(attrs["data-value"]) if "data-value" in attrs else None
        if tag == "img":
            self.images[attrs["id"]] = attrs["src"]

    def handle_data(self, data):
        if self._cell and self._row is not None and self._row[self._cell] is None:
            self._row[self._cell] = float(data)

    def handle_endtag(self, tag):
        if tag == "td":
            self._cell = None


@pytest.fixture(scope="module")
def scored(tmp_path_factory):
    """One in-process score() run with probability columns; returns (scores, page, output folder)."""
    root = tmp_path_factory.mktemp("scored")
    reference = reference_frame(cells_per_class=4)
    predictions = predictions_frame(reference, probs=True)
    # every extreme image is predicted wrong: a known cost of the extreme severity
    extreme = reference.index[(reference["severity"] == "extreme")]
    wrong = {label: CLASSES[(CLASSES.index(label) + 1) % 13] for label in CLASSES}
    predictions = predictions.set_index("image_id")
    predictions.loc[reference.loc[extreme, "image_id"], "label"] = reference.loc[extreme, "label"].map(wrong).values
    predictions = predictions.reset_index()
    input_dir = write_input(root, reference, predictions, run_report(reference))
    scores = score_module.score(input_dir / "res", input_dir / "ref", root / "out", n_boot=N_BOOT)
    page = Page((root / "out" / "detailed_results.html").read_text(encoding="utf-8"))
    return scores, page, root / "out", reference, predictions


def test_scores_json_has_exactly_the_leaderboard_keys(scored):
    scores, _, out, *_ = scored
    written = json.loads((out / "scores.json").read_text())
    assert list(written) == [
        "degraded_macro_f1", "degraded_balanced_accuracy", "degraded_macro_precision", "degraded_macro_specificity",
        "pristine_macro_f1", "severity_pristine_macro_f1", "severity_mild_macro_f1", "severity_moderate_macro_f1",
        "severity_extreme_macro_f1", "images_per_second",
    ] == list(LEADERBOARD_KEYS)
    assert written == scores
    assert written["images_per_second"] == pytest.approx(10.0)
    assert all(0.0 <= v <= 1.0 for k, v in written.items() if k != "images_per_second")


def test_html_intervals_for_every_leaderboard_figure(scored):
    scores, page, *_ = scored
    for key, value in scores.items():
        row = page.rows[("leaderboard", key)]
        assert row["value"] == pytest.approx(value)
        if key == "images_per_second":
            assert np.isnan(row["ci-low"]) and np.isnan(row["ci-high"])
        else:
            # <=: a class with one image in a subset cannot vary under class-stratified resampling
            assert 0.0 <= row["ci-low"] <= row["ci-high"] <= 1.0, key
            assert row["ci-low"] - 0.05 <= value <= row["ci-high"] + 0.05, key
    primary = page.rows[("leaderboard", "degraded_macro_f1")]
    assert 0.05 < primary["ci-high"] - primary["ci-low"] < 0.5


def test_html_robustness_drops_unpaired_with_intervals(scored):
    scores, page, *_ = scored
    pristine, severity_pristine = scores["pristine_macro_f1"], scores["severity_pristine_macro_f1"]
    for severity in SEVERITIES:
        row = page.rows[("robustness-drops", severity)]
        f1 = scores[f"severity_{severity}_macro_f1"]
        assert row["macro-f1"] == pytest.approx(f1)
        assert row["drop-pristine-set"] == pytest.approx(pristine - f1)
        assert row["rel-drop-pristine-set"] == pytest.approx((pristine - f1) / pristine)
        assert row["drop-pristine-set-low"] <= row["drop-pristine-set-high"]
        if severity == "pristine":
            assert "drop-severity-pristine" not in row  # the reference itself
        else:
            assert row["drop-severity-pristine"] == pytest.approx(severity_pristine - f1)
    extreme = page.rows[("robustness-drops", "extreme")]  # every extreme prediction was made wrong: a clear cost
    assert scores["severity_extreme_macro_f1"] == 0.0
    assert 0.0 < extreme["drop-pristine-set-low"] <= pristine <= extreme["drop-pristine-set-high"] + 1e-9
    assert 0.0 < extreme["drop-severity-pristine-low"]
    assert "paired-flips" not in page.ids


def test_html_calibration_with_probabilities(scored):
    _, page, _, reference, predictions = scored
    assert "reliability-diagram" in page.ids
    assert base64.b64decode(page.images["reliability-diagram"].split(",", 1)[1])[:8] == b"\x89PNG\r\n\x1a\n"
    pristine = reference["set"] == "pristine"
    probs = predictions.set_index("image_id").loc[reference["image_id"], [f"prob_{c}" for c in CLASSES]].to_numpy()
    y_true = np.array([CLASSES.index(c) for c in reference["label"]])
    ece = expected_calibration_error(probs[pristine] / probs[pristine].sum(1, keepdims=True), y_true[pristine])
    row = page.rows[("calibration-metrics", "pristine")]
    assert row["ece"] == pytest.approx(ece, abs=1e-6)
    assert 0.0 < row["brier"] < 2.0


def test_html_per_subset_tables(scored):
    _, page, *_ = scored
    for name in ["pristine", "degraded"] + [f"severity_{s}" for s in SEVERITIES]:
        assert f"subset-{name}" in page.ids
        sne = page.rows[(f"subset-{name}/per-class", "SNE")]
        assert set(sne) == {"precision", "recall", "f1", "support"}


def test_html_without_probabilities_says_so(tmp_path):
    input_dir = valid_input(tmp_path, probs=False)
    score_module.score(input_dir / "res", input_dir / "ref", tmp_path / "out", n_boot=20)
    page = Page((tmp_path / "out" / "detailed_results.html").read_text(encoding="utf-8"))
    assert "calibration-absent" in page.ids and "reliability-diagram" not in page.ids


def test_failed_predictions_accepted_by_ingestion_score_as_a_wrong_stand_in(tmp_path):
    """Images whose predict() failed in an accepted run (listed in the report) are scored, not an error: as certain
    answers of SNE (LY for an SNE), in every figure the calibration's included."""
    reference = reference_frame()
    predictions = predictions_frame(reference, probs=True)
    failed = list(reference["image_id"][reference["set"] == "degraded"][:2])
    report = run_report(reference)
    report["sets"]["degraded"]["errors"] = 2
    report["errors"] = [{"set": "degraded", "image_id": i, "error": "predict raised ValueError"} for i in failed]
    input_dir = write_input(tmp_path, reference, predictions[~predictions["image_id"].isin(failed)], report)
    scores = score_module.score(input_dir / "res", input_dir / "ref", tmp_path / "out", n_boot=20)
    merged = reference.merge(predictions, on="image_id", suffixes=("", "_pred"))
    unanswered = merged["image_id"].isin(failed)
    merged.loc[unanswered, "label_pred"] = np.where(merged.loc[unanswered, "label"] == "SNE", "LY", "SNE")
    degraded = merged[merged["set"] == "degraded"]
    labels = sorted(set(degraded["label"]))
    assert scores["degraded_macro_f1"] == pytest.approx(
        f1_score(degraded["label"], degraded["label_pred"], labels=labels, average="macro", zero_division=0))
    page = (tmp_path / "out" / "detailed_results.html").read_text(encoding="utf-8")
    assert ("2 image(s) whose predict() failed (listed in run_report.json) are shown as 'no prediction' and scored "
            "as a certain answer of SNE (LY for an image of class SNE)") in page
    assert Page(page).rows[("calibration-metrics", "degraded")]["images"] == 26


def test_metadata_command_runs_as_on_codabench(tmp_path):
    """The exact metadata.yaml command with /app paths mapped to temporary folders."""
    command = yaml.safe_load((REPO / "scoring_program" / "metadata.yaml").read_text())["command"]
    assert command == "python3 /app/program/score.py /app/input/ /app/output/"
    input_dir = valid_input(tmp_path)
    mapping = {"python3": sys.executable, "/app/program/": f"{REPO / 'scoring_program'}/",
               "/app/input/": f"{input_dir}/", "/app/output/": f"{tmp_path / 'output'}/"}
    argv = []
    for word in shlex.split(command):
        for old, new in mapping.items():
            word = word.replace(old, new) if word.startswith(old) else word
        argv.append(word)
    run = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert list(json.loads((tmp_path / "output" / "scores.json").read_text())) == list(LEADERBOARD_KEYS)
    assert (tmp_path / "output" / "detailed_results.html").is_file()
    assert run.stdout.splitlines()[-1].split()[0] == "images_per_second"


def test_no_arguments_use_folders_beside_the_program(tmp_path, monkeypatch):
    """No arguments: <repo>/reference_data/<phase>, <repo>/output/res -> <repo>/output/scores."""
    input_dir = valid_input(tmp_path / "src")
    (tmp_path / "reference_data").mkdir()
    (input_dir / "ref").rename(tmp_path / "reference_data" / "test")
    (tmp_path / "output").mkdir()
    (input_dir / "res").rename(tmp_path / "output" / "res")
    monkeypatch.setattr(score_module, "REPO", tmp_path)
    assert score_module.main(["--phase", "test", "--bootstrap", "20"]) == 0
    assert (tmp_path / "output" / "scores" / "scores.json").is_file()
    assert score_module.main(["--phase", "eval"]) == 1  # no reference_data/eval here
