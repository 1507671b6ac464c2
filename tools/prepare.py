"""Build the bundle data (input_data/, reference_data/) from a WBCBench release: fresh ids, no leaks, checked counts."""
import argparse
import csv
import hashlib
import io
import json
import shutil
import sys
import tempfile
import zipfile
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image
from tqdm import tqdm

import project_folders  # noqa: F401  (the program folders, tools/ and baselines/ importable by name)
from fixed_zip import write_zip
from image_store import ImageStore, StoredImage
from jpeg_encoding import encode_jpeg, encoding_of, reencode_with
from jpeg_metadata import strip_metadata
from label_space import SETS, SEVERITIES
from phase_sampling import (assign_sets, check_patients_apart, class_gaps, lone_cells, split_by_patient,
                            stratified_subsample, subsample)
from release_reader import DEMO_MARKER, ReleaseError, iter_rows, open_release, text_columns, verify_jpeg

DEFAULT_PHASES = {"eval": "phase2_eval", "test": "phase2_test"}
DEFAULT_HUB = "Xin-Tian/wbcbench2026"  # the WBCBench 2026 release on the Hugging Face hub (gated)
REFERENCE_COLUMNS = ("image_id", "set", "label", "severity", "cell_id", "release_image_id", "patient_hash")
ID_BYTES = 6  # 12 hex characters
# Two cells in three are scored degraded: the primary score's interval is then within 0.002 of its narrowest and
# the pristine score's far from its widest (tools/set_share.py; the table is in pages/data.md).
DEFAULT_DEGRADED_SHARE = 2 / 3
DEMO_SEED = 0  # the only seed that may be left implicit, and only for demo data


@dataclass
class BundleImage:
    """One image as it goes into a phase: its new id, where its bytes are and what only the reference may know.

    cell_id is the release id of the source cell (the pristine image every degraded version was made from).
    """

    set: str
    label: str
    severity: str
    cell_id: str
    release_image_id: str
    patient_hash: str
    data: StoredImage
    image_id: str = ""


def _log(message):
    print(message, file=sys.stderr, flush=True)


def _progress(description):
    return tqdm(total=None, desc=description, unit="img", disable=None, file=sys.stderr, leave=False)


def _clean_bytes(row, reencode_all):
    """The bytes that go into the zip: the release JPEG without metadata segments, or a re-encoded JPEG."""
    image_format = verify_jpeg(row.image, row.source)
    if reencode_all:
        with Image.open(io.BytesIO(row.image)) as image:
            return encode_jpeg(image.convert("RGB"))
    if image_format != "JPEG":
        raise ReleaseError(f"{row.source}: image is {image_format}, not JPEG; pass --reencode to convert it")
    try:
        return strip_metadata(row.image)
    except ValueError as error:
        raise ReleaseError(f"{row.source}: JPEG structure not understood ({error}); pass --reencode") from error


def _digest(data):
    return hashlib.sha256(data).digest()


def _load_pristine(release, split, legend, store, reencode_all):
    """The pristine images of one split, checked, cleaned and stored, with the digest of each one's bytes."""
    images, digests = [], {}
    for row in iter_rows(release, "pristine", split, legend, progress=_progress(f"pristine/{split}")):
        data = _clean_bytes(row, reencode_all)
        images.append(BundleImage("pristine", row.label, "pristine", row.image_id, row.image_id, row.patient_hash,
                                  store.put(data)))
        digests[row.image_id] = _digest(data)
    return images, digests


