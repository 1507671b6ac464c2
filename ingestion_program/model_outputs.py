"""Turns whatever a submission's predict returns into a checked (label, probabilities) pair."""
import numpy as np

from challenge_labels import CLASSES
CLASS_INDEX = {label: i for i, label in enumerate(CLASSES)}
EXPECTED = "a label, a {label: probability} dict or 13 probabilities in CLASSES order"


class PredictionError(ValueError):
    """One prediction is unusable; the message says what was returned and what was expected."""


def checked_answer(output: object) -> tuple[str, np.ndarray | None]:
    """Return (label, probabilities or None); probabilities are float64, sum to 1, label is their argmax.

    Ties in the argmax go to the first class in CLASSES order, so the label is deterministic. Runs in the model's
    process (precise messages for the participant) and again in the supervisor on what comes back.
    """
    if isinstance(output, str):
        if output in CLASS_INDEX:
            return str(output), None
        raise PredictionError(f"unknown label {output!r}{_case_hint(output)} (expected one of {', '.join(CLASSES)})")
    if output is None:
        raise PredictionError(f"None (expected {EXPECTED})")
    if isinstance(output, dict):
        probs = _from_dict(output)
    else:
        probs = _from_sequence(output)
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


def _case_hint(label: object) -> str:
    """'; labels are case-sensitive: did you mean 'SNE'?' when the label differs from a class only in case."""
    matches = [c for c in CLASSES if str(label).strip().upper() == c]
    return f"; labels are case-sensitive: did you mean {matches[0]!r}?" if matches else ""


def describe_type(value: object) -> str:
    """The type as the starting kit page names it: 'int', or 'int (numpy.int64)' for a NumPy scalar."""
    if isinstance(value, np.generic):
        kind = ("bool" if isinstance(value, np.bool_) else "int" if isinstance(value, np.integer)
                else "float" if isinstance(value, np.floating) else type(value.item()).__name__)
        return f"{kind} (numpy.{type(value).__name__})"
    return type(value).__name__


def _from_dict(output):
    unknown = sorted(str(k) for k in output if k not in CLASS_INDEX)
    if unknown:
        hints = "".join(_case_hint(k) for k in unknown[:1])
        raise PredictionError(f"a probability dict with unknown labels {', '.join(map(repr, unknown))}{hints} "
                              f"(expected labels among {', '.join(CLASSES)})")
    probs = np.zeros(len(CLASSES))
    try:
        for label, value in output.items():
            probs[CLASS_INDEX[label]] = float(value)
    except (TypeError, ValueError) as exc:
        raise PredictionError(f"a probability dict with a non-numeric value ({exc})") from None
    return probs


def _from_sequence(output):
    if hasattr(output, "detach"):  # a torch tensor, possibly on the GPU or in half precision
        output = output.detach().cpu().double().numpy()
    try:
        probs = np.asarray(output, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise PredictionError(f"a {describe_type(output)} that is not numbers ({exc}); expected {EXPECTED}") from None
    if probs.ndim == 0:
        raise PredictionError(f"a single {describe_type(output)} value (expected {EXPECTED})")
    if probs.shape not in ((len(CLASSES),), (1, len(CLASSES))):
        shape = probs.shape[0] if probs.ndim == 1 else "x".join(map(str, probs.shape))
        raise PredictionError(f"{shape} values (expected {EXPECTED})")
    return probs.reshape(-1)
