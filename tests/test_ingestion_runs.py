"""End to end: ingestion.py run as a subprocess with the CodaBench positional arguments on tiny generated zips."""
import csv
import io
import json
import os
import re
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
PROGRAM = REPO / "ingestion_program"
CLASSES = ("BA", "BL", "BNE", "EO", "LY", "MMY", "MO", "MY", "PC", "PLY", "PMY", "SNE", "VLY")
IMAGES_PER_SET = 12

# A model whose label depends on the image, so rows differ and a wrong id/label pairing would show.
LABEL_MODEL = """
CLASSES = ("BA", "BL", "BNE", "EO", "LY", "MMY", "MO", "MY", "PC", "PLY", "PMY", "SNE", "VLY")
class Model:
    def load(self):
        pass
    def predict(self, image):
        assert image.mode == "RGB", image.mode
        return CLASSES[round(image.getpixel((4, 4))[0] / 20) % 13]
"""


def jpeg(colour, mode="RGB", size=(16, 16), fmt="JPEG"):
    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, fmt)
    return buffer.getvalue()


def write_zip(path, members):
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)


def make_input(folder, pristine=None, degraded=None):
    """input_data with two zips; by default IMAGES_PER_SET solid-colour JPEGs each, red = 20 * index."""
    folder.mkdir(parents=True, exist_ok=True)
    default = {f"{i:012x}.jpg": jpeg((20 * i, 90, 60)) for i in range(IMAGES_PER_SET)}
    write_zip(folder / "pristine.zip", default if pristine is None else pristine)
    write_zip(folder / "degraded.zip", default if degraded is None else degraded)
    return folder


def make_submission(folder, source, **extra_files):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.py").write_text(textwrap.dedent(source))
    for name, text in extra_files.items():
        (folder / name.replace("__", ".")).write_text(text)
    return folder


def ingest(tmp_path, submission, input_dir=None, *options, env=None, timeout=60):
    """Run ingestion.py exactly as metadata.yaml does (paths mapped to tmp folders)."""
    input_dir = input_dir or make_input(tmp_path / "input_data")
    output = tmp_path / "output"
    done = subprocess.run([sys.executable, str(PROGRAM / "ingestion.py"), str(input_dir), str(output),
                           str(PROGRAM), str(submission), *options],
                          capture_output=True, text=True, timeout=timeout, env=env)
    report_path = output / "run_report.json"
    report = json.loads(report_path.read_text()) if report_path.is_file() else None
    return done, report, output


def rows(output):
    with open(output / "predictions.csv", newline="") as handle:
        return list(csv.reader(handle))


def test_metadata_yaml_runs_this_program_with_codabench_paths():
    text = (PROGRAM / "metadata.yaml").read_text()
    assert ("command: python3 /app/program/ingestion.py /app/input_data/ /app/output/ /app/program "
            "/app/ingested_program") in text


def test_label_model_writes_sorted_predictions_and_report(tmp_path):
    submission = make_submission(tmp_path / "sub", LABEL_MODEL)
    done, report, output = ingest(tmp_path, submission)
    assert done.returncode == 0, done.stderr
    table = rows(output)
    assert table[0] == ["image_id", "set", "label"]
    expected = [[f"{i:012x}", s, CLASSES[i % 13]] for s in ("pristine", "degraded") for i in range(IMAGES_PER_SET)]
    assert table[1:] == expected
    assert report["status"] == "ok" and report["reason"] is None
    assert report["device"] == "cpu" and report["prediction_mode"] == "predict"
    for set_name in ("pristine", "degraded"):
        stats = report["sets"][set_name]
        assert (stats["images"], stats["predicted"], stats["errors"]) == (IMAGES_PER_SET, IMAGES_PER_SET, 0)
        assert stats["seconds"] > 0 and stats["images_per_second"] > 0
    assert report["peak_memory_mb"] > 10 and report["budget_seconds"] == 3300
    assert not (output / "metadata").exists()
    assert "ok: 12 pristine + 12 degraded predictions, 0 errors" in done.stderr
    assert re.search(r"images/s, \d+ s of the 3300 s time budget -> ", done.stderr)  # the local default budget


