"""Removes whatever the submission left in the output folder, then writes predictions.csv, submission_output.log and
run_report.json there, following nothing the submission may have left.

The folder is reached through one descriptor opened without following links. Foreign entries go first, so that a
disk the model filled is free again for the outputs: anything that was not there before the run, and any link,
FIFO, socket or device wherever it is, however deep (tree_removal.py). Each output is then written to a fresh file
(O_CREAT | O_EXCL | O_NOFOLLOW: never an existing file, link or FIFO) that replaces its name atomically, so a reader
never sees half a file. All of it runs once the model's processes are gone, so nothing changes the folder meanwhile.
"""
import csv
import io
import json
import os
import secrets
import stat
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from challenge_labels import CLASSES, SETS
from tree_removal import remove_tree

PREDICTIONS = "predictions.csv"
RUN_REPORT = "run_report.json"
SUBMISSION_LOG = "submission_output.log"
OUTPUT_NAMES = (PREDICTIONS, SUBMISSION_LOG, RUN_REPORT)
FOLDER_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_DEPTH = 32  # folder levels the clean-up looks into; a deeper entry goes with its foreign ancestor
CLEAN_UP_SECONDS = 30.0  # the most the removals before the outputs may take (within the budget's end margin)


def predictions_text(results: dict[tuple[str, str], tuple]) -> tuple[str, bool]:
    """(predictions.csv's text, whether it has probability columns) for {(set, image_id): (label, probs or None)}.

    Rows sorted by set (pristine, degraded) then image_id; probabilities as %.6f. Probability columns only when
    every prediction gave probabilities: a mix would leave empty cells, so then labels only are written.
    """
    with_probs = bool(results) and all(probs is not None for _, probs in results.values())
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["image_id", "set", "label"] + ([f"prob_{c}" for c in CLASSES] if with_probs else []))
    for set_name, image_id in sorted(results, key=lambda key: (SETS.index(key[0]), key[1])):
        label, probs = results[set_name, image_id]
        writer.writerow([image_id, set_name, label] + (["%.6f" % p for p in probs] if with_probs else []))
    return buffer.getvalue(), with_probs


def report_text(report: dict) -> str:
    return json.dumps(report, indent=2, allow_nan=False) + "\n"