def _load_degraded(release, split, legend, store, pristine, digests, reencode_all):
    """The release's degraded images of one split, each checked against its pristine source.

    A "pristine" severity row is an unmodified copy of its source: its bytes are the public release's pristine image
    and its JPEG tables differ from the other degraded images', either giving away its severity, so it is
    re-encoded (_reencode_copies).
    """
    sources = {image.cell_id: image for image in pristine}
    images, copies, encodings = [], [], Counter()
    for row in iter_rows(release, "degraded", split, legend, progress=_progress(f"degraded/{split}")):
        source = sources.get(row.original_image_id)
        if source is None:
            raise ReleaseError(f"{row.source}: original_image_id {row.original_image_id!r} is not in the "
                               f"pristine split '{split}'")
        if (source.label, source.patient_hash) != (row.label, row.patient_hash):
            raise ReleaseError(f"{row.source}: label/patient ({row.label}, {row.patient_hash}) differ from "
                               f"its pristine source {row.original_image_id} ({source.label}, "
                               f"{source.patient_hash})")
        data = _clean_bytes(row, reencode_all)
        image = BundleImage("degraded", row.label, row.severity, row.original_image_id, row.image_id,
                            row.patient_hash, store.put(data))
        if _digest(data) == digests[row.original_image_id]:
            copies.append(image)
        else:
            encodings[encoding_of(data)] += 1
        images.append(image)
    _reencode_copies(copies, encodings, store, digests)
    return images


def _reencode_copies(copies, encodings, store, digests):
    """Re-encode byte copies with the quantization tables and subsampling most of the other degraded images use,
    so the tables tell no copy (severity pristine) from the rest; with no other image, with their own."""
    common = encodings.most_common(1)[0][0] if encodings else None
    for image in copies:
        data = store.get(image.data)
        again = reencode_with(data, common or encoding_of(data))
        if _digest(again) == digests[image.cell_id]:
            raise ReleaseError(f"degraded image {image.release_image_id}: re-encoding gave its pristine source's bytes "
                               "again; pass --reencode")
        image.data = store.put(again)


def _load_split(release, split, legend, store, use_release_degraded, reencode_all):
    """Pristine (and release degraded) images of one split, checked, cleaned and stored."""
    pristine, digests = _load_pristine(release, split, legend, store, reencode_all)
    degraded = (_load_degraded(release, split, legend, store, pristine, digests, reencode_all)
                if use_release_degraded else [])
    return {"pristine": pristine, "degraded": degraded}


def _synthesize_degraded(sources, phase, phase_number, seed, store):
    """A degraded version of each degraded-set cell with tools/degrade.py; severity and parameters drawn per image."""
    import degrade  # sibling tool, imported only when the release has no degraded config

    progress = tqdm(sources, desc=f"synthesize degraded/{phase}", disable=None, file=sys.stderr, leave=False)
    versions = degrade.synthesized_versions((store.get(image.data) for image in progress), seed, stream=phase_number)
    degraded, params = [], {}
    for image, (severity, data, image_params) in zip(sources, versions):
        release_id = degrade.version_id(image.cell_id)
        degraded.append(BundleImage("degraded", image.label, severity, image.cell_id, release_id,
                                    image.patient_hash, store.put(data)))
        params[release_id] = {"original_image_id": image.cell_id, "severity": severity, **image_params}
    return degraded, params


