"""pack: one refusal per broken variant, the organizer's fields and time budgets in the bundle, submission zips."""
import json
import subprocess
import sys
import zipfile

import pytest
import yaml

from bundle_copies import FILLED_ORGANIZER, REPO, copy_bundle, make_release_ready
from competition_rules import check_competition
from pack import PackError, default_budget, pack_bundle, pack_submissions, write_budgets

QUEUE = FILLED_ORGANIZER["queue"]


@pytest.fixture
def root(small_bundle, trained_starting_kit, tmp_path):
    return copy_bundle(small_bundle, tmp_path / "root", starting_kit=trained_starting_kit)


@pytest.fixture
def ready(root):
    """A bundle folder an organizer has finished: real-data manifest, private seed, organizer.yaml filled."""
    return make_release_ready(root)


def refusal(root, tmp_path, **options) -> str:
    with pytest.raises(PackError) as error:
        pack_bundle(root, tmp_path / "bundle.zip", **options)
    assert not (tmp_path / "bundle.zip").exists()
    return str(error.value)


def read_bundle(path):
    with zipfile.ZipFile(path) as archive:
        return {name: archive.read(name) for name in archive.namelist()}


def test_refuses_demo_data_without_flag(root, tmp_path):
    assert "synthetic demo data (demo: true); build it from the release" in refusal(root, tmp_path)


def test_refuses_organizer_placeholders_without_flag(root, tmp_path):
    message = refusal(root, tmp_path)
    assert ("organizer.yaml: still placeholders: organizers, contact_email, endorsement, conflict_of_interest, "
            "ethics_approval, prizes, final_test_set, development_start, final_start, final_end, results_announced, "
            "lifecycle, publication_policy, annotation, software_repository, queue, worker, worker_images_per_second; "
            "fill them (or pass "
            "--demo") in message


def test_refuses_seed_zero_on_real_data(ready, tmp_path):
    make_release_ready(ready, seed=0)
    assert "prepared with seed 0, which anyone can replay" in refusal(ready, tmp_path)


def test_refuses_malformed_organizer_values(ready, tmp_path):
    make_release_ready(ready, contact_email="nobody", queue="gpu-queue", final_end="2027-04-15",
                       worker_images_per_second=-3)
    message = refusal(ready, tmp_path)
    assert "contact_email: 'nobody' is not an e-mail address" in message
    assert "queue: 'gpu-queue' is neither a queue vhost" in message
    assert "final_end: '2027-04-15' is not a quoted 'YYYY-MM-DD HH:MM:SS' date" in message
    assert "worker_images_per_second: -3 is not a positive number" in message


def _reference_rows(root, phase):
    path = root / "reference_data" / phase / "reference.csv"
    lines = path.read_text().splitlines()
    return path, lines[0], [line.split(",") for line in lines[1:]]


def test_refuses_a_cell_scored_twice_in_a_phase(ready, tmp_path):
    path, header, rows = _reference_rows(ready, "eval")
    column = header.split(",").index("cell_id")
    pristine = next(row for row in rows if row[1] == "pristine")
    degraded = next(row for row in rows if row[1] == "degraded")
    degraded[column] = pristine[column]
    path.write_text("\n".join([header] + [",".join(row) for row in rows]) + "\n")
    assert (f"cell_id '{pristine[column]}' (set degraded) is also the source of image_id '{pristine[0]}' (set "
            "pristine); each cell must be scored once per phase") in refusal(ready, tmp_path)


def test_refuses_a_cell_in_two_phases(ready, tmp_path):
    column = _reference_rows(ready, "eval")[1].split(",").index("cell_id")
    shared = _reference_rows(ready, "eval")[2][0][column]
    path, header, rows = _reference_rows(ready, "test")
    rows[0][column] = shared
    path.write_text("\n".join([header] + [",".join(row) for row in rows]) + "\n")
    assert (f"{path}: 1 cell(s) also in {ready / 'reference_data' / 'eval' / 'reference.csv'}, e.g. cell_id "
            f"'{shared}'; each cell belongs to one phase") in refusal(ready, tmp_path)


