"""A worker step's processes, as its containers run: the command, the environment, a staged interpreter, the clock.

Follows codalab/codabench compute_worker.py (2026): a program's command comes from its metadata file (legacy
$variables replaced, split into words as docker-py splits it, /app paths mapped onto the step's temporary folders),
every container of a step starts at once and the step's time limit covers them all, and docker reports a signal as
128 + its number, a command it cannot find as 127 and one it cannot execute as 126. A metadata file the worker finds
but cannot use (a folder, not UTF-8, not YAML, a `command` that is no string) raises inside the worker's
_run_program_directory, whose error asyncio.gather keeps to itself: that program never starts. What only the
container would end, this module kills: every process started during the step and tied to it (kill_leftovers).
"""
import os
import re
import shlex
import site
import subprocess
import sys
import time
import venv
from dataclasses import dataclass
from pathlib import Path

import yaml

import project_folders  # noqa: F401  (the program folders, tools/ and baselines/ importable by name)
import step_sandbox
from process_tree import freeze_and_kill, kill_group, stat_fields  # the ingestion's own /proc sweep
from regular_files import NotRegularFile, open_regular  # the ingestion's reading of regular files only
from run_report import clean_text  # what a submission wrote reaches the console cleaned
from worker_bundles import RunSetupError
from worker_paths import IMAGE_DEFAULT_COMMAND, legacy_variables

METADATA_FILES = ("metadata.yaml", "metadata")  # the order the worker looks for them
STEP_MARKER = "CODABENCH_RUN_STEP"  # environment variable that tags every process of a step
CANNOT_FIND, CANNOT_EXECUTE = 127, 126  # docker's exit codes for a command it cannot start
YAML_ERRORS = (yaml.YAMLError, RecursionError, ValueError, OverflowError)  # deep nesting, bad dates, huge integers


STDERR_READ_BYTES = 1 << 20


@dataclass
class ContainerResult:
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
        """The end of the container's stderr, its last STDERR_READ_BYTES at most (a program may print gigabytes; the
        emulator shows and searches only the end). Kept before the temp folder is removed, so always available."""
        if not self.stderr.is_file():
            return self.stderr_tail
        with open(self.stderr, "rb") as handle:
            handle.seek(max(0, handle.seek(0, os.SEEK_END) - STDERR_READ_BYTES))
            return handle.read().decode("utf-8", errors="replace")


class MetadataProblem(Exception):
    """A metadata file the worker finds but cannot read as text."""


@dataclass
class ProgramMetadata:
    """A program folder's metadata as the worker reads it. name: the file it found (None: none, and a submission is
    then copied into the output); command: what it runs (None: nothing); problem: why a file it found starts
    nothing although it is there (the worker's error goes to its own log only, so the emulator must say it)."""

    name: str | None
    command: str | None = None
    problem: str | None = None


def metadata_command(program_dir: Path) -> ProgramMetadata:
    """The first metadata file the worker finds (os.path.exists, so a folder too), read as it reads it: UTF-8, YAML
    with its FullLoader (Python tags such as !!python/str read; none that calls code), then `command` when it is
    truthy (a falsy one is no command), which must be a string docker-py can split."""
    name = next((name for name in METADATA_FILES if (program_dir / name).exists()), None)
    if name is None:
        return ProgramMetadata(None)
    try:
        content = yaml.load(_metadata_text(program_dir / name), Loader=yaml.FullLoader)
    except MetadataProblem as problem:
        return ProgramMetadata(name, problem=str(problem))
    except YAML_ERRORS as error:
        return ProgramMetadata(name, problem=f"not readable YAML: {_yaml_reason(error)}")
    command = content.get("command") if isinstance(content, dict) else None
    if not command:
        return ProgramMetadata(name)
    if not isinstance(command, str):
        shown = clean_text(repr(command), 60)
        return ProgramMetadata(name, problem=f"`command` is {_a(type(command).__name__)} ({shown}), not a string")
    try:
        shlex.split(command)
    except ValueError as error:
        return ProgramMetadata(name, problem=f"`command` cannot be split into words as docker-py splits it: {error}")
    return ProgramMetadata(name, command)


