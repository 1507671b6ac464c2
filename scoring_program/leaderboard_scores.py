"""From validated predictions to the leaderboard row and the figures behind detailed_results.html."""
import numpy as np

from bootstrap_ci import N_BOOTSTRAP, bootstrap_confusions, percentile_interval
from calibration_metrics import brier_score, expected_calibration_error, reliability_bins
from classification_metrics import (confusion_counts, confusion_metrics, per_class_table, present_classes,
                                    scored_predictions, scored_probabilities, subset_metrics)
from clinical_groups import clinical_summary
from label_space import SETS, SEVERITIES
from prediction_file import AlignedPredictions
from robustness_drops import macro_f1_drops

# The leaderboard columns of competition.yaml, primary first: key -> title (a test checks both against the yaml).
LEADERBOARD_TITLES = {
    "degraded_macro_f1": "Degraded macro-F1 (primary)",
    "degraded_balanced_accuracy": "Degraded balanced accuracy",
    "degraded_macro_precision": "Degraded macro precision",
    "degraded_macro_specificity": "Degraded macro specificity",
    "pristine_macro_f1": "Pristine macro-F1",
    **{f"severity_{s}_macro_f1": f"Severity {s}: macro-F1" for s in SEVERITIES},
    "images_per_second": "Images per second",
}
LEADERBOARD_KEYS = tuple(LEADERBOARD_TITLES)


def subset_masks(table: AlignedPredictions) -> dict[str, np.ndarray]:
    """Boolean masks of the scored subsets: each set, and each severity inside the degraded set."""
    masks = {name: table.set == name for name in SETS}
    for severity in SEVERITIES:
        masks[f"severity_{severity}"] = masks["degraded"] & (table.severity == severity)
    return masks


def leaderboard_figures(subsets: dict[str, dict[str, float]]) -> dict[str, float]:
    """Map per-subset figures (subset -> metric -> value) onto the leaderboard keys (all but speed)."""
    row = {"degraded_macro_f1": subsets["degraded"]["macro_f1"], "pristine_macro_f1": subsets["pristine"]["macro_f1"]}
    for severity in SEVERITIES:
        row[f"severity_{severity}_macro_f1"] = subsets[f"severity_{severity}"]["macro_f1"]
    for metric in ("balanced_accuracy", "macro_precision", "macro_specificity"):
        row[f"degraded_{metric}"] = subsets["degraded"][metric]
    return row


def subset_figures(table: AlignedPredictions) -> dict[str, dict[str, float]]:
    """The four figures of every scored subset (scikit-learn): subset -> metric -> value."""
    return {name: subset_metrics(table.y_true[m], table.y_pred[m]) for name, m in subset_masks(table).items()}


def compute_scores(subsets: dict[str, dict[str, float]], images_per_second: float) -> dict[str, float]:
    """The scores.json dict from subset_figures' output, keys in LEADERBOARD_KEYS order."""
    row = leaderboard_figures(subsets) | {"images_per_second": float(images_per_second)}
    return {key: row[key] for key in LEADERBOARD_KEYS}


def detailed_results_data(table: AlignedPredictions, figures: dict[str, dict[str, float]],
                          n_boot: int = N_BOOTSTRAP, seed: int = 0) -> dict:
    """Everything detailed_results.html shows: per-subset tables, bootstrap intervals, robustness, calibration,
    clinically grouped errors and blast figures.

    figures: subset_figures(table), computed once for both scores.json and this page.
    """
    rng = np.random.default_rng(seed)
    subsets, replicates = [], {}
    for name, mask in subset_masks(table).items():
        y_true, y_pred = table.y_true[mask], table.y_pred[mask]
        confusions = bootstrap_confusions(y_true, y_pred[None, :], n_boot, rng)[:, 0]
        replicates[name] = confusion_metrics(confusions, present_classes(y_true))
        confusion = confusion_counts(y_true, y_pred)
        subsets.append({
            "name": name,
            "images": int(mask.sum()),
            "metrics": figures[name],
            "per_class": per_class_table(y_true, y_pred),
            "confusion": confusion,
            "macro_f1_interval": percentile_interval(replicates[name]["macro_f1"]),
            "clinical": clinical_summary(confusion, confusions),
        })
    intervals = {key: percentile_interval(values) for key, values in leaderboard_figures(replicates).items()}
    calibration = None
    if table.probs is not None:
        calibration = {}
        every_probs = scored_probabilities(table.y_true, table.probs)
        every_label = scored_predictions(table.y_true, table.y_pred)  # the scored label breaks a written tie
        for name in SETS:
            mask = table.set == name
            probs, y_true, top = every_probs[mask], table.y_true[mask], every_label[mask]
            calibration[name] = {
                "images": int(mask.sum()),
                "ece": expected_calibration_error(probs, y_true, top=top),
                "brier": brier_score(probs, y_true),
                "bins": reliability_bins(probs, y_true, top=top),
            }
    return {
        "n_boot": n_boot,
        "seed": seed,
        "subsets": subsets,
        "intervals": intervals,
        "drops": macro_f1_drops({name: figures[name]["macro_f1"] for name in figures},
                                {name: replicates[name]["macro_f1"] for name in replicates}),
        "calibration": calibration,
        "normalised_labels": table.normalised_labels,
        "unpredicted": table.unpredicted,
    }
