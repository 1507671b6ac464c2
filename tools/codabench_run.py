"""Run a submission through both steps the way CodaBench's compute worker does, without docker.

Follows codalab/codabench compute_worker/compute_worker.py (2026), whose `Run` class holds a step's lifecycle:
prepare (its bundles, extracted as they are: worker_bundles.py), start (its containers within the step's time
limit: step_processes.py), push_scores (scoring), push_output (the worker's `metadata` file and its messages),
clean_up. Here WorkerStep holds the same lifecycle. The prediction step runs the ingestion program, and the
submission's own metadata command if it has one, with the input data and no reference; a submission without a
`metadata` file is copied whole into the prediction output; `execution_time_limit` bounds each step and is capped
at the default queue's limit when competition.yaml names no `queue`. Hostile submissions are kept from the
reference: where Linux allows unprivileged namespaces each step runs in a private root (tools/step_sandbox.py)
that shows it only the system, the Python installation (read-only) and its own tree, and ends every process it
started. Without it (and under it, as a second layer) the README says what is left: a clean environment, an
interpreter staged per step, the scoring program and reference copied before the prediction step and written only
after every process of that step is killed, and the staged files checked unchanged after scoring.
"""
import argparse
import io
import json
import os
import secrets
import shutil
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

import project_folders  # the program folders, tools/ and baselines/ importable by name
import step_sandbox
import worker_paths as app
from competition_rules import DEFAULT_QUEUE_LIMIT, PHASE_DEFAULT_LIMIT, effective_time_limit
from output_files import RUN_REPORT
from regular_files import open_regular  # read regular files only
from run_report import RunReport, clean_text  # what a submission wrote reaches the console cleaned
from step_processes import (CANNOT_EXECUTE, CANNOT_FIND, YAML_ERRORS, ContainerResult, ProgramMetadata, kill_leftovers,
                            metadata_command, run_containers, staged_python, step_environment, worker_command)
from submission_files import SubmissionNotRunnable
from tree_removal import remove_tree
from worker_bundles import (BundleSource, NameNotUtf8, RunSetupError, UnpackFailure, extract, file_digests,
                            stage_submission, zip_folder)

REPO = project_folders.REPO
REPORT_NOTE_CAP_BYTES = 16 * 2**20  # a larger run_report.json is no report of the ingestion (the scorer refuses it too)
NOTED_WARNINGS = 20  # the ingestion keeps fewer; a report rewritten by the submission's own command may hold more
TIME_LIMIT_MESSAGE = "Execution Time Limit exceeded. Limit was {} seconds"
CHILD_FAILED_MESSAGE = "Child task failed or non-zero return code"
NO_SCORES_MESSAGE = "Could not find scores file, did the scoring program output it?"
METADATA_EXISTS_MESSAGE = ("Error, the output directory already contains a metadata file. This file is used to "
                           "store exitCode and other data, do not write to this file manually.")


class SubmissionFailed(Exception):
    """compute_worker.SubmissionException: the submission is marked Failed, and the message is the reason shown."""


@dataclass
class RunResult:
    """What CodaBench would show: status, reason, scores and where the outputs are."""

    phase: str
    status: str  # "Finished" or "Failed"
    reason: str | None
    workdir: Path
    prediction: ContainerResult | None
    scoring: ContainerResult | None = None
    scores: dict | None = None
    columns: list = field(default_factory=list)  # (key, title) in leaderboard index order
    detailed_results: Path | None = None
    notes: list = field(default_factory=list)  # what the emulator did that the participant should know
    kept: bool = True
    sandboxed: bool = False  # each step ran in its own private root (tools/step_sandbox.py)

    def leaderboard_row(self) -> str:
        """The leaderboard row as CodaBench would display it (keys scores.json lacks show as '-')."""
        scores = self.scores or {}
        cells = [(title, f"{scores[key]:.4f}" if isinstance(scores.get(key), (int, float)) else "-")
                 for key, title in self.columns]
        widths = [max(len(title), len(value)) for title, value in cells]
        return "\n".join(" | ".join(text.ljust(width) for text, width in zip(line, widths))
                         for line in ([t for t, _ in cells], [v for _, v in cells]))


