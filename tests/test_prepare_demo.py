"""prepare on the small demo release: each cell scored once, fresh ids, no leak through names, order or zip metadata,
complete reference."""
import csv
import hashlib
import json
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from jpeg_metadata import strip_metadata
from phase_sampling import degraded_quota
from prepare import DEFAULT_DEGRADED_SHARE, REFERENCE_COLUMNS, prepare

PHASE_SPLITS = {"eval": "phase2_eval", "test": "phase2_test"}


def _release_images(release, config, split):
    table = pq.read_table(sorted((Path(release) / config).glob(f"{split}-*.parquet"))[0])
    ids = table.column("image_id").to_pylist()
    return dict(zip(ids, table.column("image").combine_chunks().field("bytes").to_pylist())), \
        dict(zip(ids, table.column("label").to_pylist()))


def _reference(bundle, phase):
    with open(bundle / "reference_data" / phase / "reference.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames) == REFERENCE_COLUMNS
        return list(reader)


@pytest.mark.parametrize("phase", ["eval", "test"])
def test_ids_fresh_order_shuffled_bytes_copied(small_release, small_bundle, phase):
    reference = {row["image_id"]: row for row in _reference(small_bundle, phase)}
    split = PHASE_SPLITS[phase]
    for set_name in ("pristine", "degraded"):
        release_bytes, release_labels = _release_images(small_release, set_name, split)
        with zipfile.ZipFile(small_bundle / "input_data" / phase / f"{set_name}.zip") as archive:
            infos = archive.infolist()
            assert archive.comment == b""
            ids = [info.filename[:-4] for info in infos]
            assert all(info.filename.endswith(".jpg") and len(info.filename) == 16 for info in infos)
            assert all(int(image_id, 16) >= 0 for image_id in ids)
            assert all(info.date_time == (1980, 1, 1, 0, 0, 0) and info.compress_type == zipfile.ZIP_STORED
                       and info.comment == b"" and not info.extra for info in infos)
            assert not set(ids) & set(release_bytes)  # fresh ids, never the release's
            labels = [reference[image_id]["label"] for image_id in ids]
            assert labels != sorted(labels) and ids == sorted(ids)  # order by random id, not by label
            assert sorted(ids) == sorted(i for i, row in reference.items() if row["set"] == set_name)
            copies = 0
            for image_id in ids:
                row = reference[image_id]
                assert row["set"] == set_name and row["label"] == release_labels[row["release_image_id"]]
                data, expected = archive.read(f"{image_id}.jpg"), strip_metadata(release_bytes[row["release_image_id"]])
                if set_name == "degraded" and row["severity"] == "pristine":  # the release's unmodified copy:
                    copies += 1  # re-encoded, so it is no byte copy of the release's pristine image
                    assert data != expected and data[:2] == b"\xff\xd8"
                else:
                    assert data == expected
            assert copies == 0 if set_name == "pristine" else copies > 0


@pytest.mark.parametrize("phase", ["eval", "test"])
def test_each_cell_scored_once_with_its_release_severity(small_release, small_bundle, phase):
    """Every cell of the split in exactly one set, one image; each class in both sets; release severities kept."""
    rows = _reference(small_bundle, phase)
    split = PHASE_SPLITS[phase]
    cells = [row["cell_id"] for row in rows]
    assert len(cells) == len(set(cells))
    assert set(cells) == set(_release_images(small_release, "pristine", split)[0])
    release_degraded = pq.read_table(sorted((small_release / "degraded").glob(f"{split}-*.parquet"))[0],
                                     columns=["image_id", "severity", "original_image_id"]).to_pylist()
    versions = {row["image_id"]: row for row in release_degraded}
    for row in rows:
        if row["set"] == "degraded":
            version = versions[row["release_image_id"]]
            assert (version["original_image_id"], version["severity"]) == (row["cell_id"], row["severity"])
        else:
            assert row["release_image_id"] == row["cell_id"]
    by_class = Counter((row["label"], row["set"]) for row in rows)
    for label in {row["label"] for row in rows}:
        cells_of_class = by_class[label, "pristine"] + by_class[label, "degraded"]
        assert by_class[label, "degraded"] == degraded_quota(cells_of_class, DEFAULT_DEGRADED_SHARE)
        assert by_class[label, "pristine"] >= 1 or cells_of_class == 1
    assert {row["severity"] for row in rows if row["set"] == "degraded"} == {"pristine", "mild", "moderate", "extreme"}


def test_no_image_has_a_copy_in_the_run(small_bundle):
    rows = _reference(small_bundle, "eval")
    with zipfile.ZipFile(small_bundle / "input_data" / "eval" / "pristine.zip") as pristine_zip, \
            zipfile.ZipFile(small_bundle / "input_data" / "eval" / "degraded.zip") as degraded_zip:
        pristine_bytes = {pristine_zip.read(name) for name in pristine_zip.namelist()}
        assert not any(degraded_zip.read(name) in pristine_bytes for name in degraded_zip.namelist())
    # The code and the seed are public: replaying the id generator must not give the ids (nor, by their draw
    # order, which bundle image is which release image).
    replay = np.random.default_rng([0, 1])
    assert not {replay.bytes(6).hex() for _ in range(2 * len(rows))} & {row["image_id"] for row in rows}


def test_manifest_and_idempotent(small_release, small_bundle, tmp_path):
    manifest = json.loads((small_bundle / "reference_data" / "manifest.json").read_text())
    assert manifest["demo"] is True and manifest["seed"] == 0
    assert {phase: entry["split"] for phase, entry in manifest["phases"].items()} == PHASE_SPLITS
    eval_counts = manifest["phases"]["eval"]["counts"]
    assert eval_counts["pristine"]["images"] + eval_counts["degraded"]["images"] == 80  # the split's 80 cells
    assert manifest["degraded_share"] == DEFAULT_DEGRADED_SHARE
    assert manifest["phases"]["eval"]["cell_sets"] == {row["cell_id"]: row["set"] for row in _reference(small_bundle,
                                                                                                       "eval")}
    prepare(small_release, tmp_path, seed=0, demo=True)
    prepare(small_release, tmp_path, seed=0, demo=True)  # re-running over its own output is clean

    def digests(root):
        return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
                for p in sorted(root.rglob("*")) if p.is_file() and p.parts[-2:] != ("reference_data", ".complete")}
    assert digests(tmp_path) == {k: v for k, v in digests(small_bundle).items() if k in digests(tmp_path)}
    assert set(digests(tmp_path)) <= set(digests(small_bundle))
