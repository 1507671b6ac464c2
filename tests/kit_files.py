"""Test helper: a folder's own script (train.py, augment.py) imported by path under a fresh module name.

A submission's model.py is imported with the ingestion program's loader (submission_loader.import_model_module);
this is for the other files of a kit, which the ingestion program never imports.
"""
import importlib.util
import itertools
from pathlib import Path
from types import ModuleType

_loaded = itertools.count()


def load_module(path: Path) -> ModuleType:
    """The file at `path` as a new module (a fresh name each call, so two copies of a kit never share one)."""
    path = Path(path)
    spec = importlib.util.spec_from_file_location(f"{path.parent.name}_{path.stem}_{next(_loaded)}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
