"""codabench_run: the worker's staging, commands, limits and messages, and hostile submissions kept from the reference.

The hostile models run through the real tools/codabench_run.py in a subprocess, started from inside a bundle
folder with an interpreter whose path leads there (as `make check` in a repository with its .venv would).
Each layer is tested on its own: the process layer with `--sandbox off`, the private root with `--sandbox on`
(skipped, with the reason, where this machine cannot run it).
"""
import json
import os
import re
import secrets
import signal
import stat
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest
import yaml

import step_sandbox
from bundle_copies import copy_bundle
from codabench_run import (CHILD_FAILED_MESSAGE, RunSetupError, SubmissionFailed, WorkerStep, _prediction_notes,
                           run_submission, step_time_limit)
from step_processes import ContainerResult, ProgramMetadata, metadata_command, run_containers, worker_command
from submission_files import SubmissionNotRunnable
from worker_bundles import BundleSource, NameNotUtf8, stage_submission, zip_folder
from leaderboard_scores import LEADERBOARD_KEYS
from test_supervisor_attacks import ODD_ZIPS, kill_named, processes_named

REPO = Path(__file__).resolve().parents[1]
EMULATOR = REPO / "tools" / "codabench_run.py"
METADATA = "description: test submission\n"
SANDBOX_MISSING = step_sandbox.unavailable_reason()


@pytest.fixture(scope="module")
def bundle_root(small_bundle, tmp_path_factory):
    """The repository's bundle files with the small bundle's data (the repo's own data may be absent)."""
    return copy_bundle(small_bundle, tmp_path_factory.mktemp("bundle_root"))


