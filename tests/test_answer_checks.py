"""What predict may return is read strictly (pages/starting_kit.md, "The contract"), and a submission's files are
refused by what they are: each class a red team found accepted as garbage, with its siblings.

checked_answer is called directly for the answer classes (it runs in the model's process; the supervisor's own check
of the channel is tests/test_supervisor_attacks.py's); one run of the real program shows a refused answer reaching
the run report. The zip and path classes run unpack_zip, find_model_dir and ingestion.py itself.
"""
import os
import stat
import subprocess
import sys
import zipfile
from collections.abc import Mapping
from decimal import Decimal
from fractions import Fraction
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import ingestion
from model_messages import ProtocolError, read_message
from model_outputs import CLASSES, PredictionError, checked_answer
from submission_files import SubmissionNotRunnable, find_model_dir, unpack_zip
from test_ingestion_runs import PROGRAM, make_input

REPO = Path(__file__).resolve().parents[1]
VLY = [0.0] * 12 + [1.0]  # one-hot for the last class: read in any other order it names another class


class RepeatingMapping(Mapping):
    """A Mapping whose items() give SNE twice: the last one must not silently win."""

    def __getitem__(self, key):
        return 0.5

    def __iter__(self):
        return iter(["SNE", "BA"])

    def __len__(self):
        return 2

    def items(self):
        return [("SNE", 0.1), ("BA", 0.2), ("SNE", 0.9)]


def _masked(mask_first: bool) -> np.ma.MaskedArray:
    return np.ma.masked_array(VLY, mask=[mask_first] + [False] * 12)


REFUSED = {
    # 1. labels that would be ignored: a labelled container is read by position, so another order is refused
    "Series in reversed class order": (pd.Series(VLY, index=CLASSES[::-1]),
                                       "a pandas Series labelled 'VLY', 'SNE', 'PMY', ..., not 0..12 or CLASSES in "
                                       "order: its values are read by position"),
    "Series sorted by value (integer labels out of order)": (pd.Series(VLY).sort_values(ascending=False, kind="stable"),
                                                             "a pandas Series labelled 12, 0, 1, ..., not 0..12"),
    "one-row DataFrame, columns reversed": (pd.DataFrame([VLY], columns=CLASSES[::-1]),
                                            "a pandas DataFrame labelled 'VLY', 'SNE', 'PMY', ..., not 0..12"),
    # 2. text where a number is expected, and the other non-real values float() would half-accept
    "numeric strings in a list": (["0.5"] + ["0"] * 12,
                                  "a str '0.5' as the probability of BA (expected a real number, e.g. a float, not "
                                  "text)"),
    "a numeric string in a dict": ({"SNE": "0.9"}, "a str '0.9' as the probability of SNE (expected a real number"),
    "an array of strings": (np.array(["0.5"] * 13), "a str (numpy.str_) '0.5' as the probability of BA"),
    "an object array holding strings": (np.array(["0.5"] * 13, dtype=object), "a str '0.5' as the probability of BA"),
    "bytes in a list": ([b"0.5"] * 13, "a bytes b'0.5' as the probability of BA"),
    "bools in a list": ([False] * 12 + [True], "a bool False as the probability of BA (expected a real number, e.g. a "
                                               "float, not True or False)"),
    "a bool array": (np.array(VLY, dtype=bool), "a bool (numpy.bool) False as the probability of BA"),
    "a bool in a dict": ({"SNE": True}, "a bool True as the probability of SNE"),
    "complex numbers": ([1 + 0j] * 13, "a complex (1+0j) as the probability of BA (expected a real number, e.g. a "
                                       "float, not a complex number)"),
    "a complex array": (np.ones(13, dtype=complex), "a complex (numpy.complex128) (1+0j) as the probability of BA"),
    "None among the values": ([None] * 13, "a NoneType None as the probability of BA"),
    "dates": (np.array(["2020-01-01"] * 13, dtype="M8[D]"), "a date (numpy.datetime64)"),
    # 3. masked entries, also inside the 1 x 13 form and as NumPy's masked constant
    "a masked array with a masked entry": (_masked(True), "a masked array with 1 masked value(s) (a masked entry "
                                                          "has no value: fill it, e.g. with .filled(0.0)"),
    "a masked array in a list": ([_masked(True)], "a masked array with 1 masked value(s)"),
    "numpy.ma.masked": (np.ma.masked, "a masked array with 1 masked value(s)"),
    # shapes and single values
    "nested one level too deep": ([[VLY]], "1x1x13 values (expected"),
    "ragged rows": ([VLY, [0.1]], "2 values (expected"),
    "a list among the numbers": (VLY[:12] + [[1.0]], "a list [1.0] as the probability of VLY"),
    "a 0-d array": (np.array(0.5), "a single float (0-d numpy.ndarray) value (expected"),
    "a generator": ((p for p in VLY), "a generator (expected a label"),
    "a dict's values (insertion order, not CLASSES order)": ({"VLY": 1.0}.values(), "a dict_values (expected"),
    # labels: exact str codes; a Mapping gives each once; long texts are cut in the message
    "bytes as a label": (b"SNE", "a bytes value b'SNE' (a label is a str, e.g. 'SNE', not bytes)"),
    "a lower-case key": ({"sne": 1.0}, "unknown labels 'sne'; labels are case-sensitive: did you mean 'SNE'?"),
    "a key with a space": ({" SNE": 1.0}, "unknown labels ' SNE'; labels have no spaces around them: did you mean "
                                          "'SNE'?"),
    "a lower-case label with spaces": (" sne ", "unknown label ' sne '; labels are case-sensitive and have no spaces "
                                                "around them: did you mean 'SNE'?"),
    "class indexes as keys": ({0: 1.0, 12: 2.0}, "unknown labels 0, 12 (expected labels among"),
    "a Mapping repeating a label": (RepeatingMapping(), "a RepeatingMapping that gives the label 'SNE' 2 times "
                                                        "(expected each label at most once)"),
    "a label of a million characters": ("x" * 10**6, "unknown label 'xxxxxxxxxx"),
    "many unknown keys": ({f"K{i}": 1.0 for i in range(100)}, "unknown labels 'K0', 'K1', 'K2' and 97 more"),
}


