"""The recipe's validation: the leaderboard's macro-F1 figures on the validation sets, by the scorer's own rule.

Every epoch checks the network on images resized once as model.py resizes them (no TTA); the finished submission is
checked through its model.py, with its TTA, loaded by the ingestion program's own loader.
"""
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from tqdm import tqdm

import project_folders  # noqa: F401  (the program folders, tools/ and baselines/ importable by name)
import baseline_model  # the submissions' model.py: the same resize
from classification_metrics import macro_f1 as scorer_macro_f1
from label_space import SEVERITIES
from recipe_settings import Member
from submission_loader import build_model, import_model_module
from training_data import decode

CLASSES = baseline_model.CLASSES
# Validation figures under the leaderboard's names (scoring_program/leaderboard_scores.py; a test checks them).
VALIDATION_KEYS = ("pristine_macro_f1", "degraded_macro_f1", *(f"severity_{s}_macro_f1" for s in SEVERITIES))
BATCH_SIZE = 128  # images per forward pass of the per-epoch check


@dataclass(frozen=True)
class ValidationImages:
    """Both validation sets' images for one member, resized once (uint8, N x 3 x H x W), with labels and severities."""

    pristine_images: torch.Tensor
    pristine_labels: np.ndarray
    degraded_images: torch.Tensor
    degraded_labels: np.ndarray
    degraded_severities: np.ndarray

    @classmethod
    def resized(cls, pristine_rows: pd.DataFrame, degraded_rows: pd.DataFrame, member: Member) -> "ValidationImages":
        """The release's validation rows at the member's input size and crop, exactly as model.py resizes them."""
        return cls(_resized(pristine_rows, member), pristine_rows["label"].to_numpy(),
                   _resized(degraded_rows, member), degraded_rows["label"].to_numpy(),
                   degraded_rows["severity"].to_numpy())


def _resized(rows: pd.DataFrame, member: Member) -> torch.Tensor:
    arrays = [baseline_model.image_to_array(decode(data), (member.input_size,) * 2, "bicubic", member.crop_fraction)
              for data in tqdm(rows["image_bytes"], desc="resize validation", leave=False, disable=None)]
    return torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2)


def macro_f1(labels: np.ndarray, predictions: np.ndarray) -> float | None:
    """The scoring program's macro-F1 (over the classes present in `labels`) of class-code texts, on the scorer's
    class indices; None for an empty subset."""
    if len(labels) == 0:
        return None
    codes = [[CLASSES.index(label) for label in texts] for texts in (labels, predictions)]
    return scorer_macro_f1(*(np.array(values, dtype=np.int64) for values in codes))


def severity_scores(pristine_labels: np.ndarray, pristine_predictions: np.ndarray, degraded_labels: np.ndarray,
                    degraded_predictions: np.ndarray, severities: np.ndarray) -> dict:
    """The leaderboard's macro-F1 figures: pristine set, degraded set, and each severity inside the degraded set."""
    severities = np.asarray(severities)
    scores = [macro_f1(pristine_labels, pristine_predictions), macro_f1(degraded_labels, degraded_predictions)]
    for severity in SEVERITIES:
        mask = severities == severity
        scores.append(macro_f1(np.asarray(degraded_labels)[mask], np.asarray(degraded_predictions)[mask]))
    return dict(zip(VALIDATION_KEYS, scores))


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


def validate(network: torch.nn.Module, sets: ValidationImages, normalise: Callable, device: torch.device,
             amp: bool) -> dict:
    """The epoch's macro-F1 figures on the validation sets (pristine, degraded, each severity)."""
    predicted_pristine = predict_classes(network, sets.pristine_images, normalise, device, BATCH_SIZE, amp)
    predicted_degraded = predict_classes(network, sets.degraded_images, normalise, device, BATCH_SIZE, amp)
    return severity_scores(sets.pristine_labels, predicted_pristine, sets.degraded_labels, predicted_degraded,
                           sets.degraded_severities)


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
