"""Trained members kept by everything that decides their weights, so a member two runs share is trained once.

`make baseline-zips` trains the efficientnet_lite0 baseline, then the ensemble, whose first member is that very
network (recipe_settings.py: the same member, the same seed). Each member a run trains is stored under
<runs dir>/members/<key>/; a later run that would train the same member with the same settings on the same data with
the same code, libraries and thread count takes the stored weights instead (train_baseline.py --retrain trains
anyway). A seed repeats a network only at the same thread count, hence the threads in the key.

What is not stored: members of a torchrun (DDP) run, and members whose ImageNet weights would come from the hub under
--pretrained auto (whether the hub answers decides their start, and it may answer one run and not the next).
"""
import dataclasses
import hashlib
import json
import platform
import shutil
import sys
import tempfile
from pathlib import Path

import pandas as pd
import torch
from safetensors.torch import load_file, save_file

from init_checkpoint import sha256
from project_folders import FOLDERS
from recipe_settings import Member, Profile
from run_options import RunOptions
from training_loop import local_start

FILES = ("weights.safetensors", "history.json", "initialisation.json")
RUN_FILES = ("history.json", "training_curve.png")  # what the member's run folder gets from the store


def storable(member: Member, options: RunOptions, world: int) -> bool:
    """Whether the member's training is decided by what the key holds (see the module's docstring)."""
    from_file = local_start(member, options.pretrained, options.init) is not None
    return world == 1 and (from_file or options.pretrained != "auto")


def member_key(member: Member, profile: Profile, options: RunOptions, train_rows: pd.DataFrame,
               validation_rows: tuple[pd.DataFrame, pd.DataFrame], device: torch.device) -> str:
    """A SHA-256 over everything that decides the member's kept weights: its settings and start, the profile, the
    run's options, the training and validation rows (image bytes included), the organizer code, the libraries and
    the thread count."""
    start = local_start(member, options.pretrained, options.init)
    settings = {field.name: getattr(member, field.name) for field in dataclasses.fields(member) if field.name != "init"}
    record = {
        "member": settings, "start": sha256(start) if start else None, "profile": dataclasses.asdict(profile),
        "options": {name: getattr(options, name) for name in ("curriculum", "pretrained", "seed", "epochs",
                                                              "limit_train", "limit_eval", "max_steps", "keep_epoch")},
        "workers": profile.workers if options.workers is None else options.workers,
        "threads": torch.get_num_threads(), "device": device.type,
        "libraries": {"python": platform.python_version(), "torch": torch.__version__,
                      **{name: getattr(sys.modules.get(name), "__version__", None)
                         for name in ("timm", "numpy", "PIL", "safetensors")}},
    }
    digest = hashlib.sha256(json.dumps(record, sort_keys=True, default=str).encode())
    for rows in (train_rows, *validation_rows):
        digest.update(rows_digest(rows))
    for path in sorted(path for folder in FOLDERS for path in folder.glob("*.py")):
        digest.update(path.name.encode() + path.read_bytes())
    return digest.hexdigest()


def rows_digest(rows: pd.DataFrame) -> bytes:
    """The rows' columns and values in order, image bytes included."""
    digest = hashlib.sha256(json.dumps(list(rows.columns)).encode())
    for row in rows.itertuples(index=False):
        for value in row:
            digest.update(value if isinstance(value, bytes) else repr(value).encode())
            digest.update(b"\0")
    return digest.digest()


def load(store: Path, key: str, run_dir: Path) -> tuple[dict, list[dict], dict] | None:
    """(kept state dict, history, initialisation) of the stored member, its history and curve copied to run_dir;
    None when nothing is stored under the key."""
    entry = store / key
    if not all((entry / name).is_file() for name in FILES):
        return None
    run_dir.mkdir(parents=True, exist_ok=True)
    for name in RUN_FILES:
        if (entry / name).is_file():
            shutil.copyfile(entry / name, run_dir / name)
    return (load_file(entry / "weights.safetensors"), json.loads((entry / "history.json").read_text()),
            json.loads((entry / "initialisation.json").read_text()))


def save(store: Path, key: str, state: dict, history: list[dict], initialisation: dict, run_dir: Path) -> Path:
    """Store a trained member under its key (written beside, then renamed: an interrupted run stores nothing)."""
    store.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=store, prefix=".incoming-"))
    save_file(state, staging / "weights.safetensors")
    (staging / "history.json").write_text(json.dumps(history, indent=1))
    (staging / "initialisation.json").write_text(json.dumps(initialisation, indent=1))
    if (run_dir / "training_curve.png").is_file():
        shutil.copyfile(run_dir / "training_curve.png", staging / "training_curve.png")
    shutil.rmtree(store / key, ignore_errors=True)
    staging.rename(store / key)
    return store / key
