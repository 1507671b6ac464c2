"""The baselines' recipe and packing: a tiny real training run, its card and zip, the sampler, the curriculum."""
import json
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from PIL import Image
from safetensors.torch import load_file, save_file

import baseline_model
import member_store
from augment import Curriculum, TrainAugment
from leaderboard_scores import LEADERBOARD_KEYS
from pack_baseline import MODEL_SOURCE, pack_submission
from submission_loader import import_model_module
from baseline_card import kept_record
from recipe_settings import BASELINES, PROFILES, Member, Profile, member_names
from run_options import RunOptions
from train_baseline import members_to_train, train_baseline
from training_data import training_rows
from training_loop import WeightedDistributedSampler, class_weights
from validation import VALIDATION_KEYS, severity_scores

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def release(request):
    """The small synthetic release when tools/make_demo_release.py exists, else the real PBC cells."""
    if (REPO / "tools" / "make_demo_release.py").is_file():
        return request.getfixturevalue("small_release")
    return request.getfixturevalue("pbc_release")


@pytest.fixture(scope="module")
def trained(release, tmp_path_factory):
    """A few optimizer steps of the ResNet-50 recipe at 32 px on a small subset: a complete submission folder."""
    root = tmp_path_factory.mktemp("trained")
    options = RunOptions(release=release, baseline="resnet50", out=root / "resnet50", runs_dir=root / "runs",
                         pretrained="off", epochs=2, input_size=32, limit_train=48, limit_eval=24, max_steps=2,
                         workers=0)
    return train_baseline(options), options


