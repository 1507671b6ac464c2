"""Share release splits out between phases (by patient, subsampled), and each phase's cells between its two sets.

A cell is one source image of the release with all its versions (the pristine image and its degraded copies).
Every cell of a phase is scored once: its pristine image in the pristine set, or one degraded version in the
degraded set, never both, so no image of a run has a copy a model could remember (assign_sets).
"""
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


def _with_versions(images: dict, pristine: list) -> dict:
    """The kept cells: their pristine images and the degraded versions made from them."""
    cells = {image.cell_id for image in pristine}
    return {"pristine": pristine, "degraded": [image for image in images["degraded"] if image.cell_id in cells]}


def subsample(images: dict, limit, seed: int) -> dict:
    """At most `limit` cells (seeded choice), each with all its versions."""
    if limit is None or len(images["pristine"]) <= limit:
        return images
    keep = np.random.default_rng([seed, 4]).choice(len(images["pristine"]), size=limit, replace=False)
    return _with_versions(images, [images["pristine"][i] for i in sorted(keep)])


def class_quota(counts: dict, size: int, minimum: int = 1) -> dict:
    """How many to keep per key: proportional to `counts` (largest remainder), at least `minimum` (0 or 1) per key,
    `size` in all.

    counts: {key: items} for the keys present, size <= their total. Keys pushed up to one item are paid for by the
    keys furthest above their proportional share.
    """
    if size < minimum * len(counts):
        raise ReleaseError(f"a phase size of {size} cannot keep one cell of each of the {len(counts)} classes "
                           f"present ({', '.join(sorted(counts))}); ask for at least {len(counts)}")
    total = sum(counts.values())
    classes = sorted(counts)
    share = {c: size * counts[c] / total for c in classes}
    quota = {c: max(minimum, int(share[c])) for c in classes}
    while sum(quota.values()) > size:
        quota[max((c for c in classes if quota[c] > minimum), key=lambda c: quota[c] - share[c])] -= 1
    while sum(quota.values()) < size:
        quota[max((c for c in classes if quota[c] < counts[c]), key=lambda c: share[c] - quota[c])] += 1
    return quota


def stratified_subsample(images: dict, size: int, seed: int) -> dict:
    """At most `size` cells, class-stratified (class_quota, seeded choice within each class), with their versions."""
    pristine = images["pristine"]
    if len(pristine) <= size:
        return images
    positions = {}
    for position, image in enumerate(pristine):
        positions.setdefault(image.label, []).append(position)
    quota = class_quota({label: len(found) for label, found in positions.items()}, size)
    rng = np.random.default_rng([seed, 5])
    keep = [p for label in sorted(positions) for p in rng.choice(positions[label], size=quota[label], replace=False)]
    return _with_versions(images, [pristine[p] for p in sorted(keep)])


def degraded_quota(cells: int, share: float) -> int:
    """How many of a class's `cells` go to the degraded set: the share, rounded, leaving at least one cell in each
    set when the class has two or more (a lone cell goes to the degraded set, the primary score's)."""
    return 1 if cells == 1 else min(cells - 1, max(1, round(share * cells)))