@pytest.mark.parametrize("case", REFUSED)
def test_an_answer_that_would_be_read_as_something_else_is_refused_by_name(case):
    output, message = REFUSED[case]
    with pytest.raises(PredictionError) as caught:
        checked_answer(output)
    assert message in str(caught.value)
    assert len(str(caught.value)) < 400  # a long label or many keys are cut, not quoted whole


def test_a_long_label_is_quoted_by_its_start_and_length():
    with pytest.raises(PredictionError, match=r"'x{60}'\.\.\. \(1,000,000 characters\)"):
        checked_answer("x" * 10**6)


def test_what_the_contract_allows_is_read_as_meant():
    torch = pytest.importorskip("torch")
    accepted = {
        "Series labelled in CLASSES order": pd.Series(VLY, index=list(CLASSES)),
        "Series with its default labels": pd.Series(VLY),
        "one-row DataFrame with its default columns": pd.DataFrame([VLY]),
        "masked array without masked entries": np.ma.masked_array(VLY),
        "Decimal values": [Decimal(v) for v in VLY],
        "Fraction in a dict": {"VLY": Fraction(2, 3), "BA": Fraction(1, 3)},
        "a list of 0-d tensors": list(torch.tensor(VLY)),
        "the 1 x 13 form holding a tensor": [torch.tensor(VLY)],
        "NumPy float32 and integer values": np.array(VLY, dtype=np.float32).astype(np.int8),
    }
    for name, output in accepted.items():
        assert checked_answer(output)[0] == "VLY", name
    with pytest.raises(PredictionError, match="NaN or infinity"):
        checked_answer([10**400] + [0] * 12)  # an int beyond the float range is infinite, not an OverflowError


@pytest.mark.parametrize("dtype", ["bool", "complex64"])
def test_a_tensor_of_bools_or_complex_numbers_is_refused(dtype):
    torch = pytest.importorskip("torch")
    with pytest.raises(PredictionError, match=f"as the probability of BA .*not (True or False|a complex number)"):
        checked_answer(torch.ones(13, dtype=getattr(torch, dtype)))


def test_a_refused_series_is_a_per_image_error_in_a_real_run(tmp_path):
    """The model's process refuses it and the run report names it; no image gets another class."""
    input_dir = make_input(tmp_path / "input_data")
    submission = tmp_path / "sub"
    submission.mkdir()
    (submission / "model.py").write_text(
        "import pandas as pd\n"
        f"CLASSES = {CLASSES!r}\n"
        "class Model:\n"
        "    def load(self):\n        pass\n"
        "    def predict(self, image):\n"
        f"        return pd.Series({VLY!r}, index=CLASSES[::-1])\n")
    report = ingestion.run(input_dir, tmp_path / "out", ingestion.PROGRAM_DIR, submission,
                           ingestion.Options(budget_seconds=0))
    assert report["status"] == "failed"
    assert "predict returned a pandas Series labelled 'VLY', 'SNE', 'PMY', ..., not 0..12 or CLASSES in order" in (
        report["reason"])