class WorkerStep:
    """One step of a submission as compute_worker.Run runs it: prepare, then its bundles, start, push_scores
    (scoring only), push_output, clean_up. A failure raises SubmissionFailed with the worker's own message."""

    def __init__(self, name: str, workdir: Path, limit: int, sandboxed: bool):
        self.name, self.limit, self.sandboxed = name, limit, sandboxed
        self.root, self.logs = workdir / name, workdir / "logs"
        self.output = self.root / "output"
        self.python = ""
        self.marker, self.born_after = "", 0
        self.containers: list[ContainerResult] = []

    @property
    def is_scoring(self) -> bool:
        return self.name == "scoring"

    def prepare(self, folders: tuple[str, ...]) -> None:
        """The step's empty folders and an interpreter staged in its tree (the step's processes must not reach the
        repository's .venv through sys.executable, nor the other step's interpreter)."""
        for name in folders:
            (self.root / name).mkdir(parents=True)
        self.python = staged_python(self.root / "python")

    def get_bundle(self, zipped: Path | io.BytesIO, relative: str) -> None:
        """compute_worker._get_bundle: a zipped bundle extracted as it is into the step's folder `relative`."""
        extract(zipped, self.root / relative)

    def container(self, name: str, command: str, kind: str, mounts: dict, cwd: Path) -> tuple:
        """(name, argv, cwd) of a container running a metadata command with the /app paths mapped onto `mounts`."""
        return name, worker_command(command, kind, self.is_scoring, mounts, self.python), cwd

    def start(self, containers: list[tuple]) -> list[ContainerResult]:
        """Every container at once, with the step's own environment and marker, in its private root when the run has
        one; SubmissionFailed at the time limit, or when the scoring program exits non-zero (the prediction step's
        exit codes fail nothing: the scoring program judges its output)."""
        self.marker = secrets.token_hex(8)
        env = step_environment(self.root / "home", self.python, self.marker)
        self.containers, timed_out, self.born_after = run_containers(
            containers, self.limit, env, self.logs, self.root if self.sandboxed else None)
        if timed_out:
            raise SubmissionFailed(TIME_LIMIT_MESSAGE.format(self.limit))
        if self.is_scoring and self.containers[-1].exit_code not in (0, None):
            raise SubmissionFailed(CHILD_FAILED_MESSAGE)
        return self.containers

    def push_scores(self) -> dict:
        """compute_worker.Run.push_scores: scores.json, else scores.txt, from the step's output."""
        if (self.output / "scores.json").is_file():
            try:
                return _scores_mapping(json.loads((self.output / "scores.json").read_text(encoding="utf-8")),
                                       "scores.json")
            except json.JSONDecodeError as error:
                raise SubmissionFailed("Could not decode scores json properly, it contains an error.\n"
                                       f"{error.msg}") from None
            except (UnicodeDecodeError, RecursionError) as error:
                raise SubmissionFailed(f"scores.json: not readable JSON: {type(error).__name__}") from None
        if (self.output / "scores.txt").is_file():
            try:
                return _scores_mapping(yaml.safe_load((self.output / "scores.txt").read_text(encoding="utf-8")),
                                       "scores.txt")
            except (UnicodeDecodeError, *YAML_ERRORS) as error:
                raise SubmissionFailed(f"scores.txt: not readable YAML: {type(error).__name__}") from None
        raise SubmissionFailed(NO_SCORES_MESSAGE)

    def push_output(self, program: ContainerResult | None, ingestion: ContainerResult | None) -> None:
        """compute_worker.Run.push_output: the `metadata` file of exit codes and times; one already there fails."""
        path = self.output / "metadata"
        if path.exists() or path.is_symlink():
            raise SubmissionFailed(METADATA_EXISTS_MESSAGE)
        status = {"exitCode": program.exit_code if program else None,
                  "elapsedTime": (program.elapsed if program else None) or (ingestion.elapsed if ingestion else None),
                  "ingestionExitCode": ingestion.exit_code if ingestion else None,
                  "ingestionElapsedTime": ingestion.elapsed if ingestion else None}
        path.write_text(yaml.dump(status, default_flow_style=False), encoding="utf-8")

    def clean_up(self) -> list[str]:
        """Kill what the step's processes left behind, as the end of its containers would; 'pid: command' of each."""
        return kill_leftovers(self.root, self.marker, self.born_after) if self.marker else []


