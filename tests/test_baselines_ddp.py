"""Multi-process training: torchrun starts two CPU (gloo) ranks of train_baseline.py; rank 0 alone writes."""
import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_two_gloo_ranks_train_one_step_and_rank_0_writes_the_submission(small_release, tmp_path):
    # train_baseline.main() as torchrun runs it, with a tiny timm network in place of the ResNet-50 member: the
    # recipe's settings are data, so the launcher swaps the member in recipe_settings.
    launcher = tmp_path / "launch.py"
    launcher.write_text(textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {str(REPO / "baselines")!r})
        import recipe_settings
        import train_baseline
        recipe_settings.BASELINES["resnet50"]["cpu-quick"] = [recipe_settings.Member("test_resnet", 32)]
        train_baseline.main()
    """))
    out, runs = tmp_path / "submission", tmp_path / "runs"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(launcher),
               str(small_release), "--baseline", "resnet50", "--profile", "cpu-quick", "--out", str(out),
               "--runs-dir", str(runs), "--pretrained", "off", "--epochs", "1", "--limit-train", "64",
               "--limit-eval", "16", "--max-steps", "1", "--workers", "0", "--threads", "1", "--no-evaluate"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=240,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    card = json.loads((out / "card.json").read_text())
    assert card["recipe"]["world_size"] == 2 and card["recipe"]["device"] == "cpu"
    (member,) = card["members"]
    assert member["architecture"] == "test_resnet" and [r["epoch"] for r in member["training"]["history"]] == [1]
    assert sorted(path.name for path in out.iterdir()) == ["card.json", "metadata", "model.py", "requirements.txt",
                                                           "weights_test_resnet.safetensors"]
    # Rank 0 validates and writes: one validation record printed, not one per rank.
    assert result.stderr.count('"epoch": 1,') == 1
