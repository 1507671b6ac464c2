"""Scores equal scikit-learn's on random inputs, ignore row order, and the vectorised bootstrap agrees."""
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sklearn.metrics import balanced_accuracy_score, f1_score, multilabel_confusion_matrix, precision_score

from bootstrap_ci import bootstrap_confusions
from calibration_metrics import brier_score, expected_calibration_error, reliability_bins
from classification_metrics import (confusion_counts, confusion_metrics, per_class_table, present_classes,
                                    scored_predictions, subset_metrics)
from label_space import CLASSES, NO_PREDICTION, SEVERITIES
from leaderboard_scores import LEADERBOARD_KEYS, compute_scores, subset_figures
from prediction_file import read_predictions
from reference_file import read_reference

SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


@st.composite
def scored_files(draw):
    """A random reference (every severity present) and predictions, as DataFrames with string labels."""
    n = draw(st.integers(min_value=8, max_value=60))
    classes = draw(st.lists(st.sampled_from(CLASSES), min_size=1, max_size=13, unique=True))
    true = draw(st.lists(st.sampled_from(classes), min_size=2 * n, max_size=2 * n))
    pred = draw(st.lists(st.sampled_from(CLASSES), min_size=2 * n, max_size=2 * n))
    severity = ["pristine"] * n + list(SEVERITIES) + draw(
        st.lists(st.sampled_from(SEVERITIES), min_size=n - 4, max_size=n - 4))
    ids = [f"{i:012x}" for i in range(2 * n)]
    sets = ["pristine"] * n + ["degraded"] * n
    reference = pd.DataFrame({"image_id": ids, "set": sets, "label": true, "severity": severity,
                              "cell_id": [f"cell{i}" for i in range(2 * n)]})
    predictions = pd.DataFrame({"image_id": ids, "set": sets, "label": pred})
    return reference, predictions


def sklearn_row(reference: pd.DataFrame, predictions: pd.DataFrame) -> dict:
    """The leaderboard figures computed here independently, on string labels."""
    merged = reference.merge(predictions, on="image_id", suffixes=("", "_pred"))

    def f1(mask):
        y, p = merged["label"][mask], merged["label_pred"][mask]
        return f1_score(y, p, labels=sorted(set(y)), average="macro", zero_division=0)

    degraded = merged["set"] == "degraded"
    y, p = merged["label"][degraded], merged["label_pred"][degraded]
    labels = sorted(set(y))
    mcm = multilabel_confusion_matrix(y, p, labels=labels)  # (k, 2, 2): [[tn, fp], [fn, tp]]
    tn, fp = mcm[:, 0, 0], mcm[:, 0, 1]
    specificity = np.divide(tn, tn + fp, out=np.zeros(len(labels)), where=(tn + fp) > 0).mean()
    return {
        "degraded_macro_f1": f1(degraded),
        "pristine_macro_f1": f1(merged["set"] == "pristine"),
        **{f"severity_{s}_macro_f1": f1(degraded & (merged["severity"] == s)) for s in SEVERITIES},
        "degraded_balanced_accuracy": balanced_accuracy_score(y, p),
        "degraded_macro_precision": precision_score(y, p, labels=labels, average="macro", zero_division=0),
        "degraded_macro_specificity": specificity,
        "images_per_second": 12.5,
    }


def scores_from_files(tmp_path, reference, predictions):
    reference.to_csv(tmp_path / "reference.csv", index=False)
    predictions.to_csv(tmp_path / "predictions.csv", index=False)
    table = read_predictions(tmp_path / "predictions.csv", read_reference(tmp_path / "reference.csv"))
    return compute_scores(subset_figures(table), 12.5)