class SubmissionRun:
    """A submission through the prediction step, then the scoring step (run_wrapper's order); `result` is what
    CodaBench would show, filled as the steps go."""

    def __init__(self, source: BundleSource, task: dict, submission: Path, limit: int, result: RunResult):
        self.source, self.task, self.submission, self.limit, self.result = source, task, submission, limit, result
        self.bundles = result.workdir / "bundles"
        self.program_metadata = "metadata"  # the name of the submission's metadata file, once staged

    def run(self) -> None:
        """Both steps; the first failure is the run's reason. The scoring program and the reference are copied
        before any submission code runs: what the model changes on disk cannot reach scoring."""
        copies = {}
        for part in ("scoring_program", "reference_data"):
            copies[part] = io.BytesIO()
            self.source.zipped(self.task[part], copies[part])
        for folder in (self.bundles, self.result.workdir / "logs"):
            folder.mkdir(parents=True, exist_ok=True)
        try:
            prediction = self.predict()
            self.score(copies, prediction.output)
        except (SubmissionFailed, SubmissionNotRunnable, UnpackFailure) as failure:
            self.result.reason = str(failure)
            return
        self.result.status = "Finished"

    def predict(self) -> WorkerStep:
        """The prediction step, its leftovers killed and its warnings noted however it ends."""
        step = WorkerStep("prediction", self.result.workdir, self.limit, self.result.sandboxed)
        step.prepare(("program", "output", "data"))
        left_out, advice = stage_submission(self.submission, step.root / "program", self.bundles)
        if left_out:
            self.note("links and special files of the submission folder were left out of its zip: "
                      + ", ".join(left_out[:5]))
        if advice:
            self.note(f"CodaBench's worker unpacks this zip as it is and runs it, but a local dry run given the zip "
                      f"refuses it: {advice}")
        for part in ("ingestion_program", "input_data"):
            zipped = self.bundles / f"{part}.zip"
            self.source.zipped(self.task[part], zipped)
            step.get_bundle(zipped, part)
        containers = self.prediction_containers(step)
        try:
            results = {result.name: result for result in step.start(containers)}
            step.push_output(results.get("prediction_program"), results["prediction_ingestion"])
        finally:
            self.result.prediction = step.containers[-1] if step.containers else None
            program = next((c for c in step.containers if c.name == "prediction_program"), None)
            self.result.notes += _start_failure_note(program, self.program_metadata)
            leftovers = step.clean_up()
            if leftovers:
                self.note(f"killed {len(leftovers)} process(es) left over from the prediction step "
                          f"(on CodaBench they end with its container): {'; '.join(leftovers[:3])}")
            self.result.notes += _prediction_notes(step.output, self.limit)
        return step

    def prediction_containers(self, step: WorkerStep) -> list[tuple]:
        """The ingestion program's container, after the submission's own when its metadata has a command (the worker
        runs both); a submission without a `metadata` file is copied whole into the output, as the worker does."""
        root = step.root
        program = metadata_command(root / "program")
        self.program_metadata = program.name or self.program_metadata
        if program.name is None:  # the worker treats it as a results submission
            step.output.rmdir()
            try:
                shutil.copytree(root / "program", step.output)
            except RecursionError:  # asyncio.gather(return_exceptions=True) keeps it to itself: the ingestion runs
                step.output.mkdir(exist_ok=True)
                self.note("the worker's copy of the submission into the prediction output stops at a folder nested "
                          "too deeply for shutil.copytree (RecursionError); the worker keeps the error to itself and "
                          "runs the ingestion program anyway, over what was copied")
            self.note(_missing_metadata_note(root / "program"))
        elif program.problem:
            self.note(_unusable_metadata_note(program))
        ingestion_command = _organizer_command(metadata_command(root / "ingestion_program"), "ingestion program")
        base = {app.OUTPUT: step.output, app.DATA: root / "data", app.INPUT_DATA: root / "input_data"}
        containers = []
        if program.command:
            self.note(_own_command_note(program))
            containers.append(step.container("prediction_program", program.command, "program",
                                             {**base, app.PROGRAM: root / "program"}, root / "program"))
        mounts = {**base, app.PROGRAM: root / "ingestion_program", app.INGESTED_PROGRAM: root / "program"}
        containers.append(step.container("prediction_ingestion", ingestion_command, "ingestion", mounts,
                                         root / "ingestion_program"))
        return containers

    def score(self, copies: dict, prediction_output: Path) -> None:
        """Stage the prediction output, the scoring program and the reference (copied before the prediction step),
        run the scoring program with an interpreter staged only now (the prediction step could write to its own),
        then check that none of the three changed under it."""
        step = WorkerStep("scoring", self.result.workdir, self.limit, self.result.sandboxed)
        step.prepare(("output", "shared", "data"))
        staged = {"predictions": "input/res", "reference": "input/ref", "scoring program": "program"}
        expected = {"predictions": file_digests(prediction_output),
                    "reference": file_digests(copies["reference_data"]),
                    "scoring program": file_digests(copies["scoring_program"])}
        # compute_worker._put_dir then _get_bundle: the prediction output travels as a zip. The reference comes last.
        zipped = self.bundles / "prediction_result.zip"
        try:
            left_out = zip_folder(prediction_output, zipped)
        except NameNotUtf8 as error:
            raise SubmissionFailed(f"the prediction output cannot be zipped for the scoring step: {error}; CodaBench's "
                                   "worker fails there too (shutil.make_archive) and never scores it") from None
        if left_out:
            self.note("links and special files in the prediction output were left out of what the scoring step "
                      "gets (the worker's zip would follow a link on its own machine): " + ", ".join(left_out[:5]))
        step.get_bundle(zipped, staged["predictions"])
        step.get_bundle(copies["scoring_program"], staged["scoring program"])
        step.get_bundle(copies["reference_data"], staged["reference"])
        command = _organizer_command(metadata_command(step.root / "program"), "scoring program")
        root = step.root
        mounts = {app.PROGRAM: root / "program", app.OUTPUT: step.output, app.DATA: root / "data",
                  app.SHARED: root / "shared", app.INPUT: root / "input"}
        try:
            [scoring] = step.start([step.container("scoring", command, "program", mounts, root / "program")])
        finally:
            self.result.scoring = step.containers[0] if step.containers else None
            step.clean_up()
            self.result.detailed_results = _detailed_results(step.output)
        self.result.scores = step.push_scores()
        step.push_output(scoring, None)
        for part, folder in staged.items():
            changed = _changed(expected[part], file_digests(root / folder))
            if changed:
                raise SubmissionFailed(f"the {part} changed while the scoring program ran ({', '.join(changed[:5])}): "
                                       "a process left over from the prediction step? The scores are not trusted")

    def note(self, text: str) -> None:
        self.result.notes.append(text)


