"""Make the folders organizer code imports from importable by module name: the two program folders, tools/, baselines/.

The program folders cannot be packages: CodaBench uploads each alone and runs its scripts by path
(`python3 /app/program/score.py`), so their modules import one another by bare name (`from label_space import ...`),
and so must whoever reuses them. This module is the one place that puts folders on sys.path; every organizer module
that imports from another folder imports it first (`import project_folders`). Python puts only a running script's
own folder on sys.path, so baselines/, bench/ and tests/ hold a link to this file.

One sys.path serves every folder, so a module name must mean one file. The one name in two folders is run_report.py,
a byte-identical copy in each program folder (ingestion_program/ owns it; FOLDERS' order finds that one first):
any two files of one name that differ make this import fail, naming both, rather than let one hide the other.
"""
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FOLDERS = tuple(REPO / name for name in ("ingestion_program", "scoring_program", "tools", "baselines"))
INGESTION_PROGRAM, SCORING_PROGRAM, TOOLS, BASELINES = FOLDERS


def differing_namesakes(folders: tuple[Path, ...]) -> list[str]:
    """'<name>: <file> and <file>' for each module name that two of the folders give to files that differ."""
    first, found = {}, []
    for folder in folders:
        for path in sorted(folder.glob("*.py")):
            earlier = first.setdefault(path.name, path)
            if earlier != path and earlier.read_bytes() != path.read_bytes():
                found.append(f"{path.name}: {earlier} and {path}")
    return found


def make_importable(folders: tuple[Path, ...] = FOLDERS) -> None:
    """Put the folders first on sys.path, in their order; ImportError when two files of one name differ."""
    namesakes = differing_namesakes(folders)
    if namesakes:
        raise ImportError("a module name must mean one file, since one sys.path serves the organizer code; these "
                          f"differ: {'; '.join(namesakes)} (copy the owner over its copy: CONTRIBUTING.md)")
    sys.path[:0] = [str(folder) for folder in folders if str(folder) not in sys.path]


make_importable()
