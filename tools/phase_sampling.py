"""Share release splits out between phases: by patient, subsampled (seeded or class-stratified), checked apart."""
from collections import Counter
from itertools import combinations

import numpy as np

from release_reader import ReleaseError


def split_by_patient(images: dict, phase_names: list, seed: int) -> dict:
    """Divide one split between several phases with disjoint patients, image counts as even as possible."""
    per_patient = Counter(image.patient_hash for image in images["pristine"])
    patients = sorted(per_patient)
    np.random.default_rng([seed, 3]).shuffle(patients)
    assigned, sizes = {}, dict.fromkeys(phase_names, 0)
    for patient in sorted(patients, key=lambda p: -per_patient[p]):  # stable sort keeps the shuffled tie order
        phase = min(phase_names, key=lambda name: (sizes[name], phase_names.index(name)))
        assigned[patient] = phase
        sizes[phase] += per_patient[patient]
    return {phase: {set_name: [image for image in images[set_name] if assigned[image.patient_hash] == phase]
                    for set_name in images} for phase in phase_names}


def _with_twins(images: dict, pristine: list) -> dict:
    """The kept pristine images and the degraded images made from them."""
    cells = {image.cell_id for image in pristine}
    return {"pristine": pristine, "degraded": [image for image in images["degraded"] if image.cell_id in cells]}


def subsample(images: dict, limit, seed: int) -> dict:
    """At most `limit` pristine images (seeded choice) and the degraded images made from them."""
    if limit is None or len(images["pristine"]) <= limit:
        return images
    keep = np.random.default_rng([seed, 4]).choice(len(images["pristine"]), size=limit, replace=False)
    return _with_twins(images, [images["pristine"][i] for i in sorted(keep)])


def class_quota(counts: dict, size: int) -> dict:
    """Images to keep per class: proportional to `counts` (largest remainder), at least one per class, `size` in all.

    counts: {class: images} for the classes present, size <= their total. Classes pushed up to one image are paid
    for by the classes furthest above their proportional share.
    """
    if size < len(counts):
        raise ReleaseError(f"a phase size of {size} cannot keep one image of each of the {len(counts)} classes "
                           f"present ({', '.join(sorted(counts))}); ask for at least {len(counts)}")
    total = sum(counts.values())
    classes = sorted(counts)
    share = {c: size * counts[c] / total for c in classes}
    quota = {c: max(1, int(share[c])) for c in classes}
    while sum(quota.values()) > size:
        quota[max((c for c in classes if quota[c] > 1), key=lambda c: quota[c] - share[c])] -= 1
    while sum(quota.values()) < size:
        quota[max((c for c in classes if quota[c] < counts[c]), key=lambda c: share[c] - quota[c])] += 1
    return quota


def stratified_subsample(images: dict, size: int, seed: int) -> dict:
    """At most `size` pristine images, class-stratified (class_quota, seeded choice within each class), with twins."""
    pristine = images["pristine"]
    if len(pristine) <= size:
        return images
    positions = {}
    for position, image in enumerate(pristine):
        positions.setdefault(image.label, []).append(position)
    quota = class_quota({label: len(found) for label, found in positions.items()}, size)
    rng = np.random.default_rng([seed, 5])
    keep = [p for label in sorted(positions) for p in rng.choice(positions[label], size=quota[label], replace=False)]
    return _with_twins(images, [pristine[p] for p in sorted(keep)])


def check_patients_apart(phase_images: dict) -> None:
    """Raise ReleaseError when two phases share a patient (a model could meet the same patient's cells twice)."""
    patients = {phase: {image.patient_hash for image in images["pristine"]} for phase, images in phase_images.items()}
    for first, second in combinations(sorted(patients), 2):
        shared = patients[first] & patients[second]
        if shared:
            raise ReleaseError(f"phases '{first}' and '{second}' share {len(shared)} patient(s), e.g. patient_hash "
                               f"{sorted(shared)[0]!r}; build them from splits with disjoint patients")


def class_gaps(split: str, split_labels: Counter, phase_labels: dict, legend: list) -> list:
    """Warnings for classes the split lacks (of the legend's) and classes a phase lost (of the split's)."""
    warnings = []
    absent = [label for label in legend if not split_labels[label]]
    if absent:
        warnings.append(f"split '{split}' has no image of class(es) {', '.join(absent)} "
                        f"({len(legend) - len(absent)} of the {len(legend)} classes are present)")
    for phase, labels in sorted(phase_labels.items()):
        lost = [label for label in legend if split_labels[label] and not labels[label]]
        if lost:
            counts = ", ".join(f"{label} {split_labels[label]}" for label in lost)
            warnings.append(f"phase '{phase}' has no image of class(es) {', '.join(lost)}, which split '{split}' "
                            f"has (images in the split: {counts}); its macro averages skip them")
    return warnings
