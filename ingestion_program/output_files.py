"""Writes predictions.csv and run_report.json, each atomically (never half a file, even on a watchdog exit)."""
import csv
import io
import json
import os
import shutil
from pathlib import Path

from challenge_labels import CLASSES, SETS
PREDICTIONS = "predictions.csv"
RUN_REPORT = "run_report.json"
SUBMISSION_LOG = "submission_output.log"


def write_atomically(path: Path, text: str) -> None:
    path = Path(path)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(text, encoding="utf-8", newline="")
    os.replace(partial, path)


def write_predictions(path: Path, results: dict[tuple[str, str], tuple]) -> bool:
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


def write_report(path: Path, report: dict) -> None:
    write_atomically(path, json.dumps(report, indent=2, allow_nan=False) + "\n")


def snapshot(folder: Path) -> set[str]:
    """Relative paths of everything under folder (symlinks listed, never followed)."""
    found = set()
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            found.add(os.path.relpath(os.path.join(root, name), folder))
    return found


def remove_foreign(folder: Path, before: set[str]) -> list[str]:
    """Remove every symlink, and everything that was not there before the run, from folder; the removed paths.

    Runs once the model's processes are gone, before the final write: nothing the submission left (a forged
    predictions file, a `metadata` file the worker would refuse, a link to a system file) is handed on.
    """
    removed = []
    for root, dirs, files in os.walk(folder):
        for name in sorted(dirs + files):
            path = Path(root) / name
            relative = os.path.relpath(path, folder)
            if path.is_symlink() or relative not in before or not (path.is_file() or path.is_dir()):
                removed += _remove(path, relative)
        dirs[:] = [d for d in dirs if (Path(root) / d).is_dir() and not (Path(root) / d).is_symlink()]
    return sorted(removed)


def _remove(path: Path, relative: str) -> list[str]:
    if path.is_dir() and not path.is_symlink():
        inside = [os.path.join(relative, p) for p in snapshot(path) if not (path / p).is_dir() or (path / p).is_symlink()]
        shutil.rmtree(path, ignore_errors=True)
        return inside or [relative + "/"]
    path.unlink(missing_ok=True)
    return [relative]
