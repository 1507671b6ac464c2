"""A worker step's processes, as its containers run: the command, the environment, a staged interpreter, the clock.

Follows codalab/codabench compute_worker.py (2026): a program's command comes from its metadata file (legacy
$variables replaced, /app paths mapped onto the step's temporary folders), every container of a step starts at once
and the step's time limit covers them all, and docker reports a signal as 128 + its number. What only the container
would end, this module kills: every process started during the step and tied to it (kill_leftovers).
"""
import os
import re
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
from worker_bundles import RunSetupError
from worker_paths import legacy_variables

METADATA_FILES = ("metadata.yaml", "metadata")  # the order the worker looks for them
STEP_MARKER = "CODABENCH_RUN_STEP"  # environment variable that tags every process of a step


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
        """The container's stderr (read before the temp folder is removed, so always available)."""
        return self.stderr.read_text(encoding="utf-8", errors="replace") if self.stderr.is_file() else self.stderr_tail


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
        results.append(ContainerResult(name, argv, code, ended.get(name, limit), name not in ended, out, err))
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
