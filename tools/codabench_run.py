"""Run a submission through both steps the way CodaBench's compute worker does, without docker.

Follows codalab/codabench compute_worker/compute_worker.py (2026): every bundle is zipped like the uploader
and extracted as it is (no folder moved up); the prediction step runs the ingestion program, and the
submission's own metadata command if it has one, with the input data and no reference; a submission
without a `metadata` file is copied whole into the prediction output; `execution_time_limit` bounds each
step and is capped at the default queue's limit when competition.yaml names no `queue`; the worker's
`metadata` file and its messages. Hostile submissions are kept from the reference: where Linux allows
unprivileged namespaces each step runs in a private root (tools/step_sandbox.py) that shows it only the
system, the Python installation (read-only) and its own tree, and ends every process it started. Without
it (and under it, as a second layer) the README says what is left: a clean environment, an interpreter
staged per step, the scoring program and reference copied before the prediction step and written only
after every process of that step is killed, and the staged files checked unchanged after scoring.
"""
import argparse
import hashlib
import io
import json
import os
import re
import secrets
import shutil
import site
import stat
import subprocess
import sys
import tempfile
import time
import venv
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import yaml

import step_sandbox
import worker_paths as app
from competition_rules import DEFAULT_QUEUE_LIMIT, PHASE_DEFAULT_LIMIT, load_competition
from competition_rules import effective_time_limit as rules_time_limit
from worker_paths import legacy_variables

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "ingestion_program"))
from process_tree import freeze_and_kill, kill_group, stat_fields  # noqa: E402  (the ingestion's own /proc sweep)
from regular_files import open_regular  # noqa: E402  (read regular files only)
from output_files import RUN_REPORT  # noqa: E402
from run_report import RunReport, clean_text  # noqa: E402  (what a submission wrote reaches the console cleaned)
from submission_files import SubmissionNotRunnable, unpack_zip  # noqa: E402  (the ingestion's own zip checks)

METADATA_FILES = ("metadata.yaml", "metadata")  # the order the worker looks for them
STEP_MARKER = "CODABENCH_RUN_STEP"  # environment variable that tags every process of a step
REPORT_NOTE_CAP_BYTES = 16 * 2**20  # a larger run_report.json is no report of the ingestion (the scorer refuses it too)
TIME_LIMIT_MESSAGE = "Execution Time Limit exceeded. Limit was {} seconds"
CHILD_FAILED_MESSAGE = "Child task failed or non-zero return code"
NO_SCORES_MESSAGE = "Could not find scores file, did the scoring program output it?"
METADATA_EXISTS_MESSAGE = ("Error, the output directory already contains a metadata file. This file is used to "
                           "store exitCode and other data, do not write to this file manually.")


class RunSetupError(Exception):
    """The bundle cannot be staged (not a submission failure: the run never starts)."""


@dataclass
class StepResult:
    """One container of a step: its command as executed, exit code (docker's: 128+signal), time and logs."""

    name: str
    command: list
    exit_code: int | None
    elapsed: float
    timed_out: bool
    stdout: Path
    stderr: Path
    stderr_tail: str = ""

    def stderr_text(self) -> str:
        """The step's stderr (read before the temp folder is removed, so always available)."""
        return self.stderr.read_text(encoding="utf-8", errors="replace") if self.stderr.is_file() else self.stderr_tail


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


# --- Bundles: zipped like the uploader, extracted as they are like the worker ---------------------------------

def zip_folder(source: Path, target: Path | io.BytesIO) -> list[str]:
    """A folder's contents zipped as shutil.make_archive(root_dir=source) does; target: a path or a BytesIO.

    Only folders and regular files go in, each read without following a link or blocking on a FIFO (a submission
    may leave either in its output); returns the relative paths of what was left out (links, FIFOs, sockets, devices).
    """
    left_out = []
    with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
        for root, dirs, files in os.walk(source):
            dirs.sort()
            for name in dirs + sorted(files):
                path = Path(root) / name
                relative = path.relative_to(source).as_posix()
                if stat.S_ISDIR(path.lstat().st_mode):
                    archive.write(path, relative)
                    continue
                try:
                    fd = open_regular(path)
                except OSError:
                    left_out.append(relative)
                    continue
                with os.fdopen(fd, "rb") as data, archive.open(zipfile.ZipInfo.from_file(path, relative), "w") as entry:
                    shutil.copyfileobj(data, entry)
    return left_out


