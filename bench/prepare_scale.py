"""Benchmark: prepare.py on a release of WBCBench's eval and test sizes, then the starting kit over the Final phase.

Usage: nice -n 19 python bench/prepare_scale.py [--demo-release build/demo_release] [--work build/prepare_scale]
                                                [--eval 5350] [--test 16477] [--skip-run]
                                                [--submission starting_kit]

1. A release of the real sizes (5,350 eval and 16,477 test pristine images, each with its degraded row) made by
   replicating the demo release's images under new ids and new pseudo-patients, written as the hub stores it
   (one pristine shard per split, 1 / 2 degraded shards for eval / test, row groups of 100 images); the training
   split is the demo's. Built once and reused (delete the folder to rebuild).
2. `tools/prepare.py` on it, as the organizer runs it, and on the demo release for comparison: wall and CPU time,
   and peak memory (the resident set of the process tree, sampled every 0.1 s).
3. The ingestion and scoring programs run a trained submission (the starting kit, trained by `make starting-kit`) over the full Final-phase zips (test: pristine and
   degraded), with the CodaBench command lines; the same figures for each step, and ingestion's images per second.
"""
import argparse
import csv
import json
import os
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

import project_folders  # the program folders, tools/ and baselines/ importable by name
from make_demo_release import COMPRESSION, SCHEMA, write_dataset_card
from release_reader import DEMO_MARKER

REPO = project_folders.REPO

REAL_SIZES = {"phase2_eval": 5350, "phase2_test": 16477}  # pristine images per split (the dataset card)
DEGRADED_SHARDS = {"phase2_eval": 1, "phase2_test": 2}  # as the dataset card lists them
ROW_GROUP_ROWS = 100  # what `datasets` writes for image datasets
SAMPLE_SECONDS = 0.1


def _replicated(table, size, id_columns):
    """`size` rows cycling through `table`; replica r of a row gets "-r<r>" appended to each of `id_columns`."""
    positions = pa.array([i % table.num_rows for i in range(size)], pa.int64())
    replicas = pa.array([f"-r{i // table.num_rows}" for i in range(size)])
    out = table.take(positions)
    for name in id_columns:
        column = pc.binary_join_element_wise(out.column(name), replicas, "")
        out = out.set_column(out.schema.get_field_index(name), name, column)
    return out


