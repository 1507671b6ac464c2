"""prepare's phases: class-stratified --phase-size, each cell in one set, patients apart between phases, class gaps
reported, and the split x class x severity tables of the manifest."""
import csv
import json
from collections import Counter
from types import SimpleNamespace

import pyarrow.parquet as pq
import pytest
from hypothesis import given
from hypothesis import strategies as st

from label_space import SEVERITIES
from phase_sampling import assign_sets, class_quota, degraded_quota
from prepare import _check_written, main, prepare
from release_reader import ReleaseError
from test_prepare_errors import build_tiny_release


def _rows(root, phase):
    with open(root / "reference_data" / phase / "reference.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@given(st.dictionaries(st.sampled_from("ABCDEFGHIJKLM"), st.integers(1, 400), min_size=1), st.data())
def test_class_quota_keeps_every_class_and_stays_proportional(counts, data):
    total = sum(counts.values())
    size = data.draw(st.integers(len(counts), total))
    quota = class_quota(counts, size)
    assert sum(quota.values()) == size and set(quota) == set(counts)
    assert all(1 <= quota[c] <= counts[c] for c in counts)
    share = {c: size * counts[c] / total for c in counts}
    lifted = sum(share[c] < 1 for c in counts)  # classes raised to the minimum of one, paid for by the others
    for c in counts:
        assert abs(quota[c] - share[c]) < 1 + lifted
        if share[c] >= 1 and not lifted:
            assert int(share[c]) <= quota[c] <= int(share[c]) + 1  # plain largest remainder


def test_class_quota_rare_classes_and_too_small_sizes():
    assert class_quota({"SNE": 900, "LY": 90, "PLY": 10}, 20) == {"SNE": 18, "LY": 1, "PLY": 1}
    assert class_quota({"SNE": 50, "LY": 30, "PLY": 20}, 10) == {"SNE": 5, "LY": 3, "PLY": 2}
    with pytest.raises(ReleaseError, match="a phase size of 2 cannot keep one cell of each of the 3 classes"):
        class_quota({"SNE": 50, "LY": 30, "PLY": 20}, 2)


def test_phase_size_is_class_stratified_each_cell_once(small_release, tmp_path):
    out = tmp_path / "out"
    assert main([str(small_release), "--out", str(out), "--demo", "--phase", "eval=phase2_eval",
                 "--phase-size", "eval=20"]) == 0
    rows = _rows(out, "eval")
    table = pq.read_table(small_release / "pristine" / "phase2_eval-00000-of-00001.parquet", columns=["label"])
    split_counts = Counter(table.column("label").to_pylist())
    assert len(rows) == len({row["cell_id"] for row in rows}) == 20  # 20 cells, one image each
    assert Counter(row["label"] for row in rows) == class_quota(split_counts, 20)  # all 13 classes kept
    manifest = json.loads((out / "reference_data" / "manifest.json").read_text())
    assert manifest["phase_sizes"] == {"eval": 20}
    lone = sorted(label for label, count in class_quota(split_counts, 20).items() if count == 1)
    assert manifest["warnings"] == [f"phase 'eval' has a single cell of class(es) {', '.join(lone)}: each is scored "
                                    "in the degraded set only, and the pristine set's macro averages skip them"]
    assert all(row["set"] == "degraded" for row in rows if row["label"] in lone)


@given(st.dictionaries(st.sampled_from("ABCDEFGHIJKLM"), st.integers(1, 60), min_size=1),
       st.floats(0.05, 0.95), st.integers(0, 3), st.booleans(), st.data())
def test_assign_sets_puts_each_cell_in_one_set(cells_per_class, share, seed, several, data):
    """Per class: the degraded quota, at least one cell in each set from two cells on, one version per cell;
    with one version per cell, a severity the set lacks is one that no swap within a class could add (assign_sets'
    promise: the quotas may leave no room, e.g. lone cells forced into the set take the slots)."""
    pristine, versions = [], []
    for label, count in cells_per_class.items():
        first = data.draw(st.lists(st.integers(0, 3), min_size=count, max_size=count), label=f"severities of {label}")
        for k in range(count):
            cell = SimpleNamespace(cell_id=f"{label}{k}", label=label, severity="pristine")
            pristine.append(cell)
            for severity in SEVERITIES[first[k]: 1 + first[k] + (k % 3 if several else 0)]:  # 1 to 3 versions
                versions.append(SimpleNamespace(cell_id=cell.cell_id, label=label, severity=severity))
    kept, degraded = assign_sets({"pristine": pristine, "degraded": versions}, share, seed)
    assert sorted(c.cell_id for c in kept + degraded) == sorted(c.cell_id for c in pristine)
    assert all(version in versions for version in degraded)
    assert len({version.cell_id for version in degraded}) == len(degraded)
    for label, count in cells_per_class.items():
        assert sum(c.label == label for c in degraded) == degraded_quota(count, share)
        assert sum(c.label == label for c in kept) == count - degraded_quota(count, share)
    if not several:
        held, taken = Counter(version.severity for version in degraded), {version.cell_id for version in degraded}
        for left in versions:
            if left.severity not in held and left.cell_id not in taken:
                assert not any(cell.label == left.label and held[cell.severity] > 1 for cell in degraded), left
    assert assign_sets({"pristine": pristine, "degraded": versions}, share, seed) == (kept, degraded)  # seeded


def test_a_severity_the_draw_left_out_is_swapped_in_within_its_class():
    """The draw gives class B's one degraded slot to its mild cell (the severity quotas follow the versions, mostly
    mild); swapping in B's moderate cell is what puts moderate in the set, mild staying with class A, and no class's
    count changes."""
    severities = {"A0": "mild", "A1": "mild", "A2": "mild", "A3": "mild", "A4": "mild", "B0": "pristine",
                  "B1": "mild", "B2": "moderate", "C0": "extreme"}
    pristine = [SimpleNamespace(cell_id=cell, label=cell[0], severity="pristine") for cell in severities]
    versions = [SimpleNamespace(cell_id=cell, label=cell[0], severity=found) for cell, found in severities.items()]
    kept, degraded = assign_sets({"pristine": pristine, "degraded": versions}, 0.25, 0)
    assert sorted(version.severity for version in degraded) == ["extreme", "mild", "moderate"]
    assert Counter(version.label for version in degraded) == {"A": 1, "B": 1, "C": 1}


def test_degraded_share_option(small_release, tmp_path, capsys):
    for share in (0.5, 0.8):
        prepare(small_release, tmp_path / str(share), demo=True, degraded_share=share, phases={"eval": "phase2_eval"})
        rows = _rows(tmp_path / str(share), "eval")
        labels = Counter(row["label"] for row in rows)
        degraded = Counter(row["label"] for row in rows if row["set"] == "degraded")
        assert degraded == {label: degraded_quota(count, share) for label, count in labels.items()}
    with pytest.raises(ReleaseError, match=r"--degraded-share 1.0: expected a fraction strictly between 0 and 1"):
        prepare(small_release, tmp_path / "bad", demo=True, degraded_share=1.0)


def test_a_phase_too_small_for_every_severity_is_refused(pbc_release, tmp_path):
    with pytest.raises(ReleaseError, match=r"phase 'eval': its degraded set \(\d+ cells\) has no image of severity "):
        prepare(pbc_release, tmp_path, seed=0, phases={"eval": "phase2_eval"}, limit=3)


def test_a_release_with_several_versions_of_a_cell_keeps_one(tmp_path):
    def second_version(tables):
        degraded = tables[("degraded", "phase2_eval")]
        degraded += [dict(row, image_id=f"{row['image_id']}b") for row in list(degraded)]
    release = build_tiny_release(tmp_path / "release", second_version)
    prepare(release, tmp_path / "out", seed=1)
    rows = _rows(tmp_path / "out", "eval")
    assert len(rows) == len({row["cell_id"] for row in rows}) == 8


def test_written_data_is_checked_for_a_cell_scored_twice(tmp_path):
    """prepare re-reads what it wrote; a reference naming a cell twice stops it (its last line of defence)."""
    release = build_tiny_release(tmp_path / "release")
    prepare(release, tmp_path / "out", seed=1)
    path = tmp_path / "out" / "reference_data" / "eval" / "reference.csv"
    lines = path.read_text().splitlines()
    first, second = lines[1].split(","), lines[2].split(",")
    second[4] = first[4]  # cell_id
    path.write_text("\n".join([lines[0], lines[1], ",".join(second)] + lines[3:]) + "\n")
    with pytest.raises(RuntimeError, match=f"eval: cell {first[4]} was written 2 times; each cell must be scored "
                                           "once per phase"):
        _check_written(tmp_path / "out", "eval", None)


def test_phase_size_errors(tmp_path, capsys):
    release = build_tiny_release(tmp_path / "release")
    assert main([str(release), "--out", str(tmp_path / "out"), "--seed", "1", "--phase-size", "eval=0"]) == 2
    assert "--phase-size 'eval=0': expected NAME=N with N >= 1" in capsys.readouterr().err
    with pytest.raises(ReleaseError, match=r"--phase-size names phase\(s\) \['dev'\] that are not built"):
        prepare(release, tmp_path / "out", seed=1, phase_sizes={"dev": 5})
    with pytest.raises(ReleaseError, match="a phase size of 3 cannot keep one cell of each of the 4 classes"):
        prepare(release, tmp_path / "out", seed=1, phase_sizes={"eval": 3})


def test_phases_from_different_splits_must_not_share_patients(tmp_path):
    def share(tables):
        for config in ("pristine", "degraded"):
            tables[(config, "phase2_test")][0]["patient_hash"] = "phase2_eval-p2"
    release = build_tiny_release(tmp_path / "release", share)
    with pytest.raises(ReleaseError, match=r"phases 'eval' and 'test' share 1 patient\(s\), e.g. patient_hash "
                                           r"'phase2_eval-p2'"):
        prepare(release, tmp_path / "out", seed=1)


def test_class_gaps_are_reported_with_counts(tmp_path, capsys):
    """Every BA cell of phase2_eval comes from one patient: sharing the split by patient leaves one phase without BA."""
    def one_patient_for_ba(tables):
        for config in ("pristine", "degraded"):
            for row in tables[(config, "phase2_eval")]:
                if row["label"] == "BA":
                    row["patient_hash"] = "phase2_eval-p0"
        seen = Counter()
        for row in tables[("degraded", "phase2_eval")]:  # every patient's other cells take each severity in turn
            if row["label"] != "BA":
                row["severity"] = SEVERITIES[seen[row["patient_hash"]] % 4]
                seen[row["patient_hash"]] += 1
    release = build_tiny_release(tmp_path / "release", one_patient_for_ba, count=16)
    manifest = prepare(release, tmp_path / "out", seed=1, phases={"eval": "phase2_eval", "test": "phase2_eval"})
    lacking = [phase for phase in ("eval", "test") if not manifest["phases"][phase]["counts"]["pristine"]["by_class"]
               .get("BA")]
    assert len(lacking) == 1
    expected = (f"phase '{lacking[0]}' has no image of class(es) BA, which split 'phase2_eval' has "
                "(images in the split: BA 4); its macro averages skip them")
    assert expected in manifest["warnings"]
    assert "split 'phase2_eval' has no image of class(es) BL, BNE, MMY, MO, MY, PC, PLY, PMY, VLY (4 of the 13 " \
           "classes are present)" in manifest["warnings"]
    assert f"prepare: warning: {expected}" in capsys.readouterr().err


def test_manifest_tables_match_the_release(small_release, small_bundle):
    manifest = json.loads((small_bundle / "reference_data" / "manifest.json").read_text())
    for config in ("pristine", "degraded"):
        for split in ("phase2_train", "phase2_eval", "phase2_test"):
            table = pq.read_table(small_release / config / f"{split}-00000-of-00001.parquet",
                                  columns=["label", "severity"])
            expected = Counter(zip(table.column("severity").to_pylist(), table.column("label").to_pylist()))
            recorded = manifest["release_counts"][split][config]
            assert {(s, c): n for s, by_class in recorded.items() for c, n in by_class.items()} == expected
    for phase in ("eval", "test"):
        for set_name in ("pristine", "degraded"):
            counts = manifest["phases"][phase]["counts"][set_name]
            rows = [row for row in _rows(small_bundle, phase) if row["set"] == set_name]
            cross = counts["by_severity_and_class"]
            assert Counter({(s, c): n for s, by_class in cross.items() for c, n in by_class.items()}) == \
                Counter((row["severity"], row["label"]) for row in rows)
