"""The baselines' training loop: one member network trained on the release's training rows, validated every epoch.

Runs on one process or under torchrun (DDP, one rank per GPU; gloo on CPUs): every rank trains on its share of one
class-weighted draw per epoch, rank 0 alone validates and writes the run folder (history.json, training_curve.png).
What to train comes from recipe_settings.py; what is kept and recorded, from baseline_card.py.
"""
import json
import os
import socket
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from tqdm import tqdm

import project_folders  # noqa: F401  (the program folders, tools/ and baselines/ importable by name)
import baseline_model  # the submissions' model.py: same resize, same networks
from augment import Curriculum, TrainAugment
from baseline_card import kept_record, normalisation
from init_checkpoint import load_init
from label_space import SEVERITIES
from recipe_settings import Member, Profile
from run_options import RunOptions
from training_data import decode
from validation import VALIDATION_KEYS, ValidationImages, validate

CLASSES = baseline_model.CLASSES


def distributed_setup() -> tuple[int, int, torch.device]:
    """(rank, world size, device); initialises the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    if torch.cuda.is_available():
        local_rank = int(os.environ.get("LOCAL_RANK", "0"))
        torch.cuda.set_device(local_rank)
        device = torch.device("cuda", local_rank)
    else:
        device = torch.device("cpu")
    if world > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return rank, world, device


class WeightedDistributedSampler(torch.utils.data.Sampler):
    """Class-weighted sampling with replacement, split across DDP ranks.

    Every rank draws the same epoch's indices from a generator seeded by (seed, epoch) and keeps every
    world-th one, so ranks see disjoint slices of one weighted draw (what DistributedSampler does for uniform data).
    """

    def __init__(self, weights, num_samples, rank=0, world=1, seed=0):
        self.weights = torch.as_tensor(weights, dtype=torch.double)
        self.num_samples, self.rank, self.world, self.seed, self.epoch = num_samples, rank, world, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 10007 + self.epoch)
        indices = torch.multinomial(self.weights, self.num_samples, replacement=True, generator=generator)
        return iter(indices[self.rank::self.world].tolist())

    def __len__(self):
        return len(range(self.rank, self.num_samples, self.world))


def class_weights(labels: np.ndarray, power: float) -> np.ndarray:
    """Per-sample weight count(label) ** -power: power 1 balances classes, 0 keeps the natural frequencies."""
    values, counts = np.unique(labels, return_counts=True)
    per_class = dict(zip(values, counts.astype(float) ** -power))
    return np.array([per_class[label] for label in labels])


class TrainingSet(torch.utils.data.Dataset):
    """Release rows -> (augmented tensor, class index); the curriculum's stage is set per epoch."""

    def __init__(self, rows, augment, seed):
        self.images = list(rows["image_bytes"])
        self.targets = [CLASSES.index(label) for label in rows["label"]]
        self.augment, self.seed = augment, seed
        self.epoch, self.probability, self.strength = 0, 0.0, 0.0

    def set_stage(self, epoch: int, probability: float, strength: float) -> None:
        self.epoch, self.probability, self.strength = epoch, probability, strength

    def __len__(self):
        return len(self.images)

    def __getitem__(self, index):
        seed = (self.seed * 1_000_003 + self.epoch) * 10_000_019 + index  # a fresh, reproducible draw per view
        tensor = self.augment(decode(self.images[index]), seed % 2**63, self.probability, self.strength)
        return tensor, self.targets[index]


def hub_reachable(timeout: float = 5.0) -> tuple[bool, str]:
    """Whether huggingface.co answers on 443 (checked first, so an offline machine fails fast, not after retries)."""
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True, ""
    except OSError as error:
        return False, f"huggingface.co unreachable ({error})"


def local_start(member: Member, pretrained: str, init: Path | None) -> Path | None:
    """The checkpoint file the member starts from: `init` when given, else the member's default one unless
    --pretrained is off; None when the hub or a random initialisation decides."""
    if init is not None:
        return init
    return member.init() if member.init is not None and pretrained != "off" else None


