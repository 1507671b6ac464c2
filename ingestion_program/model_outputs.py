"""Turns whatever a submission's predict returns into a checked (label, probabilities) pair."""
import numpy as np

CLASSES = ("BA", "BL", "BNE", "EO", "LY", "MMY", "MO", "MY", "PC", "PLY", "PMY", "SNE", "VLY")
CLASS_INDEX = {label: i for i, label in enumerate(CLASSES)}
EXPECTED = "a label, a {label: probability} dict or 13 probabilities in CLASSES order"


class PredictionError(ValueError):
    """One prediction is unusable; the message says what was returned and what was expected."""


def normalise(output):
    """Return (label, probabilities or None); probabilities are float64, sum to 1, label is their argmax.

    Ties in the argmax go to the first class in CLASSES order, so the label is deterministic.
    """
    if isinstance(output, str):
        if output in CLASS_INDEX:
            return output, None
        raise PredictionError(f"unknown label {output!r} (expected one of {', '.join(CLASSES)})")
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
    total = probs.sum()
    if total <= 0:
        raise PredictionError("probabilities that sum to 0")
    probs = probs / total
    return CLASSES[int(np.argmax(probs))], probs


def _from_dict(output):
    unknown = sorted(str(k) for k in output if k not in CLASS_INDEX)
    if unknown:
        raise PredictionError(f"a probability dict with unknown labels {', '.join(map(repr, unknown))} "
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
        raise PredictionError(f"a {type(output).__name__} that is not numbers ({exc}); expected {EXPECTED}") from None
    if probs.ndim == 0:
        raise PredictionError(f"a single {type(output).__name__} value (expected {EXPECTED})")
    if probs.shape not in ((len(CLASSES),), (1, len(CLASSES))):
        shape = probs.shape[0] if probs.ndim == 1 else "x".join(map(str, probs.shape))
        raise PredictionError(f"{shape} values (expected {EXPECTED})")
    return probs.reshape(-1)
