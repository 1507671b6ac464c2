"""Demo release: the real release's parquet layout and schema, class balance, links, recorded degradations."""
import csv
import io
from collections import Counter

import numpy as np
import pyarrow.parquet as pq
import pytest
import yaml
from PIL import Image

import degrade
import make_demo_release as mdr

TINY = {"phase2_train": 39, "phase2_eval": 39, "phase2_test": 39}  # 3 per class: the smallest allowed


def read(release, config, split):
    return pq.read_table(release / config / f"{split}-00000-of-00001.parquet").to_pylist()


@pytest.fixture(scope="module")
def tables(small_release):
    return {(config, split): read(small_release, config, split)
            for config in ("pristine", "degraded") for split in mdr.SPLITS}


def recorded_params(row):
    """A degradation_params.csv row back to the params dict degrade.apply takes."""
    params = {}
    for key in degrade.PARAM_KEYS:
        value = degrade.IDENTITY[key]
        params[key] = type(value)(row[key]) if not isinstance(value, str) else row[key]
    return params


def test_layout_and_legend(small_release):
    names = sorted(p.relative_to(small_release).as_posix() for p in small_release.rglob("*") if p.is_file())
    shards = [f"{config}/{split}-00000-of-00001.parquet" for config in ("degraded", "pristine")
              for split in sorted(mdr.SPLITS)]
    assert names == sorted(shards + ["metadata/class_legend.csv", "metadata/degradation_params.csv", "README.md",
                                     mdr.DEMO_MARKER])
    with open(small_release / "metadata" / "class_legend.csv") as f:
        legend = list(csv.DictReader(f))
    assert [r["abbreviation"] for r in legend] == list(mdr.CLASSES)


def test_dataset_card_declares_every_config_and_split(small_release):
    """The README front matter the hub reads: configs pristine and degraded, one data_files entry per split."""
    text = (small_release / "README.md").read_text()
    assert text.startswith("---\n")
    card = yaml.safe_load(text.split("---\n")[1])
    declared = {entry["config_name"]: {item["split"]: item["path"] for item in entry["data_files"]}
                for entry in card["configs"]}
    assert declared == {config: {split: f"{config}/{split}-*.parquet" for split in mdr.SPLITS}
                        for config in ("pristine", "degraded")}


def test_schema_is_the_declared_one(small_release):
    for shard in small_release.glob("*/*.parquet"):
        schema = pq.read_schema(shard)
        assert schema.equals(mdr.SCHEMA, check_metadata=True), shard
        assert str(schema.field("image").type) == "struct<bytes: binary, path: string>"


def test_schema_and_legend_match_the_real_release(small_release, pbc_release):
    real = pq.read_schema(next((pbc_release / "pristine").glob("phase2_eval-*.parquet")))
    for shard in small_release.glob("*/*.parquet"):
        assert pq.read_schema(shard).equals(real, check_metadata=True), shard
    real_legend = (pbc_release / "metadata" / "class_legend.csv").read_text().split()
    assert (small_release / "metadata" / "class_legend.csv").read_text().split() == real_legend


def test_images_are_368px_rgb_jpegs_with_null_paths(tables):
    for (config, split), rows in tables.items():
        for row in rows[:5]:
            assert row["image"]["path"] is None
            image = Image.open(io.BytesIO(row["image"]["bytes"]))
            assert (image.format, image.mode, image.size) == ("JPEG", "RGB", (368, 368))


def test_every_class_in_every_split_with_wbcbench_imbalance(tables):
    for split in mdr.SPLITS:
        for config in ("pristine", "degraded"):
            counts = Counter(r["label"] for r in tables[config, split])
            assert set(counts) == set(mdr.CLASSES), (config, split)
            assert min(counts.values()) >= mdr.MIN_PER_CLASS
        counts = Counter(r["label"] for r in tables["pristine", split])
        assert counts["SNE"] > max(n for c, n in counts.items() if c != "SNE")
        assert counts["PLY"] == min(counts.values())
    train = Counter(r["label"] for r in tables["pristine", "phase2_train"])
    assert 0.35 <= train["SNE"] / sum(train.values()) <= 0.5
    assert train["LY"] > train["PC"] > train["PLY"]