def test_probabilities_in_every_accepted_form_are_rescaled(tmp_path):
    model = """
    import numpy as np
    CLASSES = ("BA", "BL", "BNE", "EO", "LY", "MMY", "MO", "MY", "PC", "PLY", "PMY", "SNE", "VLY")
    class Model:
        def load(self):
            pass
        def predict(self, image):
            i = round(image.getpixel((4, 4))[0] / 20)
            scores = [1.0] * 13
            scores[i % 13] = 3.0
            return [scores, tuple(scores), np.array(scores, dtype=np.float32), dict(zip(CLASSES, scores))][i % 4]
    """
    done, report, output = ingest(tmp_path, make_submission(tmp_path / "sub", model))
    assert done.returncode == 0, done.stderr
    table = rows(output)
    assert table[0] == ["image_id", "set", "label"] + [f"prob_{c}" for c in CLASSES]
    assert report["probabilities"] is True
    for i, row in enumerate(table[1:IMAGES_PER_SET + 1]):
        assert row[2] == CLASSES[i % 13]
        assert row[3 + i % 13] == "0.200000" and row[3 + (i + 1) % 13] == "0.066667"


def test_predict_batch_is_used_and_a_wrong_count_falls_back_to_predict(tmp_path):
    model = """
    CLASSES = ("BA", "BL", "BNE", "EO", "LY", "MMY", "MO", "MY", "PC", "PLY", "PMY", "SNE", "VLY")
    class Model:
        def load(self):
            self.calls = 0
        def predict(self, image):
            return "LY"
        def predict_batch(self, images):
            self.calls += 1
            labels = [CLASSES[round(im.getpixel((4, 4))[0] / 20) % 13] for im in images]
            return labels[:-1] if self.calls == 2 else labels
    """
    done, report, output = ingest(tmp_path, make_submission(tmp_path / "sub", model), None, "--batch-size", "5")
    assert done.returncode == 0, done.stderr
    assert report["prediction_mode"] == "predict_batch" and report["batch_fallbacks"] == 1
    assert report["warnings"] == ["predict_batch returned 4 predictions for 5 images; "
                                  "that batch was predicted image by image with predict"]
    labels = [row[2] for row in rows(output)[1:]]
    assert labels[:IMAGES_PER_SET] == [CLASSES[i % 13] if not 5 <= i < 10 else "LY" for i in range(IMAGES_PER_SET)]


def test_predict_raising_records_the_image_and_fails_over_the_error_rate(tmp_path):
    model = """
    class Model:
        def load(self):
            pass
        def predict(self, image):
            if image.getpixel((4, 4))[0] > 200:
                raise ValueError("cannot classify this cell")
            return "SNE"
    """
    submission = make_submission(tmp_path / "sub", model)
    done, report, output = ingest(tmp_path, submission)
    assert done.returncode == 1
    first = "pristine/00000000000b: predict raised ValueError: cannot classify this cell (model.py:7)"
    assert report["reason"] == f"2 of 24 images failed (8.33%), more than the allowed 1.00%; first: {first}"
    assert report["errors"] == [{"set": s, "image_id": "00000000000b",
                                 "error": "predict raised ValueError: cannot classify this cell (model.py:7)"}
                                for s in ("pristine", "degraded")]
    assert len(rows(output)) == 1 + 2 * (IMAGES_PER_SET - 1)  # failed images are not written: scoring reports them

    done, report, _ = ingest(tmp_path, submission, None, "--max-error-rate", "0.1")
    assert done.returncode == 0 and report["status"] == "ok" and report["errors_total"] == 2


