"""Turns whatever a submission's predict returns into a checked (label, probabilities) pair.

Only what the contract (pages/starting_kit.md) names is read, and only as it says: a label is a str that is exactly a
class code; a probability is a real number (int, float, NumPy's, Fraction, Decimal), never text, a bool or a complex
number; 13 values are read by position, so a container whose labels say otherwise (a pandas Series or DataFrame not
labelled 0..12 or in CLASSES order) is refused rather than read out of order, and so is a masked array with masked
entries. Anything else is a PredictionError naming what was found, so a mistake costs an error, never a wrong class.
"""
import numbers
import sys
from collections import Counter
from collections.abc import Mapping
from decimal import Decimal

import numpy as np

from challenge_labels import CLASSES
CLASS_INDEX = {label: i for i, label in enumerate(CLASSES)}
EXPECTED = "a label, a {label: probability} dict or 13 probabilities in CLASSES order"
NUMBER_KINDS = "fiu"  # NumPy dtype kinds read as numbers: float, signed and unsigned int
SHOWN_CHARACTERS, SHOWN_LABELS = 60, 3  # of a returned text, and how many unknown labels, an error message quotes


class PredictionError(ValueError):
    """One prediction is unusable; the message says what was returned and what was expected."""


def checked_answer(output: object) -> tuple[str, np.ndarray | None]:
    """Return (label, probabilities or None); probabilities are float64, sum to 1, label is their argmax.

    Ties in the argmax go to the first class in CLASSES order, so the label is deterministic. Runs in the model's
    process (precise messages for the participant); the supervisor checks again what comes back (model_messages.py).
    """
    if isinstance(output, str):
        return _label(str.__str__(output)), None
    if isinstance(output, (bytes, bytearray)):
        raise PredictionError(f"a {type(output).__name__} value {_shown(output)} (a label is a str, e.g. 'SNE', not "
                              "bytes)")
    if output is None:
        raise PredictionError(f"None (expected {EXPECTED})")
    probs = _from_mapping(output) if isinstance(output, Mapping) else _from_sequence(output)
    if not np.isfinite(probs).all():
        raise PredictionError("probabilities containing NaN or infinity")
    if (probs < 0).any():
        i = int(np.argmin(probs))
        raise PredictionError(f"a negative probability {probs[i]:g} for {CLASSES[i]} "
                              "(return probabilities, e.g. a softmax, not logits)")
    with np.errstate(over="ignore"):
        total = probs.sum()
    if not np.isfinite(total):
        raise PredictionError(f"probabilities whose sum is not a finite number (largest {probs.max():g}); "
                              "return probabilities, e.g. a softmax")
    if total <= 0:
        raise PredictionError("probabilities that sum to 0")
    probs = probs / total
    return CLASSES[int(np.argmax(probs))], probs


def _label(text: str) -> str:
    """The class code text is; anything else, 'sne' or ' SNE' included, is refused with the code it resembles."""
    if text in CLASS_INDEX:
        return text
    raise PredictionError(f"unknown label {_shown(text)}{_case_hint(text)} (expected one of {', '.join(CLASSES)})")


def _case_hint(label: object) -> str:
    """'; labels are case-sensitive: did you mean 'SNE'?' when the label differs from a class only in case (or in
    spaces around it, which a label never has)."""
    if not isinstance(label, str) or len(label) > SHOWN_CHARACTERS:
        return ""
    stripped = label.strip()
    matches = [c for c in CLASSES if stripped.upper() == c]
    if not matches:
        return ""
    rules = (("are case-sensitive", stripped != matches[0]), ("have no spaces around them", stripped != label))
    return f"; labels {' and '.join(text for text, broken in rules if broken)}: did you mean {matches[0]!r}?"


def _shown(value: object) -> str:
    """repr(value), cut for an error message: a label of a million characters is quoted by its start and length."""
    if isinstance(value, (str, bytes, bytearray)) and len(value) > SHOWN_CHARACTERS:
        return f"{value[:SHOWN_CHARACTERS]!r}... ({len(value):,} characters)"
    text = repr(value.item() if isinstance(value, np.generic) else value)  # 'False', not NumPy's 'np.False_'
    return text if len(text) <= SHOWN_CHARACTERS else text[:SHOWN_CHARACTERS] + "..."


def describe_type(value: object) -> str:
    """The type as the starting kit page names it: 'int', or 'int (numpy.int64)' for a NumPy scalar."""
    if isinstance(value, np.generic):
        kind = ("bool" if isinstance(value, np.bool_) else "int" if isinstance(value, np.integer)
                else "float" if isinstance(value, np.floating) else type(value.item()).__name__)
        return f"{kind} (numpy.{type(value).__name__})"
    return type(value).__name__


def _number(value: object, label: str) -> float:
    """One probability as a float. Text ('0.5') is refused, not parsed, and so are bools and complex numbers: each is
    a different answer than the model meant, which float() would silently accept (or half-accept)."""
    if (getattr(value, "ndim", None) == 0 and hasattr(value, "item")
            and not isinstance(value, np.generic) and not np.ma.isMaskedArray(value)):
        value = value.item()  # a 0-d tensor or array (list(tensor) gives them): its number
    if isinstance(value, (bool, np.bool_)):
        hint = ", not True or False"
    elif isinstance(value, (str, bytes, np.str_, np.bytes_)):
        hint = ", not text"
    elif isinstance(value, (numbers.Real, Decimal)):
        try:
            return float(value)
        except OverflowError:  # an int or a Fraction beyond the float range: refused below as infinity
            return float("inf")
    else:
        hint = ", not a complex number" if isinstance(value, numbers.Complex) else ""
    raise PredictionError(f"a {describe_type(value)} {_shown(value)} as the probability of {label} (expected a real "
                          f"number, e.g. a float{hint})")


