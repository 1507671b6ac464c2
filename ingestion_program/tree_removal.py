"""Removes a folder and everything in it, however deep, without recursion and with short paths only.

A model can leave a tree thousands of folders deep (made relative to a folder descriptor, so no path limit stops
it): shutil.rmtree then raises RecursionError, and a path to its bottom is too long to name. Here every folder met
below the first level is first moved up to sit directly in the folder being removed, under a fresh name, so each
step names at most two levels, and the work is a queue, not a call stack. Run it only once the model's processes
are dead: nothing may change the tree meanwhile.
"""
import os
import secrets
import stat
import time

# A folder opened for its descriptor: never through a link, and closed in any program this one starts.
FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def remove_tree(name: str | os.PathLike, dir_fd: int | None = None, deadline: float | None = None) -> None:
    """Remove the folder `name` (relative to dir_fd when given) with everything in it; a link inside is removed,
    never followed. OSError if something cannot be removed; TimeoutError (an OSError) once time.monotonic() passes
    `deadline`, with the rest left."""
    _unlock(name, dir_fd)
    top = os.open(name, FOLDER_FLAGS, dir_fd=dir_fd)
    try:
        with os.scandir(top) as listing:
            queue = [entry.name for entry in listing]
        while queue:
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"{len(queue)} entries of {os.fsdecode(name)} not removed in the time allowed")
            entry = queue.pop()
            if not stat.S_ISDIR(os.stat(entry, dir_fd=top, follow_symlinks=False).st_mode):
                os.unlink(entry, dir_fd=top)
                continue
            _unlock(entry, top)
            queue += _empty_into(top, entry)
            os.rmdir(entry, dir_fd=top)
    finally:
        os.close(top)
    os.rmdir(name, dir_fd=dir_fd)


def _empty_into(top: int, name: str) -> list[str]:
    """Unlink what the folder `name` of top holds and move its folders up into top; their new names."""
    folder = os.open(name, FOLDER_FLAGS, dir_fd=top)
    moved = []
    try:
        with os.scandir(folder) as listing:
            entries = [(entry.name, entry.is_dir(follow_symlinks=False)) for entry in listing]
        for entry, is_folder in entries:
            if is_folder:
                _unlock(entry, folder)  # moving a folder rewrites its '..'
                moved.append(f".removing-{secrets.token_hex(8)}")
                os.rename(entry, moved[-1], src_dir_fd=folder, dst_dir_fd=top)
            else:
                os.unlink(entry, dir_fd=folder)
    finally:
        os.close(folder)
    return moved


def _unlock(name: str | os.PathLike, dir_fd: int | None) -> None:
    """Make a folder the model set read-only writable again, so that it can be emptied and moved (best effort: a
    folder of another owner stays as it is, and removing from it fails by name). A link is left alone: chmod would
    change what it points to."""
    try:
        if stat.S_ISDIR(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode):
            os.chmod(name, stat.S_IRWXU, dir_fd=dir_fd)
    except OSError:
        pass
