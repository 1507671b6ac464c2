"""A worker step in a private root, the nearest a docker-less emulator gets to the step's own container.

Linux user, mount and PID namespaces (util-linux `unshare`, no root needed where unprivileged user namespaces
are allowed). Inside, the step sees a fresh root holding only the system folders and the Python installation,
read-only, its own step tree, writable, and a /tmp of its own on disk: not the repository, the reference or the
user's files. Its /proc shows only its own processes, and every process it starts dies with it (the kernel kills
a PID namespace's processes when its first process ends). The step's command runs without any capability, so it
can neither remount what it sees nor open another process's descriptors.

Run as a program, this file is that first process: it builds the root, then becomes the step's command (exec), so
the command is PID 1 of its namespace as in a container.
"""
import argparse
import os
import shutil
import site
import subprocess
import sys
import tempfile
from pathlib import Path

SYSTEM_FOLDERS = ("/usr", "/etc", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32")
DEVICES = ("null", "zero", "full", "random", "urandom")
SETUP_FAILED = 125  # the step never started: a setup failure, not the step's own exit status
TOOL_PATH = "/usr/sbin:/usr/bin:/sbin:/bin"
SHM_BYTES = 64 * 2**20  # docker's default --shm-size


def unshare_argv() -> list:
    """The `unshare` command line that starts this file's program as the first process of fresh namespaces."""
    unshare = shutil.which("unshare", path=TOOL_PATH)
    if unshare is None:
        raise OSError("util-linux `unshare` not found")
    return [unshare, "--user", "--map-root-user", "--mount", "--pid", "--fork", "--mount-proc", "--kill-child",
            sys.executable, "-I", str(Path(__file__).resolve())]


def python_folders() -> list:
    """This interpreter's installation and package folders: what a staged interpreter needs to start."""
    folders = {Path(sys.base_prefix), Path(sys.prefix), *map(Path, site.getsitepackages())}
    return sorted(str(folder) for folder in folders if folder.is_dir())


def sandboxed(argv: list, step_tree: Path, root: Path, tmp: Path) -> list:
    """argv run inside a private root that shows the system and Python folders read-only and step_tree writable
    (its working directory must be inside step_tree); root: an empty folder outside them, to mount the root on;
    tmp: a folder outside them, shown as /tmp (on disk, as the container's own /tmp is)."""
    read_only = [folder for folder in SYSTEM_FOLDERS if Path(folder).is_dir() and not Path(folder).is_symlink()]
    return [*unshare_argv(), "--root", str(root), "--tmp", str(tmp),
            *[arg for folder in read_only + python_folders() for arg in ("--ro", folder)],
            "--rw", str(step_tree), "--", *argv]


def unavailable_reason() -> str | None:
    """None when a sandboxed `true` runs here, else why not (one line)."""
    with tempfile.TemporaryDirectory(prefix="step_sandbox_probe_") as scratch:
        tree, root, tmp = Path(scratch, "tree"), Path(scratch, "root"), Path(scratch, "tmp")
        for folder in (tree, root, tmp):
            folder.mkdir()
        try:
            true = shutil.which("true", path=TOOL_PATH) or "/bin/true"
            completed = subprocess.run(sandboxed([true], tree, root, tmp), capture_output=True, text=True, timeout=60,
                                       cwd=tree)
        except (OSError, subprocess.TimeoutExpired) as error:
            return str(error)
    if completed.returncode != 0:
        lines = (completed.stderr or completed.stdout).strip().splitlines()
        return lines[-1] if lines else f"exit {completed.returncode}"
    return None


# ---------------------------------------------------------------- inside the namespaces ------------------------
def _run(*argv: str) -> None:
    subprocess.run(argv, check=True, capture_output=True, text=True, env={"PATH": TOOL_PATH})


def _mounts_under(target: str) -> list:
    """Mount points at or below target in this mount namespace (from /proc/self/mountinfo), top first."""
    points = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        point = line.split()[4].replace("\\040", " ")
        if point == target or point.startswith(target.rstrip("/") + "/"):
            points.append(point)
    return sorted(points, key=len)


def _bind(source: str, root: str, writable: bool) -> None:
    target = root + source
    os.makedirs(target, exist_ok=True)
    _run("mount", "--rbind", source, target)
    if not writable:  # every mount of the copied subtree, since a recursive bind copies them all
        for point in _mounts_under(target):
            _run("mount", "-o", "remount,bind,ro", point)


def build_root(root: str, tmp: str, read_only: list, writable: list) -> None:
    """Mount a fresh root at root (an empty folder) and switch to it. Its own /tmp and /dev come first, so a
    folder shown from below the real /tmp is mounted on top of them, not hidden by them.

    Nothing the step can write is memory-backed without a cap: /tmp is the disk folder tmp, /dev/shm has docker's
    default 64 MiB (CodaBench's worker sets no other), /dev holds only the devices and links."""
    _run("mount", "-t", "tmpfs", "-o", "mode=755,size=1m", "step-root", root)
    for folder in ("proc", "dev", "tmp", "old_root"):
        os.makedirs(f"{root}/{folder}")
    _run("mount", "--bind", tmp, f"{root}/tmp")
    _run("mount", "-t", "tmpfs", "-o", "mode=755,size=1m", "step-dev", f"{root}/dev")
    for device in DEVICES:
        Path(f"{root}/dev/{device}").touch()
        _run("mount", "--bind", f"/dev/{device}", f"{root}/dev/{device}")
    for name, target in (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"), ("stdout", "/proc/self/fd/1"),
                         ("stderr", "/proc/self/fd/2")):
        os.symlink(target, f"{root}/dev/{name}")
    os.makedirs(f"{root}/dev/shm")
    _run("mount", "-t", "tmpfs", "-o", f"mode=1777,size={SHM_BYTES}", "step-shm", f"{root}/dev/shm")
    _run("mount", "--rbind", "/proc", f"{root}/proc")
    for name in ("bin", "sbin", "lib", "lib32", "lib64", "libx32"):  # merged /usr: the links, not their targets
        link = Path("/", name)
        if link.is_symlink():
            os.symlink(os.readlink(link), f"{root}/{name}")
    for folder in read_only:
        _bind(folder, root, writable=False)
    for folder in writable:
        _bind(folder, root, writable=True)
    os.chdir(root)
    _run("pivot_root", ".", "old_root")
    os.chdir("/")
    _run("umount", "-l", "/old_root")
    os.rmdir("/old_root")
    _run("mount", "-o", "remount,bind,ro", "/")


def main(argv: list | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="an empty folder to mount the new root on")
    parser.add_argument("--tmp", required=True, help="the folder shown as /tmp")
    parser.add_argument("--ro", action="append", default=[], help="folder shown read-only (repeatable)")
    parser.add_argument("--rw", action="append", default=[], help="folder shown writable (repeatable)")
    parser.add_argument("command", nargs=argparse.REMAINDER, help="-- then the step's command")
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    cwd, setpriv = os.getcwd(), shutil.which("setpriv", path=TOOL_PATH)
    try:
        if setpriv is None:
            raise OSError("util-linux `setpriv` not found")
        build_root(args.root, args.tmp, args.ro, args.rw)
        os.chdir(cwd)
    except (OSError, subprocess.CalledProcessError) as error:
        detail = getattr(error, "stderr", "") or str(error)
        print(f"step sandbox: setup failed: {detail.strip()}", file=sys.stderr)
        return SETUP_FAILED
    # No capability survives into the step (nor can any be regained), though it runs as this namespace's root. The
    # step's command replaces this process, so it is the namespace's first process (PID 1), as a container's command
    # is: the kernel drops the SIGKILL and SIGSTOP its own processes send it.
    os.execv(setpriv, [setpriv, "--no-new-privs", "--inh-caps=-all", "--bounding-set=-all", "--", *command])


if __name__ == "__main__":
    sys.exit(main())
