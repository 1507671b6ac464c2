"""Build the bundle data (input_data/, reference_data/) from a WBCBench release: fresh ids, no leaks, checked counts."""
import argparse
import csv
import hashlib
import io
import json
import shutil
import sys
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

from fixed_zip import write_zip
from jpeg_metadata import strip_metadata
from release_reader import ReleaseError, open_release, patient_hashes, read_rows, verify_jpeg
from vocabulary import SETS, SEVERITIES

DEFAULT_PHASES = {"eval": "phase2_eval", "test": "phase2_test"}
REFERENCE_COLUMNS = ("image_id", "set", "label", "severity", "cell_id", "release_image_id", "patient_hash")
SYNTHESIZED_JPEG_QUALITY = 95
ID_BYTES = 6  # 12 hex characters


@dataclass
class BundleImage:
    """One image as it goes into a phase: its new id, its bytes and what only the reference may know."""

    set: str
    label: str
    severity: str
    cell_id: str
    release_image_id: str
    patient_hash: str
    data: bytes
    image_id: str = ""


def _log(message):
    print(message, file=sys.stderr, flush=True)


def _progress(total, description):
    return tqdm(total=total, desc=description, unit="img", disable=None, file=sys.stderr, leave=False)


def _clean_bytes(row, reencode):
    """The bytes that go into the zip: the release JPEG without metadata segments, or a re-encoded JPEG."""
    image_format = verify_jpeg(row.image, row.source)
    if reencode:
        with Image.open(io.BytesIO(row.image)) as image:
            return _encode(image.convert("RGB"))
    if image_format != "JPEG":
        raise ReleaseError(f"{row.source}: image is {image_format}, not JPEG; pass --reencode to convert it")
    try:
        return strip_metadata(row.image)
    except ValueError as error:
        raise ReleaseError(f"{row.source}: JPEG structure not understood ({error}); pass --reencode") from error


def _encode(image):
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=SYNTHESIZED_JPEG_QUALITY)
    return buffer.getvalue()


def _load_split(release, split, legend, use_release_degraded, reencode):
    """Pristine (and release degraded) images of one split, checked and cleaned."""
    pristine_rows = read_rows(release, "pristine", split, legend, progress=_progress(None, f"read pristine/{split}"))
    images = {"pristine": [], "degraded": []}
    for row in tqdm(pristine_rows, desc=f"verify pristine/{split}", disable=None, file=sys.stderr, leave=False):
        images["pristine"].append(BundleImage("pristine", row.label, "pristine", row.image_id, row.image_id,
                                              row.patient_hash, _clean_bytes(row, reencode)))
    if use_release_degraded:
        sources = {row.image_id: row for row in pristine_rows}
        twins = {image.cell_id: image.data for image in images["pristine"]}
        degraded_rows = read_rows(release, "degraded", split, legend, progress=_progress(None, f"read degraded/{split}"))
        for row in tqdm(degraded_rows, desc=f"verify degraded/{split}", disable=None, file=sys.stderr, leave=False):
            source = sources.get(row.original_image_id)
            if source is None:
                raise ReleaseError(f"{row.source}: original_image_id {row.original_image_id!r} is not in the "
                                   f"pristine split '{split}'")
            if (source.label, source.patient_hash) != (row.label, row.patient_hash):
                raise ReleaseError(f"{row.source}: label/patient ({row.label}, {row.patient_hash}) differ from "
                                   f"its pristine source {row.original_image_id} ({source.label}, "
                                   f"{source.patient_hash})")
            data = _clean_bytes(row, reencode)
            if data == twins[row.original_image_id]:
                # A "pristine" severity row is an unmodified copy: the same bytes in both zips would give away its
                # severity and its twin, so it is re-encoded, as synthesized twins are (degrade.degraded_twin).
                with Image.open(io.BytesIO(data)) as image:
                    data = _encode(image.convert("RGB"))
            images["degraded"].append(BundleImage("degraded", row.label, row.severity, row.original_image_id,
                                                  row.image_id, row.patient_hash, data))
    return images


