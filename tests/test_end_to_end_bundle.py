"""Issue 6 done-when: prepare -> pack -> codabench_run on the packed bundle, on demo data and on the real PBC cells."""
import zipfile

from bundle_copies import copy_bundle, make_release_ready
from codabench_run import run_submission
from competition_rules import load_competition, referenced_paths
from leaderboard_scores import LEADERBOARD_KEYS
from pack import pack_bundle, pack_submissions
from prepare import prepare


def _pack_and_run(root, phase, tmp_path, demo):
    bundle = pack_bundle(root, tmp_path / "dist" / "bundle.zip", demo=demo)
    with zipfile.ZipFile(bundle) as archive:
        names = archive.namelist()
    assert "competition.yaml" in names
    for path in referenced_paths(load_competition(root / "competition.yaml")):
        assert path in names or any(name.startswith(path + "/") for name in names), path
    [kit_zip] = [p for p in pack_submissions(root, tmp_path / "dist", log=lambda m: None)
                 if p.name == "starting_kit_submission.zip"]
    result = run_submission(kit_zip, phase, bundle, workdir=tmp_path / "run")
    assert result.status == "Finished", (result.reason, result.scoring and result.scoring.stderr_text(),
                                         result.prediction.stderr_text()[-2000:])
    assert list(result.scores) == list(LEADERBOARD_KEYS)
    return result


def test_demo_chain_final_phase_from_the_packed_zip(small_bundle, trained_starting_kit, tmp_path):
    root = copy_bundle(small_bundle, tmp_path / "root", starting_kit=trained_starting_kit)
    _pack_and_run(root, "test", tmp_path, demo=True)


def test_pbc_chain(pbc_release, trained_starting_kit, tmp_path):
    prepare(pbc_release, tmp_path / "data", seed=7, phases={"eval": "phase2_eval", "test": "phase2_eval"}, limit=40)
    root = make_release_ready(copy_bundle(tmp_path / "data", tmp_path / "root", starting_kit=trained_starting_kit),
                              final_test_set="a private test set held by the organizers")  # Final from phase2_eval
    result = _pack_and_run(root, "eval", tmp_path, demo=False)  # real cells, organizer.yaml filled: no --demo
    assert result.detailed_results is not None
