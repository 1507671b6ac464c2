"""prepare on the real PBC cells: no degraded config and no test split, so both are built (subsampled for speed)."""
import csv
import io
import json
import zipfile

import numpy as np
import pyarrow.parquet as pq
from PIL import Image

from prepare import prepare


def test_pbc_synthesized_degraded_and_shared_split(pbc_release, tmp_path):
    manifest = prepare(pbc_release, tmp_path, seed=0, phases={"eval": "phase2_eval", "test": "phase2_eval"},
                       limit=24)
    assert json.loads((tmp_path / "reference_data" / "manifest.json").read_text())["demo"] is False
    table = pq.read_table(pbc_release / "pristine" / "phase2_eval-00000-of-00001.parquet", columns=["image_id", "image"])
    release = dict(zip(table.column("image_id").to_pylist(),
                       table.column("image").combine_chunks().field("bytes").to_pylist()))
    patients = {}
    for phase in ("eval", "test"):
        entry = manifest["phases"][phase]
        assert entry["degraded_source"] == "synthesized"
        with open(tmp_path / "reference_data" / phase / "reference.csv", newline="") as handle:
            rows = list(csv.DictReader(handle))
        assert len(rows) == len({row["cell_id"] for row in rows}) == 24  # each cell once, in one set
        assert entry["counts"]["degraded"]["images"] > entry["counts"]["pristine"]["images"] > 0
        patients[phase] = {row["patient_hash"] for row in rows}
        degraded = [row for row in rows if row["set"] == "degraded"]
        for row in degraded:  # every synthesized image has its parameters on the reference side
            params = entry["degradation_params"][row["release_image_id"]]
            assert params["severity"] == row["severity"] and params["original_image_id"] == row["cell_id"]
        with zipfile.ZipFile(tmp_path / "input_data" / phase / "pristine.zip") as archive:
            for row in rows:
                if row["set"] != "pristine":
                    continue
                data = archive.read(f"{row['image_id']}.jpg")
                assert b"Intel(R) JPEG Library" not in data  # PBC's JPEG comment is stripped ...
                source = release[row["release_image_id"]]
                assert np.array_equal(np.asarray(Image.open(io.BytesIO(data))),  # ... and the pixels kept
                                      np.asarray(Image.open(io.BytesIO(source))))
    assert not patients["eval"] & patients["test"]