def _assign_ids(phase_images, release_ids, seed):
    """Fresh 12-hex ids, unique across phases and distinct from every release id.

    Ids are drawn in release order, so a sequence anyone can replay (the code is public, the seed may be the
    default) would map each id to its release position, and a bundle image to its release image. The generator is
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
            "by_severity_and_class": class_by_severity([image.label for image in images],
                                                       [image.severity for image in images]),
            "patients": len({image.patient_hash for image in images})}


def class_by_severity(labels, severities) -> dict:
    """{severity: {class: images}} for parallel lists of labels and severities (severities in challenge order)."""
    table = {}
    for (severity, label), count in sorted(Counter(zip(severities, labels)).items(),
                                           key=lambda item: (SEVERITIES.index(item[0][0]), item[0][1])):
        table.setdefault(severity, {})[label] = count
    return table


def _check_written(out_root, phase, images):
    """Re-read what was written: zip entries and reference rows must match the images exactly, each cell once."""
    with open(out_root / "reference_data" / phase / "reference.csv", newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    reference = {row["image_id"]: row["set"] for row in rows}
    cells = Counter(row["cell_id"] for row in rows)
    repeated = [cell for cell, count in cells.items() if count > 1]
    if repeated:
        raise RuntimeError(f"{phase}: cell {repeated[0]} was written {cells[repeated[0]]} times; each cell must be "
                           "scored once per phase")
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


def _parse_phase_sizes(specs):
    sizes = {}
    for spec in specs:
        name, sep, size = spec.partition("=")
        if not sep or not name or not size.isdigit() or int(size) < 1:
            raise argparse.ArgumentTypeError(f"--phase-size {spec!r}: expected NAME=N with N >= 1, e.g. eval=1000")
        sizes[name] = int(size)
    return sizes


@dataclass(frozen=True)
class _Settings:
    """What prepare() was asked for, once checked."""

    seed: int
    phases: dict
    phase_sizes: dict
    limit: object
    reencode: bool
    synthesize_degraded: object
    degraded_share: float


def _checked_seed(release, seed, demo):
    """The seed to use: demo data may default to DEMO_SEED, a real release needs one given (the ids depend on it)."""
    if release.is_demo() and not demo:
        raise ReleaseError(f"{release.name}: this is the synthetic demo release (it carries {DEMO_MARKER}); "
                           "pass --demo to build demo data from it, or give the real release")
    if seed is None and not demo:
        raise ReleaseError("give the seed explicitly (--seed N, a private number for the real bundle): it draws the "
                           "image ids, their order, any subsample and the synthesized degradations; only demo data "
                           f"defaults to {DEMO_SEED}")
    return DEMO_SEED if seed is None else seed


def _check_phase_splits(release, settings):
    pristine_splits = release.splits("pristine")
    for phase, split in settings.phases.items():
        if split not in pristine_splits:
            raise ReleaseError(f"{release.name}: phase '{phase}' needs split '{split}', which the pristine config "
                               f"lacks (it has {pristine_splits}); choose another with --phase {phase}=SPLIT")
    unknown = sorted(set(settings.phase_sizes) - set(settings.phases))
    if unknown:
        raise ReleaseError(f"--phase-size names phase(s) {unknown} that are not built (phases: "
                           f"{sorted(settings.phases)})")


def _survey(release, settings):
    """Read the text columns of every split: the split x set x severity x class table, and the training patients."""
    table, train_splits, train_patients = {}, [], set()
    for config in SETS:
        for split in release.splits(config):
            columns = text_columns(release, config, split)
            table.setdefault(split, {})[config] = class_by_severity(columns["label"], columns["severity"])
            if config == "pristine" and "train" in split and split not in settings.phases.values():
                train_splits.append(split)
                train_patients.update(columns["patient_hash"])
    return table, train_splits, train_patients


def _degraded_source(release, split, settings):
    """Whether a split's degraded set comes from the release (True) or is synthesized (False)."""
    in_release = split in release.splits("degraded")
    if settings.synthesize_degraded is False and not in_release:
        raise ReleaseError(f"{release.name}: no degraded config for split '{split}' "
                           "(drop --no-synthesize-degraded to synthesize it)")
    if not in_release or settings.synthesize_degraded:
        _log(f"degraded/{split}: " + ("synthesizing it with tools/degrade.py (--synthesize-degraded)"
                                      if settings.synthesize_degraded else
                                      "not in the release; synthesizing it with tools/degrade.py, "
                                      "one degraded version per pristine image"))
    return in_release and not settings.synthesize_degraded


def _share_out(images, split, users, settings):
    """The split's cells for each phase that uses it: divided by patient, then subsampled."""
    if len(users) > 1:
        _log(f"{split}: shared by phases {users}, divided between them by patient (disjoint patients)")
        parts = split_by_patient(images, users, settings.seed)
    else:
        parts = {users[0]: images}
    return {phase: (stratified_subsample(part, settings.phase_sizes[phase], settings.seed)
                    if phase in settings.phase_sizes else subsample(part, settings.limit, settings.seed))
            for phase, part in parts.items()}


