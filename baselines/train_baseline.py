"""Train a WBCBench baseline (ResNet-50, EfficientNet-Lite0, or an ensemble); write its submission folder.

    python baselines/train_baseline.py RELEASE --baseline resnet50 --profile cpu-quick
    python baselines/train_baseline.py RELEASE --baseline efficientnet_lite0 --profile cpu-pretrained
    torchrun --nproc_per_node 4 baselines/train_baseline.py RELEASE --baseline ensemble --profile gpu

Each member network is trained on the release's phase2_train (pristine + degraded rows), validated every epoch on
phase2_eval (pristine and degraded, macro-F1 per severity), and its best epoch by degraded macro-F1 is kept. The
submission folder gets model.py (baselines/baseline_model.py), the members' weights and card.json; the run folder
(baselines/runs/<name>/) gets the per-epoch history and a training-curve PNG. The recipe's members and profiles
are recipe_settings.py's; the loop is training_loop.py's, the card baseline_card.py's; this file is the command
line and the order of the steps.
"""
import argparse
import dataclasses
import json
import sys
import time
from pathlib import Path

import pandas as pd
import torch
import torch.distributed as dist
from safetensors.torch import save_file

import project_folders  # noqa: F401  (the program folders, tools/ and baselines/ importable by name)
import baseline_model
import member_store
from baseline_card import baseline_card, member_entry, members_to_keep, recipe, write_card
from pack_baseline import install_submission_files
from recipe_settings import BASELINES, DEFAULT_PROFILES, PROFILES, Member, Profile, member_names
from run_options import BASELINES_DIR, RunOptions
from training_data import limit_rows, training_rows, validation_sets
from training_loop import distributed_setup, train_member
from validation import ValidationImages, evaluate_submission


def members_to_train(options: RunOptions) -> list[Member]:
    """The baseline's members for the profile, at --input-size when given; refuses what the options cannot mean."""
    if options.profile not in BASELINES[options.baseline]:
        raise ValueError(f"baseline {options.baseline} has no profile {options.profile}; it has "
                         f"{sorted(BASELINES[options.baseline])}")
    members = [member.at_size(options.input_size) for member in BASELINES[options.baseline][options.profile]]
    if options.crop_fraction is not None:
        if not 0 < options.crop_fraction <= 1:
            raise ValueError(f"--crop-fraction must be in (0, 1], got {options.crop_fraction}")
        members = [dataclasses.replace(member, crop_fraction=options.crop_fraction) for member in members]
    if options.init is not None and len(members) > 1:
        raise ValueError(f"--init gives one checkpoint; baseline {options.baseline} has {len(members)} members")
    return members


def train_baseline(options: RunOptions) -> dict | None:
    """Train every member of options.baseline and write the submission folder; returns the card (rank 0)."""
    rank, world, device = distributed_setup()
    profile = PROFILES[options.profile]
    threads = options.threads or profile.threads
    if device.type == "cpu" and threads:
        torch.set_num_threads(threads)
    members = members_to_train(options)
    started = time.time()
    train_rows = limit_rows(training_rows(options.release), options.limit_train, options.seed)
    validation_rows = None
    if rank == 0:
        validation_rows = validation_sets(options.release, seed=options.seed, limit=options.limit_eval)
        # Until the new card is written the folder is not a submission (no card of old weights survives).
        (options.submission_folder / baseline_model.CARD_NAME).unlink(missing_ok=True)
    card_members = [train_and_save(member, name, profile, options, train_rows, validation_rows, rank, world, device)
                    for member, name in zip(members, member_names(members))]
    if rank != 0:
        return None
    pristine_rows, degraded_rows, degraded_source = validation_rows
    card = write_submission(options, profile, card_members, recipe(options, degraded_source, world, device),
                            started)
    if options.evaluate:
        card["evaluation"] = evaluate_submission(options.submission_folder, pristine_rows, degraded_rows)
        card["total_seconds"] = round(time.time() - started, 1)
        write_card(options.submission_folder, card)
    return card


