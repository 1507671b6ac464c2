"""The run report (run_report.json) as one typed record: what the ingestion supervisor writes, field by field.

Field names are a contract (the scorer, the pages, participants' own scripts read them): fields may be added,
never renamed. scoring_program/run_report.py is a byte-for-byte copy (each program folder is self-contained;
tests/test_ingestion_units.py compares them). Every field but `status` has a default, so a report written by an
older version, or by hand in a test, still reads. The report owns the speed formula (images_per_second) and the
cap on its error list (errors_shown), so the supervisor and the scorer never spell either twice.
"""
from dataclasses import asdict, dataclass, field, fields

ERRORS_SHOWN = 100


def images_per_second(images: int, seconds: float) -> float:
    """Throughput, the one formula of the report and the scorer; 0.0 when no time was measured."""
    return images / seconds if seconds > 0 else 0.0


@dataclass(frozen=True)
class SetFigures:
    """One test set: its images, how many got a prediction or an error, and the supervisor's seconds on it."""
    images: int = 0
    predicted: int = 0
    errors: int = 0
    seconds: float = 0.0
    images_per_second: float = 0.0


@dataclass(frozen=True)
class RunReport:
    """Everything one ingestion run reports; `status` is "ok" or "failed" and `reason` says why it failed."""
    status: str
    reason: str | None = None
    submission: str | None = None
    sets: dict[str, SetFigures] = field(default_factory=dict)
    errors: list[dict] = field(default_factory=list)  # the first `errors_shown` per-image errors: set, image_id, error
    errors_total: int = 0
    errors_shown: int = ERRORS_SHOWN  # the cap on `errors`: a list this long may be cut, a shorter one is complete
    error_rate: float | None = None
    images_per_second: float = 0.0
    total_seconds: float = 0.0
    budget_seconds: float | None = None
    max_error_rate: float | None = None
    fail_fast_images: int | None = None
    batch_size: int | None = None
    workers: int | None = None
    memory_limit_mb: int | None = None
    seed: int | None = None
    phase: str | None = None  # the local run's phase (None on CodaBench)
    warnings: list[str] = field(default_factory=list)
    batch_fallbacks: int = 0
    unexpected_output_files: list[str] = field(default_factory=list)
    predictions_written: bool = False
    probabilities: bool | None = None  # whether predictions.csv has probability columns
    model_dir: str | None = None
    load_seconds: float | None = None
    prediction_mode: str | None = None
    device: str = "cpu"
    requirements: dict | None = None
    submission_log: dict | None = None
    traceback: str | None = None
    peak_memory_mb: float = 0.0  # the model's process
    peak_memory_supervisor_mb: float = 0.0
    python_version: str | None = None
    numpy_version: str | None = None
    pillow_version: str | None = None
    torch_version: str | None = None
    platform: str | None = None
    cpu_count: int | None = None

    @property
    def errors_complete(self) -> bool:
        """Whether `errors` lists every per-image error (shorter than its cap), not only the first ones."""
        return len(self.errors or []) < self.errors_shown

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "RunReport":
        """The record from run_report.json's dict; keys this version does not know are ignored."""
        known = {f.name for f in fields(cls)}
        set_keys = {f.name for f in fields(SetFigures)}
        values = {key: value for key, value in data.items() if key in known}
        values["sets"] = {name: SetFigures(**{k: v for k, v in figures.items() if k in set_keys})
                          for name, figures in (data.get("sets") or {}).items()}
        return cls(**values)
