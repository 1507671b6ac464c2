"""A trained baseline's card.json: what its model.py needs to predict, then how it was made, enough to make it again.

The card is the one source the submission's model.py reads (classes, members, input size, normalisation, TTA), as
timm's pretrained_cfg travels with a model; the mean and std are timm's for the network (normalisation), the same
the training loop standardises with.
"""
import json
import subprocess
from pathlib import Path

import pandas as pd
import torch

import baseline_model
from recipe_settings import NOTES, Member, Profile
from run_options import RunOptions

REPO = Path(__file__).resolve().parents[1]


def normalisation(network: torch.nn.Module) -> dict:
    """The network's input mean and std as timm resolves them from its pretrained config."""
    import timm

    config = timm.data.resolve_model_data_config(network)
    return {"mean": [float(v) for v in config["mean"]], "std": [float(v) for v in config["std"]]}


def kept_record(history: list[dict], keep_epoch: str) -> dict:
    """The history record of the epoch whose weights are shipped (see RunOptions.keep_epoch)."""
    return history[-1] if keep_epoch == "last" else max(history, key=lambda record: record["degraded_macro_f1"])


def build_member_network(member: Member) -> torch.nn.Module:
    """The member's timm network, randomly initialised, as model.py builds it from the card."""
    return baseline_model.build_network({"architecture": member.architecture, "model_kwargs": member.model_kwargs})


def prediction_entry(member: Member, weights_name: str, network: torch.nn.Module) -> dict:
    """What model.py needs of one member: its network, weights file, input size, normalisation, resize and crop."""
    return {"architecture": member.architecture, "model_kwargs": member.model_kwargs, "weights": weights_name,
            "input_size": [3, member.input_size, member.input_size], **normalisation(network),
            "interpolation": "bicubic", "crop_fraction": member.crop_fraction}


def member_entry(member: Member, weights_name: str, history: list[dict], initialisation: dict, profile: Profile,
                 train_rows: pd.DataFrame, options: RunOptions) -> dict:
    """The card's description of one trained member: what model.py needs, then how it was made (with the
    curriculum off, its degradation probability is 0, as in every epoch's record)."""
    kept = kept_record(history, options.keep_epoch)
    return {
        **prediction_entry(member, weights_name, build_member_network(member)),
        "training": {**initialisation, "epochs": len(history), "kept_epoch": kept["epoch"],
                     "kept_by": options.keep_epoch,
                     "learning_rate": member.learning_rate, "batch_size": profile.batch_size,
                     "jitter": member.jitter, "balance_power": member.balance_power,
                     "severity_weights": list(member.severity_weights),
                     "degradation_probability": member.degradation_probability if options.curriculum else 0.0,
                     "seed": member.seed_for(options.seed), "train_images": len(train_rows), "validation": kept,
                     "history": history},
    }


def members_to_keep(card_members: list[dict], keep_within: float | None) -> tuple[list[dict], list[dict]]:
    """(kept, left out): members whose validation degraded macro-F1 is below keep_within x the best member's are
    left out, each with the reason, so an ensemble of briefly trained members is never pulled below its best one
    by members that did not learn. keep_within None keeps every member (equal weights)."""
    if keep_within is None or len(card_members) < 2:
        return card_members, []
    scores = [member["training"]["validation"]["degraded_macro_f1"] for member in card_members]
    bar = keep_within * max(scores)
    kept = [member for member, score in zip(card_members, scores) if score >= bar]
    left_out = [{"architecture": member["architecture"], "weights": member["weights"],
                 "validation_degraded_macro_f1": score,
                 "reason": f"validation degraded macro-F1 {score:.3f} < {keep_within} x the best member's "
                           f"{max(scores):.3f}: it did not learn enough to help the average"}
                for member, score in zip(card_members, scores) if score < bar]
    return kept, left_out


def git_commit() -> str:
    """The repository's commit (with '-dirty' for local changes), or 'unknown' outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout
        return commit + ("-dirty" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def recipe(options: RunOptions, degraded_source: str, world: int, device: torch.device) -> dict:
    """The card's record of how the baseline was trained: enough to make it again."""
    return {"profile": options.profile, "note": NOTES.get((options.baseline, options.profile), ""),
            "curriculum": options.curriculum, "seed": options.seed,
            "release": str(Path(options.release).resolve()), "train_split": "phase2_train",
            "validation_split": "phase2_eval", "validation_degraded": degraded_source,
            "limit_train": options.limit_train, "limit_eval": options.limit_eval,
            "max_steps": options.max_steps, "world_size": world, "device": str(device),
            "git_commit": git_commit(), "run_dir": str(Path(options.runs_dir) / options.run_name)}


def baseline_card(options: RunOptions, profile: Profile, members: list[dict], left_out: list[dict],
                  recipe_record: dict, training_seconds: float) -> dict:
    """The whole card of a trained baseline (its members already chosen by members_to_keep)."""
    return {"baseline": options.baseline, "classes": list(baseline_model.CLASSES), "tta": profile.tta,
            "members": members, "left_out": left_out, "make_command": f"make {options.baseline}",
            "recipe": recipe_record, "training_seconds": training_seconds}


def write_card(folder: Path, card: dict) -> None:
    (Path(folder) / baseline_model.CARD_NAME).write_text(json.dumps(card, indent=1))