def _select(release, legend, store, settings, train):
    """Every phase's images, each cell in one set; the degraded-set cells still to synthesize; where each phase's
    degraded set comes from; warnings about classes a phase or a set lacks."""
    train_splits, train_patients = train
    phase_images, to_synthesize, sources, warnings = {}, {}, {}, []
    for split in sorted(set(settings.phases.values())):
        use_release_degraded = _degraded_source(release, split, settings)
        images = _load_split(release, split, legend, store, use_release_degraded, settings.reencode)
        overlap = {image.patient_hash for image in images["pristine"]} & train_patients
        if overlap:
            raise ReleaseError(f"{release.name}: split '{split}' shares {len(overlap)} patient(s) with the training "
                               f"split(s) {train_splits}, e.g. patient_hash {sorted(overlap)[0]!r}")
        users = sorted(phase for phase, name in settings.phases.items() if name == split)
        parts = _share_out(images, split, users, settings)
        warnings += class_gaps(split, Counter(image.label for image in images["pristine"]),
                               {phase: Counter(image.label for image in part["pristine"])
                                for phase, part in parts.items()}, list(legend))
        for phase, part in parts.items():
            warnings += lone_cells(phase, Counter(image.label for image in part["pristine"]))
            pristine, degraded = assign_sets(part, settings.degraded_share, settings.seed,
                                             stream=sorted(settings.phases).index(phase))
            phase_images[phase] = {"pristine": pristine, "degraded": degraded if use_release_degraded else []}
            to_synthesize[phase] = [] if use_release_degraded else degraded
            sources[phase] = "release" if use_release_degraded else "synthesized"
    return phase_images, to_synthesize, sources, warnings


def _degraded_sets(release, phase_images, to_synthesize, sources, seed, store):
    """Synthesize the degraded sets that need it; the degradation parameters of every phase's degraded images."""
    release_params = release.degradation_params()
    degradation_params = {}
    for phase_number, phase in enumerate(sorted(phase_images)):
        if sources[phase] == "synthesized":
            phase_images[phase]["degraded"], degradation_params[phase] = _synthesize_degraded(
                to_synthesize[phase], phase, phase_number, seed, store)
        else:
            degradation_params[phase] = {image.release_image_id: release_params[image.release_image_id]
                                         for image in phase_images[phase]["degraded"]
                                         if image.release_image_id in release_params}
    return degradation_params


def _check_severities(phase_images):
    """Every severity in every phase's degraded set: each is a leaderboard column, and the scorer refuses a gap."""
    for phase, images in sorted(phase_images.items()):
        found = Counter(image.severity for image in images["degraded"])
        missing = [severity for severity in SEVERITIES if not found[severity]]
        if missing:
            raise ReleaseError(f"phase '{phase}': its degraded set ({len(images['degraded'])} cells) has no image of "
                               f"severity {', '.join(missing)}, a leaderboard column; build a larger phase "
                               "(--phase-size, --limit) or give the degraded set a larger share (--degraded-share)")


def _write_phase(out_root, phase, images, legend, store):
    """input_data/<phase>/{pristine,degraded}.zip and reference_data/<phase>/, re-read and checked."""
    input_dir, reference_dir = out_root / "input_data" / phase, out_root / "reference_data" / phase
    for folder in (input_dir, reference_dir):
        shutil.rmtree(folder, ignore_errors=True)
        folder.mkdir(parents=True)
    for set_name in SETS:
        # JPEGs at the zip root in the order of their random ids, stored as they are, read back one at a time.
        ordered = sorted(images[set_name], key=lambda image: image.image_id)
        write_zip(input_dir / f"{set_name}.zip", ((f"{image.image_id}.jpg", store.get(image.data)) for image in ordered))
    _write_reference(reference_dir / "reference.csv", images["pristine"] + images["degraded"])
    _write_legend(reference_dir / "class_legend.csv", legend)
    _check_written(out_root, phase, images)


