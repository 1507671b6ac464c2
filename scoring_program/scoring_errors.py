"""The scorer's error types: each carries one line a participant (or the organizer) can act on."""
from collections.abc import Iterable


class ScoringError(Exception):
    """Anything that makes scoring impossible; score.py prints `<kind>: <message>` and exits 1."""

    kind = "Scoring failed"


class SubmissionOutputError(ScoringError):
    """The submission's predictions or its ingestion run are unusable: the participant must fix them."""

    kind = "Submission error"


class ReferenceDataError(ScoringError):
    """The hidden reference data is malformed: an organizer problem, never the participant's."""

    kind = "Reference data error (organizer)"


def examples(values: Iterable, limit: int = 5) -> str:
    """The first few offending values, for messages that also give the total count."""
    values = list(values)
    shown = ", ".join(str(v) for v in values[:limit])
    return shown + (", ..." if len(values) > limit else "")
