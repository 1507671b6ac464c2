"""Deep-learning starting kit: a small timm network trained by train.py; GPU when there is one, else the CPU."""
import json
from pathlib import Path

import numpy as np
import timm
import torch
from PIL import Image
from safetensors.torch import load_file

CLASSES = ("BA", "BL", "BNE", "EO", "LY", "MMY", "MO", "MY", "PC", "PLY", "PMY", "SNE", "VLY")
HERE = Path(__file__).resolve().parent
CARD_FILE = "card.json"  # architecture, input size, normalisation: what the weights were trained with
WEIGHTS_FILE = "weights.safetensors"
MAKE_WEIGHTS = "python starting_kit_timm/train.py build/demo_release  (or: make starting-kit-timm)"


def to_array(image: Image.Image, size: int) -> np.ndarray:
    """(size, size, 3) uint8 pixels; train.py and predict_batch resize the same way."""
    return np.asarray(image.convert("RGB").resize((size, size), Image.BILINEAR), dtype=np.uint8)


def build_network(card: dict, pretrained: bool = False) -> torch.nn.Module:
    """The card's timm architecture with a 13-class head."""
    return timm.create_model(card["architecture"], pretrained=pretrained, num_classes=len(CLASSES))


def read_card(folder: Path = HERE) -> dict:
    """The card saved by train.py, checked against this file's class order."""
    for name in (CARD_FILE, WEIGHTS_FILE):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"{folder / name} not found: put {WEIGHTS_FILE} and {CARD_FILE} in the "
                                    f"submission zip, next to model.py (train.py makes them: `{MAKE_WEIGHTS}`)")
    card = json.loads((folder / CARD_FILE).read_text(encoding="utf-8"))
    if tuple(card["classes"]) != CLASSES:
        raise ValueError(f"{folder / CARD_FILE} lists classes {card['classes']}, model.py expects {CLASSES}")
    return card


class Model:
    """The participant contract: Model(), load(), predict(image), predict_batch(images)."""

    def __init__(self):
        self.network = None

    def load(self):
        card = read_card()
        self.size = card["input_size"]
        self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        network = build_network(card)
        network.load_state_dict(load_file(HERE / WEIGHTS_FILE))
        self.network = network.to(self.device).eval()
        self.mean = torch.tensor(card["mean"], device=self.device).view(1, 3, 1, 1) * 255
        self.std = torch.tensor(card["std"], device=self.device).view(1, 3, 1, 1) * 255

    def predict(self, image):
        return self.predict_batch([image])[0]

    def predict_batch(self, images):
        """13 softmax probabilities per image, in CLASSES order."""
        pixels = np.stack([to_array(image, self.size) for image in images])
        batch = torch.from_numpy(pixels).to(self.device).permute(0, 3, 1, 2).float()
        with torch.inference_mode():
            logits = self.network((batch - self.mean) / self.std)
            return torch.softmax(logits.float(), dim=1).cpu().numpy().astype(np.float64).tolist()
