"""What one training run of a baseline trains on and how: the command line's options, typed once."""
from dataclasses import dataclass
from pathlib import Path

from recipe_settings import DEFAULT_PROFILES

BASELINES_DIR = Path(__file__).resolve().parent


@dataclass
class RunOptions:
    """What a run trains on and how; tests shrink it (limits, steps, input size)."""

    release: Path
    baseline: str = "resnet50"
    profile: str | None = None  # None: the baseline's default (recipe_settings.DEFAULT_PROFILES)
    out: Path | None = None
    runs_dir: Path = BASELINES_DIR / "runs"
    curriculum: bool = True
    pretrained: str = "auto"  # auto | on | off
    init: Path | None = None  # local checkpoint for the member (overrides the member's default and the hub)
    seed: int = 0
    epochs: int | None = None
    input_size: int | None = None
    crop_fraction: float | None = None  # overrides every member's
    limit_train: int | None = None  # images per split, for tests and smoke runs
    limit_eval: int | None = None
    max_steps: int | None = None  # optimizer steps per epoch
    workers: int | None = None
    threads: int | None = None  # CPU threads (default: the profile's)
    evaluate: bool = True  # evaluate the finished submission through its model.py (with TTA)
    # Which epoch's weights are shipped: "best" by validation degraded macro-F1, or "last" when the validation
    # split is also the one the submission is scored on (the PBC measurements), so no choice is made on the test.
    keep_epoch: str = "best"
    reuse_members: bool = True  # take a member an identical earlier run stored (member_store.py) instead of training

    def __post_init__(self):
        self.profile = self.profile or DEFAULT_PROFILES[self.baseline]

    @property
    def run_name(self) -> str:
        """The run's folder under runs_dir (one per baseline, profile and curriculum setting)."""
        return f"{self.baseline}-{self.profile}-curriculum_{'on' if self.curriculum else 'off'}"

    @property
    def member_store(self) -> Path:
        """Where trained members are kept for reuse (member_store.py): shared by every run of one runs_dir."""
        return Path(self.runs_dir) / "members"

    @property
    def submission_folder(self) -> Path:
        """Where the submission is written: --out, else baselines/<baseline>/."""
        return Path(self.out or BASELINES_DIR / self.baseline)