@pytest.fixture
def repository(small_bundle, tmp_path):
    """A bundle folder of its own (hostile models change it) with a .venv inside, like a participant's clone."""
    root = copy_bundle(small_bundle, tmp_path / "repository")
    (root / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    return root


def _submission(folder: Path, model_source: str) -> Path:
    folder.mkdir(parents=True)
    (folder / "model.py").write_text(model_source)
    (folder / "metadata").write_text(METADATA)
    return folder


def _run_emulator(root: Path, submission: Path, workdir: Path, sandbox: str,
                  timeout: int = 600) -> subprocess.CompletedProcess:
    """tools/codabench_run.py run from inside root, with root's own .venv interpreter and PWD."""
    python = root / ".venv" / "bin" / Path(sys.executable).name
    env = {**os.environ, "PWD": str(root)}
    return subprocess.run([str(python), str(EMULATOR), str(submission), "--root", str(root), "--workdir",
                           str(workdir), "--time-limit", "300", "--sandbox", sandbox],
                          cwd=root, env=env, capture_output=True, text=True, timeout=timeout)


def _scores(workdir: Path) -> dict:
    return json.loads((workdir / "scoring" / "output" / "scores.json").read_text())


def test_worker_command_maps_app_paths():
    mounts = {"/app/program": "/t/p", "/app/input": "/t/in", "/app/output": "/t/out"}
    argv = worker_command("python3 /app/program/score.py /app/input/ /app/output/ $hidden", "program", True, mounts,
                          python="/venv/python")
    assert argv == ["/venv/python", "/t/p/score.py", "/t/in/", "/t/out/", "/t/in/ref"]


def test_time_limit_is_capped_on_the_default_queue():
    assert step_time_limit({}, {"execution_time_limit": 3600})[0] == 600
    assert step_time_limit({}, {"execution_time_limit": 3600}, queue_cap=1200)[0] == 1200
    assert step_time_limit({"queue": "my-gpu-queue"}, {"execution_time_limit": 3600}) == (3600, None)
    assert step_time_limit({}, {}) == (600, None)  # a phase without a limit: CodaBench's default
    assert step_time_limit({}, {"execution_time_limit": 3600}, time_limit=5) == (5, None)


def test_starting_kit_runs_like_codabench(bundle_root, trained_starting_kit, tmp_path):
    """Development phase from the bundle folder (the Final phase runs from the packed zip in test_end_to_end)."""
    result = run_submission(trained_starting_kit, "eval", bundle_root, workdir=tmp_path)
    assert result.status == "Finished", (result.reason, result.scoring and result.scoring.stderr_text(),
                                         result.prediction.stderr_text()[-2000:])
    assert list(result.scores) == list(LEADERBOARD_KEYS)
    assert 0 < result.scores["degraded_macro_f1"] <= 1
    assert result.detailed_results.name == "detailed_results.html"
    metadata = yaml.safe_load((tmp_path / "prediction" / "output" / "metadata").read_text())
    assert metadata["ingestionExitCode"] == 0 and metadata["exitCode"] is None
    assert metadata["ingestionElapsedTime"] == metadata["elapsedTime"] > 0
    assert not list((tmp_path / "prediction").rglob("reference.csv"))  # no reference in the prediction step
    assert (tmp_path / "scoring" / "input" / "res" / "predictions.csv").is_file()
    assert result.leaderboard_row().splitlines()[0].startswith("Degraded macro-F1")
    config = yaml.safe_load((bundle_root / "competition.yaml").read_text())
    asked = config["phases"][0]["execution_time_limit"]
    assert any("caps the time limit" in note for note in result.notes) == (not config.get("queue") and asked > 600)


DEEP_TREE_MODEL = """
import os

class Model:
    def load(self):  # a tree 2000 folders deep in its own folder, which the worker's tree holds (rmtree recurses)
        folder = os.open(".", os.O_RDONLY)
        for _ in range(2000):
            os.mkdir("d", dir_fd=folder)
            inner = os.open("d", os.O_RDONLY, dir_fd=folder)
            os.close(folder)
            folder = inner
    def predict(self, image):
        return "SNE"
"""


def test_temp_folder_is_removed_unless_kept(bundle_root, tmp_path, monkeypatch):
    monkeypatch.setenv("TMPDIR", str(tmp_path))
    import tempfile
    monkeypatch.setattr(tempfile, "tempdir", None)
    submission = _submission(tmp_path / "sub", DEEP_TREE_MODEL)
    result = run_submission(submission, "eval", bundle_root)
    assert result.status == "Finished" and not result.workdir.exists() and not result.kept
    assert "[ingestion]" in result.prediction.stderr_text()  # the logs outlive the folder


FAILING_MODEL = """
class Model:
    def predict(self, image):
        if round(image.getpixel((4, 4))[0] / 20) % 3 == 0:
            raise ValueError("one in three")
        return "SNE"
"""
OWN_PROGRAM = """
import json, os, sys, time
from pathlib import Path

out = Path(sys.argv[1])  # the prediction output, which the ingestion program writes too
deadline = time.time() + 120
while not (out / "run_report.json").is_file() and time.time() < deadline:
    time.sleep(0.05)
time.sleep(0.5)
report = json.loads((out / "run_report.json").read_text())
report.update(status="ok", reason=None, errors=[], errors_total=0)
for figures in report["sets"].values():
    figures.update(errors=0, seconds=1e-6)
(out / "run_report.json").write_text(json.dumps(report))
(out / "leak.csv").symlink_to(sys.argv[2])
os.mkfifo(out / "pipe")
"""


def test_a_prediction_step_where_the_submissions_own_program_ran_is_refused(repository, tmp_path):
    """The worker runs a submission whose metadata has a command beside the ingestion program, both writing the
    output: that program rewrites the failed run's report after the supervisor and leaves a link and a FIFO. The
    emulator follows neither, and the scorer refuses the step on the worker's own metadata (exitCode is the
    program's)."""
    secret = tmp_path / "secret.csv"
    secret.write_text("image_id,set,label\n")
    submission = _submission(tmp_path / "sub", FAILING_MODEL)
    (submission / "metadata").write_text(f"command: python3 /app/program/extra.py /app/output {secret}\n")
    (submission / "extra.py").write_text(OWN_PROGRAM)
    completed = _run_emulator(repository, submission, tmp_path / "run", "auto", timeout=300)
    assert "status: Failed (Child task failed or non-zero return code)" in completed.stdout, completed.stdout
    assert ("Submission error: the worker's metadata file shows that the submission's own program ran beside the "
            "ingestion program (exitCode 0, elapsedTime ") in completed.stderr, completed.stderr
    metadata = yaml.safe_load((tmp_path / "run" / "prediction" / "output" / "metadata").read_text())
    assert metadata["exitCode"] == 0 and metadata["elapsedTime"] != metadata["ingestionElapsedTime"]
    staged = tmp_path / "run" / "scoring" / "input" / "res"
    assert not (staged / "leak.csv").exists() and not (staged / "pipe").exists()
    assert "links and special files in the prediction output were left out" in completed.stdout
    assert not (tmp_path / "run" / "scoring" / "output" / "scores.json").exists()


def test_submission_without_metadata_is_copied_into_the_output(bundle_root, tmp_path):
    submission = tmp_path / "sub"
    submission.mkdir()
    (submission / "model.py").write_text("class Model:\n    def predict(self, image):\n        return 'SNE'\n")
    (submission / "weights.bin").write_bytes(b"w" * 1000)
    result = run_submission(submission, "eval", bundle_root, workdir=tmp_path / "run")
    assert result.status == "Finished", result.reason
    assert (tmp_path / "run" / "scoring" / "input" / "res" / "weights.bin").is_file()
    assert any("no `metadata` file" in note for note in result.notes)


def test_a_zipped_folder_is_named_and_the_prediction_steps_warnings_and_time_reach_the_console(bundle_root,
                                                                                             trained_starting_kit,
                                                                                             tmp_path):
    """make check says what the platform's results page would: the fix for a zipped folder, the ingestion's
    warnings, and the time used against the phase's budget (the demo data carries the default queue's)."""
    nested = tmp_path / "nested.zip"
    with zipfile.ZipFile(nested, "w") as archive:
        for path in sorted(trained_starting_kit.iterdir()):
            if path.is_file():
                archive.write(path, f"my_sub/{path.name}")
    (bundle_root / "input_data" / "eval" / "time_budget.json").write_text('{"seconds": 540}')
    try:
        result = run_submission(nested, "eval", bundle_root, workdir=tmp_path / "work")
    finally:
        (bundle_root / "input_data" / "eval" / "time_budget.json").unlink()
    assert result.status == "Finished", result.reason
    assert ("the submission's files sit in a folder (my_sub/) inside the zip, and CodaBench does not move them up: "
            "zip the folder's contents, not the folder (cd my_sub && zip -r ../submission.zip .)") in result.notes
    assert ("the prediction step warned: model.py found one level down, in my_sub/ (the zip has an enclosing folder); "
            "using that folder as the submission") in result.notes
    assert any(re.fullmatch(r"the prediction step took \d+ s of its 540 s time budget \(the worker's limit: 600 s\)",
                            note) for note in result.notes)


def test_a_submission_too_deep_for_the_workers_copy_is_said_and_runs(bundle_root, tmp_path):
    """No metadata: the worker copies the submission into the output with shutil.copytree, which recurses; on a
    folder 500 deep it raises RecursionError, which the worker's asyncio.gather keeps to itself, and the ingestion
    runs anyway. The emulator does the same and says so, instead of a traceback."""
    zipped = tmp_path / "sub.zip"
    with zipfile.ZipFile(zipped, "w") as archive:
        archive.writestr("model.py", "class Model:\n    def predict(self, image):\n        return 'SNE'\n")
        archive.writestr("deep/" + "d/" * 490 + "f.txt", "deep")
    result = run_submission(zipped, "eval", bundle_root)
    assert result.status == "Finished", result.reason
    assert any("nested too deeply for shutil.copytree (RecursionError)" in note for note in result.notes), result.notes


def test_a_folder_named_like_an_output_file_in_a_submission_without_metadata_runs(bundle_root, tmp_path):
    """Copied whole into the prediction output, the submission's folder predictions.csv/ must not stop the run."""
    submission = tmp_path / "sub"
    (submission / "predictions.csv").mkdir(parents=True)
    (submission / "predictions.csv" / "notes.txt").write_text("mine")
    (submission / "model.py").write_text("class Model:\n    def predict(self, image):\n        return 'SNE'\n")
    result = run_submission(submission, "eval", bundle_root, workdir=tmp_path / "run")
    assert result.status == "Finished", (result.reason, result.prediction.stderr_text()[-2000:])
    assert (tmp_path / "run" / "scoring" / "input" / "res" / "predictions.csv").is_file()


@pytest.mark.parametrize("kind, raised", [("encrypted", "RuntimeError"), ("a file and a folder", "Error"),
                                         ("unknown method", "NotImplementedError")])
def test_a_zip_the_worker_cannot_unpack_is_said_as_codabench_fares(bundle_root, tmp_path, kind, raised):
    """The worker unpacks with ZipFile.extractall and catches only BadZipFile: any other error leaves the submission
    without a result on CodaBench. The emulator says so in one line, with the ingestion's own check naming the cause
    (test_supervisor_attacks.py has each kind on the dry run), never a traceback."""
    build, problem = ODD_ZIPS[kind]
    archive = build(tmp_path / "submission.zip")
    completed = subprocess.run([sys.executable, str(EMULATOR), str(archive), "--root", str(bundle_root)],
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 1 and "Traceback" not in completed.stderr, completed.stderr
    status = [line for line in completed.stdout.splitlines() if line.startswith("status:")]
    assert len(status) == 1 and re.match(rf"status: Failed \(CodaBench's worker cannot unpack the submission: "
                                         rf"ZipFile.extractall raises \w*{raised} ", status[0]), status
    assert f"never gets a result; the ingestion's own check names the cause: the submission zip {archive} {problem}" \
        in status[0]


def test_a_zip_the_ingestion_refuses_but_the_worker_unpacks_runs_with_a_note(bundle_root, tmp_path):
    """A link entry (not model.py): the worker's extractall makes it a text file and the run goes on; the note says
    that a local dry run given the zip refuses it."""
    archive = tmp_path / "linked.zip"
    with zipfile.ZipFile(archive, "w") as bundle:
        bundle.writestr("model.py", "class Model:\n    def predict(self, image):\n        return 'SNE'\n")
        bundle.writestr("metadata", "description: linked\n")
        link = zipfile.ZipInfo("weights.bin")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        bundle.writestr(link, "/etc/passwd")
    result = run_submission(archive, "eval", bundle_root)
    assert result.status == "Finished", result.reason
    assert any(note.startswith("CodaBench's worker unpacks this zip as it is and runs it, but a local dry run given "
                               f"the zip refuses it: the submission zip {archive} holds 'weights.bin' as a symbolic "
                               "link") for note in result.notes), result.notes


def test_not_a_zip_is_one_line(bundle_root, tmp_path):
    fake = tmp_path / "submission.zip"
    fake.write_text("model.py is in here, honest\n")
    completed = subprocess.run([sys.executable, str(EMULATOR), str(fake), "--root", str(bundle_root)],
                               capture_output=True, text=True, timeout=300)
    assert completed.returncode == 1
    status = [line for line in completed.stdout.splitlines() if line.startswith("status:")]
    assert len(status) == 1 and status[0].startswith("status: Failed (Bad or empty zip file (CodaBench's worker")
    assert "Traceback" not in completed.stderr and "prediction_ingestion" not in completed.stdout  # nothing ran


# --- What the worker reads from the participant: the metadata file, the folder's names, the work folder ------------

SNE_MODEL = "class Model:\n    def predict(self, image):\n        return 'SNE'\n"
NOT_A_STRING = ["command: 5\n", "command: [python3, model.py]\n", "command: {run: model.py}\n", "command: 2.5\n",
                "command: !!python/tuple [python3, model.py]\n", "command: !!python/bytes cHl0aG9uMyBtb2RlbC5weQ==\n"]


@pytest.mark.parametrize("text", NOT_A_STRING)
def test_a_command_that_is_no_string_starts_nothing_and_names_the_type(tmp_path, text):
    """The worker's replace_legacy_metadata_command raises AttributeError on it; asyncio.gather keeps the error to
    itself, so that program never starts (a falsy value is no command at all, as for the worker)."""
    (tmp_path / "metadata").write_text(text)
    found = metadata_command(tmp_path)
    assert found.name == "metadata" and found.command is None
    kind = type(yaml.load(text, Loader=yaml.FullLoader)["command"]).__name__
    assert re.fullmatch(rf"`command` is an? {kind} \(.+\), not a string", found.problem), found.problem
    (tmp_path / "metadata").write_text("command: 0\n")
    assert metadata_command(tmp_path) == ProgramMetadata("metadata")


UNREADABLE = {  # metadata bytes -> the problem named
    "nested 5000 deep": (b"command: " + b"[" * 5000 + b"]" * 5000,
                         "not readable YAML: nested too deeply (Python's recursion limit)"),
    "a date that is none": (b"when: 2026-13-45\ncommand: python3 x.py\n", "not readable YAML: month must be in 1..12"),
    "a 5000-digit integer": (b"size: " + b"9" * 5000 + b"\n", "not readable YAML: Exceeds the limit (4300 digits)"),
    "broken syntax": (b"command: [python3\n", "not readable YAML: while parsing a flow sequence"),
    "a tag that would call code": (b"command: !!python/object/apply:os.system [echo hi]\n",
                                   "not readable YAML: could not determine a constructor for the tag"),
    "not UTF-8": (b"command: python3 caf\xe9.py\n", "not UTF-8 text (byte 0xe9 at offset 20)"),
    "an open quote": (b"command: python3 'model.py\n",
                      "`command` cannot be split into words as docker-py splits it: No closing quotation"),
}


@pytest.mark.parametrize("kind", list(UNREADABLE))
def test_a_metadata_file_the_worker_cannot_use_is_named_never_a_traceback(tmp_path, kind):
    data, problem = UNREADABLE[kind]
    (tmp_path / "metadata").write_bytes(data)
    found = metadata_command(tmp_path)
    assert found.name == "metadata" and found.command is None and found.problem.startswith(problem), found.problem


def test_python_tags_are_read_as_the_workers_full_loader_reads_them(tmp_path):
    """The worker parses metadata with yaml.FullLoader, not safe_load: a !!python/str command runs there."""
    (tmp_path / "metadata").write_text('command: !!python/str "python3 model.py"\n')
    assert metadata_command(tmp_path) == ProgramMetadata("metadata", "python3 model.py")


def test_a_metadata_folder_is_found_first_as_the_worker_finds_it(tmp_path):
    """os.path.exists, not isfile: a folder metadata.yaml hides a good metadata file from the worker too."""
    (tmp_path / "metadata.yaml").mkdir()
    (tmp_path / "metadata").write_text("command: python3 x.py\n")
    assert metadata_command(tmp_path) == ProgramMetadata("metadata.yaml", None, "a folder, not a file")


def test_unusable_submission_metadata_runs_only_the_ingestion_and_says_why(bundle_root, tmp_path):
    """A folder `metadata` and a `command: 5`: the worker starts no program of the submission, nor copies it into
    the output (the file is there), and the ingestion runs as usual."""
    for name, make in (("folder", lambda m: m.mkdir()), ("int", lambda m: m.write_text("command: 5\n"))):
        submission = tmp_path / name
        submission.mkdir()
        (submission / "model.py").write_text(SNE_MODEL)
        make(submission / "metadata")
        result = run_submission(submission, "eval", bundle_root, workdir=tmp_path / f"run_{name}")
        assert result.status == "Finished", result.reason
        problem = "a folder, not a file" if name == "folder" else "`command` is an int (5), not a string"
        assert (f"the submission's metadata: {problem}: CodaBench's worker finds it but starts no program of the "
                "submission for it (the error goes only to the worker's own log), and, as the file is there, does "
                "not copy the submission into the prediction output either; only the ingestion program runs"
                ) in result.notes, result.notes
        assert not (tmp_path / f"run_{name}" / "scoring" / "input" / "res" / "model.py").exists()
        assert not any("no `metadata` file" in note for note in result.notes)


def test_worker_command_splits_as_docker_py_and_no_words_run_the_images_command():
    mounts = {"/app/program": "/t/p"}
    argv = worker_command("python3  /app/program/a.py 'two words'", "program", False, mounts, python="/py")
    assert argv == ["/py", "/t/p/a.py", "two words"]
    assert worker_command(" ", "program", False, mounts, python="/py") == ["/py"]  # the image's CMD: python3


def test_a_blank_command_runs_the_images_own_command_and_says_so(bundle_root, tmp_path):
    submission = _submission(tmp_path / "blank", SNE_MODEL)
    (submission / "metadata").write_text("command: ' '\n")
    result = run_submission(submission, "eval", bundle_root, workdir=tmp_path / "run")
    assert ("the submission's metadata: `command` is blank (' '): CodaBench's worker still starts a container for it, "
            "and docker, given no words, runs the image's own command (python3); the worker records its exit code "
            "as the submission program's, so the scoring program refuses the step; leave `command` out of the "
            "submission's metadata") in result.notes, result.notes
    assert result.status == "Failed" and result.reason == CHILD_FAILED_MESSAGE
    assert yaml.safe_load((tmp_path / "run" / "prediction" / "output" / "metadata").read_text())["exitCode"] == 0


@pytest.mark.parametrize("sandbox", ["off", "auto"])
def test_a_command_that_cannot_start_is_named_as_docker_reports_it(bundle_root, tmp_path, sandbox):
    submission = _submission(tmp_path / "missing", SNE_MODEL)
    (submission / "metadata").write_text("command: no_such_program_wbc --flag\n")
    result = run_submission(submission, "eval", bundle_root, workdir=tmp_path / "run", sandbox=sandbox)
    assert result.status == "Failed" and result.reason == CHILD_FAILED_MESSAGE
    [note] = [note for note in result.notes if "could not be run" in note]
    assert note.startswith("the command of the submission's metadata could not be run (exit 127, docker's code for "
                           "a command it cannot find: ") and "no_such_program_wbc" in note, note
    assert note.endswith("the worker records it as the submission program's exit code, so the scoring program "
                         "refuses the step (a program that exits with that code itself reads the same)")


def test_a_flood_on_stderr_is_read_back_by_its_end_only(tmp_path):
    """A step that prints gigabytes must not fill the emulator's memory: it reads back the last MiB, whole lines of
    which end where the container's stderr ends."""
    (tmp_path / "err.txt").write_bytes(b"x" * 3 * 2**20 + b"\nthe last line\n")
    result = ContainerResult("ingestion", [], 1, 0.0, False, tmp_path / "out.txt", tmp_path / "err.txt")
    text = result.stderr_text()
    assert len(text) == 2**20 and text.splitlines()[-1] == "the last line"


def test_a_process_that_cannot_start_gets_dockers_exit_code_not_a_traceback(tmp_path):
    """Not found 127; not executable, or a word the system cannot take (a NUL byte), 126."""
    script = tmp_path / "script.py"
    script.write_text("print('no shebang, not executable')\n")
    containers = [("missing", ["no_such_program_wbc"], tmp_path), ("plain file", [str(script)], tmp_path),
                  ("nul", [sys.executable, "a\0b"], tmp_path)]
    results, timed_out, _ = run_containers(containers, 30, {"PATH": "/usr/bin:/bin"}, tmp_path)
    assert not timed_out and [r.exit_code for r in results] == [127, 126, 126]
    assert "exec 'no_such_program_wbc': No such file or directory" in results[0].stderr_text()
    assert "embedded null byte" in results[2].stderr_text()


def test_a_folder_submission_with_a_name_that_is_not_utf8_is_refused_by_name(tmp_path):
    """Python's zipfile cannot store it; Info-ZIP stores its raw bytes, which the ingestion's zip checks refuse."""
    submission = tmp_path / "sub"
    (submission / "data").mkdir(parents=True)
    (submission / "metadata").write_text(METADATA)
    with open(os.fsencode(submission / "data") + b"/caf\xe9.txt", "wb") as handle:
        handle.write(b"x")
    with pytest.raises(SubmissionNotRunnable) as refused:
        stage_submission(submission, tmp_path / "staged", tmp_path)
    assert str(refused.value) == (
        f"the submission folder {submission} holds a name that is not valid UTF-8 (b'data/caf\\xe9.txt'); rename it: "
        "names must be UTF-8 (Python's zipfile cannot store this one, and a zip tool that stores its raw bytes makes "
        "a zip whose names the ingestion refuses)")
    with pytest.raises(NameNotUtf8):  # the prediction output and a bundle folder are zipped by the same function
        zip_folder(submission, tmp_path / "out.zip")
    assert not (tmp_path / "out.zip").exists()


def test_a_used_workdir_is_refused_and_left_as_it_is(bundle_root, tmp_path):
    used = tmp_path / "used"
    (used / "prediction").mkdir(parents=True)
    submission = _submission(tmp_path / "sub", SNE_MODEL)
    completed = subprocess.run([sys.executable, str(EMULATOR), str(submission), "--root", str(bundle_root),
                                "--workdir", str(used)], capture_output=True, text=True, timeout=300)
    assert completed.returncode == 2 and "Traceback" not in completed.stderr, completed.stderr
    assert completed.stderr == (f"codabench_run: error: --workdir {used} is not empty (it holds prediction): give a "
                                "new or empty folder; codabench_run deletes nothing it did not create, so remove the "
                                "old run yourself\n")
    assert sorted(p.name for p in used.iterdir()) == ["prediction"]
    (tmp_path / "a_file").write_text("mine")
    with pytest.raises(RunSetupError, match=r"--workdir .*a_file is not a folder"):
        run_submission(submission, "eval", bundle_root, workdir=tmp_path / "a_file")
    assert (tmp_path / "a_file").read_text() == "mine"


@pytest.mark.parametrize("data", [b"tasks: " + b"[" * 5000, b"tasks: []\n\xff", b"- a list\n"])
def test_a_competition_yaml_that_cannot_be_read_is_named(tmp_path, data):
    (tmp_path / "competition.yaml").write_bytes(data)
    shown = re.escape(str(tmp_path / "competition.yaml"))
    with pytest.raises(RunSetupError, match=f"^{shown}: not readable as YAML: "):
        BundleSource(tmp_path).competition()


def test_a_run_report_rewritten_by_the_submission_gives_no_note_and_no_traceback(tmp_path):
    """The submission's own command can rewrite run_report.json after the ingestion: too deep, wrong types."""
    for text in ("[" * 100000, '{"warnings": "not a list", "total_seconds": "a lot", "budget_seconds": 60}'):
        (tmp_path / "run_report.json").write_text(text)
        assert _prediction_notes(tmp_path, 600) == []


@pytest.mark.parametrize("name, text", [("scores.json", "[1, 2]"), ("scores.json", "[" * 100000),
                                        ("scores.txt", "a: [" + "[" * 5000)])
def test_a_scores_file_that_is_no_mapping_is_a_named_failure(tmp_path, name, text):
    step = WorkerStep("scoring", tmp_path, 60, sandboxed=False)
    step.output.mkdir(parents=True)
    (step.output / name).write_text(text)
    with pytest.raises(SubmissionFailed, match=rf"^{name}: (expected a mapping|not readable)"):
        step.push_scores()


def test_broken_submission_fails_in_scoring_with_a_clear_message(bundle_root, tmp_path):
    submission = _submission(tmp_path / "broken",
                             "class Model:\n"
                             "    def load(self):\n        pass\n"
                             "    def predict(self, image):\n        raise RuntimeError('weights not found')\n")
    result = run_submission(submission, "eval", bundle_root, workdir=tmp_path / "run")
    assert result.status == "Failed" and result.reason == CHILD_FAILED_MESSAGE
    assert result.scoring is not None and result.scoring.exit_code != 0 and result.scores is None
    stderr = result.scoring.stderr_text()
    assert "weights not found" in stderr and "Traceback" not in stderr  # one message a participant can act on


def test_time_limit_kills_the_step(bundle_root, tmp_path):
    submission = _submission(tmp_path / "slow",
                             "import time\n\nclass Model:\n    def load(self):\n        time.sleep(120)\n"
                             "    def predict(self, image):\n        return 'SNE'\n")
    result = run_submission(submission, "eval", bundle_root, workdir=tmp_path / "run", time_limit=4)
    assert result.status == "Failed" and result.prediction.timed_out and result.scoring is None
    assert result.reason == "Execution Time Limit exceeded. Limit was 4 seconds"
    assert result.prediction.elapsed < 30
    completed = subprocess.run([sys.executable, str(EMULATOR), str(submission), "--root", str(bundle_root),
                                "--time-limit", "4"], capture_output=True, text=True, timeout=120)
    assert "status: Failed (Execution Time Limit exceeded. Limit was 4 seconds)" in completed.stdout
    assert "prediction stderr (last lines) (not shown on CodaBench: the worker uploads a container's logs only once " \
           "it has ended" in completed.stderr  # what the participant will not see there is marked


@pytest.mark.skipif(step_sandbox.unavailable_reason() is not None, reason="no private root on this machine")
def test_in_the_private_root_the_supervisor_is_pid_1_so_the_model_cannot_freeze_it(bundle_root, tmp_path):
    """As in a container, the step's command is its namespace's first process: the SIGSTOP and SIGKILL a model sends
    its supervisor are dropped by the kernel, and the run finishes long before the worker's limit."""
    submission = _submission(tmp_path / "freezer",
                             "import os, signal\n\nclass Model:\n    def load(self):\n"
                             "        os.kill(os.getppid(), signal.SIGSTOP)\n        os.kill(os.getppid(), signal.SIGKILL)\n"
                             "    def predict(self, image):\n        return 'SNE'\n")
    result = run_submission(submission, "eval", bundle_root, workdir=tmp_path / "run", time_limit=120)
    assert result.status == "Finished" and not result.prediction.timed_out, result.reason
    assert result.prediction.elapsed < 60


# --- Hostile submissions: the process layer, which is all there is without the sandbox ------------------------------

SNOOPING_MODEL = '''
"""Looks for reference_data from every place a process can learn about; with it, answers by pixel lookup."""
import csv, hashlib, json, os, sys, zipfile
from io import BytesIO
from pathlib import Path
from PIL import Image


def _parent_cwd():
    try:
        return os.readlink(f"/proc/{os.getppid()}/cwd")
    except OSError:
        return None


def _find(start):
    for folder in [Path(start), *Path(start).parents] if start else []:
        found = sorted(folder.glob("reference_data/*/reference.csv"))
        if found:
            return found
    return []


class Model:
    def load(self):
        routes = {"PWD": os.environ.get("PWD"), "cwd": os.getcwd(), "sys.executable": sys.executable,
                  "/proc/<ppid>/cwd": _parent_cwd(), "own folder": str(Path(__file__).resolve().parent)}
        found = {route: [str(p) for p in _find(start)] for route, start in routes.items()}
        Path(REPORT).write_text(json.dumps({"routes": routes, "found": found}))
        self.answers = {}
        for reference in {p for paths in found.values() for p in paths}:
            reference = Path(reference)
            labels = {row["image_id"]: row["label"] for row in csv.DictReader(open(reference))}
            for images in (reference.parents[2] / "input_data" / reference.parent.name).glob("*.zip"):
                with zipfile.ZipFile(images) as archive:
                    for name in archive.namelist():
                        pixels = Image.open(BytesIO(archive.read(name))).convert("RGB").tobytes()
                        if Path(name).stem in labels:
                            self.answers[hashlib.md5(pixels).hexdigest()] = labels[Path(name).stem]

    def predict(self, image):
        return self.answers.get(hashlib.md5(image.convert("RGB").tobytes()).hexdigest(), "SNE")
'''


def test_a_model_finds_no_reference_from_pwd_executable_parent_or_its_folder(repository, tmp_path):
    """The same model takes the plain dry run (which shares the repository) to 1.0: the lookup works when it can."""
    report = tmp_path / "found.json"
    submission = _submission(tmp_path / "snoop", f"REPORT = {str(report)!r}\n" + SNOOPING_MODEL)
    python = str(repository / ".venv" / "bin" / Path(sys.executable).name)
    env = {**os.environ, "PWD": str(repository)}
    for program in ([repository / "ingestion_program" / "ingestion.py", "--submission", submission],
                    [repository / "scoring_program" / "score.py"]):
        subprocess.run([python, *map(str, program)], cwd=repository, env=env, check=True, capture_output=True,
                       timeout=300)
    control = json.loads((repository / "output" / "scores" / "scores.json").read_text())
    assert control["degraded_macro_f1"] == 1.0 and any(json.loads(report.read_text())["found"].values())

    report.unlink()
    completed = _run_emulator(repository, submission, tmp_path / "run", "off")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    seen = json.loads(report.read_text())
    assert seen["found"] == {route: [] for route in seen["routes"]}, seen
    assert str(repository) not in json.dumps(seen["routes"]), seen["routes"]
    assert _scores(tmp_path / "run")["degraded_macro_f1"] < 0.5


SETSID_CHILD_MODEL = '''
import csv, ctypes, os, time
from pathlib import Path


class Model:
    def load(self):
        scoring_input = Path(__file__).resolve().parents[2] / "scoring" / "input"
        if os.fork() == 0:
            os.setsid()
            ctypes.CDLL(None).prctl(15, NAME.encode(), 0, 0, 0)  # PR_SET_NAME: the test finds it by this name
            Path(STARTED_FILE).write_text(NAME)
            deadline = time.time() + 120
            while time.time() < deadline:
                reference = scoring_input / "ref" / "reference.csv"
                if reference.is_file():
                    time.sleep(0.1)
                    rows = list(csv.DictReader(open(reference)))
                    (scoring_input / "res" / "predictions.csv").write_text("image_id,set,label\\n" + "".join(
                        f"{row['image_id']},{row['set']},{row['label']}\\n" for row in rows))
                    break
                time.sleep(0.02)
            os._exit(0)

    def predict(self, image):
        return "SNE"
'''


def test_a_setsid_child_is_killed_before_the_reference_is_staged(repository, tmp_path):
    started, name = tmp_path / "child.started", f"wbc{secrets.token_hex(5)}"
    submission = _submission(tmp_path / "setsid",
                             f"STARTED_FILE = {str(started)!r}\nNAME = {name!r}\n" + SETSID_CHILD_MODEL)
    completed = _run_emulator(repository, submission, tmp_path / "run", "off")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    # Two layers: the ingestion supervisor kills what the model started; the emulator kills what is still left.
    report = json.loads((tmp_path / "run" / "prediction" / "output" / "run_report.json").read_text())
    assert ("left over from the prediction step" in completed.stdout
            or "1 process the submission started was still running; killed" in report["warnings"])
    assert started.read_text() == name and not processes_named(name)
    assert _scores(tmp_path / "run")["degraded_macro_f1"] < 0.5


ESCAPING_CHILD_MODEL = '''
import os, subprocess, sys
from pathlib import Path

# Run outside every trace the emulator looks for: no environment, cwd /, no path in its arguments or open files.
WAITER = """
import csv, ctypes, os, sys, time
target, started, name = sys.stdin.read().split("\\\\n")[:3]
ctypes.CDLL(None).prctl(15, name.encode(), 0, 0, 0)
open(started, "w").write(name)
deadline = time.time() + 120
while time.time() < deadline:
    if os.path.isfile(target + "/ref/reference.csv"):
        time.sleep(0.1)
        rows = list(csv.DictReader(open(target + "/ref/reference.csv")))
        with open(target + "/res/predictions.csv", "w") as out:
            out.write("image_id,set,label\\\\n")
            out.writelines(f"{r['image_id']},{r['set']},{r['label']}\\\\n" for r in rows)
        break
    time.sleep(0.02)
"""


class Model:
    def load(self):
        target = str(Path(__file__).resolve().parents[2] / "scoring" / "input")
        waiter = subprocess.Popen([sys._base_executable, "-c", WAITER], env={}, cwd="/", stdin=subprocess.PIPE,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        waiter.stdin.write(f"{target}\\n{STARTED_FILE}\\n{NAME}\\n".encode())
        waiter.stdin.close()

    def predict(self, image):
        return "SNE"
'''


def test_an_escaped_process_that_rewrites_the_predictions_is_a_named_failure(repository, tmp_path):
    """Untraceable by the emulator: either it loses the race (honest score) or the changed predictions are caught."""
    started, name = tmp_path / "waiter.started", f"wbc{secrets.token_hex(5)}"
    submission = _submission(tmp_path / "escape",
                             f"STARTED_FILE = {str(started)!r}\nNAME = {name!r}\n" + ESCAPING_CHILD_MODEL)
    try:
        completed = _run_emulator(repository, submission, tmp_path / "run", "off")
    finally:
        for _ in range(100):
            if started.is_file() and started.read_text():
                break
            time.sleep(0.05)
        kill_named(name)
    if completed.returncode == 0:
        assert _scores(tmp_path / "run")["degraded_macro_f1"] < 0.5
    else:
        assert ("status: Failed (the predictions changed while the scoring program ran (predictions.csv)"
                in completed.stdout), completed.stdout + completed.stderr


def test_a_model_that_rewrites_the_scoring_program_and_reference_gets_an_honest_score(repository, tmp_path):
    forged = {key: 1.0 for key in LEADERBOARD_KEYS}
    model = (f"import csv\nfrom pathlib import Path\n\nROOT = Path({str(repository)!r})\n\n"
             "class Model:\n"
             "    def load(self):\n"
             "        (ROOT / 'scoring_program' / 'score.py').write_text(\n"
             "            'import json, sys\\n'\n"
             f"            'open(sys.argv[2] + \"/scores.json\", \"w\").write(json.dumps({json.dumps(forged)}))\\n')\n"
             "        reference = ROOT / 'reference_data' / 'eval' / 'reference.csv'\n"
             "        rows = list(csv.DictReader(open(reference)))\n"
             "        with open(reference, 'w', newline='') as out:\n"
             "            writer = csv.DictWriter(out, fieldnames=list(rows[0]))\n"
             "            writer.writeheader()\n"
             "            writer.writerows({**row, 'label': 'SNE'} for row in rows)\n\n"
             "    def predict(self, image):\n        return 'SNE'\n")
    submission = _submission(tmp_path / "rewrite", model)
    completed = _run_emulator(repository, submission, tmp_path / "run", "off")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "json.dumps" in (repository / "scoring_program" / "score.py").read_text()  # the attack did happen
    assert _scores(tmp_path / "run")["degraded_macro_f1"] < 0.5


FORGING_MODEL = '''
"""Plants a startup hook in its own interpreter's packages that rewrites scores.json when score.py exits."""
import json, site, sys
from pathlib import Path

HOOK = ("import atexit, json, sys\\n"
        "def forge():\\n"
        "    if sys.argv[0].endswith('score.py') and len(sys.argv) > 2:\\n"
        f"        open(sys.argv[2] + '/scores.json', 'w').write({json.dumps(json.dumps(FORGED))})\\n"
        "atexit.register(forge)\\n")


class Model:
    def load(self):
        for folder in site.getsitepackages():
            if folder.startswith(sys.prefix):  # the step's staged interpreter, in the step's own tree
                Path(folder, "zz_forge.py").write_text(HOOK)
                Path(folder, "zz_forge.pth").write_text("import zz_forge\\n")

    def predict(self, image):
        return "SNE"
'''


def test_a_hook_planted_in_the_prediction_interpreter_never_runs_in_scoring(repository, tmp_path):
    """Each step stages its own interpreter, the scoring one only after the prediction step ended."""
    forged = {key: 1.0 for key in LEADERBOARD_KEYS}
    submission = _submission(tmp_path / "forge", f"FORGED = {forged!r}\n" + FORGING_MODEL)
    completed = _run_emulator(repository, submission, tmp_path / "run", "auto")
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert list((tmp_path / "run" / "prediction" / "python").rglob("zz_forge.pth"))  # the hook was planted
    assert _scores(tmp_path / "run")["degraded_macro_f1"] < 0.5


# --- Hostile submissions in the sandbox (tools/step_sandbox.py) ---------------------------------------------------

PROBING_MODEL = '''
"""Reads the reference by its path, writes into the packages outside its tree and into /tmp, sizes /dev/shm,
counts processes, and leaves a process behind that hides every trace the process layer looks for."""
import json, os, subprocess, sys


def attempt(action):
    try:
        action()
        return "done"
    except OSError as error:
        return type(error).__name__


class Model:
    def load(self):
        outer = [p for p in sys.path if p.endswith("site-packages") and not p.startswith(sys.prefix)]
        seen = {"reference": attempt(lambda: open(ROOT + "/reference_data/eval/reference.csv").read()),
                "repository": sorted(os.listdir(ROOT)) if os.path.isdir(ROOT) else None,
                "outer packages": [attempt(lambda p=p: open(p + "/" + PROBE, "w").close()) for p in outer],
                "processes": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
                "capabilities": open("/proc/self/status").read().split("CapEff:")[1].split()[0],
                "tmp": attempt(lambda: open("/tmp/" + TOKEN, "w").close()),
                "shm bytes": os.statvfs("/dev/shm").f_blocks * os.statvfs("/dev/shm").f_frsize}
        subprocess.Popen([sys.executable, "-c", f"import time; time.sleep(300)  # {TOKEN}"], env={}, cwd="/",
                         start_new_session=True, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL)
        print("SEEN " + json.dumps(seen), flush=True)

    def predict(self, image):
        return "SNE"
'''


def _processes_with(token: str) -> list:
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            if token.encode() in Path(f"/proc/{entry}/cmdline").read_bytes():
                found.append(int(entry))
        except OSError:
            pass
    return found


@pytest.mark.skipif(SANDBOX_MISSING is not None, reason=f"no step sandbox on this machine: {SANDBOX_MISSING}")
def test_in_the_sandbox_a_model_reaches_no_reference_no_packages_and_no_process_outlives_it(repository, tmp_path):
    token, probe = secrets.token_hex(8), f"wbc_sandbox_probe_{secrets.token_hex(4)}.pth"
    submission = _submission(tmp_path / "probe",
                             f"ROOT = {str(repository)!r}\nTOKEN = {token!r}\nPROBE = {probe!r}\n" + PROBING_MODEL)
    outer = [Path(folder) / probe for folder in sys.path if folder.endswith("site-packages")]
    try:
        completed = _run_emulator(repository, submission, tmp_path / "run", "on")
    finally:  # should the sandbox fail, leave this machine as it was
        planted = [str(path) for path in outer if path.exists()]
        for path in outer:
            path.unlink(missing_ok=True)
        survivors = _processes_with(token)
        for pid in survivors:
            os.kill(pid, signal.SIGKILL)
    assert completed.returncode == 0, completed.stdout + completed.stderr
    assert "each step ran in a private root" in completed.stdout
    log = (tmp_path / "run" / "prediction" / "output" / "submission_output.log").read_text()
    seen = json.loads(log.split("SEEN ", 1)[1].splitlines()[0])
    assert seen["reference"] == "FileNotFoundError"
    assert seen["repository"] in (None, [".venv"])  # at most the Python environment the steps run with
    assert seen["outer packages"] and set(seen["outer packages"]) == {"OSError"}  # read-only
    assert max(seen["processes"]) < 100  # its own PID namespace, not this machine's processes
    assert int(seen["capabilities"], 16) == 0
    # /tmp is a folder on disk beside the step trees (as the container's own is), /dev/shm docker's 64 MiB
    assert seen["tmp"] == "done" and not Path("/tmp", token).exists()
    assert (tmp_path / "run" / "step_tmp" / "prediction_ingestion" / token).is_file()
    assert seen["shm bytes"] == 64 * 2**20
    assert not planted and not survivors
    assert _scores(tmp_path / "run")["degraded_macro_f1"] < 0.5


def test_sandbox_on_where_it_cannot_run_is_a_setup_error(bundle_root, tmp_path, monkeypatch):
    monkeypatch.setattr(step_sandbox, "unavailable_reason", lambda: "unshare: write failed /proc/self/uid_map")
    submission = _submission(tmp_path / "kit", "class Model:\n    def predict(self, image):\n        return 'SNE'\n")
    with pytest.raises(RunSetupError, match="--sandbox on, but the step sandbox cannot run here: unshare: write"):
        run_submission(submission, "eval", bundle_root, sandbox="on")
    result = run_submission(submission, "eval", bundle_root, sandbox="auto")
    assert result.status == "Finished" and not result.sandboxed
    assert any(note.startswith("no step sandbox on this machine (unshare: write") for note in result.notes)
