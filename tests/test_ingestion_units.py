"""Unit tests of the ingestion modules, and run() called in-process as the tests of other areas do."""
import io
import json
import math
import os
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import ingestion
from model_outputs import CLASSES, PredictionError, checked_answer
from output_files import predictions_text
from requirements_check import NOT_INSTALLED, check_requirements, logical_lines
from tree_removal import remove_tree
from zip_images import InputZip, ZipReader, decoded_batches, list_images, to_rgb

REPO = Path(__file__).resolve().parents[1]


def test_checked_answer_accepts_labels_dicts_sequences_and_tensors():
    torch = pytest.importorskip("torch")
    assert checked_answer("SNE") == ("SNE", None)
    label, probs = checked_answer({"EO": 3, "LY": 1})
    assert label == "EO" and probs[CLASSES.index("EO")] == 0.75 and probs.sum() == pytest.approx(1)
    scores = [0.0] * 13
    scores[5] = 2.0
    for form in (scores, tuple(scores), np.array(scores, dtype=np.float16), np.array([scores]),
                 torch.tensor(scores, dtype=torch.bfloat16)):
        label, probs = checked_answer(form)
        assert label == "MMY" and probs[5] == 1.0
    assert checked_answer([1.0] * 13)[0] == "BA"  # ties go to the first class


@pytest.mark.parametrize("output, message", [
    ("Band", "unknown label 'Band'"), (None, "None (expected"), ([math.nan] * 13, "NaN or infinity"),
    ([-1.0] + [1.0] * 12, "a negative probability -1 for BA"), ([0.1] * 14, "14 values"),
    ({"BA": "high"}, "a str 'high' as the probability of BA"), (["a"] * 13, "a str 'a' as the probability of BA"),
    (3, "a single int value"),
    ({"BA": 0.0}, "sum to 0"),
])
def test_checked_answer_rejects_junk_with_a_message(output, message):
    with pytest.raises(PredictionError) as caught:
        checked_answer(output)
    assert message in str(caught.value)


def test_predictions_file_drops_probability_columns_when_predictions_mix():
    probs = np.full(13, 1 / 13)
    text, with_probs = predictions_text({("degraded", "b"): ("BA", probs), ("pristine", "z"): ("BL", probs),
                                         ("pristine", "a"): ("PC", probs)})
    lines = text.split("\n")
    assert with_probs is True
    assert [line.split(",")[:3] for line in lines[1:4]] == [["a", "pristine", "PC"], ["z", "pristine", "BL"],
                                                            ["b", "degraded", "BA"]]
    assert lines[1].endswith(",0.076923") and "\r" not in text
    text, with_probs = predictions_text({("pristine", "a"): ("PC", probs), ("pristine", "b"): ("BA", None)})
    assert with_probs is False and text == "image_id,set,label\na,pristine,PC\nb,pristine,BA\n"


def test_sixteen_bit_and_other_modes_become_8_bit_rgb():
    grey16 = Image.fromarray(np.array([[0, 257 * 100, 65535]], dtype=np.uint16))
    assert to_rgb(grey16).mode == "RGB"
    assert np.asarray(to_rgb(grey16))[0].tolist() == [[0, 0, 0], [100] * 3, [255] * 3]
    grey32 = Image.fromarray(np.array([[7, 200]], dtype=np.int32))
    assert np.asarray(to_rgb(grey32))[0].tolist() == [[7] * 3, [200] * 3]
    assert to_rgb(Image.new("RGBA", (2, 2), (10, 20, 30, 0))).getpixel((0, 0)) == (10, 20, 30)


@pytest.mark.parametrize("parts", [1, 3])
def test_zip_listing_is_sorted_and_decoding_keeps_order(tmp_path, parts):
    path = tmp_path / "pristine.zip"
    with zipfile.ZipFile(path, "w") as archive:
        for i in reversed(range(23)):
            buffer = io.BytesIO()
            Image.new("RGB", (8, 8), (i * 10, 0, 0)).save(buffer, "JPEG")
            archive.writestr(f"d{i:02d}/{i:02d}.jpg" if i % 5 == 0 else f"{i:02d}.jpg", buffer.getvalue())
    source = InputZip(path)
    entries = list_images(source, "pristine")
    assert [e.image_id for e in entries] == [f"{i:02d}" for i in range(23)]
    reader = ZipReader(source)
    with ThreadPoolExecutor(3) as pool:
        batches = list(decoded_batches(reader, entries, 4, pool, depth=3, parts=parts))
    reader.close()
    source.close()
    assert [len(b) for b in batches] == [4, 4, 4, 4, 4, 3]
    decoded = [item for batch in batches for item in batch]
    assert [entry.image_id for entry, _, _ in decoded] == [e.image_id for e in entries]
    assert all(abs(int(pixels[3, 3, 0]) - 10 * i) <= 3 for i, (_, pixels, _) in enumerate(decoded))


