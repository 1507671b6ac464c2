"""Every way scoring must fail: score.py run as CodaBench runs it, exact one-line stderr, exit 1, no scores.

The messages asserted here are the table in pages/starting_kit.md. Each case builds its input folder;
all cases run as concurrent subprocesses once per module (a fresh interpreter costs ~0.6 s of CPU).
"""
import json
from concurrent.futures import ThreadPoolExecutor

import pandas as pd
import pytest
from score import score
from scoring_inputs import predictions_frame, reference_frame, run_report, run_score, write_input

REFERENCE = reference_frame()
PREDICTIONS = predictions_frame(REFERENCE)
REPORT = run_report(REFERENCE)
IDS = list(PREDICTIONS["image_id"])
HEADER_HELP = "image_id,set,label (optionally followed by prob_BA,...,prob_VLY)"
ALLOWED = "BA, BL, BNE, EO, LY, MMY, MO, MY, PC, PLY, PMY, SNE, VLY"


CASES = {}


def case(build):
    """Register `build(root) -> (input_dir, expected stderr line)` as a failure case."""
    CASES[build.__name__] = build
    return build


@pytest.fixture(scope="module")
def outcomes(tmp_path_factory):
    root = tmp_path_factory.mktemp("failures")
    prepared = {name: build(root / name) for name, build in CASES.items()}
    for name in prepared:
        (root / name / "out").mkdir()
        (root / name / "out" / "scores.json").write_text(json.dumps({"degraded_macro_f1": 0.9}))
    with ThreadPoolExecutor(max_workers=4) as pool:
        runs = pool.map(lambda name: run_score(prepared[name][0], root / name / "out"), prepared)
        return {name: (*prepared[name], run, root / name / "out") for name, run in zip(prepared, runs)}


def with_rows(frame, **changes):
    """A copy of `frame` with cells set: changes maps column -> {row index: value}."""
    frame = frame.copy()
    for column, cells in changes.items():
        for row, value in cells.items():
            frame.loc[row, column] = value
    return frame


@case
def missing_predictions_file(tmp_path):
    input_dir = write_input(tmp_path, REFERENCE, None, REPORT)
    return input_dir, (f"Submission error: predictions.csv not found in {input_dir / 'res'}: "
                 "the ingestion program did not write predictions; see its log")


@case
def empty_file(tmp_path):
    input_dir = write_input(tmp_path, REFERENCE, "", REPORT)
    return input_dir, ("Submission error: predictions.csv is empty: expected the header "
                 f"{HEADER_HELP} and one row per image")


@case
def header_only(tmp_path):
    input_dir = write_input(tmp_path, REFERENCE, "image_id,set,label\n", REPORT)
    return input_dir, ("Submission error: predictions.csv has a header but no rows: "
                 "expected one row per image")


@case
def wrong_header(tmp_path):
    text = PREDICTIONS.rename(columns={"image_id": "id"}).to_csv(index=False)
    input_dir = write_input(tmp_path, REFERENCE, text, REPORT)
    return input_dir, (f"Submission error: predictions.csv: the first line must be the header "
                 f"{HEADER_HELP}, found 'id,set,label'")


@case
def missing_header(tmp_path):
    text = PREDICTIONS.to_csv(index=False, header=False)
    input_dir = write_input(tmp_path, REFERENCE, text, REPORT)
    first = ",".join(PREDICTIONS.iloc[0])
    return input_dir, (f"Submission error: predictions.csv: the first line must be the header "
                 f"{HEADER_HELP}, found '{first}'")


@case
def unexpected_column(tmp_path):
    input_dir = write_input(tmp_path, REFERENCE, PREDICTIONS.assign(confidence=0.5), REPORT)
    return input_dir, ("Submission error: predictions.csv: unexpected column(s) confidence in the "
                 "header; allowed: image_id, set, label and the probability columns "
                 + ", ".join(f"prob_{c}" for c in ALLOWED.split(", ")))


@case
def some_probability_columns_only(tmp_path):
    with_probs = predictions_frame(REFERENCE, probs=True).drop(columns=["prob_PLY", "prob_VLY"])
    input_dir = write_input(tmp_path, REFERENCE, with_probs, REPORT)
    return input_dir, ("Submission error: predictions.csv: probability columns must be all 13 of "
                 "prob_BA..prob_VLY or none; missing: prob_PLY, prob_VLY")