def test_tiny_run_writes_card_weights_and_curve(trained):
    card, options = trained
    assert card == json.loads((options.out / "card.json").read_text())
    assert card["classes"] == list(baseline_model.CLASSES) and card["tta"] == "flip"
    (member,) = card["members"]
    assert member["architecture"] == "resnet50" and member["input_size"] == [3, 32, 32]
    assert member["training"]["imagenet_pretrained"] is False
    history = member["training"]["history"]
    assert [record["epoch"] for record in history] == [1, 2]
    assert history[1]["degradation_probability"] > history[0]["degradation_probability"]  # the curriculum ramps
    recipe_member = BASELINES["resnet50"]["cpu-quick"][0]  # its augmentation strength reaches the curriculum
    assert member["training"]["degradation_probability"] == recipe_member.degradation_probability
    assert member["training"]["jitter"] == recipe_member.jitter
    assert member["training"]["balance_power"] == recipe_member.balance_power  # its sampler's class balance
    assert history[1]["degradation_probability"] == pytest.approx(0.1 + (recipe_member.degradation_probability - 0.1)
                                                                  / 2)  # halfway up its 2-epoch ramp
    assert member["training"]["validation"]["degraded_macro_f1"] == max(r["degraded_macro_f1"] for r in history)
    assert member["training"]["kept_by"] == "best"
    assert member["crop_fraction"] == recipe_member.crop_fraction  # the recipe's crop
    assert card["recipe"]["curriculum"] is True and card["recipe"]["git_commit"]
    for key in ("pristine_macro_f1", "degraded_macro_f1", "severity_mild_macro_f1"):
        assert 0.0 <= card["evaluation"][key] <= 1.0
    assert card["evaluation"]["images"] == 48
    run_dir = Path(card["recipe"]["run_dir"]) / "resnet50"
    assert (run_dir / "training_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(json.loads((run_dir / "history.json").read_text())) == 2


def test_last_epoch_centre_crop_and_curriculum_off_reach_the_card_and_the_submission(release, tmp_path):
    """--keep-epoch last ships the last epoch whatever its validation score (no choice made on a test set),
    --crop-fraction goes into the member's card entry, which the finished model.py then evaluates with, and
    --curriculum off is recorded as no synthetic degradation, not as the recipe's probability."""
    options = RunOptions(release=release, baseline="resnet50", out=tmp_path / "resnet50", runs_dir=tmp_path / "runs",
                         pretrained="off", epochs=2, input_size=32, limit_train=48, limit_eval=24, max_steps=1,
                         workers=0, keep_epoch="last", crop_fraction=0.6, curriculum=False)
    card = train_baseline(options)
    (member,) = card["members"]
    assert card["recipe"]["curriculum"] is False and member["training"]["degradation_probability"] == 0.0
    assert all(record["degradation_probability"] == 0.0 for record in member["training"]["history"])
    assert member["crop_fraction"] == 0.6
    assert member["training"]["kept_by"] == "last" and member["training"]["kept_epoch"] == 2
    assert member["training"]["validation"] == member["training"]["history"][-1]
    assert 0.0 <= card["evaluation"]["degraded_macro_f1"] <= 1.0


def test_the_gpu_ensemble_trains_all_three_families_at_any_input_size(release, tmp_path):
    """The gpu profile, never run on a GPU here, at least runs end to end on the CPU: its three families (Swin's fixed
    img_size following --input-size), equal weights with none left out, d4 TTA, a submission that predicts."""
    options = RunOptions(release=release, baseline="ensemble", profile="gpu", out=tmp_path / "ensemble",
                         runs_dir=tmp_path / "runs", pretrained="off", epochs=1, input_size=32, limit_train=64,
                         limit_eval=16, max_steps=1, workers=0)
    card = train_baseline(options)
    assert [member["architecture"] for member in card["members"]] == [
        "swin_tiny_patch4_window7_224", "convnextv2_tiny", "resnet50"]
    assert card["members"][0]["model_kwargs"] == {"img_size": 32}
    assert all(member["input_size"] == [3, 32, 32] for member in card["members"])
    assert card["left_out"] == [] and card["tta"] == "d4"
    assert all(np.isfinite(member["training"]["history"][0]["train_loss"]) for member in card["members"])
    assert 0.0 <= card["evaluation"]["degraded_macro_f1"] <= 1.0


def test_too_few_images_for_one_batch_is_refused_not_trained_on_silently(release, tmp_path):
    """The gpu profile's batch is 64: 32 images would make epochs of no step, and a card of untrained weights."""
    options = RunOptions(release=release, baseline="resnet50", profile="gpu", out=tmp_path / "resnet50",
                         runs_dir=tmp_path / "runs", pretrained="off", epochs=1, input_size=32, limit_train=32,
                         limit_eval=16, workers=0)
    with pytest.raises(ValueError, match="32 training images make no full batch of 64 .*--limit-train"):
        train_baseline(options)
    assert not (tmp_path / "resnet50" / "card.json").exists()


@pytest.fixture
def tiny_runs(release, monkeypatch):
    """Two throwaway recipes of resnet50 (one epoch, 32 px resnet18s): `tiny`, two members whose seeds differ by 3,
    and `tiny-alone`, its first member alone; returns the options every such run shares."""
    tiny = Profile(epochs=1, batch_size=8, tta="none", workers=0, ramp_epochs=1)
    monkeypatch.setitem(PROFILES, "tiny", tiny)
    monkeypatch.setitem(BASELINES["resnet50"], "tiny", [Member("resnet18", 32), Member("resnet18", 32, seed_offset=3)])
    monkeypatch.setitem(PROFILES, "tiny-alone", tiny)
    monkeypatch.setitem(BASELINES["resnet50"], "tiny-alone", [Member("resnet18", 32)])
    return {"release": release, "baseline": "resnet50", "pretrained": "off", "limit_eval": 8, "max_steps": 2,
            "workers": 0, "keep_epoch": "last", "evaluate": False}


def test_a_member_with_a_seed_offset_is_the_network_its_seed_trains_alone(tiny_runs, tmp_path):
    """A deep ensemble's members differ only in their seeds: the second member of a run seeded 0 (offset 3) must be
    the network a one-member run seeded 3 trains, and differ from the first, so one seed's members are not copies
    and a member can be measured on its own."""
    common = tiny_runs  # each run below names its own runs folder: nothing is reused
    pair = train_baseline(RunOptions(out=tmp_path / "pair", runs_dir=tmp_path / "runs_pair", profile="tiny", seed=0,
                                     **common))
    alone = train_baseline(RunOptions(out=tmp_path / "alone", runs_dir=tmp_path / "runs_alone", profile="tiny-alone",
                                      seed=3, **common))
    assert [member["training"]["seed"] for member in pair["members"]] == [0, 3]
    assert alone["members"][0]["training"]["seed"] == 3
    first, second = (load_file(tmp_path / "pair" / member["weights"]) for member in pair["members"])
    solo = load_file(tmp_path / "alone" / "weights_resnet18.safetensors")
    for name, tensor in solo.items():
        torch.testing.assert_close(second[name], tensor, rtol=0, atol=1e-6, msg=f"{name} differs from its seed's run")
    assert max((first[name].float() - second[name].float()).abs().max().item() for name in solo) > 1e-3


def test_a_member_an_earlier_run_trained_is_reused_and_retrain_makes_the_same_network(tiny_runs, tmp_path):
    """The ensemble's first member is the efficientnet_lite0 baseline: a run that would train a member an earlier run
    of the same runs folder stored takes its weights and history instead, only that member, and --retrain trains it
    again into the very same network (so reusing changes no result). A member whose seed differs is trained."""
    common = {**tiny_runs, "runs_dir": tmp_path / "runs"}
    alone = train_baseline(RunOptions(out=tmp_path / "alone", profile="tiny-alone", **common))
    pair = train_baseline(RunOptions(out=tmp_path / "pair", profile="tiny", **common))
    first, second = pair["members"]
    assert alone["members"][0]["training"]["reused_from"] is None
    assert first["training"]["reused_from"] and second["training"]["reused_from"] is None
    assert first["training"]["history"] == alone["members"][0]["training"]["history"]
    assert ((tmp_path / "pair" / first["weights"]).read_bytes()
            == (tmp_path / "alone" / "weights_resnet18.safetensors").read_bytes())
    run_history = Path(pair["recipe"]["run_dir"]) / "resnet18_1" / "history.json"
    assert json.loads(run_history.read_text()) == first["training"]["history"]  # as if trained in this run
    again = train_baseline(RunOptions(out=tmp_path / "again", profile="tiny-alone", reuse_members=False, **common))
    assert again["members"][0]["training"]["reused_from"] is None
    stored = load_file(tmp_path / "alone" / "weights_resnet18.safetensors")
    for name, tensor in load_file(tmp_path / "again" / "weights_resnet18.safetensors").items():
        torch.testing.assert_close(tensor, stored[name], rtol=0, atol=0, msg=f"{name}: retraining made another network")
    other_seed = train_baseline(RunOptions(out=tmp_path / "seed1", profile="tiny-alone", seed=1, **common))
    assert other_seed["members"][0]["training"]["reused_from"] is None


def test_the_member_key_changes_with_an_image_the_threads_or_the_start(release, tmp_path):
    """What decides a member's weights is in its key; what the hub would decide makes it unstorable."""
    member, profile = Member("resnet18", 32), PROFILES["cpu-quick"]
    options = RunOptions(release=release, pretrained="off")
    rows = training_rows(release).head(6)
    validation = (rows.head(2), rows.tail(2))
    key = member_store.member_key(member, profile, options, rows, validation, torch.device("cpu"))
    assert key == member_store.member_key(member, profile, options, rows.copy(), validation, torch.device("cpu"))
    changed = rows.copy()
    changed.loc[5, "image_bytes"] = changed.loc[5, "image_bytes"][:-1] + b"\x00"
    assert key != member_store.member_key(member, profile, options, changed, validation, torch.device("cpu"))
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(threads + 1)
        assert key != member_store.member_key(member, profile, options, rows, validation, torch.device("cpu"))
    finally:
        torch.set_num_threads(threads)
    checkpoint = tmp_path / "start.safetensors"
    save_file({"w": torch.zeros(1)}, checkpoint)
    assert key != member_store.member_key(member, profile, RunOptions(release=release, pretrained="off",
                                                                      init=checkpoint),
                                          rows, validation, torch.device("cpu"))
    assert member_store.storable(member, options, world=1) and not member_store.storable(member, options, world=2)
    assert not member_store.storable(member, RunOptions(release=release, pretrained="auto"), world=1)
    assert member_store.storable(BASELINES["efficientnet_lite0"]["cpu-pretrained"][0],
                                 RunOptions(release=release, pretrained="auto"), world=1)


@pytest.mark.parametrize("crop", [0.0, 1.2])
def test_crop_fraction_outside_0_1_is_refused(tmp_path, crop):
    with pytest.raises(ValueError, match=f"--crop-fraction must be in \\(0, 1\\], got {crop}"):
        members_to_train(RunOptions(release=tmp_path, crop_fraction=crop))


def test_kept_record_is_the_best_or_the_last_epoch():
    history = [{"epoch": 1, "degraded_macro_f1": 0.5}, {"epoch": 2, "degraded_macro_f1": 0.7},
               {"epoch": 3, "degraded_macro_f1": 0.6}]
    assert kept_record(history, "best")["epoch"] == 2
    assert kept_record(history, "last")["epoch"] == 3


def test_zip_has_model_card_and_weights_at_its_root_and_runs_unpacked(trained, tmp_path):
    card, options = trained
    zip_path = pack_submission(options.out, tmp_path / "dist" / "resnet50_submission.zip")
    with zipfile.ZipFile(zip_path) as archive:
        names = set(archive.namelist())
        assert names == {"model.py", "card.json", "weights_resnet50.safetensors", "requirements.txt", "metadata"}
        assert archive.read("model.py") == MODEL_SOURCE.read_bytes()
        metadata = yaml.safe_load(archive.read("metadata"))
        assert isinstance(metadata, dict) and "command" not in metadata  # run by the ingestion program
        archive.extractall(tmp_path / "unpacked")
    model = import_model_module(tmp_path / "unpacked" / "model.py").Model()
    model.load()
    from PIL import Image

    probabilities = model.predict(Image.new("RGB", (368, 370), (220, 200, 210)))
    assert len(probabilities) == 13 and abs(sum(probabilities) - 1) < 1e-5


def test_pack_refuses_an_untrained_folder_with_the_command(tmp_path):
    (tmp_path / "ensemble").mkdir()
    with pytest.raises(FileNotFoundError, match="`make ensemble`"):
        pack_submission(tmp_path / "ensemble", tmp_path / "ensemble.zip")


@pytest.mark.parametrize("baseline", ["resnet50", "ensemble", "efficientnet_lite0"])
def test_committed_requirements_match_the_pinned_runtime(baseline):
    pins = dict(line.split("==") for line in (REPO / "requirements.txt").read_text().splitlines()
                if "==" in line and not line.startswith("#"))
    folder = REPO / "baselines" / baseline
    for line in (folder / "requirements.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            assert pins[name] == version, f"{folder}/requirements.txt pins {line}, the bundle pins {pins[name]}"
    assert "command" not in yaml.safe_load((folder / "metadata").read_text())


def test_weighted_sampler_splits_one_draw_across_ranks_and_balances_classes():
    labels = np.array(["SNE"] * 900 + ["BA"] * 90 + ["PC"] * 10)
    weights = class_weights(labels, power=1.0)
    ranks = [WeightedDistributedSampler(weights, 3000, rank, 3, seed=1) for rank in range(3)]
    for sampler in ranks:
        sampler.set_epoch(4)
    draws = [list(sampler) for sampler in ranks]
    assert [len(d) for d in draws] == [len(s) for s in ranks] == [1000, 1000, 1000]
    whole = WeightedDistributedSampler(weights, 3000, 0, 1, seed=1)
    whole.set_epoch(4)
    merged = [index for triple in zip(*draws) for index in triple]
    assert merged == list(whole)  # the ranks' slices interleave back into the single-process draw
    shares = Counter(labels[merged])
    assert all(800 < shares[label] < 1200 for label in ("SNE", "BA", "PC"))  # balanced, not 90/9/1 %
    whole.set_epoch(5)
    assert list(whole) != merged  # a new draw each epoch


def test_curriculum_ramps_then_holds_and_switches_off():
    curriculum = Curriculum(ramp_epochs=4, start_probability=0.1, probability=0.5, start_strength=0.2)
    stages = [curriculum.at(epoch) for epoch in range(7)]
    assert stages[0] == pytest.approx((0.1, 0.2))
    assert stages[4] == stages[6] == pytest.approx((0.5, 1.0))
    assert all(a[0] < b[0] and a[1] < b[1] for a, b in zip(stages[:4], stages[1:5]))
    assert Curriculum(enabled=False).at(3) == (0.0, 0.0)
    assert Curriculum(ramp_epochs=0, probability=0.5).at(0) == (0.5, 1.0)  # no ramp: full from the first epoch


def test_severity_weights_draw_the_heavy_severities_more_often(monkeypatch):
    """The curriculum draws mild, moderate and extreme in the member's proportions (here 1:1:2)."""
    import degrade

    drawn = []
    monkeypatch.setattr(degrade, "apply", lambda image, params: image)
    monkeypatch.setattr(degrade, "sample_params", lambda severity, rng, strength: drawn.append(severity) or {})
    augment = TrainAugment((8, 8), "bicubic", baseline_model.image_to_array, severity_weights=(1, 1, 2))
    image = Image.new("RGB", (16, 16), (200, 150, 180))
    for seed in range(800):
        augment(image, seed, probability=1.0, strength=1.0)
    counts = {severity: drawn.count(severity) for severity in ("mild", "moderate", "extreme")}
    assert 150 < counts["mild"] < 250 and 150 < counts["moderate"] < 250 and 330 < counts["extreme"] < 470


def test_jitter_zero_keeps_colours_and_jitter_one_changes_them():
    """A flat smear colour survives the geometry exactly (the affine fills with the border colour), so any change
    of colour is the stain and colour jitter's: none at jitter 0, some at the recipe's default."""
    from PIL import Image

    image = Image.new("RGB", (120, 120), (200, 150, 180))
    plain = TrainAugment((32, 32), "bicubic", baseline_model.image_to_array, 0.6, jitter=0)
    jittered = TrainAugment((32, 32), "bicubic", baseline_model.image_to_array, 0.6)
    for seed in range(4):
        colours = plain(image, seed, probability=0.0, strength=0.0)
        assert colours.shape == (3, 32, 32)
        assert np.allclose(colours.numpy(), np.array([200, 150, 180]).reshape(3, 1, 1) / 255, atol=1e-5)
        assert not np.allclose(jittered(image, seed, probability=0.0, strength=0.0).numpy(), colours.numpy(),
                               atol=1e-3)


def test_validation_figures_carry_the_leaderboards_names():
    """The recipe's per-epoch figures are named as scores.json names them (scoring_program owns the keys)."""
    assert set(VALIDATION_KEYS) <= set(LEADERBOARD_KEYS)
    scores = severity_scores(["LY", "SNE"], ["LY", "LY"], ["LY", "SNE"], ["LY", "SNE"], ["mild", "extreme"])
    assert tuple(scores) == VALIDATION_KEYS and scores["severity_mild_macro_f1"] == 1.0
    assert scores["severity_moderate_macro_f1"] is None  # no moderate image: no figure, not a zero


def test_members_of_one_architecture_get_numbered_files():
    """Two members of one network must not overwrite each other's weights; a lone network keeps its plain name."""
    members = BASELINES["ensemble"]["cpu-pretrained"] + BASELINES["resnet50"]["cpu-quick"]
    assert member_names(members) == ["tf_efficientnet_lite0_1", "tf_efficientnet_lite0_2", "tf_efficientnet_lite0_3",
                                     "resnet50"]