class BundleSource:
    """Folders of a bundle, from the repository (or an unpacked bundle) or straight from dist/bundle.zip."""

    def __init__(self, root: Path):
        self.root = root
        if not root.exists():
            raise RunSetupError(f"bundle {root} not found")
        if root.is_file() and not zipfile.is_zipfile(root):
            raise RunSetupError(f"bundle {root} is neither a folder nor a zip file")

    def competition(self) -> dict:
        if self.root.is_dir():
            return load_competition(self.root / "competition.yaml")
        with zipfile.ZipFile(self.root) as archive, tempfile.TemporaryDirectory() as scratch:
            if "competition.yaml" not in archive.namelist():
                raise RunSetupError(f"{self.root} has no competition.yaml at its root")
            return load_competition(archive.extract("competition.yaml", scratch))

    def zipped(self, relative: str, target: Path | io.BytesIO) -> None:
        """The folder `relative` of the bundle as the uploader zips it, written to target (path or BytesIO)."""
        relative = str(relative).strip("/")
        if self.root.is_dir():
            if not (self.root / relative).is_dir():
                raise RunSetupError(f"{self.root / relative} is not a folder (competition.yaml points at it)")
            zip_folder(self.root / relative, target)
            return
        with zipfile.ZipFile(self.root) as bundle, zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as out:
            members = [info for info in bundle.infolist() if info.filename.startswith(relative + "/")]
            if not members:
                raise RunSetupError(f"{self.root} has no folder {relative}/ (competition.yaml points at it)")
            for info in members:
                name = info.filename[len(relative) + 1:]
                if name:
                    with bundle.open(info) as data:
                        out.writestr(name, data.read())


def extract(zipped: Path | io.BytesIO, destination: Path) -> None:
    """compute_worker._get_bundle: the zip extracted into destination as it is."""
    destination.mkdir(parents=True, exist_ok=True)
    if isinstance(zipped, io.BytesIO):
        zipped.seek(0)
    with zipfile.ZipFile(zipped) as archive:
        archive.extractall(destination)


# --- Commands and processes -------------------------------------------------------------------------------------

def worker_command(command: str, kind: str, is_scoring: bool, mounts: dict, python: str = sys.executable) -> list:
    """metadata.yaml command -> argv: legacy $variables, split on single spaces, /app paths -> temp folders."""
    for variable, value in legacy_variables(kind, is_scoring):
        command = command.replace(variable, value)
    pattern = re.compile("|".join(re.escape(m) for m in sorted(mounts, key=len, reverse=True)) + r"(?=/|$|\b)")
    argv = []
    for token in command.split(" "):
        if token in ("python3", "python"):
            token = python
        argv.append(pattern.sub(lambda match: str(mounts[match.group(0)]), token))
    return argv


def metadata_command(program_dir: Path) -> tuple:
    """(metadata file name or None, its command or None), read as the worker does."""
    for name in METADATA_FILES:
        if (program_dir / name).is_file():
            try:
                content = yaml.safe_load((program_dir / name).read_text(encoding="utf-8", errors="replace"))
            except yaml.YAMLError:
                return name, None
            return name, content.get("command") if isinstance(content, dict) else None
    return None, None


def staged_python(folder: Path) -> str:
    """A virtual environment in the step's temp tree that sees this interpreter's packages.

    So `sys.executable` in the steps leads to the temp tree, not to a .venv inside the repository.
    """
    venv.EnvBuilder(symlinks=True, with_pip=False, clear=True).create(folder)
    [site_dir] = [Path(p) for p in Path(folder).glob("lib/python*/site-packages")] or [None]
    if site_dir is None:  # Windows layout: this emulator needs Linux anyway (process groups, /proc)
        raise RunSetupError("the staged interpreter has no site-packages folder (Linux only)")
    lines = [f"import site; site.addsitedir({path!r})" for path in site.getsitepackages()]
    (site_dir / "outer_packages.pth").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return str(Path(folder) / "bin" / "python")


