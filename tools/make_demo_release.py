"""Build a synthetic demo release in the WBCBench parquet layout (pristine and degraded configs, metadata CSVs)."""
import argparse
import ctypes
import csv
import io
import json
import multiprocessing
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
from PIL import Image
from tqdm import tqdm

import cells
import degrade
from jpeg_encoding import encode_jpeg
from release_reader import DEMO_MARKER  # tools/prepare.py refuses a release carrying it unless --demo

CLASSES = cells.CLASSES
SPLITS = ("phase2_train", "phase2_eval", "phase2_test")
DEFAULT_SPLIT_SIZES = {"phase2_train": 2000, "phase2_eval": 600, "phase2_test": 1000}
MIN_PER_CLASS = 3  # every class in every split, however small
# Class frequencies shaped like WBCBench phase 2: segmented neutrophils dominate, prolymphocytes are rarest.
CLASS_FREQUENCY = {"SNE": 0.45, "LY": 0.10, "MO": 0.07, "EO": 0.065, "BNE": 0.06, "BA": 0.04, "MY": 0.04,
                   "VLY": 0.035, "MMY": 0.03, "PMY": 0.025, "BL": 0.025, "PC": 0.02, "PLY": 0.01}
# Severities of the degraded config's rows ("pristine" = an unmodified copy of the source image).
SEVERITY_FREQUENCY = {"pristine": 0.1, "mild": 0.3, "moderate": 0.3, "extreme": 0.3}
JPEG_QUALITY = 90  # the demo release's own JPEGs, like the real release's (not the tools' quality)
IMAGES_PER_PATIENT = 8  # pseudo-patients, each confined to one split
SCHEMA = pa.schema(
    [("image", pa.struct([("bytes", pa.binary()), ("path", pa.string())])), ("image_id", pa.string()),
     ("label", pa.string()), ("wbcbench_split", pa.string()), ("severity", pa.string()),
     ("original_image_id", pa.string()), ("patient_hash", pa.string())],
    # the Hugging Face feature description the real release carries, so both read the same way
    metadata={"huggingface": json.dumps({"info": {"features": {
        "image": {"_type": "Image"},
        **{name: {"dtype": "string", "_type": "Value"} for name in
           ("image_id", "label", "wbcbench_split", "severity", "original_image_id", "patient_hash")}}}})},
)
# Like the real shards: JPEG bytes stored as they are, the string columns Snappy-compressed.
COMPRESSION = {"image.bytes": "NONE", "image.path": "NONE",
               **{name: "SNAPPY" for name in SCHEMA.names if name != "image"}}


def allocate(total, frequency, minimum=0):
    """Split `total` into integer counts proportional to `frequency` (largest remainder), each >= `minimum`."""
    keys = list(frequency)
    if total < minimum * len(keys):
        raise ValueError(f"{total} images cannot hold {minimum} of each of {len(keys)} categories")
    weights = np.array([frequency[k] for k in keys], dtype=float)
    share = (total - minimum * len(keys)) * weights / weights.sum()
    counts = np.floor(share).astype(int)
    order = np.argsort(-(share - counts), kind="stable")
    counts[order[:total - minimum * len(keys) - counts.sum()]] += 1
    return {k: int(c) + minimum for k, c in zip(keys, counts)}


def _jpeg(image):
    return encode_jpeg(image, JPEG_QUALITY)