def _scores_mapping(scores: object, name: str) -> dict:
    """The scores file's content, which the leaderboard reads by key; SubmissionFailed when it is no mapping."""
    if not isinstance(scores, dict):
        raise SubmissionFailed(f"{name}: expected a mapping of leaderboard keys to scores, found "
                               f"{type(scores).__name__}")
    return scores


def _detailed_results(output: Path) -> Path | None:
    """The page the results show: detailed_results.html, else the first HTML file of the scoring output."""
    detailed = output / "detailed_results.html"
    html = sorted(output.glob("*.html"))
    return detailed if detailed.is_file() else (html[0] if html else None)


def _changed(expected: dict, found: dict) -> list:
    return sorted(name for name in set(expected) | set(found) if expected.get(name) != found.get(name))


def _missing_metadata_note(program: Path) -> str:
    """What to do about a submission without a `metadata` at its root: most often its files sit one folder down
    (the folder was zipped, not its contents), which CodaBench does not undo."""
    entries = [entry for entry in program.iterdir() if entry.name != "__MACOSX"]
    folder = entries[0] if len(entries) == 1 and entries[0].is_dir() and not entries[0].is_symlink() else None
    if folder is not None and ((folder / "metadata").is_file() or (folder / "model.py").is_file()):
        return (f"the submission's files sit in a folder ({folder.name}/) inside the zip, and CodaBench does not move "
                f"them up: zip the folder's contents, not the folder (cd {folder.name} && zip -r ../submission.zip .)")
    return ("the submission has no `metadata` file: CodaBench copies all of it into the prediction output (add a "
            "`metadata` file holding only a description)")