def step_environment(home: Path, python: str, marker: str) -> dict:
    """The container's environment (PYTHONUNBUFFERED and empty proxies), a PATH and HOME in the temp tree."""
    home.mkdir(parents=True, exist_ok=True)
    return {"PYTHONUNBUFFERED": "1", "http_proxy": "", "https_proxy": "", "HOME": str(home), "LANG": "C.UTF-8",
            "PATH": f"{Path(python).parent}:/usr/local/bin:/usr/bin:/bin", STEP_MARKER: marker}


def _docker_exit_code(returncode: int) -> int:
    return 128 - returncode if returncode < 0 else returncode  # docker reports a signal as 128 + its number


def run_containers(containers: list, limit: int, env: dict, logs: Path, sandbox_tree: Path | None = None) -> tuple:
    """Start every (name, argv, cwd) at once; wait for all within the limit (the worker's alarm covers the step).

    sandbox_tree: the step's tree, when each container runs in its own private root showing it writable (its
    mount point and /tmp folder beside the step trees, inside none of the shown folders).
    Returns ([StepResult], timed_out, start_ticks of the first). Each runs in its own session; on time-out every
    group is killed.
    """
    started, deadline, born_after = [], time.monotonic() + limit, 0
    for name, argv, cwd in containers:
        out, err = logs / f"{name}_stdout.txt", logs / f"{name}_stderr.txt"
        command = argv
        if sandbox_tree is not None:
            mount_point, tmp = logs.parent / "roots" / name, logs.parent / "step_tmp" / name
            for folder in (mount_point, tmp):
                folder.mkdir(parents=True, exist_ok=True)
            command = step_sandbox.sandboxed(argv, sandbox_tree, mount_point, tmp)
        with open(out, "wb") as out_file, open(err, "wb") as err_file:
            process = subprocess.Popen(command, cwd=cwd, stdout=out_file, stderr=err_file, stdin=subprocess.DEVNULL,
                                       env=env, start_new_session=True)
        born_after = born_after or start_ticks(process.pid)
        started.append((name, argv, process, time.monotonic(), out, err))
    ended = {}
    while len(ended) < len(started) and time.monotonic() < deadline:
        for name, _, process, start, _, _ in started:
            if name not in ended and process.poll() is not None:
                ended[name] = time.monotonic() - start
        time.sleep(0.02)
    timed_out = len(ended) < len(started)
    results = []
    for name, argv, process, start, out, err in started:
        if process.poll() is None:
            kill_group(process.pid)
            process.wait()
        code = None if name not in ended else _docker_exit_code(process.returncode)
        results.append(StepResult(name, argv, code, ended.get(name, limit), name not in ended, out, err))
    return results, timed_out, born_after


def start_ticks(pid: int) -> int:
    """When a process started, in clock ticks since boot (0 when it is already gone)."""
    try:
        return int(stat_fields(pid)[19])
    except (OSError, ValueError, IndexError):
        return 0


def _process_touches(pid: int, tree: str, marker: bytes, born_after: int) -> bool:
    """Whether a process started during the step carries its marker, or has its cwd, root, executable, an
    argument or an open file in the step's temp tree."""
    proc = f"/proc/{pid}"
    try:
        if int(stat_fields(pid)[19]) < born_after:
            return False
        if marker in Path(proc, "environ").read_bytes():
            return True
        if tree.encode() in Path(proc, "cmdline").read_bytes():
            return True
        links = [f"{proc}/cwd", f"{proc}/root", f"{proc}/exe"]
        links += [f"{proc}/fd/{fd}" for fd in os.listdir(f"{proc}/fd")]
    except (OSError, ValueError, IndexError):  # gone, or not ours to read
        return False
    for link in links:
        try:
            target = os.readlink(link)
        except OSError:
            continue
        if target == tree or target.startswith(tree + os.sep):
            return True
    return False


def _ancestors() -> set:
    """This process and its parents (their command lines may name the temp tree, as `--workdir` does)."""
    pids, pid = set(), os.getpid()
    while pid > 1 and pid not in pids:
        pids.add(pid)
        try:
            pid = int(stat_fields(pid)[1])
        except (OSError, ValueError, IndexError):
            break
    return pids


