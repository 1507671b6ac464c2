"""Run a submission through both steps the way CodaBench's compute worker does, without docker.

Mirrors compute_worker.py: each bundle folder is zipped and unpacked like the worker's _get_bundle (including
its flattening of the first sub-folder of data and submission zips), the prediction step sees only the
ingestion program, the submission and the input data (never the reference), a submission without its own
metadata file is copied into the prediction output, the worker writes `metadata` (exit codes, elapsed times)
into each output, commands come from metadata.yaml split on spaces with /app paths mapped to the temp tree,
and execution_time_limit bounds each step (the process group is killed).
"""
import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from competition_rules import load_competition

REPO = Path(__file__).resolve().parents[1]
DEFAULT_TIME_LIMIT = 600  # seconds, the platform default when a phase sets none
METADATA_FILES = ("metadata", "metadata.yaml")
# The worker's substitutions for legacy CodaLab commands (compute_worker.replace_legacy_metadata_command).
LEGACY_VARIABLES = {
    "prediction": [("$input", "/app/input_data"), ("$output", "/app/output"), ("$program", "/app/program"),
                   ("$ingestion_program", "/app/program"), ("$hidden", "/app/input/ref"),
                   ("$shared", "/app/shared"), ("$submission_program", "/app/ingested_program"),
                   ("$tmp", "/app/output"), ("$predictions", "/app/output")],
    "scoring": [("$input", "/app/input"), ("$output", "/app/output"), ("$program", "/app/program"),
                ("$ingestion_program", "/app/program"), ("$hidden", "/app/input/ref"),
                ("$shared", "/app/shared"), ("$submission_program", "/app/ingested_program"),
                ("$tmp", "/app/output"), ("$predictions", "/app/input/res")],
}


class RunSetupError(Exception):
    """The bundle or the submission cannot be staged (not a submission failure: the run never starts)."""


@dataclass
class StepResult:
    """One container run: its command as executed, exit code, time and log files."""

    name: str
    command: list
    exit_code: int | None
    elapsed: float
    timed_out: bool
    stdout: Path
    stderr: Path

    def stderr_text(self) -> str:
        return self.stderr.read_text(encoding="utf-8", errors="replace") if self.stderr.is_file() else ""


@dataclass
class RunResult:
    """What CodaBench would show: status, reason, scores and where the outputs are."""

    phase: str
    status: str  # "Finished" or "Failed"
    reason: str | None
    workdir: Path
    prediction: StepResult | None
    scoring: StepResult | None = None
    scores: dict | None = None
    columns: list = field(default_factory=list)  # (key, title) in leaderboard index order
    detailed_results: Path | None = None

    def leaderboard_row(self) -> str:
        """The leaderboard row as CodaBench would display it (keys scores.json lacks show as '-')."""
        scores = self.scores or {}
        cells = [(title, f"{scores[key]:.4f}" if isinstance(scores.get(key), (int, float)) else "-")
                 for key, title in self.columns]
        widths = [max(len(title), len(value)) for title, value in cells]
        return "\n".join(" | ".join(text.ljust(width) for text, width in zip(line, widths))
                         for line in ([t for t, _ in cells], [v for _, v in cells]))


def _zip_like_uploader(source: Path, zip_path: Path):
    """A folder zipped as the uploader and the worker do (shutil.make_archive of its contents)."""
    return Path(shutil.make_archive(str(zip_path.with_suffix("")), "zip", root_dir=source))


def _unpack_like_worker(zip_path: Path, destination: Path, is_program: bool) -> str | None:
    """compute_worker._get_bundle: extract, then move one sub-folder's contents up; returns that folder's name.

    Programs: the folder holding a metadata file. Everything else (data, submissions, predictions): the first
    entry with a '/' decides, whatever it is, so a submission with a sub-folder gets that folder flattened.
    """
    with zipfile.ZipFile(zip_path) as archive:
        names = archive.namelist()
        parent = None
        for name in names:
            if "/" in name:
                if is_program:
                    if os.path.basename(name) in METADATA_FILES:
                        parent = name.split("/")[0]
                        break
                else:
                    parent = name.split("/")[0]
                    break
        archive.extractall(destination)
    if parent:
        parent_path = destination / parent
        for child in os.listdir(parent_path):
            os.rename(parent_path / child, destination / child)
        os.rmdir(parent_path)
    return parent


def _fetch(source: Path, destination: Path, scratch: Path, is_program=False) -> str | None:
    """Stage a bundle folder or zip at destination through the uploader's zip and the worker's unpacking."""
    destination.mkdir(parents=True, exist_ok=True)
    zip_path = source if source.is_file() else _zip_like_uploader(source, scratch / f"{destination.name}.zip")
    return _unpack_like_worker(zip_path, destination, is_program)