def _manifest(release, settings, demo, train_splits, release_counts, warnings):
    return {"release": release.name, "demo_release": release.is_demo(), "seed": settings.seed, "demo": bool(demo),
            "reencode": bool(settings.reencode), "limit": settings.limit, "phase_sizes": settings.phase_sizes,
            "degraded_share": settings.degraded_share,
            "train_splits": train_splits,
            "jpeg_metadata": "re-encoded" if settings.reencode else
            "metadata segments stripped losslessly (APP1-13, APP15, COM); image data byte for byte, except degraded "
            "copies identical to their pristine source, re-encoded with the quantization tables and chroma subsampling "
            "most degraded images of their split have",
            "release_counts": release_counts, "warnings": warnings, "phases": {}}


def prepare(release_dir, out_root, *, seed=None, demo=False, phases=None, synthesize_degraded=None, hub=None,
            reencode=False, limit=None, phase_sizes=None, degraded_share=DEFAULT_DEGRADED_SHARE) -> dict:
    """Write input_data/<phase>/{pristine,degraded}.zip and reference_data/<phase>/ from a release.

    seed: required for a real release (demo data defaults to 0). demo: the data is demo data (required for a
    release carrying the DEMO_RELEASE marker). phases maps a phase name to a release split; phases that name the
    same split share it out by patient. synthesize_degraded: None = only for splits the release has no degraded
    config for, True = always, False = never (a missing degraded split is an error). limit caps the cells per phase
    (seeded choice); phase_sizes {phase: N} caps a phase at N cells, class-stratified. Each cell of a phase is
    scored once: degraded_share of each class's cells go to the degraded set (one version each), the rest to the
    pristine set (phase_sampling.assign_sets). Returns the provenance manifest (also reference_data/manifest.json).
    """
    release = open_release(release_dir, hub)
    legend = release.legend()  # first: a hub that cannot be reached says so before anything else
    if not 0 < degraded_share < 1:
        raise ReleaseError(f"--degraded-share {degraded_share!r}: expected a fraction strictly between 0 and 1")
    settings = _Settings(_checked_seed(release, seed, demo), dict(phases or DEFAULT_PHASES), dict(phase_sizes or {}),
                         limit, reencode, synthesize_degraded, degraded_share)
    out_root = Path(out_root)
    _check_phase_splits(release, settings)
    release_counts, train_splits, train_patients = _survey(release, settings)
    out_root.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=out_root, prefix=".prepare-") as scratch, ImageStore(scratch) as store:
        phase_images, to_synthesize, sources, warnings = _select(release, legend, store, settings,
                                                                 (train_splits, train_patients))
        degradation_params = _degraded_sets(release, phase_images, to_synthesize, sources, settings.seed, store)
        check_patients_apart(phase_images)
        _check_severities(phase_images)
        release_ids = {image.release_image_id for images in phase_images.values() for s in SETS for image in images[s]}
        _assign_ids(phase_images, release_ids, settings.seed)
        manifest = _manifest(release, settings, demo, train_splits, release_counts, warnings)
        for phase in sorted(phase_images):
            _write_phase(out_root, phase, phase_images[phase], legend, store)
            manifest["phases"][phase] = {
                "split": settings.phases[phase], "degraded_source": sources[phase],
                "counts": {set_name: _counts(phase_images[phase][set_name]) for set_name in SETS},
                "cell_sets": {image.cell_id: set_name for set_name in SETS
                              for image in sorted(phase_images[phase][set_name], key=lambda image: image.cell_id)},
                "degradation_params": degradation_params[phase]}
    (out_root / "reference_data" / "manifest.json").write_text(
        json.dumps(manifest, indent=1, sort_keys=True, default=_json_default) + "\n", encoding="utf-8")
    _log(release_table(manifest, list(legend)) + "\n\n" + summary_table(manifest, list(legend)))
    for warning in warnings:
        _log(f"prepare: warning: {warning}")
    return manifest


