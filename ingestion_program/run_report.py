"""The run report (run_report.json) as one typed record: what the ingestion supervisor writes, field by field.

Field names are a contract (the scorer, the pages, participants' own scripts read them): fields may be added,
never renamed. scoring_program/run_report.py is a byte-for-byte copy (each program folder is self-contained;
tests/test_ingestion_units.py compares them). Every field but `status` has a default, so a report written by an
older version, or by hand in a test, still reads. The report owns the speed formula (throughput), the
caps on its lists (errors_shown, WARNINGS_SHOWN) and on its texts (TEXT_CAP, clean_text), so the supervisor and
the scorer never spell them twice.
"""
import re
from dataclasses import asdict, dataclass, field, fields

ERRORS_SHOWN = 100
WARNINGS_SHOWN = 20
OUTPUT_FILES_SHOWN = 50  # unexpected_output_files
TEXT_CAP = 2_000  # characters of any one text of the report (a reason, an error, a warning, a path, ...)
TRACEBACK_CAP = 8_000  # characters of the participant's traceback tail
# Terminal escape sequences (CSI, OSC, DCS and the like) are removed whole, so no parameter is left behind; then
# every other control character and the invisible Unicode formatting ones (bidirectional overrides, zero widths).
ESCAPE_SEQUENCES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]?|\x1b[\]PX^_][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b.?"
                              r"|\x9b[0-?]*[ -/]*[@-~]?")
INVISIBLE = "\u200b-\u200f\u2028-\u202e\u2060-\u206f\ufeff\ufff9-\ufffb"
LINE_BREAKS = re.compile("[\t\n\r\x0b\x0c]+")
CONTROLS = re.compile(f"[\x00-\x1f\x7f-\x9f{INVISIBLE}]")
CONTROLS_BUT_NEWLINE = re.compile(f"[\x00-\x09\x0b-\x1f\x7f-\x9f{INVISIBLE}]")
# A lone surrogate (a file name Python decoded with surrogateescape, say) cannot be written as UTF-8: it would stop
# whoever writes the text to a page or a console; it becomes U+FFFD, the replacement character.
SURROGATES = re.compile("[\ud800-\udfff]")


def clean_text(text: str, cap: int = TEXT_CAP, keep_newlines: bool = False) -> str:
    """`text` fit for a console and a web page: escape sequences and control characters removed (line breaks become
    spaces unless keep_newlines), lone surrogates replaced, at most `cap` characters kept, then a note saying it was
    cut."""
    head = text[:2 * cap]  # cleaning only shortens a text: nothing past this can be kept
    if keep_newlines:
        head = CONTROLS_BUT_NEWLINE.sub("", ESCAPE_SEQUENCES.sub("", head.replace("\r\n", "\n").replace("\t", " ")))
    else:
        head = CONTROLS.sub("", LINE_BREAKS.sub(" ", ESCAPE_SEQUENCES.sub("", head)))
    head = SURROGATES.sub("\ufffd", head)
    if len(text) > 2 * cap or len(head) > cap:
        head = f"{head[:cap]} [... cut: more than {cap:,} characters]"
    return head


def _cleaned(value: object, cap: int, keep_newlines: bool = False) -> object:
    """Every text inside value (dict keys and values, list items) through clean_text."""
    if isinstance(value, str):
        return clean_text(value, cap, keep_newlines)
    if isinstance(value, list):
        return [_cleaned(item, cap) for item in value]
    if isinstance(value, dict):
        return {_cleaned(key, cap): _cleaned(item, cap) for key, item in value.items()}
    return value


def throughput(images: int, seconds: float) -> float:
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
    device: str = "cpu"  # as the model's process reported it (torch_version too): its claim, not a measurement
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

    def __post_init__(self) -> None:
        """Whoever builds the record (the supervisor, or the scorer from a file), its texts are clean and capped and
        its lists cut at their caps: nothing that reaches a console or a page carries control sequences or megabytes."""
        for item in fields(self):
            traceback = item.name == "traceback"
            value = _cleaned(getattr(self, item.name), TRACEBACK_CAP if traceback else TEXT_CAP, traceback)
            object.__setattr__(self, item.name, value)
        for name, cap in (("errors", ERRORS_SHOWN), ("warnings", WARNINGS_SHOWN),
                          ("unexpected_output_files", OUTPUT_FILES_SHOWN)):
            if isinstance(getattr(self, name), list):
                object.__setattr__(self, name, getattr(self, name)[:cap])

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