def worker_command(command: str, step: str, mounts: dict, python: str = sys.executable) -> list:
    """metadata.yaml command -> argv: legacy $variables, split on single spaces, /app paths -> temp folders."""
    for variable, value in LEGACY_VARIABLES[step]:
        command = command.replace(variable, value)
    pattern = re.compile("|".join(re.escape(m) for m in sorted(mounts, key=len, reverse=True)) + r"(?=/|$|\b)")
    argv = []
    for token in command.split(" "):
        if token in ("python3", "python"):
            token = python
        argv.append(pattern.sub(lambda match: str(mounts[match.group(0)]), token))
    return argv


def _run_step(name, program_dir: Path, step: str, mounts: dict, time_limit: int, logs: Path, python) -> StepResult:
    """Run the program's metadata.yaml command in its folder; kill the process group at the time limit."""
    metadata = program_dir / "metadata.yaml"
    if not metadata.is_file():
        raise RunSetupError(f"{name}: {metadata.name} not found in the program folder")
    command = (yaml.safe_load(metadata.read_text(encoding="utf-8")) or {}).get("command")
    if not command:
        raise RunSetupError(f"{name}: metadata.yaml has no 'command'")
    argv = worker_command(command, step, mounts, python)
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["PYTHONUNBUFFERED"] = "1"
    stdout, stderr = logs / f"{name}_stdout.txt", logs / f"{name}_stderr.txt"
    start = time.monotonic()
    with open(stdout, "wb") as out, open(stderr, "wb") as err:
        process = subprocess.Popen(argv, cwd=program_dir, stdout=out, stderr=err, env=env, start_new_session=True)
        try:
            process.wait(timeout=time_limit)
            timed_out = False
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            timed_out = True
    return StepResult(name, argv, None if timed_out else process.returncode, time.monotonic() - start,
                      timed_out, stdout, stderr)


def _write_worker_metadata(output: Path, program: StepResult | None, ingestion: StepResult | None) -> str | None:
    """compute_worker.push_output: the `metadata` file; an existing one fails the submission."""
    path = output / "metadata"
    if path.exists():
        return ("Error, the output directory already contains a metadata file. This file is used to store "
                "exitCode and other data, do not write to this file manually.")
    status = {"exitCode": program.exit_code if program else None,
              "elapsedTime": (program.elapsed if program else None) or (ingestion.elapsed if ingestion else None),
              "ingestionExitCode": ingestion.exit_code if ingestion else None,
              "ingestionElapsedTime": ingestion.elapsed if ingestion else None}
    path.write_text(yaml.dump(status, default_flow_style=False), encoding="utf-8")
    return None


def _step_verdict(step: StepResult, output: Path, limit: int, program, ingestion) -> str | None:
    """What the worker says after a step: its time limit first, then the metadata file it writes."""
    if step.timed_out:
        return f"Execution Time Limit exceeded. Limit was {limit} seconds"
    return _write_worker_metadata(output, program, ingestion)


def _find_task(config: dict, phase: str):
    """The task whose input_data folder is named after the phase, and the phase that runs it."""
    for task in config.get("tasks") or []:
        if Path(str(task.get("input_data", ""))).name == phase:
            runs = [p for p in config.get("phases") or [] if task.get("index") in (p.get("tasks") or [])]
            return task, (runs[0] if runs else {})
    names = [Path(str(task.get("input_data", ""))).name for task in config.get("tasks") or []]
    raise RunSetupError(f"no task in competition.yaml has input_data named '{phase}' (tasks: {names})")


def _bundle_root(root: Path, scratch: Path) -> Path:
    if root.is_file():
        with zipfile.ZipFile(root) as archive:
            archive.extractall(scratch / "bundle")
        return scratch / "bundle"
    return root