def _from_mapping(output: Mapping) -> np.ndarray:
    """{label: probability}, missing labels 0. The items are read once, so a Mapping that repeats a label (or whose
    keys and items disagree) is refused, not resolved by whichever item comes last."""
    try:
        items = list(output.items())
    except (TypeError, ValueError) as exc:
        raise PredictionError(f"a {type(output).__name__} whose items cannot be read ({exc})") from None
    unknown = [key for key, _ in items if not isinstance(key, str) or key not in CLASS_INDEX]
    if unknown:
        shown = ", ".join(map(_shown, unknown[:SHOWN_LABELS])) + (
            f" and {len(unknown) - SHOWN_LABELS:,} more" if len(unknown) > SHOWN_LABELS else "")
        raise PredictionError(f"a probability dict with unknown labels {shown}{_case_hint(unknown[0])} "
                              f"(expected labels among {', '.join(CLASSES)})")
    labels = [str.__str__(key) for key, _ in items]
    [(label, times)] = Counter(labels).most_common(1) or [("", 0)]
    if times > 1:
        raise PredictionError(f"a {type(output).__name__} that gives the label {label!r} {times:,} times (expected "
                              "each label at most once)")
    probs = np.zeros(len(CLASSES))
    for label, (_, value) in zip(labels, items):
        probs[CLASS_INDEX[label]] = _number(value, label)
    return probs


def _from_sequence(output: object) -> np.ndarray:
    """13 values (or 1 x 13) in CLASSES order, read by position once each is known to be a real number."""
    plain = _plain(output)
    if isinstance(plain, (list, tuple)) and len(plain) <= len(CLASSES):  # [tensor], [masked array]: the 1 x 13 form
        plain = [_plain(item) for item in plain]
    try:
        values = np.asarray(plain, dtype=object if isinstance(plain, list) else None)
    except (TypeError, ValueError) as exc:  # lists of different lengths, an object refusing conversion
        raise PredictionError(f"a {describe_type(output)} that is not 13 numbers ({exc}); expected {EXPECTED}"
                              ) from None
    if values.ndim == 0:
        raise _single_value(output, values)
    if values.shape not in ((len(CLASSES),), (1, len(CLASSES))):
        shape = values.shape[0] if values.ndim == 1 else "x".join(map(str, values.shape))
        raise PredictionError(f"{shape} values (expected {EXPECTED})")
    values = values.reshape(-1)
    if values.dtype.kind in NUMBER_KINDS:
        return values.astype(np.float64)
    if values.dtype.kind != "O":  # one dtype for all: the first value names it (text, bools, complex, dates)
        _number(values[0], CLASSES[0])
    return np.array([_number(value, label) for value, label in zip(values, CLASSES)], dtype=np.float64)


def _single_value(output: object, values: np.ndarray) -> PredictionError:
    """'a single int value' for a class index; 'a single float (0-d numpy.ndarray) value' for a 0-d array or tensor."""
    if values.dtype == object and not isinstance(values.item(), (numbers.Number, Decimal)):
        return PredictionError(f"a {describe_type(output)} (expected {EXPECTED})")
    if getattr(output, "ndim", None) == 0 and not isinstance(output, np.generic):
        container = "numpy.ndarray" if isinstance(output, np.ndarray) else type(output).__name__
        return PredictionError(f"a single {describe_type(values.item())} (0-d {container}) value (expected {EXPECTED})")
    return PredictionError(f"a single {describe_type(output)} value (expected {EXPECTED})")


def _plain(output: object) -> object:
    """output with nothing that reading it by position would lose: a torch tensor as a NumPy array (bools and
    complex numbers kept, to be refused by name), a masked array only without masked entries, a pandas object only
    when labelled by position or in CLASSES order."""
    if hasattr(output, "detach"):  # a torch tensor, possibly on the GPU or in half precision
        tensor = output.detach().cpu()
        return (tensor.double() if tensor.dtype.is_floating_point else tensor).numpy()
    if np.ma.isMaskedArray(output):
        masked = int(np.ma.getmaskarray(output).sum())
        if masked:
            raise PredictionError(f"a masked array with {masked} masked value(s) (a masked entry has no value: fill "
                                  "it, e.g. with .filled(0.0), or return a plain array)")
        return np.ma.getdata(output)
    pandas = sys.modules.get("pandas")  # imported by the submission if it returns a pandas object
    if pandas is not None and isinstance(output, (pandas.Series, pandas.DataFrame)):
        what, labels = (("a pandas Series", output.index) if isinstance(output, pandas.Series)
                        else ("a pandas DataFrame", output.columns))
        if list(labels) not in (list(range(len(labels))), list(CLASSES)):
            shown = ", ".join(map(_shown, list(labels)[:SHOWN_LABELS])) + (", ..." if len(labels) > SHOWN_LABELS
                                                                            else "")
            raise PredictionError(f"{what} labelled {shown}, not 0..12 or CLASSES in "
                                  "order: its values are read by position, so they would be given to other classes; "
                                  "return a {label: probability} dict (.to_dict()) or the values in CLASSES order")
        return output.to_numpy()
    return output
