"""Finds and kills every process a submission started, including the ones that left its session (Linux /proc)."""
import ctypes
import os
import signal
import time
from pathlib import Path

PR_SET_DUMPABLE, PR_SET_CHILD_SUBREAPER = 4, 36
KILL_ROUNDS = 50


def _prctl(option: int, value: int) -> bool:
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return libc.prctl(option, value, 0, 0, 0) == 0
    except (OSError, AttributeError):  # not Linux
        return False


def guard_supervisor() -> bool:
    """Make this process the reaper of its orphaned descendants (a double-forked or setsid process stays ours to
    find) and not dumpable (a same-user process cannot open its /proc/<pid>/fd, mem or environ).
    Returns whether both took effect."""
    return _prctl(PR_SET_CHILD_SUBREAPER, 1) & _prctl(PR_SET_DUMPABLE, 0)


def stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name: [state, ppid, ...] (starttime is index 19); OSError once gone.

    The command name may hold spaces and parentheses, so the fields start after its last ')'.
    """
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


def kill_group(process_group: int) -> None:
    """SIGKILL a process group; one that is already gone, or not ours, is no error."""
    try:
        os.killpg(process_group, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def descendants(root: int) -> list[int]:
    """Process ids below `root` in the process tree, from /proc (empty where /proc is absent)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat_fields(int(stat.parent.name))
        except OSError:  # the process ended meanwhile
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, queue = [], list(children.get(root, []))
    while queue:
        pid = queue.pop()
        found.append(pid)
        queue += children.get(pid, [])
    return found


def kill_all_descendants(process_group: int | None = None, spare: frozenset[int] = frozenset()) -> int:
    """SIGKILL the child's process group and every descendant of this process (except `spare`, the ones that
    existed before the child started) until none is left; reap them. Returns how many were killed.

    Processes forking while being killed are caught by the next round.
    """
    if process_group is not None:
        kill_group(process_group)
    killed = set()
    for _ in range(KILL_ROUNDS):
        alive = [pid for pid in descendants(os.getpid()) if pid not in spare and not _is_zombie(pid)]
        if not alive:
            break
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except ProcessLookupError:
                pass
        _reap(killed)
        time.sleep(0.01)
    _reap(killed)
    return len(killed)


def _is_zombie(pid: int) -> bool:
    try:
        return stat_fields(pid)[0] == "Z"
    except OSError:
        return True


def _reap(pids: set[int]) -> None:
    """Collect the exit status of the killed processes that became this process's children (subreaper)."""
    for pid in pids:
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:  # not our child, or already reaped
            pass