@case
def repeated_column(tmp_path):
    text = "image_id,set,label,label\n" + PREDICTIONS.assign(again=PREDICTIONS["label"]).to_csv(index=False, header=False)
    input_dir = write_input(tmp_path, REFERENCE, text, REPORT)
    return input_dir, "Submission error: predictions.csv: column(s) label appear more than once in the header"


@case
def empty_image_id(tmp_path):
    input_dir = write_input(tmp_path, REFERENCE, with_rows(PREDICTIONS, image_id={0: "", 1: " "}), REPORT)
    return input_dir, "Submission error: predictions.csv: 2 row(s) have an empty image_id"


@case
def run_report_with_an_unknown_status(tmp_path):
    input_dir = write_input(tmp_path, REFERENCE, PREDICTIONS, run_report(REFERENCE, status="running"))
    return input_dir, "Submission error: run_report.json has status 'running'; expected 'ok' or 'failed'"


@case
def row_with_extra_field(tmp_path):
    lines = PREDICTIONS.to_csv(index=False).splitlines()
    lines[3] += ",oops"
    input_dir = write_input(tmp_path, REFERENCE, "\n".join(lines) + "\n", REPORT)
    return input_dir, ("Submission error: predictions.csv line 4: expected 3 fields, saw 4")


@case
def trailing_comma_on_every_row(tmp_path):
    """pandas would shift every column (first field as row label) instead of raising; the row is named."""
    lines = PREDICTIONS.to_csv(index=False).splitlines()
    text = "\n".join(lines[:1] + [line + "," for line in lines[1:]]) + "\n"
    input_dir = write_input(tmp_path, REFERENCE, text, REPORT)
    return input_dir, "Submission error: predictions.csv line 2: expected 3 fields, saw 4"


@case
def not_utf8(tmp_path):
    text = PREDICTIONS.to_csv(index=False).encode("utf-8").replace(b"image_id", b"image_\xff", 1)
    input_dir = write_input(tmp_path, REFERENCE, text, REPORT)
    return input_dir, ("Submission error: predictions.csv is not UTF-8 text (byte 6 cannot be decoded)")


@case
def missing_ids(tmp_path):
    kept = PREDICTIONS[~PREDICTIONS["image_id"].isin(IDS[:7])]
    input_dir = write_input(tmp_path, REFERENCE, kept, REPORT)
    reference_order = [i for i in REFERENCE["image_id"] if i in IDS[:7]]
    return input_dir, (f"Submission error: predictions.csv is missing 7 of the 52 reference images, "
                 f"e.g. {', '.join(reference_order[:5])}, ...: every image of both sets needs a prediction")


@case
def missing_ids_not_all_accounted_for_by_the_run_report(tmp_path):
    report = run_report(REFERENCE)
    report["sets"]["degraded"]["errors"] = 1
    report["errors"] = [{"set": "degraded", "image_id": IDS[40], "error": "predict raised ValueError: boom"}]
    kept = PREDICTIONS[~PREDICTIONS["image_id"].isin([IDS[40], IDS[41]])]
    input_dir = write_input(tmp_path, REFERENCE, kept, report)
    return input_dir, (f"Submission error: predictions.csv is missing 2 of the 52 reference images, e.g. "
                       f"{ids_in_reference_order([40, 41])}: every image of both sets needs a prediction "
                       "(run_report.json accounts for 1 failed predictions only)")


@case
def extra_ids(tmp_path):
    extra = pd.DataFrame({"image_id": ["0000deadbeef", "0000cafef00d"], "set": "degraded", "label": "SNE"})
    input_dir = write_input(tmp_path, REFERENCE, pd.concat([PREDICTIONS, extra]), REPORT)
    return input_dir, ("Submission error: predictions.csv has 2 image_id(s) that are not in the "
                 "reference, e.g. 0000deadbeef, 0000cafef00d")


@case
def duplicate_ids(tmp_path):
    input_dir = write_input(tmp_path, REFERENCE, pd.concat([PREDICTIONS, PREDICTIONS.iloc[[5, 9]]]), REPORT)
    return input_dir, (f"Submission error: predictions.csv has 2 duplicated image_id(s), "
                 f"e.g. {IDS[5]}, {IDS[9]}: predict each image once")