def test_budgets_only_writes_what_the_bundle_carries(root, tmp_path):
    """make bundle-data's step: the demo's input folders get the budget the packed bundle carries (default queue)."""
    assert write_budgets(root, demo=True) == {"input_data/eval": 540, "input_data/test": 540}
    bundle = read_bundle(pack_bundle(root, tmp_path / "bundle.zip", demo=True))
    for phase in ("eval", "test"):
        written = (root / "input_data" / phase / "time_budget.json").read_bytes()
        assert json.loads(written) == json.loads(bundle[f"input_data/{phase}/time_budget.json"]) == {"seconds": 540}


def test_a_refusal_removes_an_earlier_bundle(root, tmp_path):
    (tmp_path / "bundle.zip").write_bytes(b"an earlier --demo bundle")
    refusal(root, tmp_path)  # asserts bundle.zip is gone


def test_worker_rate_may_be_quoted_and_the_final_set_must_match_the_data(ready, tmp_path):
    make_release_ready(ready, worker_images_per_second="50")
    assert pack_bundle(ready, tmp_path / "b.zip").is_file()
    make_release_ready(ready, final_test_set="a private test set held by the organizers")
    assert ("organizer.yaml final_test_set says 'a private test set held by the organizers', but the Final phase "
            "was built from the release's split 'phase2_test' (reference_data/manifest.json)") in refusal(ready,
                                                                                                          tmp_path)
    make_release_ready(ready, final_test_set="our own cells")
    assert "organizer.yaml final_test_set: 'our own cells' is neither of" in refusal(ready, tmp_path)


def test_refuses_a_budget_not_below_the_limit(ready, tmp_path):
    message = refusal(ready, tmp_path, time_budgets={"Final": 3600})
    assert ("phase Final: time budget 3600 s (--time-budget) is not below its 3600 s limit by at least 30 s: the "
            "worker would stop the ingestion before it writes its report; use at most 3570 s") in message


def test_default_queue_caps_the_final_phase_and_a_stale_budget_file(ready, tmp_path):
    make_release_ready(ready, queue="default")
    (ready / "input_data" / "test" / "time_budget.json").write_text('{"seconds": 3300}')
    message = refusal(ready, tmp_path)
    assert "phases[1] (Final): execution_time_limit 3600 s, but competition.yaml names no queue" in message
    assert (f"phase Final: time budget 3300 s ({ready / 'input_data' / 'test' / 'time_budget.json'}) is not below "
            "its 600 s limit, capped by the default queue") in message
    assert pack_bundle(ready, tmp_path / "b.zip", default_queue_limit=3600).is_file()  # an instance allowing more


def test_refuses_a_phase_too_big_for_its_worker(ready, tmp_path):
    make_release_ready(ready, worker_images_per_second=0.04)  # 80 images: 30 s + 2 x 80 / 0.04 = 4030 s
    message = refusal(ready, tmp_path)
    assert ("phase Final: 80 images at 0.04 images/s on the organizer's worker (organizer.yaml) need about 4030 s "
            "with a 2x margin, more than its 3240 s time budget (limit 3600 s; about 64 images fit); attach a GPU "
            "queue (organizer.yaml 'queue') or make the phase smaller (tools/prepare.py --phase-size test=N)"
            ) in message


def test_refuses_an_unknown_page_field(ready, tmp_path):
    page = ready / "pages" / "data.md"
    page.write_text(page.read_text() + "\nWrite to {{ contact_mail }}.\n")
    assert "pages/data.md: unknown field(s) {{ contact_mail }}" in refusal(ready, tmp_path)


def test_refuses_a_leaderboard_key_score_py_does_not_write(root, tmp_path):
    text = (root / "competition.yaml").read_text()
    (root / "competition.yaml").write_text(text.replace("key: pristine_macro_f1", "key: pristine_f1", 1))
    message = refusal(root, tmp_path, demo=True)
    assert "leaderboard column 'pristine_f1' is not a key score.py writes" in message
    assert "score.py writes 'pristine_macro_f1', which no leaderboard column shows" in message


def test_refuses_a_v2_rule_violation(root, tmp_path):
    (root / "scoring_program" / "metadata").write_text("leftover")
    assert "scoring_program/metadata' is named 'metadata'" in refusal(root, tmp_path, demo=True)


