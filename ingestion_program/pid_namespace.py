"""Runs the ingestion supervisor as PID 1 of a fresh PID namespace where Linux allows it, as it is in the competition
container.

On CodaBench the ingestion command is its container's first process (PID 1). The kernel then drops SIGKILL and
SIGSTOP sent to it from inside the container, so the model can neither kill nor freeze its supervisor, and ends every
other process of the container when it ends, so nothing the model started outlives the run. Locally the same two
guarantees come from a user, PID and mount namespace (util-linux `unshare`, no root needed where unprivileged user
namespaces are allowed; the fresh /proc shows the namespace's processes only). Where the machine refuses them (macOS,
Docker's default profile, distributions that forbid them) the supervisor runs as it is, and this is left open: a
model that kills its supervisor, or freezes it for good, leaves no report (the scorer then fails the run by name; a
supervisor frozen a while fails the run on its own clock), a process it detached may outlive a killed supervisor, and
one that leaves its session at every fork may outrun the final sweep (process_tree.py).
"""
import os
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import stop_signals

TOOL_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
UNSHARE_OPTIONS = ("--user", "--map-current-user", "--pid", "--mount", "--fork", "--kill-child", "--mount-proc")
LIFELINE = "WBC_INGESTION_LIFELINE"  # names the pipe whose end tells the supervisor inside that its starter died


def unshare_command() -> list[str] | None:
    """The `unshare` command line that starts a program as PID 1 of fresh namespaces; None when it cannot run here."""
    unshare = shutil.which("unshare", path=TOOL_PATH)
    if unshare is None or not Path("/proc/self/ns/pid").exists():
        return None
    command = [unshare, *UNSHARE_OPTIONS]
    try:
        probe = subprocess.run([*command, "true"], stdin=subprocess.DEVNULL, capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return command if probe.returncode == 0 else None


def run_as_first_process(program: Path, argv: list[str]) -> int | None:
    """Run `python program argv` as PID 1 of fresh namespaces and return its exit status; None when this process
    already is a PID 1 (the competition container, or the run started here) or the machine allows no namespace.

    This process stays outside and only waits, handing on any signal it is sent (a Ctrl-C, a time limit) to the
    supervisor inside, which reports it; the model cannot see or signal this one. Killed itself (SIGKILL), it
    leaves the supervisor a pipe with no writer: watch_lifeline() then ends the supervisor, and its namespace.
    """
    if os.getpid() == 1:
        return None
    command = unshare_command()
    if command is None:
        return None
    lifeline, held = os.pipe()  # only this process holds the write end (pipes are not inherited unless passed)
    inner = subprocess.Popen([*command, sys.executable, str(program), *argv], start_new_session=True,
                             pass_fds=(lifeline,), env={**os.environ, LIFELINE: str(lifeline)})
    os.close(lifeline)
    stop_signals.install(lambda number: _hand_on(inner, number))
    code = inner.wait()
    os.close(held)
    return 128 - code if code < 0 else code


def watch_lifeline() -> None:
    """In the supervisor started by run_as_first_process: exit at once when the process outside is gone (the
    lifeline pipe ends), which, as PID 1, ends every process of the namespace too."""
    fd = os.environ.pop(LIFELINE, None)
    if fd is None:
        return

    def watch() -> None:
        while os.read(int(fd), 1):
            pass
        os._exit(1)

    threading.Thread(target=watch, name="lifeline", daemon=True).start()


def _hand_on(inner: subprocess.Popen, number: int) -> None:
    """Send the signal on to the supervisor's process group (`unshare` itself blocks SIGINT and SIGTERM)."""
    try:
        os.killpg(inner.pid, number)
    except (ProcessLookupError, PermissionError):
        pass
