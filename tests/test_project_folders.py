"""Organizer code reaches other folders through tools/project_folders.py alone; one module name means one file."""
import ast
import sys

import pytest

import project_folders
from conftest import REPO

ORGANIZER_FOLDERS = ("tools", "baselines", "bench")


def _modules(folder: str) -> set[str]:
    """The module names a folder defines (its links to project_folders.py aside)."""
    return {path.stem for path in (REPO / folder).glob("*.py") if not path.is_symlink()}


def test_every_organizer_module_imports_project_folders_before_another_folders_module():
    """What a module imports from another folder is reachable only once project_folders has run (Python puts only
    the running script's folder on sys.path), so that import comes first."""
    elsewhere = {folder: set().union(*(_modules(other) for other in ("ingestion_program", "scoring_program",
                                                                     *ORGANIZER_FOLDERS) if other != folder))
                 for folder in ORGANIZER_FOLDERS}
    late = []
    for folder in ORGANIZER_FOLDERS:
        for path in sorted((REPO / folder).glob("*.py")):
            if path.is_symlink():
                continue
            imports = sorted((node.lineno, alias.name.split(".")[0]) for node in ast.walk(ast.parse(path.read_text()))
                             if isinstance(node, ast.Import) for alias in node.names)
            imports += sorted((node.lineno, node.module.split(".")[0]) for node in ast.walk(ast.parse(path.read_text()))
                              if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module)
            first = min((line for line, name in imports if name == "project_folders"), default=None)
            late += [f"{folder}/{path.name}:{line} imports {name}" for line, name in sorted(imports)
                     if name in elsewhere[folder] - _modules(folder) and (first is None or line < first)]
    assert not late, f"imports from another folder before (or without) `import project_folders`: {late}"


def test_the_program_folders_share_only_identical_files():
    assert project_folders.differing_namesakes(project_folders.FOLDERS) == []
    shared = set.intersection(*(_modules(folder.name) for folder in project_folders.FOLDERS[:2]))
    assert shared == {"run_report"}  # the one copy, checked byte for byte above


def test_two_files_of_one_name_that_differ_are_refused(tmp_path, monkeypatch):
    first, second = tmp_path / "first", tmp_path / "second"
    for folder, text in ((first, "A = 1\n"), (second, "A = 2\n")):
        folder.mkdir()
        (folder / "shared_name.py").write_text(text)
    monkeypatch.setattr(sys, "path", list(sys.path))
    with pytest.raises(ImportError, match=f"shared_name.py: {first / 'shared_name.py'} and "
                                          f"{second / 'shared_name.py'}"):
        project_folders.make_importable((first, second))
    assert str(first) not in sys.path  # nothing is put on sys.path when refused
    (second / "shared_name.py").write_text("A = 1\n")
    project_folders.make_importable((first, second))
    assert sys.path[:2] == [str(first), str(second)]
