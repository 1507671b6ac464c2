"""prepare's organizer guards: the demo release needs --demo, a real release an explicit seed, and no degraded
image gives its severity away through its JPEG quantization tables."""
import io
import json
import zipfile
from collections import defaultdict

import numpy as np
import pytest
from PIL import Image

from jpeg_encoding import encoding_of
from prepare import main, prepare
from release_reader import DEMO_MARKER, ReleaseError
from test_prepare_errors import build_tiny_release


def _jpeg(value, quality):
    pixels = np.full((24, 24, 3), value, dtype=np.uint8)
    pixels[::3, ::2, 0] = 255 - value
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, "JPEG", quality=quality)
    return buffer.getvalue()


def test_demo_release_refused_without_demo(small_release, tmp_path, capsys):
    assert (small_release / DEMO_MARKER).is_file()
    with pytest.raises(ReleaseError, match=rf"this is the synthetic demo release \(it carries {DEMO_MARKER}\); "
                                           r"pass --demo"):
        prepare(small_release, tmp_path, seed=3)
    assert main([str(small_release), "--out", str(tmp_path), "--seed", "3"]) == 2
    assert "pass --demo to build demo data from it" in capsys.readouterr().err
    assert not (tmp_path / "input_data").exists()


def test_real_release_needs_an_explicit_seed(tmp_path, capsys):
    release = build_tiny_release(tmp_path / "release")
    with pytest.raises(ReleaseError, match=r"give the seed explicitly \(--seed N, a private number"):
        prepare(release, tmp_path / "out")
    assert main([str(release), "--out", str(tmp_path / "out")]) == 2
    assert "only demo data defaults to 0" in capsys.readouterr().err
    manifest = prepare(release, tmp_path / "out", seed=7)
    recorded = json.loads((tmp_path / "out" / "reference_data" / "manifest.json").read_text())
    assert manifest["seed"] == recorded["seed"] == 7  # pack.py reads it to refuse seed 0 on real data
    assert recorded["demo"] is False and recorded["demo_release"] is False


def test_demo_manifest_records_the_default_seed(small_bundle):
    manifest = json.loads((small_bundle / "reference_data" / "manifest.json").read_text())
    assert (manifest["seed"], manifest["demo"], manifest["demo_release"]) == (0, True, True)


def _encodings_by_severity(root, phase):
    with open(root / "reference_data" / phase / "reference.csv") as handle:
        severity = {line.split(",")[0]: line.split(",")[3] for line in handle.read().splitlines()[1:]}
    found = defaultdict(set)
    with zipfile.ZipFile(root / "input_data" / phase / "degraded.zip") as archive:
        for name in archive.namelist():
            found[severity[name[:-4]]].add(encoding_of(archive.read(name)))
    return found


def test_pristine_severity_copies_share_the_degraded_images_tables(tmp_path):
    """The release saves degraded images at quality 75 and its severity-pristine rows as byte copies of pristine
    images (quality 90): the copies must come out with the quality-75 tables, like every other degraded image."""
    def degraded_at_quality_75(tables):
        for split in ("phase2_eval", "phase2_test"):
            pristine = {row["image_id"]: row for row in tables[("pristine", split)]}
            for index, row in enumerate(tables[("degraded", split)]):
                copy = row["severity"] == "pristine"
                row["image"] = {"bytes": pristine[row["original_image_id"]]["image"]["bytes"] if copy
                                else _jpeg(200 - 10 * index, quality=75), "path": None}
    release = build_tiny_release(tmp_path / "release", degraded_at_quality_75)
    prepare(release, tmp_path / "out", seed=1)
    for phase in ("eval", "test"):
        found = _encodings_by_severity(tmp_path / "out", phase)
        assert set(found) == {"pristine", "mild", "moderate", "extreme"}
        assert len(set().union(*found.values())) == 1, found  # one encoding for every severity
        assert found["pristine"] == {encoding_of(_jpeg(0, quality=75))}


def test_demo_bundle_degraded_tables_do_not_tell_severities_apart(small_bundle):
    for phase in ("eval", "test"):
        found = _encodings_by_severity(small_bundle, phase)
        assert set(found) == {"pristine", "mild", "moderate", "extreme"}
        assert len(set().union(*found.values())) == 1
