"""Benchmark: ingestion's wall time against the ResNet-50 baseline's own compute on the same images; goal <= 1.10.

Usage: python bench/ingestion_overhead.py [-n 256] [--input-size 96] [--batch-size 32] [--seed 0] [--repeats 3]
                                          [--input-data DIR]

One submission folder (the baseline's model.py, a card with one resnet50 member at the cpu-quick input size, crop
and TTA, random weights saved as the recipe saves them) and the same n images (half pristine, half degraded) are used
for every measurement. Each repeat runs both, each in a fresh process so that both start equally cold:
  (a) pure compute: the images decoded beforehand (untimed), then model.predict_batch batch by batch, set by set:
      everything the model does (its resize, normalisation, TTA, network); for information also the network
      part alone on tensors resized beforehand (normalise, TTA views, network, softmax under inference_mode);
  (b) the real ingestion program, `python ingestion_program/ingestion.py INPUT OUTPUT PROGRAM SUBMISSION`: the run
      report's per-set seconds (predicting, without loading the model) and the process's wall time.
The ratio (b)/(a) is the overhead of ingestion's plumbing (reading the zips, JPEG decoding, batching, sending the
pixels to the model's own process through shared memory, checking and recording outputs). Figures are the fastest of the repeats (the least disturbed by other processes).
"""
import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import project_folders  # the program folders, tools/ and baselines/ importable by name
from challenge_labels import SETS
from output_files import RUN_REPORT
from recipe_settings import BASELINES, PROFILES
from untrained_submission import write_untrained_submission
from zip_images import InputDataError, InputZip, decode, list_images

REPO = project_folders.REPO

GOAL_RATIO = 1.10
NOISY_SPREAD = 1.25  # slowest / fastest of the repeats beyond which the figures are mostly noise
BASELINE, PROFILE = "resnet50", "cpu-quick"


def baseline_members(input_size=None):
    """The ResNet-50 baseline's cpu-quick member (its input size, centre crop), at input_size when given."""
    return [member.at_size(input_size) for member in BASELINES[BASELINE][PROFILE]]


def make_submission(folder, input_size, seed):
    """The baseline's folder (model.py, card.json with the profile's TTA) with random weights: the speed does not
    depend on them."""
    return write_untrained_submission(folder, BASELINE, baseline_members(input_size), PROFILES[PROFILE].tta, seed)


def listed(zip_path, set_name):
    """The image entries of an input zip, as the ingestion lists them."""
    source = InputZip(zip_path)
    try:
        return list_images(source, set_name)
    finally:
        source.close()


def existing_input(folder, per_set):
    """folder if it holds pristine.zip and degraded.zip with at least per_set images each, else None and why."""
    try:
        counts = [len(listed(folder / f"{s}.zip", s)) for s in SETS]
    except InputDataError as exc:
        return None, str(exc)
    if min(counts) < per_set:
        return None, f"{folder} has {counts} images per set, fewer than {per_set}"
    return folder, None


def build_demo_input(work, per_set, seed):
    """input_data/eval of a demo release made for the bench: per_set pristine images and their degraded twins."""
    from make_demo_release import CLASSES, MIN_PER_CLASS, build_release
    from prepare import prepare

    size = max(per_set, MIN_PER_CLASS * len(CLASSES))  # the release's smallest split; the bench takes per_set
    release = build_release(work / "release", seed=seed, split_sizes={"phase2_eval": size})
    prepare(release, work / "bundle", seed=seed, demo=True, phases={"eval": "phase2_eval"})
    return work / "bundle" / "input_data" / "eval"


def copy_first_images(source, target, per_set):
    """target/{pristine,degraded}.zip with the first per_set images (by id) of each source zip, bytes unchanged."""
    target.mkdir(parents=True)
    for set_name in SETS:
        entries = listed(source / f"{set_name}.zip", set_name)[:per_set]
        with zipfile.ZipFile(source / f"{set_name}.zip") as archive, \
                zipfile.ZipFile(target / f"{set_name}.zip", "w", zipfile.ZIP_STORED) as out:
            for entry in entries:
                out.writestr(entry.member, archive.read(entry.member))
    return target


def load_model(folder):
    """The submission's Model, imported by path and loaded with the ingestion's own loader (as its model process
    does)."""
    from submission_loader import build_model, import_model_module

    sys.path.insert(0, str(folder))  # the submission's folder, as the ingestion's model process puts it
    module = import_model_module(folder / "model.py")
    model, _ = build_model(module)
    return module, model