JUNK_MODEL = """
import math
import numpy as np
class Model:
    def load(self):
        pass
    def predict(self, image):
        i = round(image.getpixel((4, 4))[0] / 20)
        return ["SNE", "XX", None, [math.nan] + [1.0] * 12, [-0.5] + [1.0] * 12, [0.1] * 12, {"FOO": 1.0},
                np.zeros(13), 7, "sne", [math.inf] * 13, [[0.1] * 13] * 2][i]
"""
JUNK_ERRORS = [
    "predict returned unknown label 'XX' (expected one of BA, BL, BNE, EO, LY, MMY, MO, MY, PC, PLY, PMY, SNE, VLY)",
    "predict returned None (expected a label, a {label: probability} dict or 13 probabilities in CLASSES order)",
    "predict returned probabilities containing NaN or infinity",
    "predict returned a negative probability -0.5 for BA (return probabilities, e.g. a softmax, not logits)",
    "predict returned 12 values (expected a label, a {label: probability} dict or 13 probabilities in CLASSES order)",
    "predict returned a probability dict with unknown labels 'FOO' (expected labels among BA, BL, BNE, EO, LY, MMY, "
    "MO, MY, PC, PLY, PMY, SNE, VLY)",
    "predict returned probabilities that sum to 0",
    "predict returned a single int value (expected a label, a {label: probability} dict or 13 probabilities in "
    "CLASSES order)",
    "predict returned unknown label 'sne'; labels are case-sensitive: did you mean 'SNE'? (expected one of BA, BL, BNE, "
    "EO, LY, MMY, MO, MY, PC, PLY, PMY, SNE, VLY)",
    "predict returned probabilities containing NaN or infinity",
    "predict returned 2x13 values (expected a label, a {label: probability} dict or 13 probabilities in CLASSES "
    "order)",
]


def test_junk_outputs_are_per_image_errors_with_exact_messages(tmp_path):
    done, report, output = ingest(tmp_path, make_submission(tmp_path / "sub", JUNK_MODEL), None,
                                  "--max-error-rate", "1")
    assert done.returncode == 0, done.stderr
    pristine_errors = [e["error"] for e in report["errors"] if e["set"] == "pristine"]
    assert pristine_errors == JUNK_ERRORS
    assert rows(output)[1:] == [["000000000000", "pristine", "SNE"], ["000000000000", "degraded", "SNE"]]


def test_a_hanging_model_is_stopped_by_the_time_budget(tmp_path):
    model = """
    import time
    class Model:
        def load(self):
            pass
        def predict(self, image):
            if image.getpixel((4, 4))[0] > 90:
                time.sleep(600)
            return "BA"
    """
    done, report, output = ingest(tmp_path, make_submission(tmp_path / "sub", model), None, "--budget-seconds", "3",
                                  timeout=30)
    assert done.returncode == 1
    assert report["status"] == "failed"
    assert report["reason"] == ("time budget of 3 s exceeded while predicting the pristine set (5 of 24 images done); "
                                "the predictions made so far were written; the whole phase needs a faster model: give "
                                "the model a predict_batch method, which takes a batch per call "
                                "(pages/starting_kit.md)")
    assert [row[0] for row in rows(output)[1:]] == [f"{i:012x}" for i in range(5)]
    assert 3 <= report["total_seconds"] < 10


def test_time_budget_from_the_environment_covers_loading(tmp_path):
    model = """
    import time
    class Model:
        def load(self):
            time.sleep(600)
        def predict(self, image):
            return "BA"
    """
    env = {**os.environ, "WBC_TIME_BUDGET_SECONDS": "2"}
    done, report, output = ingest(tmp_path, make_submission(tmp_path / "sub", model), env=env, timeout=30)
    assert done.returncode == 1
    assert report["reason"] == ("time budget of 2 s exceeded while loading the submission (0 of 24 images done); "
                                "no prediction was made; Model() and load() alone used the budget: load less, or load "
                                "faster")
    assert not (output / "predictions.csv").exists()


def test_a_model_printing_megabytes_goes_to_a_capped_log(tmp_path):
    model = """
    import os, sys
    class Model:
        def load(self):
            print("hello from load")
        def predict(self, image):
            print("x" * 400_000)
            os.write(2, b"y" * 400_000)
            sys.stderr.write("z" * 10)
            return "EO"
    """
    done, report, output = ingest(tmp_path, make_submission(tmp_path / "sub", model))
    assert done.returncode == 0, done.stderr[-2000:]
    assert "xxxx" not in done.stdout + done.stderr and "yyyy" not in done.stdout + done.stderr
    log = (output / "submission_output.log").read_bytes()
    assert log.startswith(b"hello from load\n")
    assert report["submission_log"]["truncated"] is True
    assert report["submission_log"]["bytes_printed"] == len("hello from load\n") + 24 * (400_001 + 400_000 + 10)
    assert log.endswith(f"\n[ingestion] log truncated: the submission printed "
                        f"{report['submission_log']['bytes_printed']} bytes, only the first 5000000 are kept\n".encode())
    assert len(log) < 5_000_200


