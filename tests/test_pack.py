"""pack: refusals (demo data, unknown leaderboard key, v2 rule) and the submission zips."""
import zipfile

import pytest

from bundle_copies import copy_bundle
from pack import PackError, pack_bundle, pack_submissions


@pytest.fixture
def root(small_bundle, trained_starting_kit, tmp_path):
    return copy_bundle(small_bundle, tmp_path / "root", starting_kit=trained_starting_kit)


def test_refuses_demo_data_without_flag(root, tmp_path):
    with pytest.raises(PackError, match=r"synthetic demo data \(demo: true\).*--demo"):
        pack_bundle(root, tmp_path / "bundle.zip")
    assert not (tmp_path / "bundle.zip").exists()


def test_refuses_a_leaderboard_key_score_py_does_not_write(root, tmp_path):
    text = (root / "competition.yaml").read_text()
    (root / "competition.yaml").write_text(text.replace("key: pristine_macro_f1", "key: pristine_f1", 1))
    with pytest.raises(PackError) as error:
        pack_bundle(root, tmp_path / "bundle.zip", demo=True)
    assert "leaderboard column 'pristine_f1' is not a key score.py writes" in str(error.value)
    assert "score.py writes 'pristine_macro_f1', which no leaderboard column shows" in str(error.value)


def test_refuses_a_v2_rule_violation(root, tmp_path):
    (root / "scoring_program" / "metadata").write_text("leftover")
    with pytest.raises(PackError, match=r"scoring_program/metadata' is named 'metadata'"):
        pack_bundle(root, tmp_path / "bundle.zip", demo=True)


def test_good_pack_and_submission_zips(root, tmp_path):
    (root / "scoring_program" / "__pycache__").mkdir(exist_ok=True)
    (root / "scoring_program" / "__pycache__" / "x.pyc").write_bytes(b"0")
    bundle = pack_bundle(root, tmp_path / "dist" / "bundle.zip", demo=True)
    with zipfile.ZipFile(bundle) as archive:
        names = set(archive.namelist())
        assert {"competition.yaml", "logo.png", "scoring_program/score.py", "ingestion_program/metadata.yaml",
                "input_data/eval/pristine.zip", "reference_data/test/reference.csv"} <= names
        assert not [n for n in names if "__pycache__" in n or n.startswith("reference_data/manifest")]
    assert pack_bundle(root, tmp_path / "again.zip", demo=True).read_bytes() == bundle.read_bytes()

    (root / "baselines" / "resnet50").mkdir(parents=True)
    (root / "baselines" / "resnet50" / "metadata").write_text("description: an untrained baseline\n")
    messages = []
    written = pack_submissions(root, tmp_path / "dist", log=messages.append)
    assert [p.name for p in written] == ["starting_kit_submission.zip"]
    assert any("skipped baselines/resnet50: not trained" in m for m in messages)
    with zipfile.ZipFile(written[0]) as archive:
        assert {"model.py", "classifier.joblib"} <= set(archive.namelist())