def create_network(member: Member, pretrained: str, init: Path | None = None) -> tuple[torch.nn.Module, dict]:
    """(network, its initialisation for the card): a local checkpoint when `init` is given (or the member has a
    default one and --pretrained is not off), else the hub's ImageNet weights following --pretrained auto|on|off."""
    import timm

    card_member = {"architecture": member.architecture, "model_kwargs": member.model_kwargs}
    start = local_start(member, pretrained, init)
    if start is not None:  # the member's packaged checkpoint is ImageNet's; what a --init file holds is unknown
        network = baseline_model.build_network(card_member)
        return network, {"imagenet_pretrained": True if init is None else None, "init": load_init(network, start)}
    if pretrained == "off":
        return baseline_model.build_network(card_member), {"imagenet_pretrained": False}
    reachable, reason = hub_reachable()
    if reachable:
        try:
            return timm.create_model(member.architecture, pretrained=True, num_classes=len(CLASSES),
                                     **member.model_kwargs), {"imagenet_pretrained": True}
        except Exception as error:  # timm/hub raise many types (HTTP, missing file, offline mode)
            reason = f"{type(error).__name__}: {error}"
    if pretrained == "on":
        raise RuntimeError(f"--pretrained on: could not load ImageNet weights for {member.architecture}: {reason}")
    warnings.warn(f"ImageNet-pretrained weights for {member.architecture} not available ({reason}); training from "
                  "random initialisation, expect a much weaker baseline. Use --pretrained off to silence this.",
                  stacklevel=2)
    return baseline_model.build_network(card_member), {"imagenet_pretrained": False}


def train_member(member: Member, profile: Profile, options: RunOptions, train_rows: pd.DataFrame,
                 validation: ValidationImages | None, run_dir: Path, rank: int, world: int,
                 device: torch.device) -> tuple[dict, list[dict], dict]:
    """Train one member; returns (kept state dict, history, its initialisation). Rank 0 validates on `validation`
    (None on the other ranks) and writes the run folder."""
    torch.manual_seed(member.seed_for(options.seed))
    amp = device.type == "cuda"
    network, initialisation = create_network(member, options.pretrained, options.init)
    network.to(device)
    # channels_last on the CPU too: it halved a tf_efficientnet_lite0 training step there (128 px, one thread).
    network.to(memory_format=torch.channels_last)
    model = torch.nn.parallel.DistributedDataParallel(network) if world > 1 else network
    dataset, sampler, loader = training_loader(member, profile, options, train_rows, rank, world, amp)
    epochs = options.epochs or member.epochs or profile.epochs
    steps_per_epoch = min(len(loader), options.max_steps or len(loader))
    if steps_per_epoch == 0:  # the loader drops an incomplete last batch: an epoch would train nothing
        raise ValueError(f"{len(train_rows)} training images make no full batch of {profile.batch_size} "
                         f"({loader.batch_size} per process, {world} processes): train on more images "
                         f"(--limit-train) or with a profile of smaller batches")
    step = TrainingStep(model, *optimizer_and_schedule(network, member, profile, epochs, steps_per_epoch),
                        torch.amp.GradScaler(device.type, enabled=amp),
                        torch.nn.CrossEntropyLoss(label_smoothing=profile.label_smoothing),
                        input_normaliser(network, device), device, amp)
    curriculum = Curriculum(enabled=options.curriculum, ramp_epochs=profile.ramp_epochs,
                            probability=member.degradation_probability)
    history, kept_state = [], None
    for epoch in range(epochs):
        probability, strength = curriculum.at(epoch)
        dataset.set_stage(epoch, probability, strength)
        sampler.set_epoch(epoch)
        started = time.time()
        losses = train_epoch(step, loader, steps_per_epoch, f"{member.architecture} epoch {epoch + 1}/{epochs}",
                             show=rank == 0)
        if rank == 0:
            scores = validate(network, validation, step.normalise, device, amp)
            record = {"epoch": epoch + 1, "train_loss": float(np.mean(losses)), "seconds": time.time() - started,
                      "degradation_probability": probability, "degradation_strength": strength,
                      "learning_rate": step.schedule.get_last_lr()[0], **scores}
            history.append(record)
            print(json.dumps(record), file=sys.stderr, flush=True)
            if kept_record(history, options.keep_epoch) is record:  # the one rule the card reports too
                kept_state = state_copy(network)
            (run_dir / "history.json").write_text(json.dumps(history, indent=1))
            plot_history(history, run_dir / "training_curve.png", member.architecture)
        if world > 1:
            dist.barrier()
    return kept_state, history, initialisation


def training_loader(member: Member, profile: Profile, options: RunOptions, train_rows: pd.DataFrame, rank: int,
                    world: int, amp: bool) -> tuple[TrainingSet, WeightedDistributedSampler,
                                                     torch.utils.data.DataLoader]:
    """The augmented training set, its class-weighted sampler (this rank's share) and the loader over both."""
    augment = TrainAugment((member.input_size,) * 2, "bicubic", baseline_model.image_to_array, member.crop_fraction,
                           member.jitter, member.severity_weights)
    seed = member.seed_for(options.seed)
    dataset = TrainingSet(train_rows, augment, seed)
    weights = class_weights(train_rows["label"].to_numpy(), member.balance_power)
    sampler = WeightedDistributedSampler(weights, len(dataset), rank, world, seed)
    workers = profile.workers if options.workers is None else options.workers
    loader = torch.utils.data.DataLoader(dataset, batch_size=profile.batch_size // world, sampler=sampler,
                                         num_workers=workers, pin_memory=amp, drop_last=True,
                                         persistent_workers=False)
    return dataset, sampler, loader


