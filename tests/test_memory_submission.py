"""A submission that remembers the images it answered gains nothing: each cell is scored once per phase.

The memory submission (tests/memory_submission.py) wraps the trained starting kit. It is run exactly as users run
submissions, through the plain dry run and through tools/codabench_run.py, on the demo data and (where ../shared
is present) on real PBC cells; its primary score may not exceed the plain kit's by more than 0.02. A control shows
the memory works: on a run whose degraded set holds degraded copies of the pristine cells, it finds them.
"""
import json
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np

import degrade
from bundle_copies import copy_bundle
from fixed_zip import write_zip
from kit_files import trained_starting_kit_copy
from memory_submission import make_memory_submission, remembered

REPO = Path(__file__).resolve().parents[1]
TOLERANCE = 0.02


def _dry_run(input_dir: Path, reference_dir: Path, submission: Path, out: Path) -> dict:
    """ingestion.py then score.py as CodaBench invokes them; the scores, and how many answers were remembered."""
    (out / "input").mkdir(parents=True)
    shutil.copytree(reference_dir, out / "input" / "ref")
    for argv in ([REPO / "ingestion_program" / "ingestion.py", input_dir, out / "input" / "res",
                  REPO / "ingestion_program", submission, "--budget-seconds", "0"],
                 [REPO / "scoring_program" / "score.py", out / "input", out / "output", "--bootstrap", "20"]):
        done = subprocess.run([sys.executable, *map(str, argv)], capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
    scores = json.loads((out / "output" / "scores.json").read_text())
    return {**scores, "remembered": remembered(out / "input" / "res" / "submission_output.log")}


def _both(bundle: Path, plain: Path, work: Path) -> tuple[dict, dict]:
    memory = make_memory_submission(plain, work / "memory")
    runs = [_dry_run(bundle / "input_data" / "eval", bundle / "reference_data" / "eval", sub, work / name)
            for name, sub in (("plain", plain), ("with_memory", memory))]
    return runs[0], runs[1]


def test_memory_gains_nothing_in_the_dry_run(small_bundle, trained_starting_kit, tmp_path):
    plain, memory = _both(small_bundle, trained_starting_kit, tmp_path)
    assert memory["degraded_macro_f1"] <= plain["degraded_macro_f1"] + TOLERANCE
    assert memory["severity_extreme_macro_f1"] <= plain["severity_extreme_macro_f1"] + TOLERANCE


def test_memory_gains_nothing_through_the_emulator(small_bundle, trained_starting_kit, tmp_path):
    root = copy_bundle(small_bundle, tmp_path / "root")
    scores = {}
    for name, folder in (("plain", trained_starting_kit),
                         ("with_memory", make_memory_submission(trained_starting_kit, tmp_path / "memory"))):
        archive = write_zip(tmp_path / f"{name}.zip", ((p.relative_to(folder).as_posix(), p.read_bytes())
                                                       for p in sorted(folder.rglob("*")) if p.is_file()
                                                       and "__pycache__" not in p.parts))
        workdir = tmp_path / f"work_{name}"
        done = subprocess.run([sys.executable, str(REPO / "tools" / "codabench_run.py"), str(archive), "--root",
                               str(root), "--workdir", str(workdir), "--time-limit", "300"],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-2000:]
        scores[name] = json.loads((workdir / "scoring" / "output" / "scores.json").read_text())
    assert scores["with_memory"]["degraded_macro_f1"] <= scores["plain"]["degraded_macro_f1"] + TOLERANCE


def test_memory_gains_nothing_on_real_cells(pbc_release, tmp_path):
    """The starting kit trained on PBC phase2_train, scored on the other patients' cells of phase2_eval."""
    from prepare import prepare

    bundle = tmp_path / "bundle"
    prepare(pbc_release, bundle, seed=1, phases={"eval": "phase2_eval"}, limit=300)
    kit = trained_starting_kit_copy(pbc_release, tmp_path / "kit")
    plain, memory = _both(bundle, kit, tmp_path)
    assert memory["degraded_macro_f1"] <= plain["degraded_macro_f1"] + TOLERANCE


def test_control_the_memory_finds_degraded_copies(small_bundle, trained_starting_kit, tmp_path):
    """Were the degraded set made of the pristine set's cells, the memory would answer most of it from memory."""
    input_dir = tmp_path / "paired"
    input_dir.mkdir()
    shutil.copyfile(small_bundle / "input_data" / "eval" / "pristine.zip", input_dir / "pristine.zip")
    with zipfile.ZipFile(input_dir / "pristine.zip") as archive:
        copies = [(f"copy{k:04d}.jpg", degrade.degraded_version(archive.read(name), np.random.default_rng(k))[1])
                  for k, name in enumerate(sorted(archive.namelist()))]
    write_zip(input_dir / "degraded.zip", copies)
    memory = make_memory_submission(trained_starting_kit, tmp_path / "memory")
    out = tmp_path / "out"
    done = subprocess.run([sys.executable, str(REPO / "ingestion_program" / "ingestion.py"), str(input_dir),
                           str(out), str(REPO / "ingestion_program"), str(memory), "--budget-seconds", "0"],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    assert remembered(out / "submission_output.log") >= 0.8 * len(copies)
