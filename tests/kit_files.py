"""Test helper: a folder's own script (train.py, augment.py) imported by path under a fresh module name.

A submission's model.py is imported with the ingestion program's loader (submission_loader.import_model_module);
this is for the other files of a kit, which the ingestion program never imports.
"""
import importlib.util
import itertools
import shutil
import sys
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[1]
_loaded = itertools.count()


def load_module(path: Path) -> ModuleType:
    """The file at `path` as a new module (a fresh name each call, so two copies of a kit never share one)."""
    path = Path(path)
    spec = importlib.util.spec_from_file_location(f"{path.parent.name}_{path.stem}_{next(_loaded)}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def trained_starting_kit_copy(release: Path, folder: Path) -> Path:
    """A copy of starting_kit/ at `folder`, trained on the release's phase2_train by its own train.py (seed 0)."""
    shutil.copytree(REPO / "starting_kit", folder, ignore=shutil.ignore_patterns("*.joblib", "__pycache__"))
    sys.path.insert(0, str(folder))  # train.py imports its kit's model.py by name
    try:
        load_module(folder / "train.py").train(release, folder / "classifier.joblib", seed=0)
    finally:
        sys.path.remove(str(folder))
    return folder