def test_command_line_refusal_is_one_line_per_reason(ready, tmp_path):
    make_release_ready(ready, seed=0, contact_email="nobody")
    command = [sys.executable, str(REPO / "tools" / "pack.py"), "--root", str(ready), "--out",
               str(tmp_path / "bundle.zip"), "--no-submissions"]
    run = subprocess.run(command, capture_output=True, text=True, timeout=120)
    assert run.returncode == 2
    lines = run.stderr.splitlines()
    assert lines[0] == "pack: refused: the bundle is not ready for upload:"
    assert len(lines) == 3 and all(line.startswith("  - ") for line in lines[1:]), run.stderr


def test_organizer_fields_and_budgets_reach_the_bundle(ready, tmp_path):
    files = read_bundle(pack_bundle(ready, tmp_path / "bundle.zip"))
    config = yaml.safe_load(files["competition.yaml"])
    assert config["queue"] == QUEUE and config["contact_email"] == "wbc@example.org"
    assert config["reward"] == "No prizes."
    development, final = config["phases"]
    assert (development["start"], development["end"]) == ("2027-02-01 00:00:00", "2027-04-01 11:59:59")
    assert (final["start"], final["end"]) == ("2027-04-01 12:00:00", "2027-04-15 23:59:59")  # strings: quoted
    (ready / "competition.yaml").write_bytes(files["competition.yaml"])
    assert check_competition(config, ready) == []
    assert json.loads(files["input_data/eval/time_budget.json"]) == {"seconds": default_budget(600)} == {"seconds": 540}
    assert json.loads(files["input_data/test/time_budget.json"]) == {"seconds": 3240}
    pages = {name: data.decode() for name, data in files.items() if name.startswith("pages/")}
    assert not [name for name, text in pages.items() if "{{" in text or "TODO" in text]
    assert "wbc@example.org" in pages["pages/overview.md"] and "No prizes." in pages["pages/terms.md"]
    assert "2027-04-01 12:00:00" in pages["pages/overview.md"]
    assert ("repository https://example.org/bundle, version not recorded (the bundle was packed outside a git "
            "checkout)") in pages["pages/overview.md"]


def test_demo_bundle_shows_placeholders_and_fits_the_default_queue(root, tmp_path):
    notes = []
    files = read_bundle(pack_bundle(root, tmp_path / "bundle.zip", demo=True, log=notes.append))
    config = yaml.safe_load(files["competition.yaml"])
    assert config["queue"] is None and [p["execution_time_limit"] for p in config["phases"]] == [600, 600]
    assert any("execution_time_limit 3600 s lowered to the default queue's 600 s" in note for note in notes)
    assert json.loads(files["input_data/test/time_budget.json"]) == {"seconds": 540}
    overview = files["pages/overview.md"].decode()
    assert "TODO: names, roles and affiliations" in overview and "{{" not in overview


def test_good_pack_and_submission_zips(root, tmp_path):
    (root / "scoring_program" / "__pycache__").mkdir(exist_ok=True)
    (root / "scoring_program" / "__pycache__" / "x.pyc").write_bytes(b"0")
    bundle = pack_bundle(root, tmp_path / "dist" / "bundle.zip", demo=True, log=lambda note: None)
    with zipfile.ZipFile(bundle) as archive:
        names = set(archive.namelist())
        assert {"competition.yaml", "logo.png", "scoring_program/score.py", "ingestion_program/metadata.yaml",
                "input_data/eval/pristine.zip", "reference_data/test/reference.csv"} <= names
        assert not [n for n in names if "__pycache__" in n or n.startswith("reference_data/manifest")]
        assert "organizer.yaml" not in names
    again = pack_bundle(root, tmp_path / "again.zip", demo=True, log=lambda note: None)
    assert again.read_bytes() == bundle.read_bytes()

    (root / "baselines" / "resnet50").mkdir(parents=True)
    (root / "baselines" / "resnet50" / "metadata").write_text("description: an untrained baseline\n")
    messages = []
    written = pack_submissions(root, tmp_path / "dist", log=messages.append)
    assert [p.name for p in written] == ["starting_kit_submission.zip"]
    assert any("skipped baselines/resnet50: not trained" in m for m in messages)
    with zipfile.ZipFile(written[0]) as archive:
        assert {"model.py", "classifier.joblib"} <= set(archive.namelist())
