"""The plain dry run and the CodaBench emulator agree on every submission zip layout (pages/starting_kit.md's rule).

Each layout runs `ingestion.py --submission ZIP` then `score.py` in a bundle folder, and tools/codabench_run.py
on the same zip; both must score the same, or both fail with the same message.
"""
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from bundle_copies import copy_bundle

REPO = Path(__file__).resolve().parents[1]
MODEL = ("from pathlib import Path\n\n"
         "class Model:\n"
         "    def load(self):\n"
         "        self.label = (Path(__file__).parent / {weights!r}).read_text().strip()\n\n"
         "    def predict(self, image):\n"
         "        return self.label\n")
# layout -> (folder in front of the submission's files, where the weights sit inside it, does it run)
LAYOUTS = {
    "model.py at the root": ("", "label.txt", True),
    "one enclosing folder": ("my_submission/", "label.txt", True),
    "weights in a sub-folder": ("", "ckpt/label.txt", True),
    "two levels deep": ("outer/my_submission/", "label.txt", False),
}


@pytest.fixture(scope="module")
def bundle(small_bundle, tmp_path_factory):
    return copy_bundle(small_bundle, tmp_path_factory.mktemp("layouts"))


def _zip(path: Path, prefix: str, weights: str) -> Path:
    """Written like `zip -r`: folder entries first, then the files."""
    files = {prefix + "model.py": MODEL.format(weights=weights), prefix + "metadata": "description: constant SNE\n",
             prefix + weights: "SNE\n"}
    folders = sorted({"/".join(name.split("/")[:i]) + "/" for name in files for i in range(1, name.count("/") + 1)})
    with zipfile.ZipFile(path, "w") as archive:
        for folder in folders:
            archive.writestr(folder, "")
        for name, content in files.items():
            archive.writestr(name, content)
    return path


def _submission_error(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if "Submission error" in line]
    return lines[0] if lines else stderr


@pytest.mark.parametrize("layout", LAYOUTS)
def test_dry_run_and_emulator_agree(layout, bundle, tmp_path):
    prefix, weights, runs = LAYOUTS[layout]
    submission = _zip(tmp_path / "submission.zip", prefix, weights)
    scores_file = bundle / "output" / "scores" / "scores.json"
    scores_file.unlink(missing_ok=True)
    subprocess.run([sys.executable, str(bundle / "ingestion_program" / "ingestion.py"), "--submission",
                    str(submission)], capture_output=True, text=True, timeout=300)
    dry = subprocess.run([sys.executable, str(bundle / "scoring_program" / "score.py")],
                         capture_output=True, text=True, timeout=300)
    emulated = subprocess.run([sys.executable, str(REPO / "tools" / "codabench_run.py"), str(submission),
                               "--root", str(bundle), "--workdir", str(tmp_path / "run")],
                              capture_output=True, text=True, timeout=600)
    if runs:
        assert dry.returncode == 0 and emulated.returncode == 0, (dry.stderr, emulated.stdout, emulated.stderr)
        ours = json.loads(scores_file.read_text())
        platform = json.loads((tmp_path / "run" / "scoring" / "output" / "scores.json").read_text())
        speed = "images_per_second"
        assert {k: v for k, v in ours.items() if k != speed} == {k: v for k, v in platform.items() if k != speed}
    else:
        assert dry.returncode != 0 and emulated.returncode != 0
        assert "status: Failed (Child task failed or non-zero return code)" in emulated.stdout
        message = _submission_error(dry.stderr)
        assert "no model.py in the submission" in message
        assert message == _submission_error(emulated.stderr)
