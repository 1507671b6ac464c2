"""Small hand-made scoring inputs (reference, predictions, run report) for the scoring tests."""
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
from label_space import CLASSES, SETS, SEVERITIES
from run_report import RunReport, SetFigures

REPO = Path(__file__).resolve().parents[1]
SCORE_PY = REPO / "scoring_program" / "score.py"


def reference_frame(cells_per_class: int = 2, seed: int = 0) -> pd.DataFrame:
    """cells_per_class cells of each class in each set (severities cycling in the degraded set), each cell once."""
    rng = np.random.default_rng(seed)
    labels = np.repeat(CLASSES, cells_per_class)
    n = len(labels)
    ids = [f"{v:012x}" for v in rng.choice(16**12, size=2 * n, replace=False)]
    cells = [f"PBC_{i:05d}" for i in range(2 * n)]
    return pd.DataFrame({
        "image_id": ids,
        "set": ["pristine"] * n + ["degraded"] * n,
        "label": list(labels) * 2,
        "severity": ["pristine"] * n + [SEVERITIES[i % 4] for i in range(n)],
        "cell_id": cells,
        "release_image_id": cells[:n] + [f"{c}_degraded" for c in cells[n:]],
        "patient_hash": ["p0"] * (2 * n),
    })


def predictions_frame(reference: pd.DataFrame, error_rate: float = 0.3, probs: bool = False,
                      seed: int = 1) -> pd.DataFrame:
    """Predictions in the ingestion's format: right label except for a seeded share of rows."""
    rng = np.random.default_rng(seed)
    labels = reference["label"].to_numpy(dtype=object).copy()
    wrong = rng.random(len(labels)) < error_rate
    labels[wrong] = rng.choice(CLASSES, size=int(wrong.sum()))
    frame = pd.DataFrame({"image_id": reference["image_id"], "set": reference["set"], "label": labels})
    if probs:
        p = rng.dirichlet(np.ones(len(CLASSES)), size=len(frame))
        top = np.array([CLASSES.index(label) for label in labels])
        p[np.arange(len(frame)), top] += 1.0 + rng.random(len(frame))
        p /= p.sum(axis=1, keepdims=True)
        for k, c in enumerate(CLASSES):
            frame[f"prob_{c}"] = p[:, k]
    order = np.lexsort((frame["image_id"], frame["set"] != "pristine"))
    return frame.iloc[order].reset_index(drop=True)


def run_report(reference: pd.DataFrame, status: str = "ok", reason: str | None = None) -> dict:
    """run_report.json's dict as ingestion writes it (the RunReport record); 10 images per second on each set."""
    sets = {}
    for name in SETS:
        n = int((reference["set"] == name).sum())
        sets[name] = SetFigures(images=n, predicted=n, errors=0, seconds=n / 10, images_per_second=10.0)
    return RunReport(status=status, reason=reason, submission="test", device="cpu", peak_memory_mb=100.0, sets=sets,
                     total_seconds=10.0).to_dict()


def write_input(root: Path, reference: pd.DataFrame | None = None,
                predictions: pd.DataFrame | str | bytes | None = None, report: dict | str | None = None) -> Path:
    """CodaBench-style <root>/input/{ref,res}; predictions/report None means the file is absent.

    predictions may be a DataFrame (written like ingestion does), or raw text/bytes written as is.
    """
    input_dir = root / "input"
    (input_dir / "ref").mkdir(parents=True)
    (input_dir / "res").mkdir(parents=True)
    if reference is not None:
        reference.to_csv(input_dir / "ref" / "reference.csv", index=False)
    target = input_dir / "res" / "predictions.csv"
    if isinstance(predictions, pd.DataFrame):
        predictions.to_csv(target, index=False, float_format="%.6f")
    elif isinstance(predictions, str):
        target.write_bytes(predictions.encode("utf-8"))
    elif isinstance(predictions, bytes):
        target.write_bytes(predictions)
    if isinstance(report, dict):
        (input_dir / "res" / "run_report.json").write_text(json.dumps(report))
    elif isinstance(report, str):
        (input_dir / "res" / "run_report.json").write_text(report)
    return input_dir


def valid_input(root: Path, probs: bool = False) -> Path:
    """A complete, valid scoring input."""
    reference = reference_frame()
    return write_input(root, reference, predictions_frame(reference, probs=probs), run_report(reference))


def run_score(input_dir: Path, output_dir: Path, *extra: str) -> subprocess.CompletedProcess:
    """score.py as CodaBench runs it (INPUT OUTPUT), in a fresh interpreter."""
    return subprocess.run([sys.executable, str(SCORE_PY), str(input_dir), str(output_dir), *extra],
                          capture_output=True, text=True, timeout=120)


def write_output(folder: Path, reference: pd.DataFrame, predictions: pd.DataFrame, failed: tuple = ()) -> Path:
    """A prediction step's output folder (predictions.csv + run_report.json), as ingestion writes it; the images
    in `failed` have no row and are listed as predict() errors of an accepted run."""
    folder.mkdir(parents=True, exist_ok=True)
    predictions[~predictions["image_id"].isin(failed)].to_csv(folder / "predictions.csv", index=False,
                                                               float_format="%.6f")
    report = run_report(reference)
    lost = reference[reference["image_id"].isin(failed)]
    report["errors"] = [{"set": s, "image_id": i, "error": "predict raised ValueError"}
                        for s, i in zip(lost["set"], lost["image_id"])]
    report["errors_total"] = len(lost)
    for name in SETS:
        report["sets"][name]["errors"] = int((lost["set"] == name).sum())
        report["sets"][name]["predicted"] -= report["sets"][name]["errors"]
    (folder / "run_report.json").write_text(json.dumps(report))
    return folder