def _split_by_patient(images, phase_names, seed):
    """Divide one split between several phases with disjoint patients, image counts as even as possible."""
    per_patient = Counter(image.patient_hash for image in images["pristine"])
    patients = sorted(per_patient)
    np.random.default_rng([seed, 3]).shuffle(patients)
    assigned, sizes = {}, dict.fromkeys(phase_names, 0)
    for patient in sorted(patients, key=lambda p: -per_patient[p]):  # stable sort keeps the shuffled tie order
        phase = min(phase_names, key=lambda name: (sizes[name], phase_names.index(name)))
        assigned[patient] = phase
        sizes[phase] += per_patient[patient]
    return {phase: {set_name: [image for image in images[set_name] if assigned[image.patient_hash] == phase]
                    for set_name in SETS} for phase in phase_names}


def _subsample(images, limit, seed):
    """At most `limit` pristine images (seeded choice) and the degraded images made from them."""
    if limit is None or len(images["pristine"]) <= limit:
        return images
    keep = np.random.default_rng([seed, 4]).choice(len(images["pristine"]), size=limit, replace=False)
    pristine = [images["pristine"][i] for i in sorted(keep)]
    cells = {image.cell_id for image in pristine}
    return {"pristine": pristine, "degraded": [image for image in images["degraded"] if image.cell_id in cells]}


def _synthesize_degraded(pristine, phase, phase_number, seed):
    """One degraded version per pristine image with tools/degrade.py; severity and parameters drawn per image."""
    import degrade  # sibling tool, imported only when the release has no degraded config

    degraded, params = [], {}
    for index, image in enumerate(tqdm(pristine, desc=f"synthesize degraded/{phase}", disable=None,
                                       file=sys.stderr, leave=False)):
        rng = np.random.default_rng([seed, 2, phase_number, index])
        severity, data, image_params = degrade.degraded_twin(image.data, rng)
        release_id = f"{image.cell_id}_degraded"
        degraded.append(BundleImage("degraded", image.label, severity, image.cell_id, release_id,
                                    image.patient_hash, data))
        params[release_id] = {"original_image_id": image.cell_id, "severity": severity, **image_params}
    return degraded, params


def _assign_ids(phase_images, release_ids, seed):
    """Fresh 12-hex ids, unique across phases and distinct from every release id.

    Ids are drawn in release order, so a sequence anyone can replay (the code is public, the seed may be the
    default) would map each id to its release position, and a degraded image to its twin. The generator is
    therefore also keyed by a digest of the release ids, which only the reference side knows; the same inputs
    and seed still give the same ids.
    """
    digest = hashlib.sha256("\n".join(sorted(release_ids)).encode()).digest()
    rng = np.random.default_rng([seed, 1, int.from_bytes(digest[:16], "big")])
    used = set(release_ids)
    for phase in sorted(phase_images):
        for set_name in SETS:
            for image in phase_images[phase][set_name]:
                while True:
                    image_id = rng.bytes(ID_BYTES).hex()
                    if image_id not in used:
                        break
                used.add(image_id)
                image.image_id = image_id


def _write_reference(path, images):
    rows = sorted(images, key=lambda item: (SETS.index(item.set), item.image_id))
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(REFERENCE_COLUMNS)
        for image in rows:
            writer.writerow([image.image_id, image.set, image.label, image.severity, image.cell_id,
                             image.release_image_id, image.patient_hash])


def _write_legend(path, legend):
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(("abbreviation", "cell_type"))
        writer.writerows(legend.items())


def _counts(images):
    return {"images": len(images),
            "by_class": dict(sorted(Counter(image.label for image in images).items())),
            "by_severity": {s: n for s in SEVERITIES if (n := sum(image.severity == s for image in images))},
            "patients": len({image.patient_hash for image in images})}