def test_files_the_model_writes_into_the_output_are_overwritten_and_listed(tmp_path):
    # The model's process does not get the output path; it reads it from the supervisor's command line.
    model = """
    import os
    from pathlib import Path
    class Model:
        def load(self):
            out = Path(open(f"/proc/{os.getppid()}/cmdline").read().split("\\0")[3])
            (out / "predictions.csv").write_text("image_id,set,label\\nforged,pristine,BA\\n")
            (out / "run_report.json").write_text("{}")
            (out / "notes.txt").write_text("hi")
        def predict(self, image):
            return "MO"
    """
    done, report, output = ingest(tmp_path, make_submission(tmp_path / "sub", model))
    assert done.returncode == 0
    assert "forged" not in (output / "predictions.csv").read_text()
    assert report["unexpected_output_files"] == ["notes.txt", "predictions.csv", "run_report.json"]
    assert report["warnings"] == ["the submission wrote into the output folder (removed before the outputs were "
                                  "written): notes.txt, predictions.csv, run_report.json"]


@pytest.mark.parametrize("source, extra, reason", [
    ("import nonexistent_wbc_package\n", {},
     "model.py imports 'nonexistent_wbc_package' (package 'nonexistent_wbc_package'), which is not in the "
     "competition image, and the platform installs nothing: use the image's packages (pages/starting_kit.md "
     "lists them), or put the module's pure-Python code in your zip next to model.py"),
    ("import cv2\n", {"requirements__txt": "opencv-python-headless>=4\n"},
     "model.py imports 'cv2' (package 'opencv-python-headless'), which is not in the competition image, and the "
     "platform installs nothing: use the image's packages (pages/starting_kit.md lists them), or put the module's "
     "pure-Python code in your zip next to model.py; listing it in requirements.txt does not install it"),
    ("class Predictor:\n    pass\n", {}, "model.py defines no class named Model (classes found: Predictor)"),
    ("class Model:\n    def __init__(self, path):\n        pass\n", {},
     "Model() raised TypeError: Model.__init__() missing 1 required positional argument: 'path'"),
    ("class Model:\n    def load(self):\n        open('weights.pt')\n    def predict(self, image):\n        return 'BA'\n",
     {}, "Model.load() raised FileNotFoundError: [Errno 2] No such file or directory: 'weights.pt' (model.py:3)"),
    ("class Model:\n    def load(self):\n        pass\n", {}, "Model has neither predict(image) nor predict_batch(images)"),
    ("def broken(:\n", {}, "importing model.py raised SyntaxError: invalid syntax (model.py, line 1)"),
])
def test_broken_submissions_fail_with_a_clear_reason(tmp_path, source, extra, reason):
    done, report, output = ingest(tmp_path, make_submission(tmp_path / "sub", source, **extra))
    assert done.returncode == 1
    assert report["status"] == "failed" and report["reason"] == reason
    assert f"[ingestion] failed: {reason}" in done.stderr
    assert not (output / "predictions.csv").exists()


def test_load_failure_keeps_the_traceback_tail(tmp_path):
    source = "class Model:\n    def load(self):\n        raise RuntimeError('no weights')\n    def predict(self, im):\n        pass\n"
    done, report, _ = ingest(tmp_path, make_submission(tmp_path / "sub", source))
    assert report["reason"] == "Model.load() raised RuntimeError: no weights (model.py:3)"
    assert 'model.py", line 3, in load' in report["traceback"] and "RuntimeError: no weights" in done.stderr