def kill_leftovers(tree: Path, marker: str, born_after: int) -> list:
    """Kill every process started since the step began (born_after: start_ticks of its first process) that is
    tied to it (marker, cwd, files, arguments); returns 'pid: command' of each.

    The ingestion's own sweep (process_tree.freeze_and_kill): every such process, and its process group, is stopped
    until a scan finds none running, then all are killed, so a process forking in a loop is caught too (the module
    says what only a PID namespace closes: the private root of step_sandbox.py has one).
    """
    if not Path("/proc/self").is_dir():
        return []
    commands, tree_text, marker_bytes = {}, str(tree.resolve()), f"{STEP_MARKER}={marker}".encode()
    protected = _ancestors()

    def tied(states: dict) -> list:
        found = [pid for pid in states
                 if pid not in protected and _process_touches(pid, tree_text, marker_bytes, born_after)]
        for pid in found:
            if pid not in commands:
                try:
                    command = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")
                except OSError:
                    command = b""
                commands[pid] = command.decode(errors="replace").strip()[:120]
        return found

    killed = freeze_and_kill(tied)
    return sorted(f"{pid}: {commands.get(pid, '')}" for pid in killed)


def file_digests(source: Path | io.BytesIO) -> dict:
    """sha256 of every regular file in a folder (links not followed) or a zip (BytesIO) by relative path, Python's
    __pycache__ aside."""
    if isinstance(source, io.BytesIO):
        source.seek(0)
        with zipfile.ZipFile(source) as archive:
            return {info.filename: hashlib.sha256(archive.read(info)).hexdigest() for info in archive.infolist()
                    if not info.is_dir() and "__pycache__" not in Path(info.filename).parts}
    return {path.relative_to(source).as_posix(): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(source.rglob("*"))
            if stat.S_ISREG(path.lstat().st_mode) and "__pycache__" not in path.parts}


def _changed(expected: dict, found: dict) -> list:
    return sorted(name for name in set(expected) | set(found) if expected.get(name) != found.get(name))


# --- The worker's steps -----------------------------------------------------------------------------------------

def _write_worker_metadata(output: Path, program: StepResult | None, ingestion: StepResult | None) -> str | None:
    """compute_worker.push_output: the `metadata` file; one already there fails the submission."""
    path = output / "metadata"
    if path.exists() or path.is_symlink():
        return METADATA_EXISTS_MESSAGE
    status = {"exitCode": program.exit_code if program else None,
              "elapsedTime": (program.elapsed if program else None) or (ingestion.elapsed if ingestion else None),
              "ingestionExitCode": ingestion.exit_code if ingestion else None,
              "ingestionElapsedTime": ingestion.elapsed if ingestion else None}
    path.write_text(yaml.dump(status, default_flow_style=False), encoding="utf-8")
    return None


def _find_task(config: dict, phase: str):
    """The task whose input_data folder is named after the phase, and the phase that runs it."""
    for task in config.get("tasks") or []:
        if Path(str(task.get("input_data", ""))).name == phase:
            runs = [p for p in config.get("phases") or [] if task.get("index") in (p.get("tasks") or [])]
            return task, (runs[0] if runs else {})
    names = [Path(str(task.get("input_data", ""))).name for task in config.get("tasks") or []]
    raise RunSetupError(f"no task in competition.yaml has input_data named '{phase}' (tasks: {names})")


def effective_time_limit(config: dict, phase_config: dict, time_limit: int | None = None,
                         queue_cap: int = DEFAULT_QUEUE_LIMIT) -> tuple[int, str | None]:
    """(seconds, note): the phase's limit (or time_limit), capped at queue_cap when the competition names no queue.

    CodaBench (competitions/tasks.py) sends min(MAX_EXECUTION_TIME_LIMIT, limit) to the shared default queue;
    a competition with its own `queue` gets its limit as it is. The rule is competition_rules' (pack.py's too).
    """
    asked = int(time_limit or phase_config.get("execution_time_limit") or PHASE_DEFAULT_LIMIT)
    seconds = rules_time_limit(config, {"execution_time_limit": asked}, queue_cap)
    if seconds == asked:
        return asked, None
    return seconds, (f"competition.yaml names no queue: the default queue caps the time limit of {asked} s "
                     f"at {seconds} s (MAX_EXECUTION_TIME_LIMIT; --default-queue-cap to change)")