def _check_written(out_root, phase, images):
    """Re-read what was written: zip entries and reference rows must match the images exactly."""
    with open(out_root / "reference_data" / phase / "reference.csv", newline="", encoding="utf-8") as handle:
        reference = {row["image_id"]: row["set"] for row in csv.DictReader(handle)}
    for set_name in SETS:
        with zipfile.ZipFile(out_root / "input_data" / phase / f"{set_name}.zip") as archive:
            names = [name[:-4] for name in archive.namelist()]
        expected = sorted(image.image_id for image in images[set_name])
        if sorted(names) != expected or any(reference.get(name) != set_name for name in names):
            raise RuntimeError(f"{phase}/{set_name}: written zip and reference disagree")


def _parse_phases(specs):
    phases = {}
    for spec in specs:
        name, sep, split = spec.partition("=")
        if not sep or not name or not split:
            raise argparse.ArgumentTypeError(f"--phase {spec!r}: expected NAME=SPLIT, e.g. eval=phase2_eval")
        phases[name] = split
    return phases


def prepare(release_dir, out_root, *, seed=0, demo=False, phases=None, synthesize_degraded=None, hub=None,
            reencode=False, limit=None) -> dict:
    """Write input_data/<phase>/{pristine,degraded}.zip and reference_data/<phase>/ from a release.

    phases maps a phase name to a release split; phases that name the same split share it out by patient.
    synthesize_degraded: None = only for splits the release has no degraded config for, True = always,
    False = never (a missing degraded split is an error). limit caps the pristine images per phase.
    Returns the provenance manifest (also written to reference_data/manifest.json).
    """
    release = open_release(release_dir, hub)
    out_root = Path(out_root)
    phases = dict(phases or DEFAULT_PHASES)
    legend = release.legend()
    pristine_splits, degraded_splits = release.splits("pristine"), release.splits("degraded")
    for phase, split in phases.items():
        if split not in pristine_splits:
            raise ReleaseError(f"{release.name}: phase '{phase}' needs split '{split}', which the pristine config "
                               f"lacks (it has {pristine_splits}); choose another with --phase {phase}=SPLIT")

    train_splits = [split for split in pristine_splits if "train" in split and split not in phases.values()]
    train_patients = set()
    for split in train_splits:
        train_patients |= patient_hashes(release, "pristine", split)

    phase_images, sources = {}, {}
    for split in sorted(set(phases.values())):
        if synthesize_degraded is False and split not in degraded_splits:
            raise ReleaseError(f"{release.name}: no degraded config for split '{split}' "
                               "(drop --no-synthesize-degraded to synthesize it)")
        use_release_degraded = split in degraded_splits and not synthesize_degraded
        if not use_release_degraded:
            _log(f"degraded/{split}: " + ("synthesizing it with tools/degrade.py (--synthesize-degraded)"
                                          if synthesize_degraded else
                                          "not in the release; synthesizing it with tools/degrade.py, "
                                          "one degraded version per pristine image"))
        images = _load_split(release, split, legend, use_release_degraded, reencode)
        overlap = {image.patient_hash for image in images["pristine"]} & train_patients
        if overlap:
            raise ReleaseError(f"{release.name}: split '{split}' shares {len(overlap)} patient(s) with the training "
                               f"split(s) {train_splits}, e.g. patient_hash {sorted(overlap)[0]!r}")
        users = sorted(phase for phase, name in phases.items() if name == split)
        if len(users) > 1:
            _log(f"{split}: shared by phases {users}, divided between them by patient (disjoint patients)")
            parts = _split_by_patient(images, users, seed)
        else:
            parts = {users[0]: images}
        for phase, part in parts.items():
            phase_images[phase] = _subsample(part, limit, seed)
            sources[phase] = "release" if use_release_degraded else "synthesized"

    release_params = release.degradation_params()
    degradation_params = {}
    for phase_number, phase in enumerate(sorted(phase_images)):
        if sources[phase] == "synthesized":
            phase_images[phase]["degraded"], degradation_params[phase] = _synthesize_degraded(
                phase_images[phase]["pristine"], phase, phase_number, seed)
        else:
            degradation_params[phase] = {image.release_image_id: release_params[image.release_image_id]
                                         for image in phase_images[phase]["degraded"]
                                         if image.release_image_id in release_params}

    release_ids = {image.release_image_id for images in phase_images.values() for s in SETS for image in images[s]}
    _assign_ids(phase_images, release_ids, seed)

    manifest = {"release": release.name, "seed": seed, "demo": bool(demo), "reencode": bool(reencode),
                "limit": limit, "train_splits": train_splits,
                "jpeg_metadata": "re-encoded" if reencode else "metadata segments stripped losslessly "
                                                                "(APP1-13, APP15, COM); image data byte for byte, "
                                                                "except degraded copies identical to their "
                                                                "pristine twin, re-encoded",
                "phases": {}}
    for phase in sorted(phase_images):
        images = phase_images[phase]
        input_dir, reference_dir = out_root / "input_data" / phase, out_root / "reference_data" / phase
        for folder in (input_dir, reference_dir):
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
        for set_name in SETS:
            # JPEGs at the zip root in the order of their random ids, stored as they are.
            write_zip(input_dir / f"{set_name}.zip",
                      [(f"{image.image_id}.jpg", image.data) for image in sorted(images[set_name], key=lambda i: i.image_id)])
        _write_reference(reference_dir / "reference.csv", images["pristine"] + images["degraded"])
        _write_legend(reference_dir / "class_legend.csv", legend)
        _check_written(out_root, phase, images)
        manifest["phases"][phase] = {
            "split": phases[phase], "degraded_source": sources[phase],
            "counts": {set_name: _counts(images[set_name]) for set_name in SETS},
            "degradation_params": degradation_params[phase]}
    (out_root / "reference_data" / "manifest.json").write_text(
        json.dumps(manifest, indent=1, sort_keys=True, default=_json_default) + "\n", encoding="utf-8")
    _log(summary_table(manifest, list(legend)))
    return manifest


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to the manifest")


