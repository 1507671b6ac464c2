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
    """The output folder of one run: prepare() before the model starts, then foreign(), clean_up() and write() once
    its processes are gone."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.before: dict[str, str] = {}
        self.replaced = False  # the folder was gone, or no longer a folder, after prepare(): it was made again

    def prepare(self) -> None:
        """Create the folder, remove a previous run's outputs (whatever they are now: a file, a folder, a link) and
        remember what else is there: the clean-up keeps it."""
        self.path.mkdir(parents=True, exist_ok=True)
        with self._opened() as folder:
            for name in OUTPUT_NAMES:
                _remove(folder, name)
            self.before = _entries(folder)
        self.replaced = False

    def foreign(self) -> list[str]:
        """What the submission left, sorted: every link, FIFO, socket or device, and each file or folder ('name/')
        that was not there before the run, a new folder standing for everything in it."""
        with self._opened() as folder:
            now = _entries(folder)
        paths = _foreign(now, self.before)
        new_folders = {path for path in paths if now[path] == "folder"}
        return sorted(f"{path}/" if now[path] == "folder" else path for path in paths
                      if now[path] == "other" or not _in_any(path, new_folders))

    def write(self, name: str, fill: Callable[[BinaryIO], None]) -> None:
        """Write one output: `fill` writes the content into a fresh file, which then takes the name."""
        with self._opened() as folder:
            partial = f".{name}.{secrets.token_hex(8)}.partial"
            with os.fdopen(os.open(partial, NEW_FILE_FLAGS, 0o666, dir_fd=folder), "wb") as handle:
                fill(handle)
            _remove_folder(folder, name)  # os.replace takes the place of a file, a link or a FIFO, not of a folder
            os.replace(partial, name, src_dir_fd=folder, dst_dir_fd=folder)

    def write_text(self, name: str, text: str) -> None:
        self.write(name, lambda handle: handle.write(text.encode("utf-8")))

    def clean_up(self) -> list[str]:
        """Before the first write: remove every foreign entry (an output the submission planted too); returns the
        ones that could not be removed."""
        failed = []
        with self._opened() as folder:
            now = _entries(folder)
            paths = _foreign(now, self.before)
            folders = [path for path in paths if now[path] == "folder"]
            for path in paths:
                if any(_under(path, other) for other in folders):
                    continue  # removed with its folder
                try:
                    _remove(folder, path)
                except OSError:
                    failed.append(path)
        return failed

    def _opened(self) -> "_Descriptor":
        """The folder's descriptor, never through a link. When the path is gone, or no longer a folder (the submission
        replaced it), what is there is removed and a new folder made."""
        try:
            return _Descriptor(os.open(self.path, FOLDER_FLAGS))
        except FileNotFoundError:
            pass
        except OSError:  # a link (ELOOP) or another kind of file (ENOTDIR)
            self.path.unlink()
        self.replaced = True
        self.path.mkdir(parents=True, exist_ok=True)
        return _Descriptor(os.open(self.path, FOLDER_FLAGS))


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


def _entries(folder: int, prefix: str = "", depth: int = 0) -> dict[str, str]:
    """{relative path: kind} of everything under the folder (down to MAX_DEPTH), links never followed."""
    found = {}
    with os.scandir(folder) as listing:
        names = [entry.name for entry in listing]
    for name in names:
        kind = _kind(folder, name)
        if kind is None:
            continue
        found[prefix + name] = kind
        if kind == "folder" and depth < MAX_DEPTH:
            try:
                inner = os.open(name, FOLDER_FLAGS, dir_fd=folder)
            except OSError:
                continue
            with _Descriptor(inner):
                found.update(_entries(inner, f"{prefix}{name}/", depth + 1))
    return found


def _foreign(now: dict[str, str], before: dict[str, str]) -> list[str]:
    """Paths of `now` that are foreign: a link, FIFO, socket or device, or an entry `before` did not have (with this
    kind)."""
    return [path for path, kind in now.items() if kind == "other" or before.get(path) != kind]


def _under(path: str, folder: str) -> bool:
    return path.startswith(f"{folder}/")


def _in_any(path: str, folders: set[str]) -> bool:
    """Whether the path lies inside one of the folders (checked by its ancestors: as fast for thousands of them)."""
    parts = path.split("/")
    return any("/".join(parts[:depth]) in folders for depth in range(1, len(parts)))


def _remove_folder(folder: int, name: str) -> None:
    if _kind(folder, name) == "folder":
        remove_tree(name, dir_fd=folder)


def _remove(folder: int, relative: str) -> None:
    """Remove the entry, whatever it is (a folder with everything in it); a link is removed, never followed."""
    kind = _kind(folder, relative)
    if kind == "folder":
        remove_tree(relative, dir_fd=folder)
    elif kind is not None:
        os.unlink(relative, dir_fd=folder)