@case
def predictions_from_the_other_phase(tmp_path):
    other_phase = predictions_frame(reference_frame(seed=99))
    input_dir = write_input(tmp_path, REFERENCE, other_phase, REPORT)
    return input_dir, ("Submission error: none of the 52 image_ids in predictions.csv is in this "
                 "phase's reference (52 images): these predictions are from another phase or another input; "
                 "run the ingestion on this phase's data")


@case
def unknown_labels_list_the_allowed_ones(tmp_path):
    bad = with_rows(PREDICTIONS, label={2: "NEUTROPHIL", 4: "XX", 6: "XX"})
    input_dir = write_input(tmp_path, REFERENCE, bad, REPORT)
    return input_dir, (f"Submission error: predictions.csv: 3 row(s) have an unknown label, "
                 f"e.g. 'NEUTROPHIL', 'XX' (image_id {ids_in_reference_order([2, 4, 6])}); allowed labels: {ALLOWED}")


def ids_in_reference_order(rows):
    """Messages list offending ids in reference order; the rows are prediction-file rows."""
    chosen = {IDS[r] for r in rows}
    return ", ".join(i for i in REFERENCE["image_id"] if i in chosen)


def no_label(value):
    def build(tmp_path):
        input_dir = write_input(tmp_path, REFERENCE, with_rows(PREDICTIONS, label={3: value}), REPORT)
        return input_dir, (f"Submission error: predictions.csv: 1 row(s) have no label (empty or NaN), "
                           f"e.g. image_id {IDS[3]}")
    build.__name__ = f"no_label_{value or 'empty'}"
    return case(build)


for _value in ("", "NaN", "nan", "None"):
    no_label(_value)


@case
def unknown_set_value(tmp_path):
    input_dir = write_input(tmp_path, REFERENCE, with_rows(PREDICTIONS, set={0: "clean"}), REPORT)
    return input_dir, (f"Submission error: predictions.csv: 1 row(s) have an unknown set 'clean' "
                 f"(image_id {IDS[0]}); allowed: pristine, degraded")


@case
def image_in_the_wrong_set(tmp_path):
    input_dir = write_input(tmp_path, REFERENCE, with_rows(PREDICTIONS, set={1: "degraded"}), REPORT)
    return input_dir, (f"Submission error: predictions.csv: 1 image_id(s) are in the wrong set, "
                 f"e.g. {IDS[1]} (predictions: degraded, reference: pristine)")


def bad_probability(name, value, expected):
    """Set prob_SNE of the second pristine row (line 3) to `value`."""
    def build(tmp_path):
        probs = predictions_frame(REFERENCE, probs=True)
        lines = probs.to_csv(index=False, float_format="%.6f").splitlines()
        fields = lines[3].split(",")
        column = lines[0].split(",").index("prob_SNE")
        fields[column] = value
        lines[3] = ",".join(fields)
        input_dir = write_input(tmp_path, REFERENCE, "\n".join(lines) + "\n", REPORT)
        others = sum(float(f) for k, f in enumerate(fields[3:], start=3) if k != column)
        message = expected.format(id=probs["image_id"][2], sum=f"{others + 0.9:.6f}")
        return input_dir, f"Submission error: predictions.csv: {message}"
    build.__name__ = f"probability_{name}"
    return case(build)


NOT_FINITE = "1 probability value(s) are not finite numbers (empty, NaN, inf or text), e.g. prob_SNE of image_id {id}"
bad_probability("nan", "NaN", NOT_FINITE + " ('NaN')")
bad_probability("empty", "", NOT_FINITE + " ('')")
bad_probability("text", "high", NOT_FINITE + " ('high')")
bad_probability("negative", "-0.2", "1 probability value(s) are negative, e.g. prob_SNE of image_id {id} ('-0.2')")
bad_probability("not_summing_to_1", "0.9", "the probabilities of 1 row(s) do not sum to 1 (tolerance 0.001), "
                "e.g. image_id {id} sums to {sum}")


