"""Benchmark: images per second of the baselines with their TTA, the figures a phase's capacity is planned with.

Usage: python bench/baseline_throughput.py [--baseline resnet50 ensemble] [--profile gpu] [--input-size N]
                                           [--tta d4] [--threads 2] [-n 32] [--batch-size 8]

For each baseline, builds its submission as the profile's recipe makes it (the profile's members at their input
sizes, its TTA; random weights, baselines/untrained_submission.py: the speed does not depend on them), loads it as
ingestion does, and times predict_batch on n cell-sized (368 x 370) images after one untimed warm-up batch. Prints
one JSON line per baseline, then, for two or more, a line with each one's time over the first's, measured in the same
run. `images_per_second` counts test images (each costs one network pass per member and TTA view). The default, the
gpu profile's ResNet-50 and its three-family ensemble at 224 px with d4 TTA, is what an organizer's GPU worker serves:
run it there with no options (the model uses CUDA when present); for the default CPU queue, `--threads 2` under
`taskset -c 0,1`. A phase is planned with the slowest baseline it ships (ORGANIZERS.md, step 4).
"""
import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import project_folders  # noqa: F401  (the program folders, tools/ and baselines/ importable by name)
from ingestion_overhead import load_model
from recipe_settings import BASELINES, PROFILES
from untrained_submission import write_untrained_submission


def cell_images(count: int, seed: int) -> list:
    """count random RGB images of the release's size (about 368 x 370 px)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    return [Image.fromarray(rng.integers(0, 256, (370, 368, 3), dtype=np.uint8)) for _ in range(count)]


def measure(baseline: str, profile: str, input_size: int | None, tta: str | None, count: int, batch_size: int,
            seed: int = 0) -> dict:
    """Seconds and images per second of the baseline's predict_batch over count images, after one untimed warm-up
    batch; input_size and tta override the profile's when given."""
    import torch

    import baseline_model

    members = [member.at_size(input_size) for member in BASELINES[baseline][profile]]
    tta = tta or PROFILES[profile].tta
    with tempfile.TemporaryDirectory(prefix="throughput_") as work:
        folder = write_untrained_submission(Path(work) / baseline, baseline, members, tta, seed)
        _, model = load_model(folder)
        images = cell_images(count, seed)
        model.predict_batch(images[:batch_size])
        started = time.perf_counter()
        for start in range(0, count, batch_size):
            model.predict_batch(images[start:start + batch_size])
        if model.device.type == "cuda":
            torch.cuda.synchronize()
        seconds = time.perf_counter() - started
    passes = len(baseline_model.TTA_VIEWS[tta]) * len(members)
    return {"baseline": baseline, "profile": profile, "members": [member.architecture for member in members],
            "input_sizes": [member.input_size for member in members], "tta": tta, "passes_per_image": passes,
            "images": count, "batch_size": batch_size, "device": str(model.device),
            "device_name": torch.cuda.get_device_name() if model.device.type == "cuda" else None,
            "torch_threads": torch.get_num_threads(), "seconds": round(seconds, 2),
            "images_per_second": round(count / seconds, 3),
            "network_passes_per_second": round(count * passes / seconds, 2),
            "load_average": [round(x, 2) for x in os.getloadavg()]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", nargs="+", choices=sorted(BASELINES), default=["resnet50", "ensemble"],
                        help="the baselines to time, in turn (default: resnet50 ensemble)")
    parser.add_argument("--profile", choices=sorted(PROFILES), default="gpu",
                        help="the recipe profile whose members and TTA are timed (default gpu)")
    parser.add_argument("--input-size", type=int, help="every member's input size in px (default: the recipe's)")
    parser.add_argument("--tta", help="the TTA (default: the profile's; gpu: d4, 8 views)")
    parser.add_argument("--threads", type=int, help="CPU threads for torch (default: torch's choice)")
    parser.add_argument("-n", type=int, default=32, help="images timed (default 32)")
    parser.add_argument("--batch-size", type=int, default=8)
    args = parser.parse_args(argv)
    lacking = [name for name in args.baseline if args.profile not in BASELINES[name]]
    if lacking:
        parser.error("; ".join(f"baseline {name} has no profile {args.profile}, only {sorted(BASELINES[name])}"
                               for name in lacking))
    if args.threads:
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
        import torch

        torch.set_num_threads(args.threads)
    figures = []
    for name in args.baseline:
        figures.append(measure(name, args.profile, args.input_size, args.tta, args.n, args.batch_size))
        print(json.dumps(figures[-1]), flush=True)
    if len(figures) > 1:
        first = figures[0]
        print(json.dumps({"seconds_over_first": {f"{f['baseline']} / {first['baseline']}":
                                                 round(f["seconds"] / first["seconds"], 2) for f in figures[1:]}}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