def test_no_model_py_and_an_enclosing_folder(tmp_path):
    empty = tmp_path / "empty"
    (empty / "weights").mkdir(parents=True)
    (empty / "README.md").write_text("hi")
    done, report, _ = ingest(tmp_path, empty)
    assert report["reason"] == ("no model.py in the submission (looked at the top and one folder down; found: "
                                "README.md, weights/); put model.py at the top of your zip")

    wrapped = tmp_path / "wrapped"
    make_submission(wrapped / "my_submission", LABEL_MODEL)
    (wrapped / "__MACOSX").mkdir()
    done, report, _ = ingest(tmp_path, wrapped)
    note = ("model.py found one level down, in my_submission/ (the zip has an enclosing folder); "
            "using that folder as the submission")
    assert done.returncode == 0 and report["warnings"] == [note] and f"[ingestion] {note}" in done.stderr


def test_two_enclosed_submissions_are_refused(tmp_path):
    twice = tmp_path / "twice"
    make_submission(twice / "a", LABEL_MODEL)
    make_submission(twice / "b", LABEL_MODEL)
    done, report, _ = ingest(tmp_path, twice)
    assert done.returncode == 1
    assert report["reason"] == ("no model.py at the top of the submission, and several one level down (a/model.py, "
                                "b/model.py); zip the files of one submission, without an enclosing folder")


def test_a_zipped_submission_with_an_enclosing_folder_runs_locally(tmp_path):
    archive = tmp_path / "submission.zip"
    write_zip(archive, {"my_submission/model.py": textwrap.dedent(LABEL_MODEL)})
    done, report, output = ingest(tmp_path, archive)
    assert done.returncode == 0, done.stderr
    assert len(rows(output)) == 1 + 2 * IMAGES_PER_SET


