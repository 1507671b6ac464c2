"""Benchmark: score a synthetic 100,000-row prediction file (all metrics, bootstrap included); goal < 5 s.

Usage: python bench/scoring_scale.py [--rows 100000] [--bootstrap 1000]
Times the real score() in process and the CodaBench command line once in a subprocess.
"""
import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

import project_folders  # the program folders, tools/ and baselines/ importable by name
from label_space import CLASSES, PROB_COLUMNS, SETS, SEVERITIES
from run_report import RunReport, SetFigures
from score import score

REPO = project_folders.REPO

GOAL_SECONDS = 5.0


def write_synthetic(input_dir: Path, rows: int, seed: int = 0) -> None:
    """<input_dir>/ref/reference.csv and <input_dir>/res/{predictions.csv,run_report.json}: one image per cell, half
    of them pristine, half degraded, imbalanced classes, ~70% accurate probabilities."""
    rng = np.random.default_rng(seed)
    half = rows // 2
    weights = np.linspace(1, 12, len(CLASSES)) ** 2
    label = rng.choice(len(CLASSES), size=2 * half, p=weights / weights.sum())
    image_id = np.array([f"{i:012x}" for i in rng.permutation(16**6)[: 2 * half]])
    reference = pd.DataFrame({
        "image_id": image_id,
        "set": ["pristine"] * half + ["degraded"] * half,
        "label": np.array(CLASSES)[label],
        "severity": ["pristine"] * half + list(rng.choice(SEVERITIES, size=half)),
        "cell_id": [f"cell{i:07d}" for i in range(2 * half)],
    })
    logits = rng.normal(size=(2 * half, len(CLASSES)))
    logits[np.arange(2 * half), label] += 2.5
    probs = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    predictions = pd.DataFrame({"image_id": image_id, "set": reference["set"],
                                "label": np.array(CLASSES)[probs.argmax(axis=1)]})
    predictions[list(PROB_COLUMNS)] = probs
    (input_dir / "ref").mkdir(parents=True)
    (input_dir / "res").mkdir(parents=True)
    reference.to_csv(input_dir / "ref" / "reference.csv", index=False)
    predictions.sort_values(["set", "image_id"], ascending=[False, True]).to_csv(
        input_dir / "res" / "predictions.csv", index=False, float_format="%.6f")
    sets = {s: SetFigures(images=half, predicted=half, errors=0, seconds=half / 50.0, images_per_second=50.0)
            for s in SETS}
    report = RunReport(status="ok", sets=sets)
    (input_dir / "res" / "run_report.json").write_text(json.dumps(report.to_dict()))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--bootstrap", type=int, default=1000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        input_dir = Path(tmp) / "input"
        start = time.perf_counter()
        write_synthetic(input_dir, args.rows)
        print(f"synthetic data ({args.rows} rows, with probabilities): {time.perf_counter() - start:.2f} s to write")

        start, cpu = time.perf_counter(), time.process_time()
        score(input_dir / "res", input_dir / "ref", Path(tmp) / "out_fn", n_boot=args.bootstrap)
        in_process, in_process_cpu = time.perf_counter() - start, time.process_time() - cpu
        print(f"score() in process (first call: includes importing scikit-learn and matplotlib): "
              f"{in_process:.2f} s wall, {in_process_cpu:.2f} s CPU")

        start, children = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        run = subprocess.run([sys.executable, str(REPO / "scoring_program" / "score.py"), str(input_dir),
                              str(Path(tmp) / "out_cli"), "--bootstrap", str(args.bootstrap)],
                             capture_output=True, text=True)
        cli = time.perf_counter() - start
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cli_cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
        if run.returncode != 0:
            print(run.stderr, file=sys.stderr)
            return 1
        print(f"score.py command line (fresh interpreter, imports included): {cli:.2f} s wall, {cli_cpu:.2f} s CPU")
    # Other processes share the 2 cores: the load average says how far wall time is from CPU time.
    print(f"load average over the last minute: {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    worst = max(in_process, cli)
    verdict = "OK" if worst < GOAL_SECONDS else "TOO SLOW"
    print(f"scoring_scale: {args.rows} rows, {args.bootstrap} bootstrap replicates: score() {in_process:.2f} s "
          f"({in_process_cpu:.2f} s CPU), CLI {cli:.2f} s ({cli_cpu:.2f} s CPU); goal < {GOAL_SECONDS:.0f} s wall: "
          f"{verdict}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