def run_submission(submission, phase="eval", root=REPO, workdir=None, time_limit=None,
                   python=sys.executable) -> RunResult:
    """Prediction step then scoring step on a submission (zip or folder) for one phase of a bundle.

    root: the repository, an unpacked bundle or dist/bundle.zip. time_limit overrides the phase's
    execution_time_limit (seconds). Returns a RunResult; only a bundle that cannot be staged raises.
    """
    submission, root = Path(submission), Path(root)
    if not submission.exists():
        raise RunSetupError(f"submission {submission} not found")
    workdir = Path(workdir) if workdir else Path(tempfile.mkdtemp(prefix="codabench_run_"))
    scratch = workdir / "bundles"
    scratch.mkdir(parents=True, exist_ok=True)
    root = _bundle_root(root, scratch)
    config = load_competition(root / "competition.yaml")
    task, phase_config = _find_task(config, phase)
    limit = int(time_limit or phase_config.get("execution_time_limit") or DEFAULT_TIME_LIMIT)
    board = (config.get("leaderboards") or [{}])[0]
    columns = [(c["key"], c.get("title", c["key"])) for c in sorted(board.get("columns") or [],
                                                                        key=lambda c: c.get("index", 0))]
    logs = workdir / "logs"
    logs.mkdir(exist_ok=True)

    # Prediction step: ingestion at /app/program, submission at /app/ingested_program, no reference data.
    app = workdir / "prediction"
    _fetch(root / task["ingestion_program"], app / "program", scratch, is_program=True)
    flattened = _fetch(submission, app / "ingested_program", scratch)
    if flattened:
        print(f"note: the worker moved the contents of '{flattened}/' to the submission root "
              "(a zip's first sub-folder is flattened): keep model.py at the root, no sub-folders", file=sys.stderr)
    _fetch(root / task["input_data"], app / "input_data", scratch)
    if not any((app / "ingested_program" / name).is_file() for name in METADATA_FILES):
        # The worker treats the submission as a result submission too and copies it into the output.
        shutil.copytree(app / "ingested_program", app / "output")
    (app / "output").mkdir(exist_ok=True)
    mounts = {"/app/program": app / "program", "/app/output": app / "output", "/app/data": app / "data",
              "/app/ingested_program": app / "ingested_program", "/app/input_data": app / "input_data"}
    prediction = _run_step("prediction_ingestion", app / "program", "prediction", mounts, limit, logs, python)
    result = RunResult(phase, "Failed", None, workdir, prediction, columns=columns)
    result.reason = _step_verdict(prediction, app / "output", limit, program=None, ingestion=prediction)
    if result.reason:
        return result

    # Scoring step: scoring program at /app/program, reference at /app/input/ref, predictions at /app/input/res.
    app = workdir / "scoring"
    _fetch(root / task["scoring_program"], app / "program", scratch, is_program=True)
    _fetch(root / task["reference_data"], app / "input" / "ref", scratch)
    _fetch(workdir / "prediction" / "output", app / "input" / "res", scratch)
    (app / "output").mkdir(parents=True)
    (app / "shared").mkdir()
    mounts = {"/app/program": app / "program", "/app/output": app / "output", "/app/input": app / "input",
              "/app/shared": app / "shared", "/app/data": app / "data"}
    scoring = _run_step("scoring", app / "program", "scoring", mounts, limit, logs, python)
    result.scoring = scoring
    html = sorted((app / "output").glob("*.html"))
    detailed = app / "output" / "detailed_results.html"
    result.detailed_results = detailed if detailed.is_file() else (html[0] if html else None)
    result.reason = _step_verdict(scoring, app / "output", limit, program=scoring, ingestion=None)
    if result.reason:
        return result
    scores_path = app / "output" / "scores.json"
    if not scores_path.is_file():
        result.reason = "Could not find scores file, did the scoring program output it?"
        return result
    try:
        result.scores = json.loads(scores_path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as error:
        result.reason = f"Could not decode scores json properly, it contains an error.\n{error.msg}"
        return result
    if scoring.exit_code != 0:
        result.reason = f"scoring program exited with code {scoring.exit_code}"
        return result
    result.status = "Finished"
    return result


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("submission", help="submission zip or folder (model.py at its root)")
    parser.add_argument("--phase", default="eval", help="eval (Development) or test (Final)")
    parser.add_argument("--root", default=str(REPO), help="repository, unpacked bundle or dist/bundle.zip")
    parser.add_argument("--workdir", help="keep the /app-like trees here (default: a new temp folder)")
    parser.add_argument("--time-limit", type=int, help="seconds per step (default: the phase's execution_time_limit)")
    args = parser.parse_args(argv)
    try:
        result = run_submission(args.submission, args.phase, args.root, args.workdir, args.time_limit)
    except RunSetupError as error:
        print(f"codabench_run: error: {error}", file=sys.stderr)
        return 2
    print(f"status: {result.status}" + (f" ({result.reason})" if result.reason else ""))
    for step in (result.prediction, result.scoring):
        if step is not None:
            code = "killed at the time limit" if step.timed_out else f"exit {step.exit_code}"
            print(f"{step.name}: {code} after {step.elapsed:.1f} s; logs {step.stdout.parent}/{step.name}_*.txt")
    if result.scoring is not None and result.scoring.exit_code != 0:
        print("scoring stderr:\n" + result.scoring.stderr_text().rstrip(), file=sys.stderr)
    elif result.status == "Failed" and result.prediction is not None:
        print("prediction stderr (last lines):\n" + "\n".join(result.prediction.stderr_text().splitlines()[-20:]),
              file=sys.stderr)
    if result.scores is not None:
        print(result.leaderboard_row())
    if result.detailed_results:
        print(f"detailed results: {result.detailed_results}")
    return 0 if result.status == "Finished" else 1


if __name__ == "__main__":
    sys.exit(main())
