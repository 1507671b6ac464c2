"""Refuses to run a submission when reference labels are reachable from the prediction step."""
import os
from pathlib import Path

REFERENCE_NAMES = ("reference.csv", "reference_data")


class ReferenceExposedError(Exception):
    """Organizer misconfiguration: reference labels sit where the submission can read them."""


def find_reference(folders: list[Path]) -> list[Path]:
    """Paths named reference.csv or reference_data under any of the folders (symlinks not followed)."""
    found = []
    for folder in folders:
        for root, dirs, files in os.walk(folder):
            found += [Path(root) / name for name in dirs + files if name.lower() in REFERENCE_NAMES]
    return sorted(set(found))


def check_no_reference(folders: list[Path]) -> None:
    """Raise when reference data is under the input, program or submission folder.

    On CodaBench the reference data is not mounted in the prediction step; locally the no-argument run
    reads input_data/<phase>, and the repo's reference_data/ sits beside it, not under it.
    """
    found = find_reference(folders)
    if found:
        shown = ", ".join(str(path) for path in found[:5])
        raise ReferenceExposedError(f"refusing to run: reference data is reachable by the submission ({shown}); "
                                    "the prediction step must not see reference.csv or reference_data")