def _stage_submission(submission: Path, destination: Path, scratch: Path) -> list[str]:
    """The submission zip extracted as it is, through the ingestion's own zip checks (a folder is zipped first);
    returns what of the folder the zip left out (links and special files)."""
    zipped, left_out = submission, []
    if submission.is_dir():
        zipped = scratch / "submission.zip"
        left_out = zip_folder(submission, zipped)
    unpack_zip(zipped, destination)
    return left_out


def _prediction_step(result, source, task, submission, limit, scratch) -> tuple:
    """Stage and run the prediction step; returns (its tree, its marker, its start) for the leftover search."""
    root = result.workdir / "prediction"
    for name in ("program", "output", "data"):
        (root / name).mkdir(parents=True, exist_ok=True)
    python = staged_python(root / "python")
    left_out = _stage_submission(submission, root / "program", scratch)
    if left_out:
        result.notes.append("links and special files of the submission folder were left out of its zip: "
                            + ", ".join(left_out[:5]))
    for relative, folder in ((task["ingestion_program"], "ingestion_program"), (task["input_data"], "input_data")):
        zipped = scratch / f"{folder}.zip"
        source.zipped(relative, zipped)
        extract(zipped, root / folder)
    program_metadata, program_command = metadata_command(root / "program")
    if program_metadata is None:
        # The worker treats it as a results submission: the whole submission goes into the output.
        shutil.rmtree(root / "output")
        shutil.copytree(root / "program", root / "output")
        result.notes.append(_missing_metadata_note(root / "program"))
    ingestion_metadata, ingestion_command = metadata_command(root / "ingestion_program")
    if not ingestion_command:
        raise RunSetupError(f"ingestion program: no 'command' in its {ingestion_metadata or 'metadata.yaml'}")
    base = {app.OUTPUT: root / "output", app.DATA: root / "data", app.INPUT_DATA: root / "input_data"}
    containers = []
    if program_command:
        result.notes.append(f"the submission's {program_metadata} has a command: CodaBench runs it beside the "
                            f"ingestion program: {program_command}")
        mounts = {**base, app.PROGRAM: root / "program"}
        containers.append(("prediction_program", worker_command(program_command, "program", False, mounts, python),
                           root / "program"))
    mounts = {**base, app.PROGRAM: root / "ingestion_program", app.INGESTED_PROGRAM: root / "program"}
    containers.append(("prediction_ingestion", worker_command(ingestion_command, "ingestion", False, mounts, python),
                       root / "ingestion_program"))
    steps, timed_out, born_after, marker = _run_step(result, root, python, containers, limit)
    result.prediction = steps[-1]
    program = steps[0] if program_command else None
    if timed_out:
        result.reason = TIME_LIMIT_MESSAGE.format(limit)
    else:
        result.reason = _write_worker_metadata(root / "output", program, result.prediction)
    return root, marker, born_after


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


def _prediction_notes(output: Path, limit: int) -> list[str]:
    """The prediction step's warnings and the time it used against its budget, from the run report the ingestion
    wrote, so the local check is as loud as the platform's results page. A report that cannot be read gives no
    note: the scoring step names what is wrong with it."""
    try:
        with os.fdopen(open_regular(output / RUN_REPORT), "rb") as handle:
            if os.fstat(handle.fileno()).st_size > REPORT_NOTE_CAP_BYTES:
                return []
            report = RunReport.from_dict(json.loads(handle.read()))
    except (OSError, ValueError, TypeError, AttributeError):
        return []
    notes = [f"the prediction step warned: {warning}" for warning in report.warnings]
    if report.budget_seconds:
        notes.append(f"the prediction step took {report.total_seconds:.0f} s of its {report.budget_seconds:g} s time "
                     f"budget (the worker's limit: {limit} s)")
    return notes


