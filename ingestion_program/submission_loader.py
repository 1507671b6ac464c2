"""Finds a submission's model.py, imports it by path, and builds a loaded Model, with a clear message on failure.

The zip and folder checks run in the ingestion supervisor; the import and the Model are built in the model's own
process (model_runner.py), which receives this module's source.
"""
import importlib.util
import sys
import traceback
import zipfile
from pathlib import Path

from requirements_check import missing_package_message

MODULE_NAME = "wbc_submission_model"
PROGRAM_DIR = Path(__file__).resolve().parent


class SubmissionNotRunnable(Exception):
    """The submission cannot be run; `traceback` holds the tail of the participant's traceback, if any."""

    def __init__(self, message: str, traceback_tail: str | None = None) -> None:
        super().__init__(message)
        self.traceback = traceback_tail


REQUIREMENTS_MAX_BYTES, REQUIREMENTS_MAX_LINES = 1_000_000, 1_000
DEFAULT_MAX_UNPACKED_MB = 4096  # WBC_MAX_UNPACKED_MB: the ingestion's option; the emulator uses this default
UTF8_FLAG = 0x800


def unpack_zip(zip_path: Path, into: Path, max_bytes: int = DEFAULT_MAX_UNPACKED_MB * 2**20) -> Path:
    """Local convenience: a submission given as a zip is checked (names, total size) and unpacked into `into`."""
    try:
        with zipfile.ZipFile(zip_path) as archive:
            _check_zip_members(zip_path, archive.infolist(), max_bytes)
            archive.extractall(into)  # zipfile drops absolute paths and '..' components
    except zipfile.BadZipFile as exc:
        raise SubmissionNotRunnable(f"the submission {zip_path} is not a valid zip file ({exc})") from None
    except UnicodeDecodeError:  # a name flagged UTF-8 that is not
        raise SubmissionNotRunnable(f"the submission zip {zip_path} has a file name that is not valid UTF-8; "
                              "rename the file or zip it again with a current zip tool") from None
    return Path(into)


def _check_zip_members(zip_path: Path, members: list[zipfile.ZipInfo], max_bytes: int) -> None:
    """Refuse names that are not UTF-8 and archives that unpack to more than max_bytes (a zip bomb)."""
    for info in members:
        if not info.flag_bits & UTF8_FLAG:  # zipfile read the name as cp437: its raw bytes must still be UTF-8
            try:
                info.orig_filename.encode("cp437").decode("utf-8")
            except UnicodeError:
                raise SubmissionNotRunnable(f"the submission zip {zip_path} has a file name that is not valid UTF-8 "
                                      f"({info.orig_filename!r}); rename the file or zip it again with a current "
                                      "zip tool") from None
    total = sum(info.file_size for info in members)
    if total > max_bytes:
        raise SubmissionNotRunnable(f"the submission zip {zip_path} unpacks to {total / 2**20:,.0f} MB, more than the "
                              f"{max_bytes / 2**20:,.0f} MB allowed (WBC_MAX_UNPACKED_MB)")


def check_requirements_size(path: Path) -> None:
    """Refuse a requirements.txt too large to be a list of packages."""
    size = path.stat().st_size
    lines = len(path.read_bytes().splitlines()) if size <= REQUIREMENTS_MAX_BYTES else None
    if size > REQUIREMENTS_MAX_BYTES or lines > REQUIREMENTS_MAX_LINES:
        raise SubmissionNotRunnable(f"requirements.txt is too large ({size:,} bytes"
                              + (f", {lines:,} lines" if lines else "")
                              + f"; at most {REQUIREMENTS_MAX_BYTES:,} bytes and {REQUIREMENTS_MAX_LINES:,} lines): "
                              "list only the packages model.py imports")