@case
def ingestion_failed_on_time_budget(tmp_path):
    reason = "time budget of 60 s exceeded after 12 of 52 images"
    partial = PREDICTIONS.iloc[:12]
    input_dir = write_input(tmp_path, REFERENCE, partial, run_report(REFERENCE, status="failed", reason=reason))
    return input_dir, (f"Submission error: the ingestion run failed: {reason} (run_report.json)")


@case
def ingestion_failed_without_predictions(tmp_path):
    """The run report's reason wins over the missing file: it says why."""
    report = run_report(REFERENCE, status="failed", reason="Model.load() raised OSError: weights.pt not found")
    input_dir = write_input(tmp_path, REFERENCE, None, report)
    return input_dir, ("Submission error: the ingestion run failed: Model.load() raised OSError: "
                 "weights.pt not found (run_report.json)")


@case
def missing_run_report(tmp_path):
    input_dir = write_input(tmp_path, REFERENCE, PREDICTIONS, None)
    return input_dir, (f"Submission error: run_report.json not found in {input_dir / 'res'}: the "
                 "ingestion program did not finish (it writes the report last, also when it fails), so the "
                 "predictions cannot be trusted")


@case
def broken_run_report(tmp_path):
    input_dir = write_input(tmp_path, REFERENCE, PREDICTIONS, "{not json")
    return input_dir, ("Submission error: run_report.json is not valid JSON (Expecting property name "
                 "enclosed in double quotes: line 1 column 2 (char 1)); it must be the ingestion's own report")


@case
def reference_missing(tmp_path):
    input_dir = write_input(tmp_path, None, PREDICTIONS, REPORT)
    return input_dir, (f"Reference data error (organizer): {input_dir / 'ref' / 'reference.csv'} "
                 "not found: the reference data folder must contain reference.csv")


@case
def reference_bad_label_names_file_and_row(tmp_path):
    bad = with_rows(REFERENCE, label={4: "Neutrophil"})
    input_dir = write_input(tmp_path, bad, PREDICTIONS, REPORT)
    return input_dir, (f"Reference data error (organizer): {input_dir / 'ref' / 'reference.csv'} "
                 f"line 6 (image_id '{REFERENCE['image_id'][4]}'): label 'Neutrophil' is not one of {ALLOWED}; "
                 "1 such row(s)")


@case
def reference_first_row_too_long(tmp_path):
    input_dir = write_input(tmp_path, REFERENCE, PREDICTIONS, REPORT)
    path = input_dir / "ref" / "reference.csv"
    lines = path.read_text().splitlines()
    path.write_text("\n".join([lines[0], lines[1] + ",extra"] + lines[2:]) + "\n")
    return input_dir, (f"Reference data error (organizer): {path}: the first data row has more fields than the header")


@case
def reference_lacks_a_column(tmp_path):
    input_dir = write_input(tmp_path, REFERENCE.drop(columns=["severity"]), PREDICTIONS, REPORT)
    return input_dir, (f"Reference data error (organizer): {input_dir / 'ref' / 'reference.csv'} "
                 "lacks column(s) severity; found image_id, set, label, cell_id, release_image_id, patient_hash")


@case
def reference_without_a_severity(tmp_path):
    no_extreme = REFERENCE.assign(severity=REFERENCE["severity"].replace("extreme", "moderate"))
    input_dir = write_input(tmp_path, no_extreme, PREDICTIONS, REPORT)
    return input_dir, (f"Reference data error (organizer): {input_dir / 'ref' / 'reference.csv'}: "
                 "the degraded set has no image of severity extreme")


@case
def reference_with_a_cell_in_both_sets(tmp_path):
    """A degraded image made from a pristine-set cell: a model could answer it from memory (each cell once)."""
    degraded = int(REFERENCE.index[REFERENCE["set"] == "degraded"][3])
    paired = with_rows(REFERENCE, cell_id={degraded: REFERENCE["cell_id"][0]})
    input_dir = write_input(tmp_path, paired, PREDICTIONS, REPORT)
    return input_dir, (f"Reference data error (organizer): {input_dir / 'ref' / 'reference.csv'} line "
                       f"{degraded + 2} (image_id '{REFERENCE['image_id'][degraded]}'): cell_id "
                       f"'{REFERENCE['cell_id'][0]}' (set degraded) is also the source of image_id "
                       f"'{REFERENCE['image_id'][0]}' (set pristine); each cell must be scored once per phase, in "
                       "one set, or a model could answer one image from its memory of the other (tools/prepare.py "
                       "builds it so); 1 such row(s)")