def assign_sets(images: dict, degraded_share: float, seed: int, stream: int = 0) -> tuple[list, list]:
    """Each cell of a phase to exactly one set: (pristine-set images, degraded-set cells).

    images: {"pristine": one image per cell, "degraded": the release's degraded versions (empty when the degraded
    set is synthesized)}. A cell with several versions keeps one, drawn, so no two images of a set share a cell, and
    the release's severity of each cell is kept; a cell without a version stays pristine. Per class, exactly
    degraded_quota(cells, degraded_share) cells go to the degraded set, and across classes the severities of the
    cells taken follow those of the versions (_take_cells), every severity at least once where one swap within a
    class allows it (_cover_severities). The degraded-set cells are returned as their chosen version, or as their
    pristine image when the release has no degraded versions (the caller synthesizes them). stream (prepare.py: the
    phase's number) keeps two phases of one seed from drawing alike.
    """
    rng = np.random.default_rng([seed, 6, stream])
    versions = {}
    for image in images["degraded"]:
        versions.setdefault(image.cell_id, []).append(image)
    chosen = {cell: found[rng.integers(len(found))] for cell, found in sorted(versions.items())}
    synthesized = not images["degraded"]
    eligible = [image for image in images["pristine"] if synthesized or image.cell_id in chosen]
    severity = {image.cell_id: "" if synthesized else chosen[image.cell_id].severity for image in eligible}
    cells, available = Counter(image.label for image in images["pristine"]), Counter(i.label for i in eligible)
    class_need = {label: min(degraded_quota(count, degraded_share), available[label]) for label, count in cells.items()}
    to_degraded = _take_cells(eligible, severity, class_need, rng)
    _cover_severities(eligible, severity, to_degraded)
    pristine = [image for image in images["pristine"] if image.cell_id not in to_degraded]
    degraded = [image if synthesized else chosen[image.cell_id]
                for image in images["pristine"] if image.cell_id in to_degraded]
    return pristine, degraded


def _take_cells(eligible: list, severity: dict, class_need: dict, rng: np.random.Generator) -> list:
    """The cell ids taken for the degraded set, in the order taken: class_need[label] of each class.

    Cells are visited in a seeded order, rarest severity first, and taken while both their class and their severity
    still need some (severity quotas: class_quota of the versions' severities); classes still short then take their
    remaining cells whatever the severity.
    """
    severities = Counter(severity.values())
    total = sum(class_need.values())
    severity_need = class_quota(severities, total, minimum=int(total >= len(severities))) if total else {}
    draw = rng.random(len(eligible))
    order = sorted(range(len(eligible)), key=lambda k: (severities[severity[eligible[k].cell_id]],
                                                        severity[eligible[k].cell_id], draw[k]))
    need, taken = dict(class_need), {}
    for either_severity in (False, True):
        for k in order:
            image = eligible[k]
            if image.cell_id in taken or not need[image.label]:
                continue
            if not either_severity and severity_need[severity[image.cell_id]] <= 0:
                continue
            taken[image.cell_id] = image.label
            need[image.label] -= 1
            severity_need[severity[image.cell_id]] -= 1
    return list(taken)


def _cover_severities(eligible: list, severity: dict, to_degraded: list) -> None:
    """Swap in, within its class, one cell of each severity the degraded set lacks, for a cell whose severity the
    set holds more than once (in place; the class counts do not change)."""
    taken = Counter(severity[cell] for cell in to_degraded)
    label = {image.cell_id: image.label for image in eligible}
    for missing in sorted(set(severity.values()) - set(taken)):
        candidate = next((image for image in eligible if severity[image.cell_id] == missing
                          and any(label[cell] == image.label and taken[severity[cell]] > 1 for cell in to_degraded)),
                         None)
        if candidate is None:
            continue
        spare = next(cell for cell in to_degraded if label[cell] == candidate.label and taken[severity[cell]] > 1)
        to_degraded[to_degraded.index(spare)] = candidate.cell_id
        taken[severity[spare]] -= 1
        taken[missing] += 1


def check_patients_apart(phase_images: dict) -> None:
    """Raise ReleaseError when two phases share a patient (a model could meet the same patient's cells twice)."""
    patients = {phase: {image.patient_hash for found in images.values() for image in found}
                for phase, images in phase_images.items()}
    for first, second in combinations(sorted(patients), 2):
        shared = patients[first] & patients[second]
        if shared:
            raise ReleaseError(f"phases '{first}' and '{second}' share {len(shared)} patient(s), e.g. patient_hash "
                               f"{sorted(shared)[0]!r}; build them from splits with disjoint patients")


def lone_cells(phase: str, labels: Counter) -> list:
    """Warnings for classes with a single cell in a phase: scored in the degraded set only (assign_sets)."""
    lone = sorted(label for label, count in labels.items() if count == 1)
    return [f"phase '{phase}' has a single cell of class(es) {', '.join(lone)}: each is scored in the degraded set "
            "only, and the pristine set's macro averages skip them"] if lone else []


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