def optimizer_and_schedule(network: torch.nn.Module, member: Member, profile: Profile, epochs: int,
                           steps_per_epoch: int) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW with a linear warm-up (about profile.warmup_epochs) then a cosine decay over the whole run."""
    optimizer = torch.optim.AdamW(network.parameters(), lr=member.learning_rate, weight_decay=profile.weight_decay)
    total_steps = max(1, epochs * steps_per_epoch)
    warmup = max(1, int(profile.warmup_epochs * steps_per_epoch)) if epochs > 1 else 1
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / warmup) * 0.5 * (
        1 + np.cos(np.pi * min(1.0, step / total_steps))))
    return optimizer, schedule


def input_normaliser(network: torch.nn.Module, device: torch.device) -> Callable[[torch.Tensor], torch.Tensor]:
    """A batch in [0, 1] -> standardised with the network's mean/std (from timm), in the channels_last layout."""
    mean = torch.tensor(normalisation(network)["mean"], device=device).view(1, 3, 1, 1)
    std = torch.tensor(normalisation(network)["std"], device=device).view(1, 3, 1, 1)

    def normalise(batch: torch.Tensor) -> torch.Tensor:
        batch = (batch - mean) / std
        return batch.contiguous(memory_format=torch.channels_last)

    return normalise


@dataclass
class TrainingStep:
    """What one optimizer step needs: the (maybe DDP-wrapped) model and its optimizer, schedule, scaler and loss."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    loss_function: torch.nn.Module
    normalise: Callable[[torch.Tensor], torch.Tensor]
    device: torch.device
    amp: bool


def train_epoch(step: TrainingStep, loader: torch.utils.data.DataLoader, steps: int, description: str,
                show: bool) -> list[float]:
    """At most `steps` optimizer steps over the loader; returns the loss of each."""
    step.model.train()
    losses = []
    bar = tqdm(loader, total=steps, desc=description, disable=not show,
               mininterval=1 if sys.stderr.isatty() else 60)
    for index, (images, targets) in enumerate(bar):
        if index >= steps:
            break
        images, targets = images.to(step.device, non_blocking=True), targets.to(step.device, non_blocking=True)
        with torch.autocast(step.device.type, dtype=torch.float16, enabled=step.amp):
            loss = step.loss_function(step.model(step.normalise(images)), targets)
        step.optimizer.zero_grad(set_to_none=True)
        step.scaler.scale(loss).backward()
        step.scaler.step(step.optimizer)
        step.scaler.update()
        step.schedule.step()
        losses.append(loss.item())
        bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}", refresh=False)
    bar.close()
    return losses


def state_copy(network: torch.nn.Module) -> dict:
    """A CPU copy of the network's weights (float32, contiguous: safetensors refuses the channels_last layout)."""
    return {k: (v.detach().float() if v.is_floating_point() else v.detach()).cpu().contiguous().clone()
            for k, v in network.state_dict().items()}


def plot_history(history: list[dict], path: Path, title: str) -> None:
    """Training loss and validation macro-F1 (pristine, degraded, each severity) per epoch."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = [record["epoch"] for record in history]
    figure, (loss_axis, score_axis) = plt.subplots(1, 2, figsize=(10, 4))
    loss_axis.plot(epochs, [record["train_loss"] for record in history], marker="o")
    loss_axis.set(xlabel="epoch", ylabel="training loss", title=title)
    for key, style in zip(VALIDATION_KEYS, ["-o", "-s"] + [":"] * len(SEVERITIES)):
        values = [np.nan if record[key] is None else record[key] for record in history]
        score_axis.plot(epochs, values, style, label=key.replace("_macro_f1", ""))
    score_axis.set(xlabel="epoch", ylabel="validation macro-F1", ylim=(0, 1), title="phase2_eval")
    score_axis.legend(fontsize=8)
    for axis in (loss_axis, score_axis):
        axis.xaxis.set_major_locator(matplotlib.ticker.MaxNLocator(integer=True))
    figure.tight_layout()
    figure.savefig(path, dpi=100)
    plt.close(figure)


