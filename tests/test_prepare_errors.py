"""prepare on a tiny hand-built release: every broken input stops it with the file, the row and the reason."""
import io
import zipfile

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from jpeg_metadata import strip_metadata
from prepare import prepare
from release_reader import ReleaseError

LEGEND = "abbreviation,cell_type\nBA,Basophil\nBL,Blast\nBNE,Band\nEO,Eosinophil\nLY,Lymphocyte\nMMY,Metamyelocyte\n" \
         "MO,Monocyte\nMY,Myelocyte\nPC,Plasma cell\nPLY,Prolymphocyte\nPMY,Promyelocyte\nSNE,Segmented\nVLY,Variant\n"


def _jpeg(value, **save_options):
    buffer = io.BytesIO()
    pixels = np.full((24, 24, 3), value, dtype=np.uint8)
    pixels[::3, ::2, 0] = 255 - value
    Image.fromarray(pixels).save(buffer, "JPEG", quality=90, **save_options)
    return buffer.getvalue()


def _rows(split, patients, count, start):
    labels = ("SNE", "LY", "EO", "BA")
    return [{"image": {"bytes": _jpeg(10 * i % 250), "path": None}, "image_id": f"{start + i}",
             "label": labels[i % len(labels)], "wbcbench_split": split, "severity": "pristine",
             "original_image_id": "", "patient_hash": patients[i % len(patients)]} for i in range(count)]


def _degraded(rows):
    severities = ("pristine", "mild", "moderate", "extreme")
    return [dict(row, image={"bytes": _jpeg(200 - 10 * i % 200), "path": None}, image_id=f"d{row['image_id']}",
                 severity=severities[i % 4], original_image_id=row["image_id"]) for i, row in enumerate(rows)]


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(pa.Table.from_pylist(rows), path)


def build_tiny_release(root, mutate=None, count=8):
    """phase2_train/eval/test, pristine + degraded, `count` images per split; mutate(tables) edits rows first."""
    tables = {}
    for number, split in enumerate(("phase2_train", "phase2_eval", "phase2_test")):
        pristine = _rows(split, [f"{split}-p{k}" for k in range(3)], count, 1000 * (number + 1))
        tables[("pristine", split)] = pristine
        tables[("degraded", split)] = _degraded(pristine)
    if mutate:
        mutate(tables)
    for (config, split), rows in tables.items():
        _write(root / config / f"{split}-00000-of-00001.parquet", rows)
    (root / "metadata").mkdir(exist_ok=True)
    (root / "metadata" / "class_legend.csv").write_text(LEGEND)
    return root


def _prepare_error(tmp_path, mutate):
    release = build_tiny_release(tmp_path / "release", mutate)
    with pytest.raises(ReleaseError) as error:
        prepare(release, tmp_path / "out", seed=0)
    return str(error.value)


def test_tiny_release_prepares(tmp_path):
    release = build_tiny_release(tmp_path / "release")
    manifest = prepare(release, tmp_path / "out", seed=0)
    counts = manifest["phases"]["eval"]["counts"]
    assert counts["pristine"]["images"] == counts["degraded"]["images"] == 4  # 8 cells, each scored once
    assert manifest["phases"]["test"]["degraded_source"] == "release"


def test_corrupt_image_names_file_and_row(tmp_path):
    def truncate(tables):
        row = tables[("pristine", "phase2_eval")][5]
        row["image"] = {"bytes": row["image"]["bytes"][:200], "path": None}
    message = _prepare_error(tmp_path, truncate)
    assert "phase2_eval-00000-of-00001.parquet: row 5: corrupt image" in message


def test_unknown_label(tmp_path):
    message = _prepare_error(tmp_path, lambda t: t[("pristine", "phase2_test")][2].update(label="NEU"))
    assert "phase2_test-00000-of-00001.parquet: row 2: label 'NEU' is not in the class legend" in message


def test_missing_column(tmp_path):
    def drop(tables):
        for row in tables[("degraded", "phase2_eval")]:
            del row["patient_hash"]
    message = _prepare_error(tmp_path, drop)
    assert "degraded/phase2_eval-00000-of-00001.parquet: missing column 'patient_hash'" in message


def test_incomplete_shards(tmp_path):
    release = build_tiny_release(tmp_path / "release")
    shard = release / "pristine" / "phase2_eval-00000-of-00001.parquet"
    shard.rename(shard.with_name("phase2_eval-00000-of-00002.parquet"))
    with pytest.raises(ReleaseError, match=r"incomplete shard set for 'phase2_eval': missing "
                                           r"\['phase2_eval-00001-of-00002.parquet'\]"):
        prepare(release, tmp_path / "out", seed=0)


def test_degraded_row_without_pristine_source(tmp_path):
    message = _prepare_error(tmp_path, lambda t: t[("degraded", "phase2_eval")][3].update(original_image_id="999"))
    assert "degraded/phase2_eval-00000-of-00001.parquet: row 3: original_image_id '999' is not in the pristine " \
           "split 'phase2_eval'" in message


def test_patient_overlap_with_train(tmp_path):
    def share(tables):
        for config in ("pristine", "degraded"):
            tables[(config, "phase2_test")][0]["patient_hash"] = "phase2_train-p1"
    message = _prepare_error(tmp_path, share)
    assert "split 'phase2_test' shares 1 patient(s) with the training split(s) ['phase2_train']" in message
    assert "phase2_train-p1" in message


def test_one_split_shared_by_two_phases_by_patient(tmp_path):
    release = build_tiny_release(tmp_path / "release", count=16)  # each phase needs a cell of every severity
    prepare(release, tmp_path / "out", seed=0, phases={"eval": "phase2_eval", "test": "phase2_eval"})
    patients = {}
    for phase in ("eval", "test"):
        lines = (tmp_path / "out" / "reference_data" / phase / "reference.csv").read_text().splitlines()[1:]
        patients[phase] = {line.split(",")[-1] for line in lines}
    assert patients["eval"] and patients["test"] and not patients["eval"] & patients["test"]


def test_jpeg_metadata_stripped_losslessly(tmp_path):
    exif = Image.Exif()
    exif[0x010F] = "ScannerCo"  # Make
    original = _jpeg(90, exif=exif.tobytes(), comment=b"LY_patient7.jpg")
    cleaned = strip_metadata(original)
    assert b"ScannerCo" in original and b"LY_patient7" in original
    assert b"ScannerCo" not in cleaned and b"LY_patient7" not in cleaned
    assert np.array_equal(np.asarray(Image.open(io.BytesIO(original))), np.asarray(Image.open(io.BytesIO(cleaned))))

    def tag(tables):  # every pristine image of the split carries the metadata: whichever cells stay pristine
        for row in tables[("pristine", "phase2_eval")]:
            row["image"] = {"bytes": original, "path": None}
    release = build_tiny_release(tmp_path / "release", tag)
    prepare(release, tmp_path / "out", seed=0)
    with zipfile.ZipFile(tmp_path / "out" / "input_data" / "eval" / "pristine.zip") as archive:
        contents = [archive.read(name) for name in archive.namelist()]
    assert contents and all(content == cleaned for content in contents)