def test_requirement_lines_comments_continuations_and_odd_lines(tmp_path):
    text = "# c\n\nnumpy \\\n  >=1.0   # inline\nurl-pkg @ https://example.org/x.whl\nPillow[extra] ; python_version>'3'\n==\n"
    assert logical_lines(text) == [(3, "numpy    >=1.0"), (5, "url-pkg @ https://example.org/x.whl"),
                                   (6, "Pillow[extra] ; python_version>'3'"), (7, "==")]
    entries = check_requirements(text)
    assert [(e["name"], e["status"]) for e in entries] == [("numpy", "satisfied"), ("url-pkg", "missing"),
                                                           ("pillow", "satisfied"), (None, "invalid")]
    assert entries[1]["detail"] == NOT_INSTALLED


def test_no_arguments_resolve_local_defaults_from_the_script_location(monkeypatch):
    monkeypatch.delenv("WBC_TIME_BUDGET_SECONDS", raising=False)
    args = ingestion.parse_args([])
    assert (args.input_data, args.output, args.program, args.submission) == (
        REPO / "input_data" / "eval", REPO / "output" / "res", REPO / "ingestion_program", REPO / "starting_kit")
    # the phase's time_budget.json when the demo data has one (make bundle-data writes it), else the local default
    budget = ingestion.budget_from_file(REPO / "input_data" / "eval") or ingestion.DEFAULT_BUDGET_SECONDS
    assert (args.options.budget_seconds, args.options.max_error_rate, args.options.batch_size) == (budget, 0.01, 32)
    monkeypatch.setenv("WBC_TIME_BUDGET_SECONDS", "60")
    args = ingestion.parse_args(["--phase", "test", "--submission", "sub.zip", "--batch-size", "8"])
    assert (args.input_data, args.submission, args.options.budget_seconds, args.options.batch_size) == (
        REPO / "input_data" / "test", Path("sub.zip"), 60, 8)
    with pytest.raises(SystemExit):
        ingestion.parse_args(["in", "out"])


def test_run_in_process_returns_the_report_it_writes(tmp_path):
    input_dir = tmp_path / "input_data"
    input_dir.mkdir()
    for set_name in ("pristine", "degraded"):
        with zipfile.ZipFile(input_dir / f"{set_name}.zip", "w") as archive:
            for i in range(3):
                buffer = io.BytesIO()
                Image.new("RGB", (8, 8), (i, 0, 0)).save(buffer, "JPEG")
                archive.writestr(f"{set_name[0]}{i}.jpg", buffer.getvalue())
    submission = tmp_path / "sub"
    submission.mkdir()
    (submission / "model.py").write_text("class Model:\n    def load(self):\n        print('loaded')\n"
                                         "    def predict(self, image):\n        return 'VLY'\n")
    report = ingestion.run(input_dir, tmp_path / "out", ingestion.PROGRAM_DIR, submission,
                           ingestion.Options(budget_seconds=0))
    assert report == json.loads((tmp_path / "out" / "run_report.json").read_text())
    assert report["status"] == "ok" and report["budget_seconds"] is None
    assert (tmp_path / "out" / "predictions.csv").read_text().count("VLY") == 6
    assert (tmp_path / "out" / "submission_output.log").read_text() == "loaded\n"


def test_the_scorer_reads_the_run_report_with_the_same_record():
    """Each program folder is self-contained, so the record is copied; the copies must not drift."""
    assert (REPO / "scoring_program" / "run_report.py").read_text() == (
        REPO / "ingestion_program" / "run_report.py").read_text()


def test_tree_removal_stops_at_its_deadline_and_says_what_is_left(tmp_path):
    """The clean-up before the outputs shares a time limit: a tree too large for it is left, by name, not removed
    past the budget's end margin."""
    for index in range(50):
        (tmp_path / "junk" / str(index)).mkdir(parents=True)
    folder = os.open(tmp_path, os.O_RDONLY)
    with pytest.raises(TimeoutError, match=r"^\d+ entries of junk not removed in the time allowed$"):
        remove_tree("junk", dir_fd=folder, deadline=time.monotonic() - 1)
    os.close(folder)
    assert (tmp_path / "junk").is_dir()
    remove_tree(tmp_path / "junk")
    assert not (tmp_path / "junk").exists()