def test_ids_unique_and_patients_disjoint_between_splits(tables):
    ids = [r["image_id"] for rows in tables.values() for r in rows]
    assert len(ids) == len(set(ids)) and all(len(i) == 8 and i.isdigit() for i in ids)
    patients = {split: {r["patient_hash"] for r in tables["pristine", split]} for split in mdr.SPLITS}
    for a in mdr.SPLITS:
        for b in mdr.SPLITS:
            assert a == b or not patients[a] & patients[b], (a, b)
    assert all(len(p) > 1 for p in patients.values())


def test_degraded_rows_link_to_pristine_rows_of_the_same_split(tables):
    for split in mdr.SPLITS:
        pristine = {r["image_id"]: r for r in tables["pristine", split]}
        degraded = tables["degraded", split]
        assert all(r["severity"] == "pristine" and r["original_image_id"] == "" for r in pristine.values())
        assert all(r["wbcbench_split"] == split for r in degraded + list(pristine.values()))
        assert sorted(r["original_image_id"] for r in degraded) == sorted(pristine)  # one version per cell
        for r in degraded:
            source = pristine[r["original_image_id"]]
            assert (r["label"], r["patient_hash"]) == (source["label"], source["patient_hash"])
            if r["severity"] == "pristine":
                assert r["image"]["bytes"] == source["image"]["bytes"]  # an unmodified copy
            else:
                assert r["image"]["bytes"] != source["image"]["bytes"]
        severities = Counter(r["severity"] for r in degraded)
        assert set(severities) == set(degrade.SEVERITIES)
        assert severities["pristine"] < severities["mild"]


def test_degradation_params_are_recorded_and_reproduce_the_images(small_release, tables):
    with open(small_release / "metadata" / "degradation_params.csv") as f:
        params = {r["image_id"]: r for r in csv.DictReader(f)}
    degraded = [r for split in mdr.SPLITS for r in tables["degraded", split]]
    assert sorted(params) == sorted(r["image_id"] for r in degraded)
    pristine = {r["image_id"]: r for split in mdr.SPLITS for r in tables["pristine", split]}
    checked = Counter()
    for r in degraded:
        row = params[r["image_id"]]
        assert (row["original_image_id"], row["severity"]) == (r["original_image_id"], r["severity"])
        if checked[r["severity"]] < 2:  # re-apply the recorded params to the pristine source: the same image
            checked[r["severity"]] += 1
            source = Image.open(io.BytesIO(pristine[r["original_image_id"]]["image"]["bytes"]))
            again = degrade.apply(source, recorded_params(row))
            if r["severity"] == "pristine":  # identity params; the row holds the source's own bytes
                assert np.array_equal(np.asarray(again), np.asarray(Image.open(io.BytesIO(r["image"]["bytes"]))))
            else:
                assert mdr._jpeg(again) == r["image"]["bytes"]
    assert set(checked) == set(degrade.SEVERITIES)


def test_same_seed_byte_identical_whatever_the_worker_count(tmp_path, capsys):
    mdr.main(["--out", str(tmp_path / "a"), "--seed", "3", "--train", "39", "--eval", "39", "--test", "39",
              "--workers", "1"])
    printed = capsys.readouterr().out
    assert "phase2_train" in printed and "SNE" in printed
    mdr.build_release(tmp_path / "b", seed=3, split_sizes=TINY, workers=2)
    files = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    assert len(files) == 10
    for name in files:
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes(), name


def test_another_seed_another_release():
    """The seed drives every random choice (labels' order, ids, patients, severities, per-image seeds)."""
    a, b = mdr._plan(3, TINY), mdr._plan(4, TINY)
    for split in TINY:
        for key in ("label", "image_id", "severity", "cell_seed"):
            assert [r[key] for r in a[split]] != [r[key] for r in b[split]], (split, key)


def test_too_small_split_is_a_clear_error(tmp_path):
    with pytest.raises(ValueError, match="phase2_eval: 20 images is fewer than 3 per class"):
        mdr.build_release(tmp_path, split_sizes={"phase2_train": 39, "phase2_eval": 20, "phase2_test": 39})


@pytest.mark.parametrize("total", [39, 40, 300, 2000])
def test_allocate_sums_to_total_with_minimum(total):
    counts = mdr.allocate(total, mdr.CLASS_FREQUENCY, mdr.MIN_PER_CLASS)
    assert sum(counts.values()) == total and min(counts.values()) >= mdr.MIN_PER_CLASS
    assert max(counts, key=counts.get) == "SNE"
