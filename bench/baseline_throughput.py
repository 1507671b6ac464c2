"""Benchmark: images per second of the ResNet-50 baseline with its TTA, the figure a phase's capacity is planned with.

Usage: python bench/baseline_throughput.py [--input-size 224] [--tta d4] [--threads 2] [-n 32] [--batch-size 8]

Builds the baseline submission (baselines/baseline_model.py, a card with one resnet50 member, random weights:
the speed does not depend on the weights), loads it as ingestion does, and times predict_batch on n cell-sized
(368 x 370) images after one warm-up batch. Prints one JSON line; `images_per_second` counts test images (each
costs one network pass per TTA view). Run it on the worker that will serve the phase: `--threads 2` with
`taskset -c 0,1` for the default CPU queue, no options on a GPU worker (the model uses CUDA when present).
"""
import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import project_folders  # noqa: F401  (the program folders, tools/ and baselines/ importable by name)
from ingestion_overhead import load_model, make_submission


def cell_images(count: int, seed: int) -> list:
    """count random RGB images of the release's size (about 368 x 370 px)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (370, 368, 3), dtype=np.uint8)) for _ in range(count)]


def measure(input_size: int, tta: str, count: int, batch_size: int, seed: int = 0) -> dict:
    """Seconds and images per second of predict_batch over count images, after one untimed warm-up batch."""
    import torch

    import baseline_model

    with tempfile.TemporaryDirectory(prefix="throughput_") as work:
        folder = make_submission(Path(work) / "resnet50", input_size, 1.0, tta, seed)
        _, model = load_model(folder)
        images = cell_images(count, seed)
        model.predict_batch(images[:batch_size])
        started = time.perf_counter()
        for start in range(0, count, batch_size):
            model.predict_batch(images[start:start + batch_size])
        if model.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
    views = len(baseline_model.TTA_VIEWS[tta])
    return {"architecture": "resnet50", "input_size": input_size, "tta": tta, "views": views, "images": count,
            "batch_size": batch_size, "device": str(model.device), "torch_threads": torch.get_num_threads(),
            "seconds": round(seconds, 2), "images_per_second": round(count / seconds, 3),
            "network_passes_per_second": round(count * views / seconds, 2),
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--input-size", type=int, default=224, help="the card's input size (gpu recipe: 224)")
    parser.add_argument("--tta", default="d4", help="the card's TTA (gpu recipe: d4, 8 views)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("-n", type=int, default=32, help="images timed (default 32)")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args(argv)
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
        import torch

        torch.set_num_threads(args.threads)
    print(json.dumps(measure(args.input_size, args.tta, args.n, args.batch_size)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
