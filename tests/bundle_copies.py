"""Test helper: a bundle folder made of the repository's files and prepared data from elsewhere."""
import shutil
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BUNDLE_FILES = ("competition.yaml", "logo.png")
BUNDLE_FOLDERS = ("ingestion_program", "scoring_program", "pages")


def copy_bundle(data_root, destination, starting_kit=None) -> Path:
    """destination gets the repo's yaml, logo, programs and pages, data_root's input_data/ and reference_data/."""
    destination = Path(destination)
    destination.mkdir(parents=True, exist_ok=True)
    for name in BUNDLE_FILES:
        if (REPO / name).exists():
            shutil.copy(REPO / name, destination / name)
    for name in BUNDLE_FOLDERS:
        if (REPO / name).exists():
            shutil.copytree(REPO / name, destination / name, ignore=shutil.ignore_patterns("__pycache__"))
    for name in ("input_data", "reference_data"):
        shutil.copytree(Path(data_root) / name, destination / name)
    if starting_kit is not None:
        shutil.copytree(starting_kit, destination / "starting_kit", ignore=shutil.ignore_patterns("__pycache__"))
    return destination