def _unusable_metadata_note(program: ProgramMetadata) -> str:
    """What the worker does with a submission's metadata file that it finds but cannot use: nothing it can see."""
    return (f"the submission's {program.name}: {program.problem}: CodaBench's worker finds it but starts no "
            "program of the submission for it (the error goes only to the worker's own log), and, as the file is "
            "there, does not copy the submission into the prediction output either; only the ingestion program runs")


def _own_command_note(program: ProgramMetadata) -> str:
    """The submission's own command, and what docker makes of one that splits into no words."""
    if program.command.strip():
        return (f"the submission's {program.name} has a command: CodaBench runs it beside the ingestion program: "
                f"{program.command}")
    return (f"the submission's {program.name}: `command` is blank ({program.command!r}): CodaBench's worker still "
            "starts a container for it, and docker, given no words, runs the image's own command "
            f"({app.IMAGE_DEFAULT_COMMAND}); the worker records its exit code as the submission program's, so the "
            "scoring program refuses the step; leave `command` out of the submission's metadata")


def _organizer_command(program: ProgramMetadata, who: str) -> str:
    """The ingestion or scoring program's command; RunSetupError, naming its metadata file, when the worker would
    run none or the image's own command (the bundle is broken: no submission could be scored)."""
    name = program.name or "metadata.yaml"
    if program.problem:
        raise RunSetupError(f"{who}: {name}: {program.problem}")
    if not program.command:
        raise RunSetupError(f"{who}: no 'command' in its {name}")
    if not program.command.strip():
        raise RunSetupError(f"{who}: the 'command' in its {name} is blank")
    return program.command


def _start_failure_note(program: ContainerResult | None, metadata: str) -> list[str]:
    """A submission command docker could not start: the worker records 127 (not found) or 126 (not executable) as
    its exit code, which the scoring program reads as a program that ran."""
    if program is None or program.exit_code not in (CANNOT_FIND, CANNOT_EXECUTE):
        return []
    lines = program.stderr_text().strip().splitlines()
    reason = f": {lines[-1]}" if lines else ""
    return [f"the command of the submission's {metadata} could not be run (exit {program.exit_code}, docker's code "
            f"for a command it cannot {'find' if program.exit_code == CANNOT_FIND else 'execute'}{reason}); the "
            "worker records it as the submission program's exit code, so the scoring program refuses the step "
            "(a program that exits with that code itself reads the same)"]


def _prediction_notes(output: Path, limit: int) -> list[str]:
    """The prediction step's warnings and the time it used against its budget, from the run report the ingestion
    wrote, so the local check is as loud as the platform's results page. A report that cannot be read gives no
    note: the scoring step names what is wrong with it (the submission's own command may have rewritten it)."""
    try:
        with os.fdopen(open_regular(output / RUN_REPORT), "rb") as handle:
            if os.fstat(handle.fileno()).st_size > REPORT_NOTE_CAP_BYTES:
                return []
            report = RunReport.from_dict(json.loads(handle.read()))
    except (OSError, ValueError, TypeError, AttributeError, RecursionError):
        return []
    warnings = report.warnings if isinstance(report.warnings, list) else []
    notes = [f"the prediction step warned: {text}" for text in warnings[:NOTED_WARNINGS] if isinstance(text, str)]
    numbers = [report.total_seconds, report.budget_seconds]
    if report.budget_seconds and all(isinstance(n, (int, float)) and not isinstance(n, bool) for n in numbers):
        notes.append(f"the prediction step took {report.total_seconds:.0f} s of its {report.budget_seconds:g} s time "
                     f"budget (the worker's limit: {limit} s)")
    return notes


def _find_task(config: dict, phase: str):
    """The task whose input_data folder is named after the phase, and the phase that runs it."""
    for task in config.get("tasks") or []:
        if Path(str(task.get("input_data", ""))).name == phase:
            runs = [p for p in config.get("phases") or [] if task.get("index") in (p.get("tasks") or [])]
            return task, (runs[0] if runs else {})
    names = [Path(str(task.get("input_data", ""))).name for task in config.get("tasks") or []]
    raise RunSetupError(f"no task in competition.yaml has input_data named '{phase}' (tasks: {names})")