def find_model_dir(submission_dir: Path) -> tuple[Path, str | None]:
    """(folder holding model.py, note or None); one enclosing folder (a zipped folder) is accepted and noted."""
    submission_dir = Path(submission_dir)
    if not submission_dir.is_dir():
        raise SubmissionNotRunnable(f"submission folder not found: {submission_dir}")
    if (submission_dir / "model.py").is_file():
        return submission_dir, None
    below = [d for d in sorted(submission_dir.iterdir())
             if d.is_dir() and d.name != "__MACOSX" and not d.name.startswith(".") and (d / "model.py").is_file()]
    if len(below) == 1:
        return below[0], (f"model.py found one level down, in {below[0].name}/ (the zip has an enclosing folder); "
                          "using that folder as the submission")
    if below:
        raise SubmissionNotRunnable("no model.py at the top of the submission, and several one level down ("
                              + ", ".join(f"{d.name}/model.py" for d in below)
                              + "); zip the files of one submission, without an enclosing folder")
    found = ", ".join(sorted(p.name + ("/" if p.is_dir() else "") for p in submission_dir.iterdir())[:10]) or "nothing"
    raise SubmissionNotRunnable(f"no model.py in the submission (looked at the top and one folder down; found: "
                                f"{found}); "
                          "put model.py at the top of your zip")


def import_model_module(model_path: Path, requirements: list[dict] = ()) -> object:
    """Import model.py by path under a private module name (its folder must already be on sys.path)."""
    spec = importlib.util.spec_from_file_location(MODULE_NAME, model_path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[MODULE_NAME] = module
    try:
        spec.loader.exec_module(module)
    except ModuleNotFoundError as exc:
        sys.modules.pop(MODULE_NAME, None)
        if exc.name is None or (Path(model_path).parent / exc.name.split(".")[0]).exists():
            raise _failure("importing model.py raised", exc) from None
        # no traceback: the message says it all
        raise SubmissionNotRunnable(missing_package_message(exc.name, requirements)) from None
    except MemoryError:
        raise
    except BaseException as exc:  # KeyboardInterrupt and SystemExit included
        sys.modules.pop(MODULE_NAME, None)
        raise _failure("importing model.py raised", exc) from None
    return module


def build_model(module: object) -> tuple[object, list[str]]:
    """Model() then load(); returns the instance and warnings (a missing load() is not fatal)."""
    model_class = getattr(module, "Model", None)
    if model_class is None:
        classes = sorted(name for name, value in vars(module).items() if isinstance(value, type)
                         and value.__module__ == MODULE_NAME)
        raise SubmissionNotRunnable("model.py defines no class named Model"
                              + (f" (classes found: {', '.join(classes)})" if classes else ""))
    if not callable(model_class):
        raise SubmissionNotRunnable(f"Model in model.py is a {type(model_class).__name__}, not a class")
    try:
        model = model_class()
    except MemoryError:
        raise
    except BaseException as exc:
        raise _failure("Model() raised", exc) from None
    if not callable(getattr(model, "predict", None)) and not callable(getattr(model, "predict_batch", None)):
        raise SubmissionNotRunnable("Model has neither predict(image) nor predict_batch(images)")
    warnings = []
    if callable(getattr(model, "load", None)):
        try:
            model.load()
        except MemoryError:
            raise
        except BaseException as exc:
            raise _failure("Model.load() raised", exc) from None
    else:
        warnings.append("Model has no load() method; nothing was loaded before predicting")
    return model, warnings


def describe_exception(exc: BaseException) -> str:
    """'ValueError: message (model.py:12)': the exception and the last frame in the submission's own code."""
    text = f"{type(exc).__name__}: {exc}".rstrip(": ")
    frames = [f for f in traceback.extract_tb(exc.__traceback__)
              if not f.filename.startswith("<frozen") and Path(f.filename).resolve().parent != PROGRAM_DIR]
    if frames:
        text += f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})"
    return text


def _failure(what, exc):
    return SubmissionNotRunnable(f"{what} {describe_exception(exc)}", _tail(exc))


def _tail(exc, lines=20):
    return "".join(traceback.format_exception(exc)[-lines:])
