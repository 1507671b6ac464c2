"""Train a small timm network on a WBCBench-format release; saves weights.safetensors and card.json beside model.py.

    python starting_kit_timm/train.py build/demo_release            # the demo release (make demo builds it)
    python starting_kit_timm/train.py /path/to/wbcbench_release     # the real release (parquet shards)
"""
import argparse
import importlib.util
import io
import json
import socket
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import timm
import torch
import torch.nn.functional as F
from PIL import Image
from safetensors.torch import save_file
from sklearn.metrics import f1_score
from tqdm import tqdm

HERE = Path(__file__).resolve().parent
CONFIGS = ("pristine", "degraded")  # the release's degraded training rows are used when it has them


def _load_local(name):
    """A module of this folder, loaded by path so it never clashes with another `model` or `augment` module."""
    spec = importlib.util.spec_from_file_location(f"starting_kit_timm_{name}", HERE / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


model, augment = _load_local("model"), _load_local("augment")


def read_split(release_dir, split, config):
    """(JPEG bytes, labels) of one config's split: <release>/<config>/<split>-NNNNN-of-MMMMM.parquet."""
    images, labels = [], []
    for shard in sorted((Path(release_dir) / config).glob(f"{split}-*.parquet")):
        table = pq.read_table(shard, columns=["image", "label"])
        images += [cell["bytes"] for cell in table.column("image").to_pylist()]
        labels += table.column("label").to_pylist()
    unknown = sorted(set(labels) - set(model.CLASSES))
    if unknown:
        raise ValueError(f"{release_dir}/{config}/{split}: labels {unknown} are not WBCBench classes {model.CLASSES}")
    return images, labels


def decode(images, labels, size):
    """(n, 3, size, size) uint8 tensor and class indices; a progress bar, as decoding takes a while."""
    progress = tqdm(images, desc=f"decoding {len(images)} images at {size} px", unit="img", file=sys.stderr)
    pixels = np.stack([model.to_array(Image.open(io.BytesIO(data)), size) for data in progress])
    return (torch.from_numpy(pixels).permute(0, 3, 1, 2).contiguous(),
            torch.tensor([model.CLASSES.index(label) for label in labels]))


def training_data(release_dir, size, limit=None, seed=0):
    """phase2_train of every config, decoded; `limit` keeps a random subset (quick runs and tests)."""
    images, labels = [], []
    for config in CONFIGS:
        more_images, more_labels = read_split(release_dir, "phase2_train", config)
        images, labels = images + more_images, labels + more_labels
    if not images:
        raise FileNotFoundError(f"no phase2_train-*.parquet shard under {release_dir}/{{{','.join(CONFIGS)}}}/")
    if limit is not None and limit < len(images):
        keep = np.random.default_rng(seed).choice(len(images), limit, replace=False)
        images, labels = [images[i] for i in keep], [labels[i] for i in keep]
    return decode(images, labels, size)


def create_network(architecture, pretrained):
    """The timm network; with pretrained, ImageNet weights when the hub answers, else a clear fallback."""
    card = {"architecture": architecture}
    if pretrained:
        try:
            socket.create_connection(("huggingface.co", 443), timeout=5).close()
            return model.build_network(card, pretrained=True)
        except Exception as error:  # offline, or the hub/timm refused: say so and train from scratch
            print(f"--pretrained: ImageNet weights for {architecture} unavailable ({type(error).__name__}: {error});"
                  " training from random initialisation instead", file=sys.stderr)
    return model.build_network(card)


def balanced_sampler(labels, generator):
    """Draws every class equally often in expectation: SNE no longer drowns the rare classes."""
    counts = torch.bincount(labels, minlength=len(model.CLASSES)).float()
    return torch.utils.data.WeightedRandomSampler(1.0 / counts[labels], len(labels), generator=generator)


def predict_classes(network, pixels, mean, std, batch_size=256):
    network.eval()
    with torch.inference_mode():
        return torch.cat([network((pixels[i:i + batch_size].float() - mean) / std).argmax(1)
                          for i in range(0, len(pixels), batch_size)])


def evaluate(network, release_dir, size, mean, std):
    """Macro-F1 on phase2_eval per config (the classes present in each), or {} when the release has no eval split."""
    scores = {}
    for config in CONFIGS:
        images, labels = read_split(release_dir, "phase2_eval", config)
        if images:
            pixels, truth = decode(images, labels, size)
            predicted = predict_classes(network, pixels, mean, std)
            scores[f"{config}_macro_f1"] = round(float(f1_score(truth, predicted, labels=sorted(set(truth.tolist())),
                                                                average="macro", zero_division=0)), 4)
    return scores


def train(release_dir, out_dir=HERE, architecture="resnet10t", input_size=48, epochs=4, batch_size=64,
          learning_rate=2e-3, seed=0, pretrained=False, limit=None, threads=None):
    """Train, evaluate on phase2_eval, write out_dir/{weights.safetensors, card.json}; returns the card."""
    started = time.perf_counter()
    torch.manual_seed(seed)
    if threads:
        torch.set_num_threads(threads)
    pixels, labels = training_data(release_dir, input_size, limit, seed)
    network = create_network(architecture, pretrained)
    data_config = timm.data.resolve_model_data_config(network)  # timm owns the normalisation of its networks
    mean = torch.tensor(data_config["mean"]).view(1, 3, 1, 1) * 255
    std = torch.tensor(data_config["std"]).view(1, 3, 1, 1) * 255
    generator = torch.Generator().manual_seed(seed)
    sampler = balanced_sampler(labels, generator)
    steps = epochs * -(-len(labels) // batch_size)
    optimizer = torch.optim.AdamW(network.parameters(), lr=learning_rate, weight_decay=0.05)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, learning_rate, total_steps=steps, pct_start=0.2)
    for epoch in range(epochs):
        network.train()
        order, losses = list(sampler), []
        for start in range(0, len(order), batch_size):
            index = torch.tensor(order[start:start + batch_size])
            batch = (augment.augment_batch(pixels[index], generator) - mean) / std
            loss = F.cross_entropy(network(batch), labels[index], label_smoothing=0.1)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
        print(f"epoch {epoch + 1}/{epochs}: loss {np.mean(losses):.3f} ({time.perf_counter() - started:.0f} s)", flush=True)
    scores = evaluate(network, release_dir, input_size, mean, std)
    card = {"architecture": architecture, "input_size": input_size, "classes": list(model.CLASSES),
            "mean": list(data_config["mean"]), "std": list(data_config["std"]),
            "trained": {"release": Path(release_dir).name, "images": len(labels), "epochs": epochs, "seed": seed,
                        "pretrained": pretrained, "phase2_eval": scores,
                        "seconds": round(time.perf_counter() - started, 1)}}
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    save_file({name: tensor.contiguous() for name, tensor in network.state_dict().items()},
              out_dir / model.WEIGHTS_FILE)
    (out_dir / model.CARD_FILE).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    print(f"trained {architecture} on {len(labels)} images in {card['trained']['seconds']} s; phase2_eval {scores}"
          f" -> {out_dir / model.WEIGHTS_FILE}")
    return card


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("release", help="release folder: <release>/{pristine,degraded}/phase2_train-*.parquet")
    parser.add_argument("--out", type=Path, default=HERE, help="folder for weights.safetensors and card.json")
    parser.add_argument("--architecture", default="resnet10t", help="any timm model name (default resnet10t)")
    parser.add_argument("--input-size", type=int, default=48, help="training and prediction size in px")
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--learning-rate", type=float, default=2e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--pretrained", action="store_true",
                        help="start from timm's ImageNet weights (needs the Hugging Face hub; falls back if offline)")
    parser.add_argument("--limit", type=int, help="train on at most this many images (quick runs)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's own choice)")
    args = parser.parse_args(argv)
    train(args.release, args.out, args.architecture, args.input_size, args.epochs, args.batch_size,
          args.learning_rate, args.seed, args.pretrained, args.limit, args.threads)


if __name__ == "__main__":
    sys.exit(main())
