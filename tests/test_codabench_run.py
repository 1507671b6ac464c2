"""codabench_run: the worker's staging, commands and failure modes, end to end on the small bundle."""
import zipfile

import pytest
import yaml

from bundle_copies import copy_bundle
from codabench_run import _unpack_like_worker, run_submission, worker_command
from leaderboard_scores import LEADERBOARD_KEYS


@pytest.fixture(scope="module")
def bundle_root(small_bundle, tmp_path_factory):
    """The repository's bundle files with the small bundle's data (the repo's own data may be absent)."""
    return copy_bundle(small_bundle, tmp_path_factory.mktemp("bundle_root"))


def test_worker_command_maps_app_paths():
    mounts = {"/app/program": "/t/p", "/app/input": "/t/in", "/app/output": "/t/out"}
    argv = worker_command("python3 /app/program/score.py /app/input/ /app/output/ $hidden", "scoring", mounts,
                          python="/venv/python")
    assert argv == ["/venv/python", "/t/p/score.py", "/t/in/", "/t/out/", "/t/in/ref"]


def test_first_subfolder_of_a_submission_zip_is_flattened(tmp_path):
    path = tmp_path / "submission.zip"
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model.py", "")
        archive.writestr("weights/net.pt", "w")
    assert _unpack_like_worker(path, tmp_path / "out", is_program=False) == "weights"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["model.py", "net.pt"]


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


def test_broken_submission_fails_in_scoring_with_a_clear_message(bundle_root, tmp_path):
    submission = tmp_path / "broken"
    submission.mkdir()
    (submission / "model.py").write_text(
        "class Model:\n"
        "    def load(self):\n        pass\n"
        "    def predict(self, image):\n        raise RuntimeError('weights not found')\n")
    result = run_submission(submission, "eval", bundle_root, workdir=tmp_path / "run")
    assert result.status == "Failed" and result.scoring is not None and result.scoring.exit_code != 0
    assert result.scores is None
    stderr = result.scoring.stderr_text()
    assert stderr.strip() and "Traceback" not in stderr  # one message a participant can act on


def test_time_limit_kills_the_step(bundle_root, tmp_path):
    submission = tmp_path / "slow"
    submission.mkdir()
    (submission / "model.py").write_text(
        "import time\n\nclass Model:\n    def load(self):\n        time.sleep(120)\n"
        "    def predict(self, image):\n        return 'SNE'\n")
    result = run_submission(submission, "eval", bundle_root, workdir=tmp_path / "run", time_limit=4)
    assert result.status == "Failed" and result.prediction.timed_out and result.scoring is None
    assert result.reason == "Execution Time Limit exceeded. Limit was 4 seconds"
    assert result.prediction.elapsed < 30
