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
from tree_removal import FOLDER_FLAGS, remove_tree

PREDICTIONS = "predictions.csv"
RUN_REPORT = "run_report.json"
SUBMISSION_LOG = "submission_output.log"
OUTPUT_NAMES = (PREDICTIONS, SUBMISSION_LOG, RUN_REPORT)
NEW_FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
MAX_DEPTH = 32  # folder levels the clean-up looks into; a deeper entry goes with its foreign ancestor
CLEAN_UP_SECONDS = 30.0  # the most the removals before the outputs may take (within the budget's end margin)
OUTPUT_REMOVAL_SECONDS = 5.0  # what a folder left at an output's name still gets after that


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
    foreign(), clean_up() and write() once its processes are gone, and close().

    The outputs go to the folder at the path, which the scorer reads, and also to the folder held since prepare()
    when a rename took that one elsewhere: on CodaBench the output folder is a mount that the worker uploads wherever
    it is. A folder at the path that is not the held one was made by the submission: all of it is foreign."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.before: dict[str, str] = {}
        self.replaced = False  # the folder at the path was gone, or no longer a folder: one was made again
        self.moved = False  # the folder prepare() held is no longer at the path, but still exists
        self._held: int | None = None
        self._deadline: float | None = None  # set by clean_up: the removals after it share CLEAN_UP_SECONDS

    def prepare(self) -> None:
        """Create the folder and hold it, remove a previous run's outputs (whatever they are now: a file, a folder, a
        link) and remember what else is there: the clean-up keeps it."""
        self.path.mkdir(parents=True, exist_ok=True)
        with self._open_path() as folder:
            self._held = os.dup(folder)
            try:
                for name in OUTPUT_NAMES:
                    _remove(folder, name)
                self.before = _entries(folder)
            except BaseException:
                self.close()
                raise
        self.replaced = False

    def foreign(self) -> list[str]:
        """What the submission left, sorted: every link, FIFO, socket or device, and each file or folder ('name/')
        that was not there before the run; a new folder is not looked into, it stands for everything in it."""
        found = set()
        for folder, before in self._folders():
            with folder:
                found.update(f"{path}/" if kind == "folder" else path
                             for path, kind in _foreign_entries(folder, before).items())
        return sorted(found)

    def clean_up(self) -> list[str]:
        """Before the first write: remove every foreign entry (the submission's own run_report.json and other outputs
        first), for at most CLEAN_UP_SECONDS; returns the ones left (that could not be removed, or not in time)."""
        self._deadline = time.monotonic() + CLEAN_UP_SECONDS
        left = []
        for folder, before in self._folders():
            with folder:
                for path in sorted(_foreign_entries(folder, before), key=_removal_order):
                    try:
                        if time.monotonic() > self._deadline:
                            raise TimeoutError
                        _remove(folder, path, self._deadline)
                    except OSError:  # TimeoutError too
                        left.append(path)
        return left

    def write(self, name: str, fill: Callable[[BinaryIO], None]) -> None:
        """Write one output into each output folder: `fill` writes the content into a fresh file, which then takes
        the name; a file that cannot be finished is removed again."""
        folders = [folder for folder, _ in self._folders()]
        try:
            for folder in folders:
                partial = f".{name}.{secrets.token_hex(8)}.partial"
                try:
                    with os.fdopen(os.open(partial, NEW_FILE_FLAGS, 0o666, dir_fd=folder), "wb") as handle:
                        fill(handle)
                    if _kind(folder, name) == "folder":  # os.replace takes the place of a file, a link, not a folder
                        remove_tree(name, dir_fd=folder, deadline=max(self._deadline or 0.0,
                                                                      time.monotonic() + OUTPUT_REMOVAL_SECONDS))
                    os.replace(partial, name, src_dir_fd=folder, dst_dir_fd=folder)
                except BaseException:
                    _unlink_quietly(folder, partial)
                    raise
        finally:
            for folder in folders:
                os.close(folder)

    def write_text(self, name: str, text: str) -> None:
        self.write(name, lambda handle: handle.write(text.encode("utf-8")))

    def close(self) -> None:
        if self._held is not None:
            os.close(self._held)
            self._held = None

    def _folders(self) -> list[tuple["_Descriptor", dict[str, str]]]:
        """(descriptor, what it held before the run) of each folder the outputs go to: the folder at the path, then
        the held folder when it is elsewhere and still exists."""
        at_path = self._open_path()
        if self._held is None or os.path.samestat(os.fstat(at_path), os.fstat(self._held)):
            return [(at_path, self.before)]
        if os.fstat(self._held).st_nlink == 0:  # deleted: the folder at the path is the submission's own
            self.replaced = True
            return [(at_path, {})]
        self.moved = True
        return [(at_path, {}), (_Descriptor(os.dup(self._held)), self.before)]

    def _open_path(self) -> "_Descriptor":
        """The folder at the path, never through a link: what is there instead (a link, a file) is removed and a new
        folder made, as when nothing is there."""
        try:
            return _Descriptor(os.open(self.path, FOLDER_FLAGS))
        except FileNotFoundError:
            pass
        except OSError:  # a link (ELOOP) or another kind of file (ENOTDIR)
            self.path.unlink()
        self.replaced = True
        self.path.mkdir(parents=True, exist_ok=True)
        return _Descriptor(os.open(self.path, FOLDER_FLAGS))


def _foreign_entries(folder: int, before: dict[str, str]) -> dict[str, str]:
    """{path: kind} of what is foreign in the folder now, looking only into the folders that were there before the
    run: a new folder goes whole, so millions of entries left in it cost nothing to list."""
    now = _entries(folder, into={path for path, kind in before.items() if kind == "folder"})
    return {path: now[path] for path in _foreign(now, before)}


def _removal_order(path: str) -> tuple:
    """The report first, then the other outputs, then the rest: what blocks an output goes before the time runs out."""
    return (path != RUN_REPORT, path not in OUTPUT_NAMES)


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