def step_time_limit(config: dict, phase_config: dict, time_limit: int | None = None,
                    queue_cap: int = DEFAULT_QUEUE_LIMIT) -> tuple[int, str | None]:
    """(seconds, note): the phase's limit (or time_limit, given on the command line) as the worker applies it, and a
    note for the participant when the default queue's cap lowered it (competition_rules.effective_time_limit)."""
    asked = int(time_limit or phase_config.get("execution_time_limit") or PHASE_DEFAULT_LIMIT)
    seconds = effective_time_limit(config, {"execution_time_limit": asked}, queue_cap)
    if seconds == asked:
        return asked, None
    return seconds, (f"competition.yaml names no queue: the default queue caps the time limit of {asked} s "
                     f"at {seconds} s (MAX_EXECUTION_TIME_LIMIT; --default-queue-cap to change)")


def _sandbox_choice(sandbox: str) -> tuple:
    """(whether the steps run in private roots, a note for the participant or None)."""
    if sandbox not in ("auto", "on", "off"):
        raise RunSetupError(f"sandbox must be auto, on or off, not {sandbox!r}")
    if sandbox == "off":
        return False, ("--sandbox off: the steps run as you, with your files in reach; only the checks of the "
                       "process layer apply (README)")
    reason = step_sandbox.unavailable_reason()
    if reason is None:
        return True, ("each step ran in a private root (tools/step_sandbox.py): the system and Python folders "
                      "read-only, its own tree writable, nothing else of this machine; --sandbox off to compare")
    if sandbox == "on":
        raise RunSetupError(f"--sandbox on, but the step sandbox cannot run here: {reason}")
    return False, (f"no step sandbox on this machine ({reason}): the steps run as you, with your files in reach; "
                   "run submissions you do not trust in the competition's docker image (README)")


def _empty_workdir(workdir: Path) -> Path:
    """workdir, created when absent; RunSetupError when it is not an empty folder. A second run in a used folder
    would meet the first run's trees, and this tool deletes no folder it did not make: the user empties it."""
    workdir = workdir.resolve()
    if workdir.exists() and not workdir.is_dir():
        raise RunSetupError(f"--workdir {workdir} is not a folder")
    try:
        workdir.mkdir(parents=True, exist_ok=True)
        held = sorted(entry.name for entry in workdir.iterdir())
    except OSError as error:
        raise RunSetupError(f"--workdir {workdir} cannot be used: {error.strerror or error}") from None
    if held:
        raise RunSetupError(f"--workdir {workdir} is not empty (it holds {', '.join(held[:5])}"
                            f"{', ...' if len(held) > 5 else ''}): give a new or empty folder; codabench_run deletes "
                            "nothing it did not create, so remove the old run yourself")
    return workdir