def _json_default(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot write {type(value).__name__} to the manifest")


def _aligned(lines) -> str:
    widths = [max(len(str(line[i])) for line in lines) for i in range(len(lines[0]))]
    return "\n".join("  ".join(str(value).rjust(width) for value, width in zip(line, widths)) for line in lines)


def release_table(manifest, classes) -> str:
    """Images per release split, set and severity, by class: the split x class x severity table."""
    lines = [["split", "set", "severity", "images", *classes]]
    for split, sets in sorted(manifest["release_counts"].items()):
        for set_name, severities in sets.items():
            for severity, by_class in severities.items():
                lines.append([split, set_name, severity, sum(by_class.values()),
                              *(by_class.get(c, 0) for c in classes)])
    return _aligned(lines)


def summary_table(manifest, classes) -> str:
    """Images per phase and set, by severity and by class."""
    lines = [["phase", "set", "images", "patients", *SEVERITIES, *classes]]
    for phase, entry in manifest["phases"].items():
        for set_name in SETS:
            counts = entry["counts"][set_name]
            lines.append([phase, set_name, counts["images"], counts["patients"],
                          *(counts["by_severity"].get(s, 0) for s in SEVERITIES),
                          *(counts["by_class"].get(c, 0) for c in classes)])
    return _aligned(lines)


def _parser():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("release", nargs="?", help="release folder (<config>/<split>-NNNNN-of-MMMMM.parquet)")
    parser.add_argument("--hub", nargs="?", const=DEFAULT_HUB, metavar="REPO",
                        help=f"load the release with `datasets` instead: a hub dataset (default {DEFAULT_HUB}; "
                             "online, logged in) or a local copy of its repository")
    parser.add_argument("--out", default=".", help="output root (gets input_data/ and reference_data/)")
    parser.add_argument("--seed", type=int, help="seed of the ids, order, subsample and degradations (required, "
                                                 f"private, for a real release; demo data defaults to {DEMO_SEED})")
    parser.add_argument("--phase", action="append", default=[], metavar="NAME=SPLIT",
                        help="build phase NAME from release split SPLIT (repeat; default eval=phase2_eval "
                             "test=phase2_test); phases naming the same split share it out by patient")
    parser.add_argument("--phase-size", action="append", default=[], metavar="NAME=N",
                        help="keep at most N cells (so N images) in phase NAME, class-stratified (every class "
                             "present keeps one or more) (repeat; overrides --limit)")
    parser.add_argument("--degraded-share", type=float, default=DEFAULT_DEGRADED_SHARE, metavar="F",
                        help="share of each class's cells scored in the degraded set, the rest in the pristine set "
                             f"(each cell once per phase; default {DEFAULT_DEGRADED_SHARE:.3f}, pages/data.md says why)")
    parser.add_argument("--demo", action="store_true", help="build demo data (required for a demo release; "
                                                            "pack.py refuses demo data)")
    degraded = parser.add_mutually_exclusive_group()
    degraded.add_argument("--synthesize-degraded", action="store_true", default=None,
                          help="synthesize the degraded set with tools/degrade.py even if the release has one")
    degraded.add_argument("--no-synthesize-degraded", dest="synthesize_degraded", action="store_false",
                          help="fail when a split has no degraded config instead of synthesizing it")
    parser.add_argument("--reencode", action="store_true", help="re-encode images as JPEG instead of copying them")
    parser.add_argument("--limit", type=int, help="at most this many cells per phase (quick checks)")
    return parser


def main(argv=None):
    parser = _parser()
    args = parser.parse_args(argv)
    if not args.release and not args.hub:
        parser.error(f"give a RELEASE folder or --hub [REPO] (default {DEFAULT_HUB})")
    try:
        prepare(args.release, args.out, seed=args.seed, demo=args.demo, phases=_parse_phases(args.phase) or None,
                synthesize_degraded=args.synthesize_degraded, hub=args.hub, reencode=args.reencode,
                limit=args.limit, phase_sizes=_parse_phase_sizes(args.phase_size), degraded_share=args.degraded_share)
    except (ReleaseError, argparse.ArgumentTypeError) as error:
        print(f"prepare: error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