def _metadata_text(path: Path) -> str:
    """The file as the worker's open(path, "r") reads it in its UTF-8 container; MetadataProblem otherwise."""
    try:
        with os.fdopen(open_regular(path), "rb") as handle:
            data = handle.read()
    except NotRegularFile as error:  # "<path> is a folder, not a file"
        raise MetadataProblem(str(error).removeprefix(f"{path} is ")) from None
    except OSError as error:
        raise MetadataProblem(f"cannot be read ({error.strerror or error})") from None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as error:
        raise MetadataProblem(f"not UTF-8 text (byte {data[error.start]:#04x} at offset {error.start})") from None


def _yaml_reason(error: Exception) -> str:
    """One line on why PyYAML could not read a text."""
    if isinstance(error, RecursionError):
        return "nested too deeply (Python's recursion limit)"
    return clean_text(" ".join(str(error).split()), 200) or type(error).__name__


def _a(noun: str) -> str:
    """The noun with its article, for type names in messages."""
    return f"an {noun}" if noun[:1] in "aeiou" else f"a {noun}"


def worker_command(command: str, kind: str, is_scoring: bool, mounts: dict, python: str = sys.executable) -> list:
    """metadata command (a string metadata_command accepted) -> argv: legacy $variables, split into words as
    docker-py's split_command does (shlex), no words -> the image's own command, /app paths -> temp folders."""
    for variable, value in legacy_variables(kind, is_scoring):
        command = command.replace(variable, value)
    pattern = re.compile("|".join(re.escape(m) for m in sorted(mounts, key=len, reverse=True)) + r"(?=/|$|\b)")
    argv = []
    for token in shlex.split(command) or IMAGE_DEFAULT_COMMAND.split():
        if token in ("python3", "python"):
            token = python
        argv.append(pattern.sub(lambda match: str(mounts[match.group(0)]), token))
    return argv


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
    Returns ([ContainerResult], timed_out, start_ticks of the first). Each runs in its own session; on time-out every
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
        process = _launch(command, cwd, env, out, err)
        if isinstance(process, subprocess.Popen):
            born_after = born_after or start_ticks(process.pid)
        started.append((name, argv, process, time.monotonic(), out, err))
    ended = {name: 0.0 for name, _, process, *_ in started if isinstance(process, int)}
    while len(ended) < len(started) and time.monotonic() < deadline:
        for name, _, process, start, _, _ in started:
            if name not in ended and process.poll() is not None:
                ended[name] = time.monotonic() - start
        time.sleep(0.02)
    timed_out = len(ended) < len(started)
    results = []
    for name, argv, process, start, out, err in started:
        if isinstance(process, int):
            results.append(ContainerResult(name, argv, process, 0.0, False, out, err))
            continue
        if process.poll() is None:
            kill_group(process.pid)
            process.wait()
        code = None if name not in ended else _docker_exit_code(process.returncode)
        results.append(ContainerResult(name, argv, code, ended.get(name, limit), name not in ended, out, err))
    return results, timed_out, born_after


def _launch(command: list, cwd: Path, env: dict, out: Path, err: Path) -> subprocess.Popen | int:
    """The container's process, or, when its command cannot start (not found, not executable, a NUL byte or an
    unencodable character in a word), docker's exit code for it, with the reason in its stderr log as docker gives
    it in the worker's."""
    with open(out, "wb") as out_file, open(err, "wb") as err_file:
        try:
            return subprocess.Popen(command, cwd=cwd, stdout=out_file, stderr=err_file, stdin=subprocess.DEVNULL,
                                    env=env, start_new_session=True)
        except (OSError, ValueError) as error:  # ValueError: a NUL byte or a lone surrogate in a word
            reason = (f"exec {command[0]!r}: {error.strerror or error}" if isinstance(error, OSError)
                      else f"exec: a word of the command cannot be passed to the system: {error}")
            err_file.write(f"{reason}\n".encode("utf-8", "backslashreplace"))
            return CANNOT_FIND if isinstance(error, FileNotFoundError) else CANNOT_EXECUTE


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
