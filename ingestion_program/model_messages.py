"""The one gate of the answer channel: every message from the model's process is checked here before anything reads it.

The model's process holds its end of the channel, so a message may be anything. It is read only when it is at most
MAX_MESSAGE_BYTES (the caller's receive enforces it), UTF-8 JSON with no NaN, Infinity or over-long number, and has
exactly the shape of one of the messages below, with bounded integers and capped, cleaned texts; anything else is a
ProtocolError, which ends the run with a named failure. Fixed shapes bound the nesting too: JSON nested deeper than
Python's parser allows is refused like any other bad JSON. Answers are checked again whatever the model's process
claims: a probability vector must be 13 finite numbers >= 0 with a positive sum, and the label is its argmax.
  {"loaded": {"mode": "predict" | "predict_batch", "warnings": [text], "device": text, "torch_version": text | null}}
  {"failed": {"error": text, "traceback": text | null}}
  {"items": [[index, label | null, 13 probabilities | null, error text | null], ...]}
  {"done": {"warnings": [text], "fallbacks": 0 or 1}}
  {"fatal": text}
"""
import json
from dataclasses import dataclass

import numpy as np

from challenge_labels import CLASSES
from run_report import TEXT_CAP, TRACEBACK_CAP, WARNINGS_SHOWN, clean_text

MAX_MESSAGE_BYTES = 16 * 2**20
MAX_DIGITS = 18  # longer integers and numbers are refused before Python converts them
SHORT_TEXT = 200  # characters of a device name or a version
CLASS_INDEX = {label: i for i, label in enumerate(CLASSES)}
NOT_JSON = "not UTF-8 JSON"


class ProtocolError(ValueError):
    """A message that is not one the model's runner sends; the text names what is wrong with it."""


@dataclass(frozen=True)
class Loaded:
    mode: str
    warnings: list[str]
    device: str
    torch_version: str | None


@dataclass(frozen=True)
class LoadFailed:
    message: str
    traceback: str | None


@dataclass(frozen=True)
class Answer:
    """One image's answer: a label (with its probabilities, normalised, or None) or an error text."""
    index: int
    label: str | None
    probs: np.ndarray | None
    error: str | None


@dataclass(frozen=True)
class BatchDone:
    warnings: list[str]
    fallbacks: int


@dataclass(frozen=True)
class Fatal:
    message: str


def read_message(raw: bytes, expected: tuple[str, ...], batch_images: int = 0):
    """The checked message for raw bytes: Loaded, LoadFailed, list[Answer], BatchDone or Fatal.

    expected: the message kinds allowed now ("loaded", "failed", "items", "done"; "fatal" is always allowed);
    batch_images: how many images the pending request holds (an answer's index must be below it).
    """
    message = _parse(raw)
    if not isinstance(message, dict) or len(message) != 1:
        raise ProtocolError("a message must be a JSON object with one key")
    [(kind, value)] = message.items()
    if kind != "fatal" and kind not in expected:
        raise ProtocolError(f"a {_shown(kind)} message where the ingestion expected {' or '.join(expected)}")
    if kind == "loaded":
        fields = _object(value, "loaded", ("mode", "warnings", "device", "torch_version"))
        if fields["mode"] not in ("predict", "predict_batch"):
            raise ProtocolError(f"loaded.mode is {_shown(fields['mode'])}; expected 'predict' or 'predict_batch'")
        return Loaded(fields["mode"], _texts(fields["warnings"], "loaded.warnings"),
                      _text(fields["device"], "loaded.device", SHORT_TEXT),
                      _text(fields["torch_version"], "loaded.torch_version", SHORT_TEXT, optional=True))
    if kind == "failed":
        fields = _object(value, "failed", ("error", "traceback"))
        return LoadFailed(_text(fields["error"], "failed.error"),
                          _text(fields["traceback"], "failed.traceback", TRACEBACK_CAP, optional=True, lines=True))
    if kind == "items":
        if not isinstance(value, list) or not 1 <= len(value) <= batch_images:
            raise ProtocolError(f"items must be a list of 1 to {batch_images} answers")
        return [_answer(item, batch_images) for item in value]
    if kind == "done":
        fields = _object(value, "done", ("warnings", "fallbacks"))
        return BatchDone(_texts(fields["warnings"], "done.warnings"), _count(fields["fallbacks"], "done.fallbacks", 1))
    return Fatal(_text(value, "fatal"))


