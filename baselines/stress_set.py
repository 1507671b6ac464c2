"""A degraded test set made with other parameters than the training ones: does a curriculum's robustness carry over?

    python baselines/stress_set.py build/pbc_bundle ../shared/data/pbc_wbcbench --phase eval --out build/pbc_stress

Reads a prepared bundle phase (tools/prepare.py) and the release it came from, and writes a new phase, same
layout: the same pristine.zip and pristine reference rows, and the same degraded-set cells degraded anew from
their release images, with another seed and with the extreme severity made stronger than anything
tools/degrade.py (the curriculum's source) produces. Each cell stays in the set prepare.py gave it, so each is
still scored once. The real test set's degradation parameters are not public; this measures how a model fares
past the ones it trained on.
"""
import argparse
import csv
import io
import json
import shutil
from pathlib import Path

import numpy as np

import project_folders  # noqa: F401  (the program folders, tools/ and baselines/ importable by name)
import degrade  # tools/: the project's degradations and zip writer
from fixed_zip import write_zip
from training_data import load_split

# tools/degrade.py's extreme: motion 15-27 px, noise sigma 18-32, colour +-25/30/45 %, channel gains +-20 %.
STRONGER_EXTREME = {"motion_chance": 1.0, "blur_sigma": (0, 0), "motion_length": (24, 36), "noise_sigma": (30, 45),
                    "brightness": 0.35, "contrast": 0.40, "saturation": 0.60, "gain": 0.30}


def stress_versions(sources: dict, reference: list[dict], seed: int) -> tuple[list, list]:
    """(zip entries, reference rows): each degraded-set cell degraded anew from its release image (`sources`:
    release id -> JPEG bytes), severity drawn uniformly, with the stronger extreme."""
    rng = np.random.default_rng([seed, 7])
    entries, rows = [], []
    standard = degrade.SEVERITY_RANGES["extreme"]
    degrade.SEVERITY_RANGES["extreme"] = STRONGER_EXTREME
    try:
        for cell in sorted(reference, key=lambda row: row["cell_id"]):
            if cell["set"] != "degraded":
                continue
            severity, data, _ = degrade.degraded_version(sources[cell["cell_id"]], rng)
            image_id = rng.bytes(6).hex()
            entries.append((f"{image_id}.jpg", data))
            rows.append({**cell, "image_id": image_id, "severity": severity,
                         "release_image_id": degrade.version_id(cell["cell_id"])})
    finally:
        degrade.SEVERITY_RANGES["extreme"] = standard
    return entries, rows


def make_stress_phase(bundle: Path, release: Path, phase: str, out: Path, seed: int) -> Path:
    """Write out/input_data/<phase>/ and out/reference_data/<phase>/ (pristine kept, degraded set new)."""
    source_input, source_reference = bundle / "input_data" / phase, bundle / "reference_data" / phase
    with open(source_reference / "reference.csv", newline="", encoding="utf-8") as handle:
        reference = list(csv.DictReader(handle))
    split = json.loads((bundle / "reference_data" / "manifest.json").read_text(encoding="utf-8"))["phases"][phase]["split"]
    pristine = load_split(release, "pristine", split)
    sources = dict(zip(pristine["image_id"], pristine["image_bytes"]))
    entries, degraded_rows = stress_versions(sources, reference, seed)
    input_dir, reference_dir = out / "input_data" / phase, out / "reference_data" / phase
    input_dir.mkdir(parents=True, exist_ok=True)
    reference_dir.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source_input / "pristine.zip", input_dir / "pristine.zip")
    write_zip(input_dir / "degraded.zip", entries)
    for name in ("class_legend.csv",):
        if (source_reference / name).is_file():
            shutil.copyfile(source_reference / name, reference_dir / name)
    rows = [row for row in reference if row["set"] == "pristine"] + degraded_rows
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(reference[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    (reference_dir / "reference.csv").write_text(buffer.getvalue(), encoding="utf-8")
    return out


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("bundle", type=Path, help="output root of tools/prepare.py (input_data/, reference_data/)")
    parser.add_argument("release", type=Path, help="the release the bundle was prepared from (its pristine images)")
    parser.add_argument("--phase", default="eval", help="the phase to degrade anew")
    parser.add_argument("--out", type=Path, required=True, help="new root for input_data/ and reference_data/")
    parser.add_argument("--seed", type=int, default=1, help="seed of the severities, parameters and ids")
    args = parser.parse_args(argv)
    print(make_stress_phase(args.bundle, args.release, args.phase, args.out, args.seed))


if __name__ == "__main__":
    main()