def pure_compute(submission, input_dir, batch_size, network_alone):
    """(a), run in its own process: seconds of predict_batch (and of the network alone) over the decoded images."""
    import torch

    sets, decode_started = {}, time.process_time()
    for set_name in SETS:
        path = input_dir / f"{set_name}.zip"
        with zipfile.ZipFile(path) as archive:
            sets[set_name] = [decode(archive.read(entry.member)) for entry in listed(path, set_name)]
    decode_seconds = time.process_time() - decode_started
    module, model = load_model(submission)
    batches = {s: [images[i:i + batch_size] for i in range(0, len(images), batch_size)] for s, images in sets.items()}

    started = time.perf_counter()
    for set_name in SETS:
        for batch in batches[set_name]:
            model.predict_batch(batch)
    predict_seconds = time.perf_counter() - started

    figures = {"images": sum(len(images) for images in sets.values()), "predict_batch_seconds": predict_seconds,
               "decode_cpu_seconds": decode_seconds, "torch_threads": torch.get_num_threads(),
               "peak_memory_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}
    if network_alone:
        figures["tensor_seconds"] = network_seconds(module, model, batches)
    return figures


def network_seconds(module, model, batches):
    """Seconds of the network part of predict_batch (normalise, TTA views, network, softmax) on tensors resized
    beforehand."""
    import numpy as np
    import torch

    (member,), network, (mean, std) = model.card["members"], model.networks[0], model.normalisers[0]
    key = (tuple(member["input_size"]), member["interpolation"], member["crop_fraction"])
    tensors = [torch.from_numpy(np.stack([module.image_to_array(image, *key) for image in batch]))
               .permute(0, 3, 1, 2) for s in SETS for batch in batches[s]]
    started = time.perf_counter()
    with torch.inference_mode():
        for tensor in tensors:
            batch = (tensor.float().div_(255) - mean) / std
            total = sum(torch.softmax(network(view), dim=1) for view in module.tta_views(batch, model.card["tta"]))
            total.tolist()
    return time.perf_counter() - started


def run_pure_compute(submission, input_dir, batch_size, *, network_alone):
    """(a) in a fresh process, as cold as ingestion's; its figures."""
    command = [sys.executable, __file__, "--pure-compute", str(submission), str(input_dir), "--batch-size",
               str(batch_size)] + (["--network-alone"] if network_alone else [])
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode != 0:
        sys.exit(f"pure-compute run failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def run_ingestion(submission, input_dir, output_dir, batch_size):
    """(b): the real ingestion program in a subprocess; its run report plus the process's wall time."""
    command = [sys.executable, str(REPO / "ingestion_program" / "ingestion.py"), str(input_dir), str(output_dir),
               str(REPO / "ingestion_program"), str(submission), "--batch-size", str(batch_size)]
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    report_path = output_dir / RUN_REPORT
    report = json.loads(report_path.read_text()) if report_path.is_file() else {}
    if done.returncode != 0 or report.get("status") != "ok":
        sys.exit(f"ingestion failed ({report.get('reason')}):\n{done.stderr[-3000:]}")
    predict = sum(report["sets"][s]["seconds"] for s in SETS)
    return {"predict_seconds": predict, "wall_seconds": wall, "load_seconds": report.get("load_seconds"),
            "peak_memory_mb": report["peak_memory_mb"], "workers": report.get("workers")}


def measure(images, input_size, batch_size, seed, repeats, input_data):
    """Set up the images and the submission, then alternate (a) and (b) `repeats` times; their figures."""
    per_set = images // 2
    with tempfile.TemporaryDirectory(prefix="wbc_bench_") as tmp:
        work = Path(tmp)
        started = time.perf_counter()
        source, why = existing_input(input_data, per_set)
        if source is None:
            print(f"not reusing {input_data}: {why}; building a demo release with {per_set} pristine images "
                  f"(and their degraded twins) in a temporary folder", flush=True)
            source = build_demo_input(work, per_set, seed)
            origin = "a demo release built for the bench"
        else:
            origin = f"the first {per_set} images per set of {source}"
        input_dir = copy_first_images(source, work / "input", per_set)
        submission = make_submission(work / "submission", input_size, seed)
        (member,), tta = baseline_members(input_size), PROFILES[PROFILE].tta
        print(f"images: {2 * per_set} ({origin}); model: {BASELINE}, random weights, {member.input_size} px of the "
              f"centre {member.crop_fraction}, TTA {tta}; "
              f"batch size {batch_size}; set-up {time.perf_counter() - started:.1f} s", flush=True)

        computes, ingestions = [], []
        for repeat in range(repeats):
            load = os.getloadavg()[0]
            if repeat % 2 == 0:  # alternate the order, so a drifting load favours neither
                compute = run_pure_compute(submission, input_dir, batch_size, network_alone=repeat == 0)
            ingestion = run_ingestion(submission, input_dir, work / f"output{repeat}", batch_size)
            if repeat % 2 == 1:
                compute = run_pure_compute(submission, input_dir, batch_size, network_alone=False)
            computes.append(compute)
            ingestions.append(ingestion)
            print(f"repeat {repeat + 1} (load average {load:.2f} -> {os.getloadavg()[0]:.2f}): pure compute "
                  f"{compute['predict_batch_seconds']:.2f} s ({compute['torch_threads']} torch threads); ingestion "
                  f"predicting {ingestion['predict_seconds']:.2f} s, process {ingestion['wall_seconds']:.2f} s (model "
                  f"load {ingestion['load_seconds']:.2f} s, {ingestion['workers']} decoding threads); ratio "
                  f"{ingestion['predict_seconds'] / compute['predict_batch_seconds']:.3f}", flush=True)
    return computes, ingestions


def print_figures(computes, ingestions, input_size):
    """The fastest of the repeats for (a) and (b), their ratio, speeds and memory; the summary line last."""
    images = computes[0]["images"]
    compute_s = min(c["predict_batch_seconds"] for c in computes)
    tensor_s = computes[0]["tensor_seconds"]
    ingestion_s = min(i["predict_seconds"] for i in ingestions)
    wall_s = min(i["wall_seconds"] for i in ingestions)
    decode_s = min(c["decode_cpu_seconds"] for c in computes)
    ingestion_peak = max(i["peak_memory_mb"] for i in ingestions)
    ratio = ingestion_s / compute_s
    paired = [i["predict_seconds"] / c["predict_batch_seconds"] for c, i in zip(computes, ingestions)]
    print(f"(a) pure compute, model.predict_batch on decoded images: {compute_s:.2f} s, "
          f"{images / compute_s:.1f} img/s, peak {max(c['peak_memory_mb'] for c in computes):.0f} MB")
    print(f"    network alone on resized tensors (normalise, TTA, network, softmax; first repeat): {tensor_s:.2f} s, "
          f"{images / tensor_s:.1f} img/s")
    print(f"(b) ingestion, predicting (run report, model load excluded): {ingestion_s:.2f} s, "
          f"{images / ingestion_s:.1f} img/s, peak {ingestion_peak:.0f} MB")
    print(f"    ingestion process wall time (interpreter start, imports, model load, outputs): {wall_s:.2f} s")
    print(f"ratio (b)/(a), fastest of each: {ratio:.3f} predicting, {wall_s / compute_s:.3f} whole process; "
          f"{ingestion_s / tensor_s:.3f} against the network alone")
    print(f"ratio per repeat: {', '.join(f'{r:.3f}' for r in paired)} (median {statistics.median(paired):.3f})")
    print(f"reading and decoding the {images} JPEGs in one thread: {decode_s:.2f} s CPU "
          f"({1000 * decode_s / images:.1f} ms per image), {decode_s / compute_s:.1%} of (a): without any overlap "
          f"the ratio would be about {1 + decode_s / compute_s:.3f}")
    # Other processes share the cores: the load average says how far these figures are from a quiet machine's.
    print(f"load average over the last minute: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    spread = max(max(c["predict_batch_seconds"] for c in computes) / compute_s,
                 max(i["predict_seconds"] for i in ingestions) / ingestion_s)
    if spread > NOISY_SPREAD:
        print(f"warning: the same measurement took up to {spread:.1f}x its fastest time: other processes were "
              f"using the cores; rerun when the load average is low, or with more --repeats")
    verdict = "OK" if ratio <= GOAL_RATIO else "TOO SLOW"
    print(f"ingestion_overhead: ratio {ratio:.2f} (goal <= {GOAL_RATIO:.2f}: {verdict}) ingestion "
          f"{images / ingestion_s:.1f} img/s, pure compute {images / compute_s:.1f} img/s, n={images}, "
          f"input {input_size} px, peak {ingestion_peak:.0f} MB")
    return ratio


def main(argv=None):
    (member,) = baseline_members()
    input_size = member.input_size
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-n", "--images", type=int, default=256, help="images in all, half per set (default 256)")
    parser.add_argument("--input-size", type=int, default=input_size,
                        help=f"the member's input size in px (default {input_size}, the baseline's {PROFILE})")
    parser.add_argument("--batch-size", type=int, default=32, help="images per predict_batch call (default 32)")
    parser.add_argument("--seed", type=int, default=0, help="random weights and demo data")
    parser.add_argument("--repeats", type=int, default=3, help="measurements of each, alternating (default 3)")
    parser.add_argument("--input-data", type=Path, default=REPO / "input_data" / "eval",
                        help="reuse this folder's zips when it has enough images (default input_data/eval); "
                             "otherwise a demo release is built in a temporary folder")
    parser.add_argument("--pure-compute", nargs=2, type=Path, metavar=("SUBMISSION", "INPUT"), help=argparse.SUPPRESS)
    parser.add_argument("--network-alone", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.pure_compute:  # the child process of run_pure_compute
        print(json.dumps(pure_compute(*args.pure_compute, args.batch_size, args.network_alone)))
        return 0
    if args.images < 2 or args.repeats < 1 or args.batch_size < 1:
        parser.error("-n must be at least 2, --repeats and --batch-size at least 1")
    computes, ingestions = measure(args.images, args.input_size, args.batch_size, args.seed,
                                   args.repeats, args.input_data)
    print_figures(computes, ingestions, args.input_size)
    return 0


if __name__ == "__main__":
    sys.exit(main())