def test_image_modes_subfolders_and_skipped_entries(tmp_path):
    grey16 = Image.fromarray(np.full((16, 16), 20 * 3 * 257, dtype=np.uint16))
    assert grey16.mode == "I;16"
    buffer = io.BytesIO()
    grey16.save(buffer, "PNG")
    good = jpeg((20, 90, 60))
    pristine = {
        "000000000000.jpg": jpeg((0, 90, 60)),
        "000000000001.jpg": good,
        "000000000002.jpg": jpeg(40, mode="L"),
        "000000000003.jpg": buffer.getvalue(),
        "000000000004.png": jpeg((80, 90, 60, 0), mode="RGBA", fmt="PNG"),
        "000000000005.jpg": jpeg((0, 0, 0, 0), mode="CMYK"),
        "sub/folder/000000000006.jpg": jpeg((120, 90, 60)),
        "000000000007.jpg": good[: len(good) // 2],
        "000000000008.jpg": b"this is not an image",
        "__MACOSX/._000000000001.jpg": b"resource fork",
        ".DS_Store": b"junk",
        "folder/": b"",
    }
    input_dir = make_input(tmp_path / "input_data", pristine=pristine)
    done, report, output = ingest(tmp_path, make_submission(tmp_path / "sub", LABEL_MODEL), input_dir,
                                  "--max-error-rate", "0.2")
    assert done.returncode == 0, done.stderr
    labels = {row[0]: row[2] for row in rows(output)[1:] if row[1] == "pristine"}
    # CMYK all zero is white: red 255 -> 13 % 13 = BA
    assert labels == {"000000000000": "BA", "000000000001": "BL", "000000000002": "BNE", "000000000003": "EO",
                      "000000000004": "LY", "000000000005": "BA", "000000000006": "MO"}
    assert report["sets"]["pristine"] == {**report["sets"]["pristine"], "images": 9, "predicted": 7, "errors": 2}
    assert report["errors"] == [
        {"set": "pristine", "image_id": "000000000007",
         "error": "unreadable image 000000000007.jpg: OSError: Truncated File Read"},
        {"set": "pristine", "image_id": "000000000008",
         "error": "unreadable image 000000000008.jpg: not an image format Pillow can read"},
    ]
    done, report, _ = ingest(tmp_path, make_submission(tmp_path / "sub", LABEL_MODEL), input_dir)
    assert done.returncode == 1 and report["reason"].startswith("2 of 21 images failed (9.52%), more than the allowed")


@pytest.mark.parametrize("pristine, reason", [
    ({}, "{input}/pristine.zip contains no images"),
    ({"__MACOSX/._a.jpg": b"x", "folder/": b""}, "{input}/pristine.zip contains no images"),
    ({"a.jpg": b"1", "sub/a.jpg": b"2", "b.jpg": b"3", "b.png": b"4"},
     "{input}/pristine.zip has 2 duplicate image ids (ids are file names without extension and folder): "
     "a: a.jpg, sub/a.jpg; b: b.jpg, b.png"),
])
def test_unusable_input_zips_fail_before_the_model_runs(tmp_path, pristine, reason):
    input_dir = make_input(tmp_path / "input_data", pristine=pristine)
    done, report, _ = ingest(tmp_path, make_submission(tmp_path / "sub", LABEL_MODEL), input_dir)
    assert done.returncode == 1 and report["reason"] == reason.format(input=input_dir)


def test_missing_input_zip_and_reference_data_in_reach(tmp_path):
    input_dir = make_input(tmp_path / "input_data")
    (input_dir / "degraded.zip").unlink()
    submission = make_submission(tmp_path / "sub", LABEL_MODEL)
    done, report, _ = ingest(tmp_path, submission, input_dir)
    assert report["reason"] == f"input zip not found: {input_dir}/degraded.zip"

    make_input(input_dir)
    (input_dir / "reference_data" / "eval").mkdir(parents=True)
    (input_dir / "reference_data" / "eval" / "reference.csv").write_text("image_id,set,label\n")
    done, report, _ = ingest(tmp_path, submission, input_dir)
    assert done.returncode == 1
    assert report["reason"] == (f"refusing to run: reference data is reachable by the submission "
                                f"({input_dir}/reference_data, {input_dir}/reference_data/eval/reference.csv); "
                                "the prediction step must not see reference.csv or reference_data")


def test_same_submission_same_data_gives_byte_identical_predictions(tmp_path):
    model = """
    import random
    import numpy as np
    class Model:
        def load(self):
            self.offset = random.random()
        def predict_batch(self, images):
            return [np.random.dirichlet(np.ones(13)) + self.offset for _ in images]
    """
    submission = make_submission(tmp_path / "sub", model)
    input_dir = make_input(tmp_path / "input_data")
    first = []
    for workers in ("1", "2"):
        done, report, output = ingest(tmp_path, submission, input_dir, "--workers", workers, "--batch-size", "5")
        assert done.returncode == 0, done.stderr
        first.append((output / "predictions.csv").read_bytes())
    assert first[0] == first[1]
    assert first[0].count(b"\n") == 1 + 2 * IMAGES_PER_SET and b"prob_VLY" in first[0]


def test_requirements_are_checked_and_never_installed(tmp_path):
    model = """
    class Model:
        def load(self):
            pass
        def predict(self, image):
            return "PC"
    """
    requirements = ("# tools\nNumPy>=1.20  # satisfied\n\nwbc_demo_dep==1.0\nleft-pad-xyz\n"
                    "scikit_learn[extra]<0.1\n--extra-index-url http://x\nnot a requirement!\n"
                    "pywin32; sys_platform == 'win32'\n")
    submission = make_submission(tmp_path / "sub", model, requirements__txt=requirements)
    env = {**os.environ, "WBC_INSTALL_REQUIREMENTS": "1"}  # the old switch: ignored, nothing is installed
    done, report, output = ingest(tmp_path, submission, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert {row[2] for row in rows(output)[1:]} == {"PC"}
    entries = report["requirements"]["entries"]
    assert [(e["line"], e["name"], e["status"]) for e in entries] == [
        (2, "numpy", "satisfied"), (4, "wbc-demo-dep", "missing"), (5, "left-pad-xyz", "missing"),
        (6, "scikit-learn", "version_mismatch"), (7, None, "unsupported"), (8, None, "invalid"),
        (9, "pywin32", "not_needed")]
    assert entries[1]["detail"] == "not in the competition image; requirements.txt is checked, never installed"
    assert entries[3]["detail"].endswith("does not match '<0.1'; the image's version is used")
    assert "installing" not in done.stderr