def _write_shards(table, folder, split, shards):
    folder.mkdir(parents=True, exist_ok=True)
    step = -(-table.num_rows // shards)
    for index in range(shards):
        pq.write_table(table.slice(index * step, step).cast(SCHEMA),
                       folder / f"{split}-{index:05d}-of-{shards:05d}.parquet",
                       compression=COMPRESSION, row_group_size=ROW_GROUP_ROWS)


def _scale_split(demo, release, split, size):
    """One split at `size` pristine images, each with its degraded row, and their degradation parameters."""
    pristine = pq.read_table(demo / "pristine" / f"{split}-00000-of-00001.parquet")
    degraded = pq.read_table(demo / "degraded" / f"{split}-00000-of-00001.parquet")
    # degraded rows in the order of their pristine sources, so replica r of both covers the same cells
    position = {image_id: i for i, image_id in enumerate(pristine.column("image_id").to_pylist())}
    degraded = degraded.take(sorted(range(degraded.num_rows),
                                    key=lambda i: position[degraded.column("original_image_id")[i].as_py()]))
    _write_shards(_replicated(pristine, size, ["image_id", "patient_hash"]), release / "pristine", split, 1)
    _write_shards(_replicated(degraded, size, ["image_id", "original_image_id", "patient_hash"]),
                  release / "degraded", split, DEGRADED_SHARDS[split])


def _scale_params(demo, release, sizes):
    """degradation_params.csv with one row per degraded image of the scaled splits (training rows as they are)."""
    with open(demo / "metadata" / "degradation_params.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        fields, rows = reader.fieldnames, {row["image_id"]: row for row in reader}
    with open(release / "metadata" / "degradation_params.csv", "w", newline="") as handle:
        writer = csv.DictWriter(handle, fields)
        writer.writeheader()
        for shard in sorted((release / "degraded").glob("*.parquet")):
            for image_id in pq.read_table(shard, columns=["image_id"]).column("image_id").to_pylist():
                source_id, _, replica = image_id.partition("-r")
                row = rows[source_id]
                writer.writerow({**row, "image_id": image_id,
                                 "original_image_id": row["original_image_id"] + (f"-r{replica}" if replica else "")})


def scale_release(demo: Path, release: Path, sizes: dict) -> Path:
    """The demo release at `sizes` pristine images per split (see the module docstring); reused when complete."""
    stamp = release / ".complete"
    if stamp.is_file() and json.loads(stamp.read_text()) == sizes:
        return release
    shutil.rmtree(release, ignore_errors=True)
    (release / "metadata").mkdir(parents=True)
    shutil.copy(demo / "metadata" / "class_legend.csv", release / "metadata")
    for config in ("pristine", "degraded"):
        for shard in (demo / config).glob("*.parquet"):
            if shard.name.split("-")[0] not in sizes:  # the training split, as it is
                (release / config).mkdir(exist_ok=True)
                shutil.copy(shard, release / config)
    for split, size in sizes.items():
        print(f"scaling {split} to {size} pristine + {size} degraded images", flush=True)
        _scale_split(demo, release, split, size)
    _scale_params(demo, release, sizes)
    write_dataset_card(release)
    (release / DEMO_MARKER).write_text("Demo images replicated to WBCBench's sizes by bench/prepare_scale.py.\n")
    stamp.write_text(json.dumps(sizes))
    return release


def measure(command, log, env=None) -> dict:
    """Run a command (output to `log`): wall and CPU seconds, and the peak resident memory of its process tree."""
    start, peak, before = time.perf_counter(), 0, resource.getrusage(resource.RUSAGE_CHILDREN)
    with open(log, "w") as handle:
        process = subprocess.Popen(command, stdout=handle, stderr=subprocess.STDOUT, cwd=REPO,
                                   env=dict(os.environ, **(env or {})))
        root = psutil.Process(process.pid)
        while process.poll() is None:
            try:
                tree = [root, *root.children(recursive=True)]
                peak = max(peak, sum(p.memory_info().rss for p in tree if p.is_running()))
            except psutil.Error:
                pass
            time.sleep(SAMPLE_SECONDS)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if process.returncode != 0:
        tail = Path(log).read_text(errors="replace")[-2000:]
        raise RuntimeError(f"{' '.join(map(str, command))} failed (exit {process.returncode}); the end of {log}:\n{tail}")
    cpu = after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime
    return {"seconds": round(seconds, 1), "cpu_seconds": round(cpu, 1), "peak_mb": round(peak / 2**20)}


def _size_mb(paths):
    return round(sum(p.stat().st_size for p in paths) / 2**20)


def run_prepare(release, bundle, log) -> dict:
    figures = measure([sys.executable, "tools/prepare.py", str(release), "--out", str(bundle), "--demo",
                       "--seed", "1"], log)
    manifest = json.loads((bundle / "reference_data" / "manifest.json").read_text())
    figures["images"] = sum(entry["counts"][s]["images"] for entry in manifest["phases"].values()
                            for s in ("pristine", "degraded"))
    figures["release_mb"] = _size_mb(release.glob("*/*.parquet"))
    figures["zips_mb"] = _size_mb(bundle.glob("input_data/*/*.zip"))
    return figures


def run_final_phase(bundle, work, submission) -> dict:
    """Ingestion then scoring of a submission on input_data/test, with the CodaBench command lines."""
    app = work / "app"
    shutil.rmtree(app, ignore_errors=True)
    (app / "input").mkdir(parents=True)
    (app / "input" / "ref").symlink_to((bundle / "reference_data" / "test").resolve())
    prediction = app / "input" / "res"
    ingestion = measure([sys.executable, "ingestion_program/ingestion.py", str(bundle / "input_data" / "test"),
                         str(prediction), str(REPO / "ingestion_program"), str(submission)],
                        work / "ingestion.log", env={"WBC_TIME_BUDGET_SECONDS": "0"})
    report = json.loads((prediction / "run_report.json").read_text())
    ingestion["images"] = sum(entry["images"] for entry in report["sets"].values())
    ingestion["images_per_second"] = {name: entry["images_per_second"] for name, entry in report["sets"].items()}
    scoring = measure([sys.executable, "scoring_program/score.py", str(app / "input"), str(app / "output")],
                      work / "scoring.log")
    scoring["scores"] = json.loads((app / "output" / "scores.json").read_text())
    return {"ingestion": ingestion, "scoring": scoring}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo-release", type=Path, default=REPO / "build" / "demo_release")
    parser.add_argument("--work", type=Path, default=REPO / "build" / "prepare_scale")
    parser.add_argument("--eval", type=int, default=REAL_SIZES["phase2_eval"], help="pristine images in phase2_eval")
    parser.add_argument("--test", type=int, default=REAL_SIZES["phase2_test"], help="pristine images in phase2_test")
    parser.add_argument("--skip-run", action="store_true", help="prepare only: no ingestion and scoring")
    parser.add_argument("--submission", type=Path, default=REPO / "starting_kit",
                        help="a trained submission folder to run over the Final phase (default: the starting kit)")
    args = parser.parse_args()
    if not args.skip_run and not (args.submission / "model.py").is_file():
        parser.error(f"{args.submission}: no model.py; pass a submission folder with --submission")
    if not args.skip_run and args.submission.resolve() == (REPO / "starting_kit").resolve() \
            and not (args.submission / "classifier.joblib").is_file():
        parser.error(f"{args.submission}: the starting kit is not trained (no classifier.joblib); "
                     "run `make starting-kit` first, or pass --skip-run")
    work = args.work.resolve()
    work.mkdir(parents=True, exist_ok=True)
    release = scale_release(args.demo_release, work / "release", {"phase2_eval": args.eval, "phase2_test": args.test})
    results = {"load_average_1min": round(os.getloadavg()[0], 1), "cpus": os.cpu_count()}
    results["prepare_demo"] = run_prepare(args.demo_release, work / "demo_bundle", work / "prepare_demo.log")
    print(f"prepare, demo release: {results['prepare_demo']}", flush=True)
    results["prepare_scaled"] = run_prepare(release, work / "bundle", work / "prepare_scaled.log")
    print(f"prepare, real sizes: {results['prepare_scaled']}", flush=True)
    if not args.skip_run:
        results.update(run_final_phase(work / "bundle", work, args.submission.resolve()))
        print(f"{args.submission.name}, Final phase: ingestion {results['ingestion']}, scoring "
              f"{ {k: v for k, v in results['scoring'].items() if k != 'scores'} }", flush=True)
    results["load_average_1min_after"] = round(os.getloadavg()[0], 1)
    (work / "results.json").write_text(json.dumps(results, indent=1) + "\n")
    print(f"figures in {work / 'results.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