@case
def reference_with_two_images_of_a_cell_in_one_set(tmp_path):
    degraded = REFERENCE.index[REFERENCE["set"] == "degraded"]
    first, second = int(degraded[0]), int(degraded[5])
    input_dir = write_input(tmp_path, with_rows(REFERENCE, cell_id={second: REFERENCE["cell_id"][first]}),
                            PREDICTIONS, REPORT)
    return input_dir, (f"Reference data error (organizer): {input_dir / 'ref' / 'reference.csv'} line "
                       f"{second + 2} (image_id '{REFERENCE['image_id'][second]}'): cell_id "
                       f"'{REFERENCE['cell_id'][first]}' (set degraded) is also the source of image_id "
                       f"'{REFERENCE['image_id'][first]}' (set degraded); each cell must be scored once per phase, in "
                       "one set, or a model could answer one image from its memory of the other (tools/prepare.py "
                       "builds it so); 1 such row(s)")


@case
def reference_without_cell_ids(tmp_path):
    input_dir = write_input(tmp_path, REFERENCE.drop(columns=["cell_id"]), PREDICTIONS, REPORT)
    return input_dir, (f"Reference data error (organizer): {input_dir / 'ref' / 'reference.csv'} "
                       "lacks column(s) cell_id; found image_id, set, label, severity, release_image_id, patient_hash")


@case
def reference_with_an_empty_cell_id(tmp_path):
    input_dir = write_input(tmp_path, with_rows(REFERENCE, cell_id={2: ""}), PREDICTIONS, REPORT)
    return input_dir, (f"Reference data error (organizer): {input_dir / 'ref' / 'reference.csv'} line 4 "
                       f"(image_id '{REFERENCE['image_id'][2]}'): empty cell_id (each image names its source cell); "
                       "1 such row(s)")


def test_bom_crlf_case_and_spaces_are_accepted(tmp_path):
    """The documented normalisations give the scores of the canonical file."""
    messy = PREDICTIONS.assign(label=" " + PREDICTIONS["label"].str.lower() + " ",
                               set=PREDICTIONS["set"].str.capitalize())
    text = "\ufeff" + messy.to_csv(index=False).replace("\n", "\r\n")
    spaced = with_rows(PREDICTIONS, label={0: " " + PREDICTIONS["label"][0]}, set={1: PREDICTIONS["set"][1] + " "})
    inputs = {"canonical": write_input(tmp_path / "canonical", REFERENCE, PREDICTIONS, REPORT),
              "messy": write_input(tmp_path / "messy", REFERENCE, text, REPORT),
              "spaced": write_input(tmp_path / "spaced", REFERENCE, spaced, REPORT)}
    scores = {name: score(d / "res", d / "ref", tmp_path / name / "out", n_boot=20) for name, d in inputs.items()}
    assert scores["canonical"] == scores["messy"] == scores["spaced"]
    for name, rows in (("messy", 52), ("spaced", 2)):
        assert f" {rows} prediction row(s) had their label or set normalised" in (
            tmp_path / name / "out" / "detailed_results.html").read_text()
    assert "normalised" not in (tmp_path / "canonical" / "out" / "detailed_results.html").read_text()


def with_seconds(value):
    """REPORT with the pristine set's seconds replaced (a forged or broken run report)."""
    report = json.loads(json.dumps(REPORT))
    report["sets"]["pristine"]["seconds"] = value
    return report


@case
def negative_seconds_in_the_report(tmp_path):
    input_dir = write_input(tmp_path, REFERENCE, PREDICTIONS, with_seconds(-1.5))
    return input_dir, ("Submission error: run_report.json gives sets.pristine.seconds = -1.5; expected a finite "
                       "number >= 0 (the ingestion's own clock never gives anything else)")


@case
def infinite_seconds_in_the_report(tmp_path):
    input_dir = write_input(tmp_path, REFERENCE, PREDICTIONS, json.dumps(with_seconds(float("inf"))))
    return input_dir, ("Submission error: run_report.json gives sets.pristine.seconds = inf; expected a finite "
                       "number >= 0 (the ingestion's own clock never gives anything else)")