def _run_step(result, root: Path, python: str, containers: list, limit: int) -> tuple:
    """A step's containers with its own home and marker, in its private root when the run has one; returns
    run_containers' results and the marker (for the leftover search)."""
    marker = secrets.token_hex(8)
    env = step_environment(root / "home", python, marker)
    return (*run_containers(containers, limit, env, result.workdir / "logs", root if result.sandboxed else None),
            marker)


def _scoring_step(result, copies, limit, prediction_output: Path) -> None:
    """Stage the prediction output, the scoring program and the reference (copied before the prediction step),
    run the scoring program with an interpreter staged only now (the prediction step could write to its own),
    then check that none of the three changed under it."""
    root = result.workdir / "scoring"
    for name in ("output", "shared", "data"):
        (root / name).mkdir(parents=True)
    python = staged_python(root / "python")
    staged = {"predictions": "input/res", "reference": "input/ref", "scoring program": "program"}
    expected = {"predictions": file_digests(prediction_output), "reference": file_digests(copies["reference_data"]),
                "scoring program": file_digests(copies["scoring_program"])}
    # compute_worker._put_dir then _get_bundle: the prediction output travels as a zip. The reference comes last.
    zipped = result.workdir / "bundles" / "prediction_result.zip"
    left_out = zip_folder(prediction_output, zipped)
    if left_out:
        result.notes.append("links and special files in the prediction output were left out of what the scoring "
                            "step gets (the worker's zip would follow a link on its own machine): "
                            + ", ".join(left_out[:5]))
    extract(zipped, root / staged["predictions"])
    extract(copies["scoring_program"], root / staged["scoring program"])
    extract(copies["reference_data"], root / staged["reference"])
    _, command = metadata_command(root / "program")
    if not command:
        raise RunSetupError("scoring program: no 'command' in its metadata.yaml")
    mounts = {app.PROGRAM: root / "program", app.OUTPUT: root / "output", app.DATA: root / "data",
              app.SHARED: root / "shared", app.INPUT: root / "input"}
    container = ("scoring", worker_command(command, "program", True, mounts, python), root / "program")
    [scoring], timed_out, born_after, marker = _run_step(result, root, python, [container], limit)
    result.scoring = scoring
    kill_leftovers(root, marker, born_after)
    html = sorted((root / "output").glob("*.html"))
    detailed = root / "output" / "detailed_results.html"
    result.detailed_results = detailed if detailed.is_file() else (html[0] if html else None)
    result.reason = _scoring_verdict(root / "output", scoring, timed_out, limit, result)
    if result.reason is None:
        for part, folder in staged.items():
            changed = _changed(expected[part], file_digests(root / folder))
            if changed:
                result.reason = (f"the {part} changed while the scoring program ran ({', '.join(changed[:5])}): "
                                 "a process left over from the prediction step? The scores are not trusted")
                return
        result.status = "Finished"


def _scoring_verdict(output: Path, scoring: StepResult, timed_out: bool, limit: int, result: RunResult):
    """The worker's order: time limit, exit code, push_scores (scores.json, else scores.txt), push_output."""
    if timed_out:
        return TIME_LIMIT_MESSAGE.format(limit)
    if scoring.exit_code not in (0, None):
        return CHILD_FAILED_MESSAGE
    if (output / "scores.json").is_file():
        try:
            result.scores = json.loads((output / "scores.json").read_text(encoding="utf-8"))
        except json.JSONDecodeError as error:
            return f"Could not decode scores json properly, it contains an error.\n{error.msg}"
    elif (output / "scores.txt").is_file():
        result.scores = yaml.safe_load((output / "scores.txt").read_text(encoding="utf-8"))
    else:
        return NO_SCORES_MESSAGE
    return _write_worker_metadata(output, scoring, None)