def _zip_with_entry(path: Path, name: str, data: str, file_type: int) -> Path:
    """A zip holding real_model.py and `name` stored with the Unix file type `file_type` (as `zip -y` stores a link)."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("real_model.py", "class Model:\n    def predict(self, image):\n        return 'SNE'\n")
        archive.writestr("metadata", "description: linked\n")
        info = zipfile.ZipInfo(name)
        info.external_attr = (file_type | 0o777) << 16
        archive.writestr(info, data)
    return path


def test_a_link_in_the_zip_is_refused_where_it_is_unpacked_and_where_the_platform_unpacked_it(tmp_path):
    """unpack_zip names the link; a folder that CodaBench's worker unpacked (ZipFile.extractall: the link became a
    text file holding its target) is refused by name too, instead of failing its import with a NameError."""
    zipped = _zip_with_entry(tmp_path / "linked.zip", "model.py", "real_model.py", stat.S_IFLNK)
    with pytest.raises(SubmissionNotRunnable) as caught:
        unpack_zip(zipped, tmp_path / "unpacked")
    assert str(caught.value) == (
        f"the submission zip {zipped} holds 'model.py' as a symbolic link; CodaBench unpacks a submission with "
        "Python's zipfile, which makes it a plain file holding the path the link points to: put the file itself in "
        "the zip (zip stores links only when given -y or --symlinks)")
    with zipfile.ZipFile(zipped) as archive:  # what compute_worker._get_bundle does
        archive.extractall(tmp_path / "worker")
    assert (tmp_path / "worker" / "model.py").read_text() == "real_model.py"
    with pytest.raises(SubmissionNotRunnable, match=r"^model.py holds only the path 'real_model.py', as a symbolic "
                                                    r"link in a zip does once unpacked: CodaBench unpacks"):
        find_model_dir(tmp_path / "worker")


@pytest.mark.parametrize("file_type, kind", [(stat.S_IFIFO, "a FIFO"), (stat.S_IFCHR, "a device"),
                                             (stat.S_IFSOCK, "a socket")])
def test_other_special_entries_are_refused(tmp_path, file_type, kind):
    zipped = _zip_with_entry(tmp_path / "special.zip", "weights/pipe", "", file_type)
    with pytest.raises(SubmissionNotRunnable, match=f"holds 'weights/pipe' as {kind}; .* plain file holding the bytes "
                                                    "stored for it: leave it out of the zip"):
        unpack_zip(zipped, tmp_path / "unpacked")


def test_a_disk_too_full_to_unpack_the_zip_is_said_to_be_the_cause(tmp_path):
    """A zip that cannot be unpacked because the machine has no room (here a file-size limit, EFBIG, as ENOSPC
    would): the message blames the disk, not the zip tool."""
    zipped = tmp_path / "big.zip"
    with zipfile.ZipFile(zipped, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("model.py", "class Model: pass\n")
        archive.writestr("weights.bin", bytes(100_000))
    program = (f"import resource, sys; sys.path.insert(0, {str(PROGRAM)!r})\n"
               "from submission_files import SubmissionNotRunnable, unpack_zip\n"
               "resource.setrlimit(resource.RLIMIT_FSIZE, (10_000, 10_000))\n"
               "try:\n"
               f"    unpack_zip({str(zipped)!r}, {str(tmp_path / 'unpacked')!r})\n"
               "except SubmissionNotRunnable as error:\n"
               "    print(error)\n")
    done = subprocess.run([sys.executable, "-c", program], capture_output=True, text=True, timeout=60)
    assert done.stdout.startswith(f"the submission zip {zipped} cannot be unpacked at 'weights.bin' (OSError: "), done
    assert done.stdout.rstrip().endswith("; the disk it is unpacked to is full (a smaller submission, or more room "
                                         "for the run)")


def test_a_working_one_line_model_is_not_taken_for_a_link(tmp_path):
    (tmp_path / "model.py").write_text("from real_model import Model  # real_model.py")
    assert find_model_dir(tmp_path) == (tmp_path, None)


def test_a_fifo_given_as_the_submission_is_named_by_the_real_program(tmp_path):
    input_dir = make_input(tmp_path / "input_data")
    fifo = tmp_path / "submission"
    os.mkfifo(fifo)
    done = subprocess.run([sys.executable, str(REPO / "ingestion_program" / "ingestion.py"), str(input_dir),
                           str(tmp_path / "out"), str(REPO / "ingestion_program"), str(fifo)],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert (f"the submission {fifo} is a FIFO, not a folder or a zip file; give a submission folder or zip"
            in done.stderr + done.stdout)
    with pytest.raises(SubmissionNotRunnable, match="^submission folder not found: "):
        find_model_dir(tmp_path / "missing")


@pytest.mark.parametrize("label", ['["SNE"]', '{"SNE": 1}', "true", "0"])
def test_the_supervisor_refuses_an_answer_whose_label_is_not_text_by_name(label):
    """The supervisor's gate (model_messages.py) raises its ProtocolError, never a TypeError of an unhashable label."""
    raw = f'{{"items": [[0, {label}, null, null]]}}'.encode()
    with pytest.raises(ProtocolError, match="^an answer's label is .*; expected one of BA, BL"):
        read_message(raw, ("items",), 1)
