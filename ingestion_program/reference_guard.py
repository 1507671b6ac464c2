"""Refuses to run a submission when the organizer's reference labels are reachable from the prediction step."""
import os
import re
from pathlib import Path

from regular_files import open_regular

REFERENCE_NAMES = ("reference.csv", "reference_data")
SCANNED_BYTES = 1 << 20  # of each candidate file in the submission: enough for thousands of rows
SCANNED_FILES = 100
WORD = re.compile(rb"[0-9A-Za-z_]+")


class ReferenceExposedError(Exception):
    """Organizer misconfiguration: reference labels sit where the submission can read them."""


def find_reference(folders: list[Path]) -> list[Path]:
    """Paths named reference.csv or reference_data under any of the folders (symlinks not followed)."""
    found = []
    for folder in folders:
        for root, dirs, files in os.walk(folder):
            found += [Path(root) / name for name in dirs + files if name.lower() in REFERENCE_NAMES]
    return sorted(set(found))


def holds_test_ids(path: Path, test_ids: set[str]) -> bool:
    """Whether the file's first SCANNED_BYTES name one of this run's test image ids (read as a regular file only)."""
    try:
        fd = open_regular(path)
    except OSError:
        return False
    with os.fdopen(fd, "rb") as handle:
        words = WORD.findall(handle.read(SCANNED_BYTES))
    return any(word.decode("ascii") in test_ids for word in words)


def check_no_reference(organizer_folders: list[Path], submission: Path, test_ids: set[str]) -> None:
    """Raise when reference data is under the input or program folder (by name: neither holds any), or when a file
    of the submission named reference.csv, or inside a folder named reference_data, lists this run's test image ids.

    A participant's own train/reference.csv (training labels) is theirs and does not hold the test set's fresh random
    ids; only the organizer's reference does. On CodaBench the reference data is not mounted in the prediction step;
    locally the no-argument run reads input_data/<phase>, and the repo's reference_data/ sits beside it, not under it.
    """
    found = find_reference(organizer_folders)
    named = find_reference([submission])
    candidates = [path for path in named if not path.is_dir()]
    for folder in (path for path in named if path.is_dir() and not path.is_symlink()):
        candidates += [Path(root) / name for root, _, files in os.walk(folder) for name in files]
    found += [path for path in sorted(set(candidates))[:SCANNED_FILES] if holds_test_ids(path, test_ids)]
    if found:
        shown = ", ".join(str(path) for path in found[:5])
        raise ReferenceExposedError(f"refusing to run: reference data is reachable by the submission ({shown}); "
                                    "the prediction step must not see reference.csv or reference_data")