@case
def zero_seconds_in_the_report(tmp_path):
    report = with_seconds(0)
    report["sets"]["degraded"]["seconds"] = 0
    input_dir = write_input(tmp_path, REFERENCE, PREDICTIONS, report)
    return input_dir, ("Submission error: run_report.json gives 0.0 prediction seconds in total; expected a "
                       "positive number")


@case
def worker_metadata_with_a_bad_elapsed_time(tmp_path):
    input_dir = write_input(tmp_path, REFERENCE, PREDICTIONS, REPORT)
    (input_dir / "res" / "metadata").write_text("elapsedTime: -3.0\nexitCode: null\ningestionElapsedTime: -3.0\n")
    return input_dir, ("Submission error: the worker's metadata file gives ingestionElapsedTime '-3.0'; expected a "
                       "positive number of seconds")


@case
def the_submissions_own_program_ran(tmp_path):
    """The worker's metadata gives the submission's program's exit code and time: it ran beside the ingestion."""
    input_dir = write_input(tmp_path, REFERENCE, PREDICTIONS, REPORT)
    (input_dir / "res" / "metadata").write_text(
        "elapsedTime: 31.5\nexitCode: 0\ningestionElapsedTime: 12.0\ningestionExitCode: 0\n")
    return input_dir, ("Submission error: the worker's metadata file shows that the submission's own program ran "
                       "beside the ingestion program (exitCode 0, elapsedTime 31.5): a submission whose metadata "
                       "file has a `command` runs in a second container that can rewrite the prediction step's "
                       "outputs, so they are not scored; leave `command` out of your submission's metadata file")


def with_budget(seconds):
    """REPORT with a time budget and the model's loading time (2.6 s per set, as run_report gives)."""
    report = json.loads(json.dumps(REPORT))
    report.update(budget_seconds=seconds, load_seconds=1.0)
    return report


@case
def a_report_over_its_budget(tmp_path):
    """The supervisor fails such a run itself; only a frozen supervisor (SIGSTOP) could leave this report."""
    input_dir = write_input(tmp_path, REFERENCE, PREDICTIONS, with_budget(5))
    return input_dir, ("Submission error: run_report.json says loading and predicting took 6.2 s, more than the "
                       "run's time budget of 5 s: a run that overran its budget is not scored (was the ingestion "
                       "program stopped while it ran?)")


@case
def a_report_ok_above_its_error_rate(tmp_path):
    report = json.loads(json.dumps(REPORT))
    report.update(error_rate=0.25, max_error_rate=0.01)
    input_dir = write_input(tmp_path, REFERENCE, PREDICTIONS, report)
    return input_dir, ("Submission error: run_report.json is inconsistent: status 'ok' with an error rate of 25.00%, "
                       "above the 1.00% it allows; the ingestion's own report never is")


@case
def a_worker_time_over_the_budget(tmp_path):
    input_dir = write_input(tmp_path, REFERENCE, PREDICTIONS, with_budget(60))
    (input_dir / "res" / "metadata").write_text(
        "elapsedTime: 95.5\nexitCode: null\ningestionElapsedTime: 95.5\ningestionExitCode: 0\n")
    return input_dir, ("Submission error: the worker's metadata file gives ingestionElapsedTime 95.5 s, more than "
                       "the run's time budget of 60 s (run_report.json) and the 30 s its start and end may add: the "
                       "run overran its budget, so it is not scored")


def test_speed_counts_reference_images_over_the_worker_time_when_present(tmp_path):
    """A report claiming 10x the images cannot raise the speed; the worker's metadata wins over the report."""
    inflated = json.loads(json.dumps(REPORT))
    for stats in inflated["sets"].values():
        stats["images"] *= 10
    input_dir = write_input(tmp_path / "report", REFERENCE, PREDICTIONS, inflated)
    seconds = sum(stats["seconds"] for stats in REPORT["sets"].values())
    assert score(input_dir / "res", input_dir / "ref", tmp_path / "out1", n_boot=5)["images_per_second"] == (
        pytest.approx(len(REFERENCE) / seconds))
    (input_dir / "res" / "metadata").write_text(
        "elapsedTime: 26.0\nexitCode: null\ningestionElapsedTime: 26.0\ningestionExitCode: 0\n")
    assert score(input_dir / "res", input_dir / "ref", tmp_path / "out2", n_boot=5)["images_per_second"] == (
        pytest.approx(len(REFERENCE) / 26.0))
    assert "NaN" not in (tmp_path / "out2" / "scores.json").read_text()