def summary_table(manifest, classes) -> str:
    """Images per phase and set, by severity and by class."""
    header = ["phase", "set", "images", "patients", *SEVERITIES, *classes]
    lines = [header]
    for phase, entry in manifest["phases"].items():
        for set_name in SETS:
            counts = entry["counts"][set_name]
            lines.append([phase, set_name, counts["images"], counts["patients"],
                          *(counts["by_severity"].get(s, 0) for s in SEVERITIES),
                          *(counts["by_class"].get(c, 0) for c in classes)])
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(str(value).rjust(width) for value, width in zip(line, widths)) for line in lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("release", nargs="?", help="release folder (<config>/<split>-NNNNN-of-MMMMM.parquet)")
    parser.add_argument("--hub", metavar="REPO", help="load the release from the hub with `datasets` instead")
    parser.add_argument("--out", default=".", help="output root (gets input_data/ and reference_data/)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the ids, order, subsample and degradations")
    parser.add_argument("--phase", action="append", default=[], metavar="NAME=SPLIT",
                        help="build phase NAME from release split SPLIT (repeat; default eval=phase2_eval "
                             "test=phase2_test); phases naming the same split share it out by patient")
    parser.add_argument("--demo", action="store_true", help="mark the data as demo data (pack.py refuses it)")
    degraded = parser.add_mutually_exclusive_group()
    degraded.add_argument("--synthesize-degraded", action="store_true", default=None,
                          help="synthesize the degraded set with tools/degrade.py even if the release has one")
    degraded.add_argument("--no-synthesize-degraded", dest="synthesize_degraded", action="store_false",
                          help="fail when a split has no degraded config instead of synthesizing it")
    parser.add_argument("--reencode", action="store_true", help="re-encode images as JPEG instead of copying them")
    parser.add_argument("--limit", type=int, help="at most this many pristine images per phase (quick checks)")
    args = parser.parse_args(argv)
    if not args.release and not args.hub:
        parser.error("give a RELEASE folder or --hub REPO")
    try:
        phases = _parse_phases(args.phase) or None
        prepare(args.release, args.out, seed=args.seed, demo=args.demo, phases=phases,
                synthesize_degraded=args.synthesize_degraded, hub=args.hub, reencode=args.reencode,
                limit=args.limit)
    except (ReleaseError, argparse.ArgumentTypeError) as error:
        print(f"prepare: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