class OutputFolder:
    """The output folder of one run: prepare() before the model starts (the folder is held open from then on), then
    foreign(), clean_up() and write() once its processes are gone, and close()."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.before: dict[str, str] = {}
        self.replaced = False  # the folder was deleted during the run: a new one was made at its path
        self.moved = False  # the path no longer leads to the folder (a folder above it was renamed)
        self._held: int | None = None
        self._deadline: float | None = None  # set by clean_up: the removals after it share CLEAN_UP_SECONDS

    def prepare(self) -> None:
        """Create the folder and hold it, remove a previous run's outputs (whatever they are now: a file, a folder, a
        link) and remember what else is there: the clean-up keeps it."""
        self.path.mkdir(parents=True, exist_ok=True)
        with self._opened() as folder:
            for name in OUTPUT_NAMES:
                _remove(folder, name)
            self.before = _entries(folder)
        self.replaced = False

    def foreign(self) -> list[str]:
        """What the submission left, sorted: every link, FIFO, socket or device, and each file or folder ('name/')
        that was not there before the run; a new folder is not looked into, it stands for everything in it."""
        with self._opened() as folder:
            now = self._entries_now(folder)
        return sorted(f"{path}/" if now[path] == "folder" else path for path in _foreign(now, self.before))

    def clean_up(self) -> list[str]:
        """Before the first write: remove every foreign entry (an output the submission planted first), for at most
        CLEAN_UP_SECONDS; returns the ones left (that could not be removed, or not in time)."""
        self._deadline = time.monotonic() + CLEAN_UP_SECONDS
        left = []
        with self._opened() as folder:
            now = self._entries_now(folder)
            for path in sorted(_foreign(now, self.before), key=lambda path: path not in OUTPUT_NAMES):
                try:
                    _remove(folder, path, self._deadline)
                except OSError:  # TimeoutError too
                    left.append(path)
        return left

    def write(self, name: str, fill: Callable[[BinaryIO], None]) -> None:
        """Write one output: `fill` writes the content into a fresh file, which then takes the name; a file that
        cannot be finished is removed again."""
        with self._opened() as folder:
            partial = f".{name}.{secrets.token_hex(8)}.partial"
            try:
                with os.fdopen(os.open(partial, NEW_FILE_FLAGS, 0o666, dir_fd=folder), "wb") as handle:
                    fill(handle)
                if _kind(folder, name) == "folder":  # os.replace takes the place of a file, a link, not a folder
                    remove_tree(name, dir_fd=folder, deadline=self._deadline)
                os.replace(partial, name, src_dir_fd=folder, dst_dir_fd=folder)
            except BaseException:
                _unlink_quietly(folder, partial)
                raise

    def write_text(self, name: str, text: str) -> None:
        self.write(name, lambda handle: handle.write(text.encode("utf-8")))

    def close(self) -> None:
        if self._held is not None:
            os.close(self._held)
            self._held = None

    def _entries_now(self, folder: int) -> dict[str, str]:
        """_entries, looking only into the folders that were there before the run: a new folder goes whole, so a
        model that leaves millions of entries costs a listing of what it left at the top, not of all of it."""
        return _entries(folder, into={path for path, kind in self.before.items() if kind == "folder"})

    def _opened(self) -> "_Descriptor":
        """The folder's descriptor: the folder held since prepare(), wherever it now is (a folder above it may have
        been renamed: on CodaBench it is the mounted folder the worker uploads). When it was deleted, or before
        prepare() holds one, the path is opened, never through a link; what is there instead (a link, a file) is
        removed and a new folder made."""
        if self._held is not None and os.fstat(self._held).st_nlink > 0:
            self.moved = self.moved or not _same_file(self.path, self._held)
            return _Descriptor(os.dup(self._held))
        if self._held is not None:
            self.replaced = True
        try:
            fd = os.open(self.path, FOLDER_FLAGS)
        except FileNotFoundError:
            fd = None
        except OSError:  # a link (ELOOP) or another kind of file (ENOTDIR)
            self.path.unlink()
            fd = None
        if fd is None:
            self.path.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.path, FOLDER_FLAGS)
        self.close()
        self._held = os.dup(fd)
        return _Descriptor(fd)


def _same_file(path: Path, fd: int) -> bool:
    """Whether the path (not followed) is the file open at fd."""
    try:
        here, held = os.stat(path, follow_symlinks=False), os.fstat(fd)
    except OSError:
        return False
    return (here.st_dev, here.st_ino) == (held.st_dev, held.st_ino)


def _unlink_quietly(folder: int, name: str) -> None:
    try:
        os.unlink(name, dir_fd=folder)
    except OSError:
        pass


class _Descriptor(int):
    """A folder descriptor usable as `with`, closed on exit."""

    def __enter__(self) -> int:
        return self

    def __exit__(self, *_) -> None:
        os.close(self)


def _kind(folder: int, relative: str) -> str | None:
    """'file', 'folder' or 'other' (a link, FIFO, socket, device) for the entry, never followed; None when absent."""
    try:
        mode = os.stat(relative, dir_fd=folder, follow_symlinks=False).st_mode
    except FileNotFoundError:
        return None
    return "file" if stat.S_ISREG(mode) else "folder" if stat.S_ISDIR(mode) else "other"


def _entries(folder: int, prefix: str = "", depth: int = 0, into: set[str] | None = None) -> dict[str, str]:
    """{relative path: kind} of everything under the folder (down to MAX_DEPTH, and only into the folders `into`
    names when given), links never followed; an entry that cannot be examined (a folder the model made unreadable)
    is left out."""
    found = {}
    with os.scandir(folder) as listing:
        names = [entry.name for entry in listing]
    for name in names:
        try:
            kind = _kind(folder, name)
        except OSError:
            continue
        if kind is None:
            continue
        found[prefix + name] = kind
        if kind == "folder" and depth < MAX_DEPTH and (into is None or prefix + name in into):
            try:
                inner = os.open(name, FOLDER_FLAGS, dir_fd=folder)
            except OSError:
                continue
            with _Descriptor(inner):
                try:
                    found.update(_entries(inner, f"{prefix}{name}/", depth + 1, into))
                except OSError:
                    continue
    return found


def _foreign(now: dict[str, str], before: dict[str, str]) -> list[str]:
    """Paths of `now` that are foreign: a link, FIFO, socket or device, or an entry `before` did not have (with this
    kind)."""
    return [path for path, kind in now.items() if kind == "other" or before.get(path) != kind]


def _remove(folder: int, relative: str, deadline: float | None = None) -> None:
    """Remove the entry, whatever it is (a folder with everything in it); a link is removed, never followed."""
    kind = _kind(folder, relative)
    if kind == "folder":
        remove_tree(relative, dir_fd=folder, deadline=deadline)
    elif kind is not None:
        os.unlink(relative, dir_fd=folder)