def test_a_run_whose_every_pristine_image_failed_is_scored_as_certain_wrong_answers(tmp_path):
    """No image of the set answered: macro-F1 0 and the worst calibration (each a certain answer of a wrong class)."""
    predictions = predictions_frame(REFERENCE, probs=True)
    pristine = predictions[predictions["set"] == "pristine"]
    report = run_report(REFERENCE)
    report["sets"]["pristine"]["errors"] = len(pristine)
    report["errors"] = [{"set": "pristine", "image_id": i, "error": "predict raised"} for i in pristine["image_id"]]
    input_dir = write_input(tmp_path, REFERENCE, predictions[predictions["set"] == "degraded"], report)
    scores = score(input_dir / "res", input_dir / "ref", tmp_path / "out", n_boot=5)
    assert scores["pristine_macro_f1"] == 0.0
    page = (tmp_path / "out" / "detailed_results.html").read_text()
    assert (f"<tr data-set='pristine'><td class='name'>pristine</td><td class='images'>{len(pristine)}</td>"
            "<td class='ece' data-value='1.0'>1.0000</td><td class='brier' data-value='2.0'>2.0000</td></tr>") in page


# Last: the cases above must be registered before this parametrisation is evaluated.
@pytest.mark.parametrize("name", CASES)
def test_fails_with_exact_message(outcomes, name):
    _, expected, run, out = outcomes[name]
    assert run.returncode == 1, run.stdout + run.stderr
    assert run.stderr.strip() == expected
    assert "Traceback" not in run.stderr
    # the fixture left a stale scores.json there: a failed run must remove it and write nothing
    assert not (out / "scores.json").exists() and not (out / "detailed_results.html").exists()


def test_the_local_run_scores_the_phase_ingestion_ran(tmp_path, monkeypatch, capsys):
    """`ingestion.py --phase test && score.py`: the scorer takes the phase from the run report."""
    import score as score_module

    source = write_input(tmp_path / "made", REFERENCE, PREDICTIONS, {**REPORT, "phase": "test"})
    (tmp_path / "repo" / "output").mkdir(parents=True)
    (source / "res").rename(tmp_path / "repo" / "output" / "res")
    (tmp_path / "repo" / "reference_data").mkdir()
    (source / "ref").rename(tmp_path / "repo" / "reference_data" / "test")
    monkeypatch.setattr(score_module, "REPO", tmp_path / "repo")
    assert score_module.main(["--bootstrap", "5"]) == 0
    assert "against reference_data/test (the phase of the ingestion run; --phase overrides)" in capsys.readouterr().out
    assert score_module.main(["--phase", "eval", "--bootstrap", "5"]) == 1  # no eval reference in this tree


def test_the_local_run_reports_a_failed_ingestion_and_clears_its_old_scores(tmp_path, monkeypatch, capsys):
    """A failed local ingestion after a good one: no phase guess, the failure, and none of the old outputs."""
    import score as score_module

    reason = "Model.load() raised OSError: weights.pt not found"
    report = run_report(REFERENCE, status="failed", reason=reason)
    source = write_input(tmp_path / "made", REFERENCE, PREDICTIONS, report)
    (tmp_path / "repo" / "output" / "scores").mkdir(parents=True)
    (source / "res").rename(tmp_path / "repo" / "output" / "res")
    for stale in ("scores.json", "detailed_results.html"):
        (tmp_path / "repo" / "output" / "scores" / stale).write_text("from the earlier run")
    monkeypatch.setattr(score_module, "REPO", tmp_path / "repo")
    assert score_module.main(["--bootstrap", "5"]) == 1
    out, err = capsys.readouterr()
    assert out == "" and err == f"Submission error: the ingestion run failed: {reason} (run_report.json)\n"
    assert not any((tmp_path / "repo" / "output" / "scores").iterdir())
