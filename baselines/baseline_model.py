"""WBCBench baseline submission: timm networks described by card.json, with geometric test-time augmentation.

This one file is the model.py of every baseline folder (baselines/resnet50/, baselines/ensemble/): the recipe
copies it there (baselines/pack_baseline.py), so the folders differ only in their card and weights.
card.json (written by baselines/train_baseline.py) says everything this file needs, timm-style: the classes, the
test-time augmentation, and a list of members, each with its timm architecture, extra create_model arguments,
weights file, input size, mean/std and interpolation. Probabilities are averaged over views and members.
"""
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
import timm
from PIL import Image
from safetensors.torch import load_file

CLASSES = ("BA", "BL", "BNE", "EO", "LY", "MMY", "MO", "MY", "PC", "PLY", "PMY", "SNE", "VLY")
CARD_NAME = "card.json"
# Views of the dihedral group D4 as (quarter turns, horizontal flip); "flip" is its subgroup of flips.
TTA_VIEWS = {
    "none": ((0, False),),
    "flip": ((0, False), (0, True), (2, True), (2, False)),
    "d4": tuple((k, f) for k in range(4) for f in (False, True)),
}
INTERPOLATIONS = {"bilinear": Image.Resampling.BILINEAR, "bicubic": Image.Resampling.BICUBIC,
                  "nearest": Image.Resampling.NEAREST, "lanczos": Image.Resampling.LANCZOS}


def image_to_array(image: Image.Image, input_size: tuple, interpolation: str,
                   crop_fraction: float = 1.0) -> np.ndarray:
    """PIL image -> uint8 array (H, W, 3) at the member's input size; the recipe trains on exactly this resize.

    crop_fraction < 1 keeps only the centre (that fraction of each side) before resizing: the white cell sits in
    the middle of every crop, so the network's pixels go to the cell rather than the red cells around it.
    """
    height, width = input_size[-2:]
    image = image.convert("RGB")
    if crop_fraction < 1:
        keep_w, keep_h = round(image.width * crop_fraction), round(image.height * crop_fraction)
        left, top = (image.width - keep_w) // 2, (image.height - keep_h) // 2
        image = image.crop((left, top, left + keep_w, top + keep_h))
    if image.size != (width, height):
        image = image.resize((width, height), INTERPOLATIONS[interpolation])
    return np.array(image, dtype=np.uint8)


def tta_views(batch: torch.Tensor, tta: str) -> Iterator[torch.Tensor]:
    """The batch (N, C, H, W) under each geometric view of the card's TTA setting."""
    for quarter_turns, flip in TTA_VIEWS[tta]:
        view = torch.rot90(batch, quarter_turns, dims=(2, 3)) if quarter_turns else batch
        yield torch.flip(view, dims=(3,)) if flip else view


def read_card(folder: Path) -> dict:
    """Parse and check card.json; errors name the file and what was expected."""
    path = Path(folder) / CARD_NAME
    if not path.is_file():
        raise FileNotFoundError(
            f"{path} not found: this baseline is not trained yet. Build it from the repository root with "
            f"`make {Path(folder).name}` (trains it and writes {CARD_NAME} and its weights here).")
    card = json.loads(path.read_text())
    if tuple(card.get("classes", ())) != CLASSES:
        raise ValueError(f"{path}: 'classes' must be {list(CLASSES)}, got {card.get('classes')}")
    if card.get("tta") not in TTA_VIEWS:
        raise ValueError(f"{path}: 'tta' must be one of {sorted(TTA_VIEWS)}, got {card.get('tta')!r}")
    if not card.get("members"):
        raise ValueError(f"{path}: 'members' must list at least one network")
    for index, member in enumerate(card["members"]):
        missing = {"architecture", "weights", "input_size", "mean", "std", "interpolation"} - set(member)
        if missing:
            raise ValueError(f"{path}: member {index} lacks {sorted(missing)}")
        if member["interpolation"] not in INTERPOLATIONS:
            raise ValueError(f"{path}: member {index} interpolation must be one of {sorted(INTERPOLATIONS)}")
        crop = member.setdefault("crop_fraction", 1.0)  # cards without one see the whole image
        if not isinstance(crop, (int, float)) or not 0 < crop <= 1:
            raise ValueError(f"{path}: member {index} crop_fraction must be a number in (0, 1], got {crop!r}")
    return card


def build_network(member: dict, num_classes: int = len(CLASSES)) -> torch.nn.Module:
    """The member's timm network, randomly initialised (weights come from its file, never downloaded)."""
    return timm.create_model(member["architecture"], pretrained=False, num_classes=num_classes,
                             **member.get("model_kwargs", {}))


def cpu_threads() -> int:
    """Cores this process may use (respects CPU affinity, e.g. a container's cpuset)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


class Model:
    """The participant contract: Model(), load(), predict(image), predict_batch(images)."""

    def __init__(self):
        self.folder = Path(__file__).resolve().parent
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        self.card = None
        self.networks = []

    def load(self) -> None:
        self.card = read_card(self.folder)
        if self.device.type == "cpu" and "OMP_NUM_THREADS" not in os.environ:
            torch.set_num_threads(cpu_threads())
        self.networks = []
        for member in self.card["members"]:
            weights = self.folder / member["weights"]
            if not weights.is_file():
                raise FileNotFoundError(
                    f"{weights} not found (weights of member {member['architecture']}). Build them from the "
                    f"repository root with `{self.card.get('make_command', 'make ' + self.folder.name)}`.")
            network = build_network(member)
            network.load_state_dict(load_file(weights))
            # channels_last on the CPU too: about twice as fast for tf_efficientnet_lite0's depthwise convolutions
            network.eval().to(self.device, memory_format=torch.channels_last)
            self.networks.append(network)
        mean_std = [(m["mean"], m["std"]) for m in self.card["members"]]
        self.normalisers = [(torch.tensor(mean, device=self.device).view(1, 3, 1, 1),
                             torch.tensor(std, device=self.device).view(1, 3, 1, 1)) for mean, std in mean_std]

    def _to_device(self, arrays):
        """Stack uint8 arrays into an (N, 3, H, W) float batch in [0, 1] on the device, via pinned memory."""
        batch = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)
        if self.device.type == "cuda":
            batch = batch.pin_memory().to(self.device, non_blocking=True)
        return batch.float().div_(255)

    @torch.inference_mode()
    def predict_batch(self, images: list[Image.Image]) -> list[list[float]]:
        """list of PIL images -> list of 13 probabilities (CLASSES order), averaged over TTA views and members."""
        if self.card is None:
            raise RuntimeError("Model.load() must be called before predicting")
        resized = {}  # members sharing an input size, interpolation and crop share the resize
        total = torch.zeros(len(images), len(CLASSES), device=self.device)
        views = 0
        for member, network, (mean, std) in zip(self.card["members"], self.networks, self.normalisers):
            key = (tuple(member["input_size"]), member["interpolation"], member["crop_fraction"])
            if key not in resized:
                resized[key] = self._to_device([image_to_array(image, *key) for image in images])
            batch = (resized[key] - mean) / std
            for view in tta_views(batch, self.card["tta"]):
                view = view.contiguous(memory_format=torch.channels_last)
                with torch.autocast(self.device.type, dtype=torch.float16, enabled=self.device.type == "cuda"):
                    logits = network(view)
                total += torch.softmax(logits.float(), dim=1)
                views += 1
        return (total / views).cpu().tolist()

    def predict(self, image: Image.Image) -> list[float]:
        return self.predict_batch([image])[0]