def _keep_freed_memory():
    """Let glibc keep freed memory for reuse (no-op elsewhere).

    Each image's numpy temporaries (a few MB) are otherwise handed back to the OS and page-faulted in again for
    the next image: a third of the build's CPU time went to the kernel.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
    except OSError:
        return
    m_trim_threshold, m_mmap_threshold = -1, -3
    libc.mallopt(m_mmap_threshold, 64 << 20)
    libc.mallopt(m_trim_threshold, 256 << 20)


def _render_pair(job):
    """One pristine cell and its degraded version as JPEG bytes, from the job's own seeds (any worker, same bytes).

    The version degrades the published pristine JPEG, so degradation_params.csv reproduces it from the release.
    """
    label, cell_seed, severity, degrade_seed = job
    pristine_bytes = _jpeg(cells.render_cell(label, np.random.default_rng(cell_seed)))
    params = degrade.sample_params(severity, np.random.default_rng(degrade_seed))
    if severity == "pristine":
        return pristine_bytes, pristine_bytes, params
    source = Image.open(io.BytesIO(pristine_bytes))
    return pristine_bytes, _jpeg(degrade.apply(source, params)), params


def _plan(seed, split_sizes):
    """Labels, severities, ids, patients and seeds of every row: everything random except the pixels."""
    rng = np.random.default_rng([seed, 0])
    total = sum(split_sizes.values())
    ids = rng.choice(90_000_000, size=2 * total, replace=False) + 10_000_000  # 8 digits, unique in the release
    hashes = iter(f"{h:016x}" for h in rng.choice(2**62, size=total, replace=False))
    plan, start = {}, 0
    for split_index, (split, size) in enumerate(split_sizes.items()):
        labels = [c for c, n in allocate(size, CLASS_FREQUENCY, MIN_PER_CLASS).items() for _ in range(n)]
        severities = [s for s, n in allocate(size, SEVERITY_FREQUENCY).items() for _ in range(n)]
        patients = [next(hashes) for _ in range(max(1, size // IMAGES_PER_PATIENT))]
        rows = []
        for i, (label, severity) in enumerate(zip(rng.permutation(labels), rng.permutation(severities))):
            rows.append({
                "label": str(label), "severity": str(severity),
                "image_id": str(ids[start + i]), "degraded_id": str(ids[total + start + i]),
                "patient_hash": patients[rng.integers(len(patients))],
                "cell_seed": (seed, split_index, i, 1), "degrade_seed": (seed, split_index, i, 2),
            })
        plan[split] = rows
        start += size
    return plan


def _write_parquet(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    table = pa.Table.from_pylist(rows, schema=SCHEMA)
    pq.write_table(table, path, compression=COMPRESSION)


def build_release(out_dir, seed=0, split_sizes=None, *, workers=None):
    """Write a synthetic release to `out_dir` and return its path; the same seed gives byte-identical files.

    split_sizes: pristine images per split (default DEFAULT_SPLIT_SIZES); each also gets one degraded row.
    workers: processes rendering images (default: up to 2); the output does not depend on it.
    """
    out_dir = Path(out_dir)
    split_sizes = dict(split_sizes or DEFAULT_SPLIT_SIZES)
    for split, size in split_sizes.items():
        if size < MIN_PER_CLASS * len(CLASSES):
            raise ValueError(f"split {split}: {size} images is fewer than {MIN_PER_CLASS} per class "
                             f"x {len(CLASSES)} classes = {MIN_PER_CLASS * len(CLASSES)}")
    plan = _plan(seed, split_sizes)
    jobs = [(r["label"], r["cell_seed"], r["severity"], r["degrade_seed"]) for rows in plan.values() for r in rows]
    workers = workers or min(2, os.cpu_count() or 1)
    progress = dict(total=len(jobs), desc="rendering cells and their degraded versions", unit="cell")
    if workers > 1:
        with multiprocessing.get_context().Pool(workers, initializer=_keep_freed_memory) as pool:
            results = list(tqdm(pool.imap(_render_pair, jobs, chunksize=16), **progress))
    else:
        _keep_freed_memory()
        results = [_render_pair(job) for job in tqdm(jobs, **progress)]

    param_rows = _write_splits(out_dir, plan, iter(results))
    _write_metadata(out_dir, param_rows)
    write_dataset_card(out_dir)
    (out_dir / DEMO_MARKER).write_text("Synthetic demo cells from tools/make_demo_release.py, not WBCBench data.\n")
    return out_dir


def _write_splits(out_dir, plan, results):
    """One pristine and one degraded shard per split; returns the degradation_params.csv rows."""
    param_rows = []
    for split, rows in plan.items():
        pristine_rows, degraded_rows = [], []
        for r in rows:
            pristine_bytes, degraded_bytes, params = next(results)
            common = {"label": r["label"], "wbcbench_split": split, "patient_hash": r["patient_hash"]}
            pristine_rows.append({"image": {"bytes": pristine_bytes, "path": None}, "image_id": r["image_id"],
                                  "severity": "pristine", "original_image_id": "", **common})
            degraded_rows.append({"image": {"bytes": degraded_bytes, "path": None}, "image_id": r["degraded_id"],
                                  "severity": r["severity"], "original_image_id": r["image_id"], **common})
            param_rows.append({"image_id": r["degraded_id"], "original_image_id": r["image_id"],
                               "severity": r["severity"], **{k: params[k] for k in degrade.PARAM_KEYS}})
        shard = f"{split}-00000-of-00001.parquet"
        _write_parquet(out_dir / "pristine" / shard, pristine_rows)
        _write_parquet(out_dir / "degraded" / shard, degraded_rows)
    return param_rows


def _write_metadata(out_dir, param_rows):
    metadata = out_dir / "metadata"
    metadata.mkdir(parents=True, exist_ok=True)
    with open(metadata / "class_legend.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["abbreviation", "cell_type"])
        writer.writerows((c, cells.CELL_TYPES[c]) for c in CLASSES)
    with open(metadata / "degradation_params.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, ["image_id", "original_image_id", "severity", *degrade.PARAM_KEYS])
        writer.writeheader()
        writer.writerows(param_rows)


def write_dataset_card(release_dir) -> Path:
    """README.md with the YAML front matter the hub reads: one config per folder, its splits' data_files.

    With it the release folder is laid out as the hub repository is, so `datasets.load_dataset(folder, config)`
    resolves it as it resolves the hub id (tools/prepare.py --hub FOLDER).
    """
    release_dir = Path(release_dir)
    lines = ["---", "license: cc-by-nc-4.0", "configs:"]
    for config in ("pristine", "degraded"):
        lines += [f"- config_name: {config}", "  data_files:"]
        splits = sorted({path.name.split("-")[0] for path in (release_dir / config).glob("*.parquet")})
        for split in splits:
            lines += [f"  - split: {split}", f"    path: {config}/{split}-*.parquet"]
    lines += ["---", "", "# Synthetic WBCBench-shaped demo release", "",
              "Rendered cells from `tools/make_demo_release.py`: the layout and schema of the WBCBench 2026 "
              "release, none of its images.", ""]
    card = release_dir / "README.md"
    card.write_text("\n".join(lines), encoding="utf-8")
    return card


def summary(release_dir):
    """Per split: images per class and per degraded severity, as a printable table."""
    release_dir = Path(release_dir)
    columns = list(CLASSES) + ["total"] + list(degrade.SEVERITIES)
    lines = [f"{'split':<14}" + "".join(f"{c:>9}" for c in columns)]
    order = {split: i for i, split in enumerate(SPLITS)}
    shards = sorted((release_dir / "pristine").glob("*.parquet"),
                    key=lambda p: (order.get(p.name.split("-")[0], len(SPLITS)), p.name))
    for shard in shards:
        split = shard.name.split("-")[0]
        labels = pq.read_table(shard, columns=["label"]).column("label").to_pylist()
        severities = pq.read_table(release_dir / "degraded" / shard.name, columns=["severity"]).column(
            "severity").to_pylist()
        counts = [labels.count(c) for c in CLASSES] + [len(labels)]
        counts += [severities.count(s) for s in degrade.SEVERITIES]
        lines.append(f"{split:<14}" + "".join(f"{n:>9}" for n in counts))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=Path("build/demo_release"), help="release folder to write")
    parser.add_argument("--seed", type=int, default=0)
    for split, size in DEFAULT_SPLIT_SIZES.items():
        parser.add_argument(f"--{split.split('_')[1]}", type=int, default=size, metavar="N",
                            help=f"pristine images in {split} (default {size})")
    parser.add_argument("--workers", type=int, default=None, help="rendering processes (default: up to 2)")
    args = parser.parse_args(argv)
    sizes = {split: getattr(args, split.split("_")[1]) for split in DEFAULT_SPLIT_SIZES}
    release = build_release(args.out, seed=args.seed, split_sizes=sizes, workers=args.workers)
    print(f"demo release written to {release} (pristine images per class and degraded rows per severity):")
    print(summary(release))


if __name__ == "__main__":
    main()