def run_submission(submission: Path, phase: str = "eval", root: Path = REPO, workdir: Path | None = None,
                   time_limit: int | None = None, *, keep: bool = False, queue_cap: int = DEFAULT_QUEUE_LIMIT,
                   sandbox: str = "auto") -> RunResult:
    """Prediction step then scoring step on a submission (zip or folder) for one phase of a bundle.

    root: the repository, an unpacked bundle or dist/bundle.zip. time_limit replaces the phase's
    execution_time_limit (seconds); either is capped at queue_cap when competition.yaml names no queue.
    workdir: where to build the steps' trees (kept), a new or empty folder (RunSetupError otherwise); by default
    a new temp folder, removed unless keep.
    sandbox: "auto" runs each step in a private root where this machine allows it (a note says when it does
    not), "on" requires it (RunSetupError when it cannot run), "off" never uses it.
    Returns a RunResult; only a bundle that cannot be staged raises RunSetupError.
    """
    submission, source = Path(submission).resolve(), BundleSource(Path(root).resolve())
    if not submission.exists():
        raise RunSetupError(f"submission {submission} not found")
    config = source.competition()
    task, phase_config = _find_task(config, phase)
    limit, cap_note = step_time_limit(config, phase_config, time_limit, queue_cap)
    board = (config.get("leaderboards") or [{}])[0]
    columns = [(c["key"], c.get("title", c["key"])) for c in sorted(board.get("columns") or [],
                                                                        key=lambda c: c.get("index", 0))]
    sandboxed, sandbox_note = _sandbox_choice(sandbox)
    kept = keep or workdir is not None
    tree = _empty_workdir(Path(workdir)) if workdir is not None else Path(tempfile.mkdtemp(prefix="codabench_run_"))
    result = RunResult(phase, "Failed", None, tree, None, columns=columns,
                       notes=[note for note in (cap_note, sandbox_note) if note], kept=kept, sandboxed=sandboxed)
    try:
        SubmissionRun(source, task, submission, limit, result).run()
    finally:
        if not kept:
            for step in (result.prediction, result.scoring):
                if step is not None:
                    step.stderr_tail = step.stderr_text()[-20000:]
            result.detailed_results = None
            try:
                remove_tree(tree)  # however deep a step's leftovers go (shutil.rmtree recurses)
            except OSError as error:
                print(f"[codabench_run] could not remove the work folder {tree}: {error}", file=sys.stderr)
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("submission", help="submission zip or folder")
    parser.add_argument("--phase", default="eval", help="eval (Development) or test (Final)")
    parser.add_argument("--root", default=str(REPO), help="repository, unpacked bundle or dist/bundle.zip")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder of the steps (default: removed)")
    parser.add_argument("--workdir", help="build the steps' trees in this folder instead, and keep them; it must be "
                                          "new or empty (a used one is refused, never emptied: remove it yourself)")
    parser.add_argument("--time-limit", type=int, help="seconds per step (default: the phase's execution_time_limit)")
    parser.add_argument("--sandbox", choices=("auto", "on", "off"), default="auto",
                        help="run each step in a private root (Linux namespaces; tools/step_sandbox.py): auto uses "
                             "it where this machine allows, on requires it, off never uses it (default %(default)s)")
    parser.add_argument("--default-queue-cap", type=int, default=DEFAULT_QUEUE_LIMIT,
                        help="cap of the time limit when competition.yaml names no queue (default %(default)s s, "
                             "the code's MAX_EXECUTION_TIME_LIMIT; the public instance uses 1200)")
    args = parser.parse_args(argv)
    if hasattr(sys.stdout, "reconfigure"):  # a path given here need not be UTF-8; it is printed as it is
        sys.stdout.reconfigure(errors="backslashreplace")
    paths = [Path(p).resolve() if p else None for p in (args.submission, args.root, args.workdir)]
    os.chdir("/")  # the steps' parent process must not sit in the repository (/proc/<ppid>/cwd)
    try:
        result = run_submission(paths[0], args.phase, paths[1], paths[2], args.time_limit, keep=args.keep,
                                queue_cap=args.default_queue_cap, sandbox=args.sandbox)
    except RunSetupError as error:
        print(f"codabench_run: error: {error}", file=sys.stderr)
        return 2
    for note in result.notes:
        print(f"note: {clean_text(note)}")
    print(f"status: {result.status}" + (f" ({clean_text(result.reason)})" if result.reason else ""))
    for step in (result.prediction, result.scoring):
        if step is not None:
            code = "killed at the time limit" if step.timed_out else f"exit {step.exit_code}"
            logs = f"; logs {step.stdout.parent}/{step.name}_*.txt" if result.kept else ""
            print(f"{step.name}: {code} after {step.elapsed:.1f} s{logs}")
    if result.scoring is not None and result.scoring.exit_code not in (0, None):
        print("scoring stderr:\n" + clean_text(result.scoring.stderr_text().rstrip(), 20000, keep_newlines=True),
              file=sys.stderr)
    elif result.status == "Failed" and result.scoring is None and result.prediction is not None:
        tail = "\n".join(result.prediction.stderr_text().splitlines()[-20:])
        hidden = (" (not shown on CodaBench: the worker uploads a container's logs only once it has ended, and a "
                  "step stopped at its time limit uploads neither logs nor output)" if result.prediction.timed_out
                  else "")
        print(f"prediction stderr (last lines){hidden}:\n" + clean_text(tail, len(tail), keep_newlines=True),
              file=sys.stderr)
    if result.scores is not None:
        print(result.leaderboard_row())
    if result.detailed_results:
        print(f"detailed results: {result.detailed_results}")
    if result.kept:
        print(f"steps kept in {result.workdir}")
    else:
        print("the steps' temp folder was removed (--keep keeps it, detailed_results.html included)")
    return 0 if result.status == "Finished" else 1


if __name__ == "__main__":
    sys.exit(main())
