"""Imports a submission's model.py by path and builds a loaded Model, with a clear message on failure.

It runs in the model's own process (model_runner.py, which receives this module's source): the supervisor never
imports it. The supervisor's checks of the submission's files are submission_files.py's.
"""
import importlib.util
import sys
import traceback
from pathlib import Path

from requirements_check import missing_package_message

MODULE_NAME = "wbc_submission_model"
PROGRAM_DIR = Path(__file__).resolve().parent


class LoadError(Exception):
    """model.py cannot be imported or its Model built; `traceback` holds the tail of the participant's traceback."""

    def __init__(self, message: str, traceback_tail: str | None = None) -> None:
        super().__init__(message)
        self.traceback = traceback_tail


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
        raise LoadError(missing_package_message(exc.name, requirements)) from None
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
        raise LoadError("model.py defines no class named Model"
                        + (f" (classes found: {', '.join(classes)})" if classes else ""))
    if not callable(model_class):
        raise LoadError(f"Model in model.py is a {type(model_class).__name__}, not a class")
    try:
        model = model_class()
    except MemoryError:
        raise
    except BaseException as exc:
        raise _failure("Model() raised", exc) from None
    if not callable(getattr(model, "predict", None)) and not callable(getattr(model, "predict_batch", None)):
        raise LoadError("Model has neither predict(image) nor predict_batch(images)")
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
    """'ValueError: message (model.py:12)': the exception and the last frame in the submission's own code. Never
    raises: the exception is the submission's, and its __str__ (or its class's __name__) may raise in turn."""
    try:
        text = f"{type(exc).__name__}: {exc}".rstrip(": ")
    except BaseException:
        return f"{object.__repr__(exc)}, whose message could not be read (its __str__ raised)"
    try:
        frames = [f for f in traceback.extract_tb(exc.__traceback__)
                  if not f.filename.startswith("<frozen") and Path(f.filename).resolve().parent != PROGRAM_DIR]
    except BaseException:
        return text
    if frames:
        text += f" ({Path(frames[-1].filename).name}:{frames[-1].lineno})"
    return text


def _failure(what, exc):
    return LoadError(f"{what} {describe_exception(exc)}", _tail(exc))


def _tail(exc, lines=20):
    try:
        return "".join(traceback.format_exception(exc)[-lines:])
    except BaseException:  # an exception class whose own attributes raise when read
        return f"(the traceback of {object.__repr__(exc)} could not be formatted)"
