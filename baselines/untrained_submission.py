"""A baseline submission folder as the recipe leaves it, but with random weights: for timings and for model.py's tests.

A network's speed does not depend on its weights, so the benches time these instead of trained baselines (which need
the release and hours of training), and the tests of the baselines' model.py use small ones. The card's entries,
weights file names and networks are the recipe's own (baseline_card.py, recipe_settings.py).
"""
from pathlib import Path

import torch
from safetensors.torch import save_file

import baseline_model
from baseline_card import build_member_network, prediction_entry, write_card
from pack_baseline import install_submission_files
from recipe_settings import Member, member_names


def write_untrained_submission(folder: Path, baseline: str, members: list[Member], tta: str, seed: int = 0) -> Path:
    """Write baselines/<baseline>'s files (model.py, requirements.txt, metadata), a card for `members` with `tta`, and
    each member's randomly initialised weights (torch seed `seed` + its index) into folder; returns folder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    entries = []
    for index, (member, name) in enumerate(zip(members, member_names(members))):
        torch.manual_seed(seed + index)
        network = build_member_network(member)
        entries.append(prediction_entry(member, f"weights_{name}.safetensors", network))
        save_file(network.state_dict(), folder / entries[-1]["weights"])
    write_card(folder, {"baseline": baseline, "classes": list(baseline_model.CLASSES), "tta": tta, "members": entries,
                        "make_command": f"make {baseline}"})
    install_submission_files(folder, baseline)
    return folder