def run_submission(submission: Path, phase: str = "eval", root: Path = REPO, workdir: Path | None = None,
                   time_limit: int | None = None, *, keep: bool = False, queue_cap: int = DEFAULT_QUEUE_LIMIT,
                   sandbox: str = "auto") -> RunResult:
    """Prediction step then scoring step on a submission (zip or folder) for one phase of a bundle.

    root: the repository, an unpacked bundle or dist/bundle.zip. time_limit replaces the phase's
    execution_time_limit (seconds); either is capped at queue_cap when competition.yaml names no queue.
    workdir: where to build the steps' trees (kept); by default a new temp folder, removed unless keep.
    sandbox: "auto" runs each step in a private root where this machine allows it (a note says when it does
    not), "on" requires it (RunSetupError when it cannot run), "off" never uses it.
    Returns a RunResult; only a bundle that cannot be staged raises RunSetupError.
    """
    submission, source = Path(submission).resolve(), BundleSource(Path(root).resolve())
    if not submission.exists():
        raise RunSetupError(f"submission {submission} not found")
    config = source.competition()
    task, phase_config = _find_task(config, phase)
    limit, cap_note = effective_time_limit(config, phase_config, time_limit, queue_cap)
    board = (config.get("leaderboards") or [{}])[0]
    columns = [(c["key"], c.get("title", c["key"])) for c in sorted(board.get("columns") or [],
                                                                        key=lambda c: c.get("index", 0))]
    sandboxed, sandbox_note = _sandbox_choice(sandbox)
    kept = keep or workdir is not None
    if workdir is not None:
        Path(workdir).mkdir(parents=True, exist_ok=True)
    tree = Path(workdir).resolve() if workdir is not None else Path(tempfile.mkdtemp(prefix="codabench_run_"))
    result = RunResult(phase, "Failed", None, tree, None, columns=columns,
                       notes=[note for note in (cap_note, sandbox_note) if note], kept=kept, sandboxed=sandboxed)
    try:
        _run_steps(result, source, task, submission, limit)
    finally:
        if not kept:
            for step in (result.prediction, result.scoring):
                if step is not None:
                    step.stderr_tail = step.stderr_text()[-20000:]
            result.detailed_results = None
            shutil.rmtree(tree, ignore_errors=True)
    return result


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


def _run_steps(result, source, task, submission, limit) -> None:
    # Copies taken before any submission code runs: what the model changes on disk cannot reach scoring.
    copies = {}
    for part in ("scoring_program", "reference_data"):
        copies[part] = io.BytesIO()
        source.zipped(task[part], copies[part])
    for folder in ("bundles", "logs"):
        (result.workdir / folder).mkdir(parents=True, exist_ok=True)
    try:
        tree, marker, born_after = _prediction_step(result, source, task, submission, limit,
                                                    result.workdir / "bundles")
    except SubmissionNotRunnable as error:  # the ingestion's zip checks: not a zip, unsafe names, too large
        result.reason = str(error)
        return
    leftovers = kill_leftovers(tree, marker, born_after)
    if leftovers:
        result.notes.append(f"killed {len(leftovers)} process(es) left over from the prediction step "
                            f"(on CodaBench they end with its container): {'; '.join(leftovers[:3])}")
    result.notes += _prediction_notes(tree / "output", limit)
    if result.reason:
        return
    _scoring_step(result, copies, limit, tree / "output")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("submission", help="submission zip or folder")
    parser.add_argument("--phase", default="eval", help="eval (Development) or test (Final)")
    parser.add_argument("--root", default=str(REPO), help="repository, unpacked bundle or dist/bundle.zip")
    parser.add_argument("--keep", action="store_true", help="keep the temp folder of the steps (default: removed)")
    parser.add_argument("--workdir", help="build the steps' trees in this folder instead, and keep them")
    parser.add_argument("--time-limit", type=int, help="seconds per step (default: the phase's execution_time_limit)")
    parser.add_argument("--sandbox", choices=("auto", "on", "off"), default="auto",
                        help="run each step in a private root (Linux namespaces; tools/step_sandbox.py): auto uses "
                             "it where this machine allows, on requires it, off never uses it (default %(default)s)")
    parser.add_argument("--default-queue-cap", type=int, default=DEFAULT_QUEUE_LIMIT,
                        help="cap of the time limit when competition.yaml names no queue (default %(default)s s, "
                             "the code's MAX_EXECUTION_TIME_LIMIT; the public instance uses 1200)")
    args = parser.parse_args(argv)
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
        print("prediction stderr (last lines):\n" + clean_text(tail, len(tail), keep_newlines=True),
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