def _parse(raw: bytes) -> object:
    try:
        return json.loads(raw.decode("utf-8"), parse_constant=_refuse_constant, parse_int=_integer,
                          parse_float=_finite)
    except _Refused as error:
        raise ProtocolError(str(error)) from None
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise ProtocolError(NOT_JSON) from None


class _Refused(ValueError):
    """A JSON value the protocol never holds (its message is the ProtocolError's)."""


def _refuse_constant(name: str) -> None:
    raise _Refused(f"{name} in a message (the protocol holds finite numbers only)")


def _integer(text: str) -> int:
    if len(text.lstrip("-")) > MAX_DIGITS:
        raise _Refused(f"an integer of {len(text):,} digits in a message")
    return int(text)


def _finite(text: str) -> float:
    value = float(text) if len(text) <= 4 * MAX_DIGITS else float("inf")
    if not np.isfinite(value):
        raise _Refused(f"the number {text[:40]} in a message (the protocol holds finite numbers only)")
    return value


def _shown(value: object) -> str:
    """A short, clean rendering of a value for an error message."""
    return clean_text(repr(value), 60)


def _object(value: object, where: str, names: tuple[str, ...]) -> dict:
    if not isinstance(value, dict) or set(value) != set(names):
        found = sorted(map(str, value)) if isinstance(value, dict) else type(value).__name__
        raise ProtocolError(f"{where} must be an object with the fields {', '.join(names)}; found {_shown(found)}")
    return value


def _text(value: object, where: str, cap: int = TEXT_CAP, optional: bool = False, lines: bool = False) -> str | None:
    if value is None and optional:
        return None
    if not isinstance(value, str):
        raise ProtocolError(f"{where} must be text{' or null' if optional else ''}; found a {type(value).__name__}")
    return clean_text(value, cap, keep_newlines=lines)


def _texts(value: object, where: str) -> list[str]:
    if not isinstance(value, list) or len(value) > WARNINGS_SHOWN:
        raise ProtocolError(f"{where} must be a list of at most {WARNINGS_SHOWN} texts")
    return [_text(item, where) for item in value]


def _count(value: object, where: str, most: int) -> int:
    if type(value) is not int or not 0 <= value <= most:  # noqa: E721 (bool is an int subclass: refused)
        raise ProtocolError(f"{where} must be an integer from 0 to {most}; found {_shown(value)}")
    return value


def _answer(item: object, batch_images: int) -> Answer:
    """[index, label, probabilities, error]: exactly one of label and error; probabilities only with a label, which
    is then recomputed from them."""
    if not isinstance(item, list) or len(item) != 4:
        raise ProtocolError("an answer must be a list [index, label, probabilities, error]")
    index, label, probs, error = item
    index = _count(index, "an answer's index", batch_images - 1)
    if error is not None:
        if label is not None or probs is not None:
            raise ProtocolError("an answer with an error must have no label and no probabilities")
        return Answer(index, None, None, _text(error, "an answer's error"))
    if not isinstance(label, str) or label not in CLASS_INDEX:  # a list or an object is unhashable: no TypeError
        raise ProtocolError(f"an answer's label is {_shown(label)}; expected one of {', '.join(CLASSES)}")
    if probs is None:
        return Answer(index, label, None, None)
    if (not isinstance(probs, list) or len(probs) != len(CLASSES)
            or not all(type(p) in (int, float) for p in probs)):  # noqa: E721 (no bool)
        raise ProtocolError(f"an answer's probabilities must be a list of {len(CLASSES)} numbers")
    values = np.array(probs, dtype=np.float64)
    total = values.sum()
    if (values < 0).any() or not (np.isfinite(total) and total > 0):
        raise ProtocolError("an answer's probabilities must be numbers >= 0 with a positive, finite sum")
    values /= total
    return Answer(index, CLASSES[int(np.argmax(values))], values, None)