@SETTINGS
@given(files=scored_files(), seed=st.integers(0, 2**31 - 1))
def test_scores_equal_sklearn_and_ignore_row_order(tmp_path, files, seed):
    reference, predictions = files
    scores = scores_from_files(tmp_path, reference, predictions)
    assert list(scores) == list(LEADERBOARD_KEYS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn's own "y_pred contains classes not in y_true"
        expected = sklearn_row(reference, predictions)
    assert scores == pytest.approx(expected, rel=1e-12, abs=1e-12)
    rng = np.random.RandomState(seed)
    shuffled = scores_from_files(tmp_path, reference.sample(frac=1.0, random_state=rng),
                                 predictions.sample(frac=1.0, random_state=rng))
    assert shuffled == pytest.approx(scores, rel=1e-12, abs=1e-12)


@SETTINGS
@given(data=st.data())
def test_vectorised_confusion_metrics_equal_sklearn_on_resamples(data):
    """The bootstrap's numpy metrics equal scikit-learn's on the same resampled images (13 = NO_PREDICTION)."""
    n = data.draw(st.integers(1, 80))
    y_true = np.array(data.draw(st.lists(st.integers(0, 12), min_size=n, max_size=n)))
    y_pred = np.array(data.draw(st.lists(st.integers(0, NO_PREDICTION), min_size=n, max_size=n)))
    idx = np.random.default_rng(data.draw(st.integers(0, 1000))).integers(0, n, size=n)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        expected = subset_metrics(y_true[idx], y_pred[idx])
    got = confusion_metrics(confusion_counts(y_true[idx], y_pred[idx]), present_classes(y_true[idx]))
    assert {k: float(v) for k, v in got.items()} == pytest.approx(expected, rel=1e-12, abs=1e-12)


@settings(max_examples=300, deadline=None)
@given(data=st.data())
def test_leaving_images_unanswered_never_beats_answering_sne(data):
    """An unanswered image counts as a certain answer of SNE (LY when it is an SNE): against answering SNE on the
    same images, no figure of any subset can rise, so failing on purpose (ingestion accepts up to 1% of images)
    buys nothing, however the images left out were chosen."""
    n = data.draw(st.integers(1, 60))
    y_true = np.array(data.draw(st.lists(st.integers(0, 12), min_size=n, max_size=n)))
    y_pred = np.array(data.draw(st.lists(st.integers(0, 12), min_size=n, max_size=n)))
    left_out = np.array(data.draw(st.lists(st.booleans(), min_size=n, max_size=n)))
    sne = CLASSES.index("SNE")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        abstained = subset_metrics(y_true, np.where(left_out, NO_PREDICTION, y_pred))
        answered = subset_metrics(y_true, np.where(left_out, sne, y_pred))
    for key, value in abstained.items():
        assert value <= answered[key] + 1e-12, key
    assert scored_predictions(y_true, np.full(n, NO_PREDICTION)).tolist() == [
        CLASSES.index("LY") if code == sne else sne for code in y_true]  # never right


def test_per_class_table_is_sklearns():
    y_true = np.array([0, 0, 1, 1, 1, 2, 11, 11])
    y_pred = np.array([0, 1, 1, 1, 12, 2, 11, 0])
    rows = {r["class"]: r for r in per_class_table(y_true, y_pred)}
    assert list(rows) == ["BA", "BL", "BNE", "SNE"]
    assert rows["BL"] == {"class": "BL", "precision": 2 / 3, "recall": 2 / 3, "f1": 2 / 3, "support": 3}
    assert rows["SNE"]["precision"] == 1.0 and rows["SNE"]["recall"] == 0.5


def test_bootstrap_is_stratified_paired_and_centred():
    rng = np.random.default_rng(0)
    y_true = rng.integers(0, 13, size=3000)
    good = np.where(rng.random(3000) < 0.8, y_true, rng.integers(0, 13, size=3000))
    preds = np.stack([good, good, rng.integers(0, 13, size=3000)])
    boot = bootstrap_confusions(y_true, preds, 400, np.random.default_rng(1))
    assert boot.shape == (400, 3, 14, 14)  # 13 classes + NO_PREDICTION
    # stratified: every replicate keeps each class's image count
    assert (boot.sum(axis=-1) == np.bincount(y_true, minlength=14)).all()
    # paired: identical submissions get identical replicates
    assert (boot[:, 0] == boot[:, 1]).all()
    # centred: the replicates' mean is the observed confusion matrix
    np.testing.assert_allclose(boot[:, 0].mean(axis=0), confusion_counts(y_true, good), atol=3.0)
    replicate_f1 = confusion_metrics(boot[:, 0], present_classes(y_true))["macro_f1"]
    assert abs(replicate_f1.mean() - subset_metrics(y_true, good)["macro_f1"]) < 0.01
    assert 0.003 < replicate_f1.std() < 0.03


def test_a_submissions_replicates_are_drawn_from_the_reference_alone():
    """The same images are drawn whatever the predictions: one submission's replicates are the same alone or drawn
    with others, in any order."""
    rng = np.random.default_rng(2)
    y_true = rng.integers(0, 13, size=1200)
    preds = np.stack([np.where(rng.random(1200) < p, y_true, rng.integers(0, 14, size=1200)) for p in (0.9, 0.5, 0.1)])
    joint = bootstrap_confusions(y_true, preds, 300, np.random.default_rng(7))
    for m in range(3):
        alone = bootstrap_confusions(y_true, preds[m], 300, np.random.default_rng(7))[:, 0]
        assert (alone == joint[:, m]).all()
    reordered = bootstrap_confusions(y_true, preds[::-1], 300, np.random.default_rng(7))
    assert (reordered[:, ::-1] == joint).all()


def test_calibration_figures_by_hand():
    probs = np.array([[0.9, 0.1] + [0.0] * 11, [0.6, 0.4] + [0.0] * 11, [0.2, 0.8] + [0.0] * 11])
    y_true = np.array([0, 1, 1])
    # bins of 1/15: 0.9 -> (0.8667, 0.9333], 0.6 -> (0.5333, 0.6], 0.8 -> (0.7333, 0.8]; one image each
    assert expected_calibration_error(probs, y_true) == pytest.approx((0.1 + 0.6 + 0.2) / 3)
    assert brier_score(probs, y_true) == pytest.approx(np.mean([0.1**2 * 2, 0.6**2 * 2, 0.2**2 * 2]))


def test_calibration_takes_the_scored_label_where_written_probabilities_tie():
    """Probabilities are written with 6 decimals, so two classes may tie in predictions.csv; the label column (the
    supervisor's argmax before rounding) is the answer scored, and the calibration figures count that one."""
    probs = np.array([[0.4, 0.4, 0.2] + [0.0] * 10] * 2)
    y_true, scored = np.array([1, 1]), np.array([1, 1])
    assert expected_calibration_error(probs, y_true) == pytest.approx(0.4)  # argmax takes class 0: both wrong
    assert expected_calibration_error(probs, y_true, top=scored) == pytest.approx(0.6)  # both right at 0.4
    assert reliability_bins(probs, y_true, top=scored)["accuracy"][5] == 1.0