def train_and_save(member: Member, name: str, profile: Profile, options: RunOptions, train_rows: pd.DataFrame,
                   validation_rows: tuple | None, rank: int, world: int, device: torch.device) -> dict | None:
    """Train one member on every rank; rank 0 validates it on validation_rows (training_data.validation_sets),
    saves the weights of its kept epoch in the submission folder and returns its card entry (the others: None)."""
    run_dir = Path(options.runs_dir) / options.run_name / name
    validation = None
    if rank == 0:
        run_dir.mkdir(parents=True, exist_ok=True)
        pristine_rows, degraded_rows, _ = validation_rows
        validation = ValidationImages.resized(pristine_rows, degraded_rows, member)
    key = stored = None
    if rank == 0 and member_store.storable(member, options, world):
        key = member_store.member_key(member, profile, options, train_rows, validation_rows[:2], device)
        stored = member_store.load(options.member_store, key, run_dir) if options.reuse_members else None
    if stored:
        print(f"{name}: the same member, trained on the same rows with the same settings, code and threads, is "
              f"stored in {options.member_store / key}; its weights are reused (--retrain trains it again)",
              file=sys.stderr, flush=True)
        state, history, initialisation = stored
    else:
        state, history, initialisation = train_member(member, profile, options, train_rows, validation, run_dir,
                                                      rank, world, device)
    if rank != 0:
        return None
    if key and not stored:
        member_store.save(options.member_store, key, state, history, initialisation, run_dir)
    weights_name = f"weights_{name}.safetensors"
    options.submission_folder.mkdir(parents=True, exist_ok=True)
    save_file(state, options.submission_folder / weights_name)
    entry = member_entry(member, weights_name, history, initialisation, profile, train_rows, options)
    entry["training"]["reused_from"] = str(options.member_store / key) if stored else None
    return entry


def write_submission(options: RunOptions, profile: Profile, card_members: list[dict], recipe_record: dict,
                     started: float) -> dict:
    """The members worth keeping, their card, and model.py with the baseline's files: a complete submission
    folder. Returns the card."""
    out = options.submission_folder
    kept, left_out = members_to_keep(card_members, profile.keep_within)
    for member in left_out:
        (out / member["weights"]).unlink()
    card = baseline_card(options, profile, kept, left_out, recipe_record, round(time.time() - started, 1))
    write_card(out, card)
    install_submission_files(out, options.baseline)
    return card


def parse_options(argv: list[str] | None = None) -> RunOptions:
    """The command line, typed once."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("release", type=Path, help="WBCBench release folder (pristine/, degraded/, metadata/)")
    parser.add_argument("--baseline", choices=sorted(BASELINES), default="resnet50")
    parser.add_argument("--profile", choices=sorted(PROFILES),
                        help="training settings (default: the baseline's, " +
                             ", ".join(f"{b} {p}" for b, p in DEFAULT_PROFILES.items()) + ")")
    parser.add_argument("--out", type=Path, help="submission folder to write (default baselines/<baseline>)")
    parser.add_argument("--runs-dir", type=Path, default=BASELINES_DIR / "runs", help="history and curves")
    parser.add_argument("--curriculum", choices=("on", "off"), default="on",
                        help="ramp synthetic noise/blur over epochs (off: none)")
    parser.add_argument("--pretrained", choices=("auto", "on", "off"), default="auto",
                        help="ImageNet weights from the hub: auto tries and falls back to random init")
    parser.add_argument("--init", type=Path, help="initialise the member from this local checkpoint (.pth or "
                        ".safetensors; timm key names or the EfficientNet-PyTorch layout); its sha256 goes in the card")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--epochs", type=int, help="override the profile's epochs")
    parser.add_argument("--input-size", type=int, help="override every member's input size (pixels)")
    parser.add_argument("--crop-fraction", type=float,
                        help="override every member's centre crop (fraction of each side kept before resizing)")
    parser.add_argument("--limit-train", type=int, help="train on at most this many images")
    parser.add_argument("--limit-eval", type=int, help="validate on at most this many images per set")
    parser.add_argument("--max-steps", type=int, help="optimizer steps per epoch at most")
    parser.add_argument("--workers", type=int, help="data-loading processes (default: the profile's)")
    parser.add_argument("--threads", type=int, help="CPU compute threads (default: the profile's)")
    parser.add_argument("--keep-epoch", choices=("best", "last"), default="best",
                        help="ship the best epoch by validation degraded macro-F1, or the last one (use last when "
                             "the validation split is also your test set)")
    parser.add_argument("--retrain", dest="reuse_members", action="store_false",
                        help="train every member, even one an identical earlier run stored (member_store.py)")
    parser.add_argument("--no-evaluate", dest="evaluate", action="store_false",
                        help="skip the final evaluation of the submission through its model.py")
    args = parser.parse_args(argv)
    return RunOptions(**{**vars(args), "curriculum": args.curriculum == "on"})


def main(argv: list[str] | None = None) -> None:
    options = parse_options(argv)
    card = train_baseline(options)
    if card and "evaluation" in card:
        print(json.dumps({"submission": str(options.submission_folder), **card["evaluation"]}))
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
