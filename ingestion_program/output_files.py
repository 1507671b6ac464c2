"""Writes predictions.csv and run_report.json, each atomically (never half a file, even on a watchdog exit)."""
import csv
import io
import json
import os
from pathlib import Path

from model_outputs import CLASSES

SETS = ("pristine", "degraded")
PREDICTIONS = "predictions.csv"
RUN_REPORT = "run_report.json"
SUBMISSION_LOG = "submission_output.log"


def write_atomically(path, text):
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8", newline="")
    os.replace(partial, path)


def write_predictions(path, results):
    """results: {(set, image_id): (label, probabilities or None)}. Returns whether probability columns were written.

    Rows sorted by set (pristine, degraded) then image_id; probabilities as %.6f. Probability columns only when
    every prediction gave probabilities: a mix would leave empty cells, so then labels only are written.
    """
    with_probs = bool(results) and all(probs is not None for _, probs in results.values())
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["image_id", "set", "label"] + ([f"prob_{c}" for c in CLASSES] if with_probs else []))
    for set_name, image_id in sorted(results, key=lambda key: (SETS.index(key[0]), key[1])):
        label, probs = results[set_name, image_id]
        writer.writerow([image_id, set_name, label] + (["%.6f" % p for p in probs] if with_probs else []))
    write_atomically(path, buffer.getvalue())
    return with_probs


def write_report(path, report):
    write_atomically(path, json.dumps(report, indent=2, allow_nan=False) + "\n")
