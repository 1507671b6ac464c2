"""competition.yaml against CodaBench's v2 rules, the score keys, and the docker image tag everywhere."""
import copy
import re
from datetime import date, datetime

import pytest

from bundle_copies import REPO, copy_bundle
from competition_rules import (SILENT_DEFAULTS, check_competition, check_score_keys, check_time_limits,
                               effective_time_limit, load_competition)
from leaderboard_scores import LEADERBOARD_KEYS


@pytest.fixture(scope="module")
def root(small_bundle, trained_starting_kit, tmp_path_factory):
    return copy_bundle(small_bundle, tmp_path_factory.mktemp("yaml_root"), starting_kit=trained_starting_kit)


@pytest.fixture(scope="module")
def config():
    return load_competition(REPO / "competition.yaml")


def test_repository_yaml_follows_the_rules(config, root):
    assert check_competition(config, root) == []


def test_leaderboard_keys_equal_score_keys(config):
    assert check_score_keys(config, LEADERBOARD_KEYS) == []
    assert sorted(c["key"] for c in config["leaderboards"][0]["columns"]) == sorted(LEADERBOARD_KEYS)


def test_every_silent_default_is_written_out(config):
    assert set(SILENT_DEFAULTS["competition"]) <= set(config)
    for phase in config["phases"]:
        assert set(SILENT_DEFAULTS["phase"]) <= set(phase), phase["name"]
    assert config["show_detailed_results_in_leaderboard"] is False
    assert config["can_participants_make_submissions_public"] is False


def test_unquoted_dates_in_the_yaml_text_are_refused(tmp_path):
    text = (REPO / "competition.yaml").read_text()
    unquoted = text.replace('start: "2027-01-11 00:00:00"', "start: 2027-01-11 08:30:00")
    (tmp_path / "competition.yaml").write_text(unquoted)
    problems = check_competition(load_competition(tmp_path / "competition.yaml"), REPO)
    assert any("phases[0] (Development).start: 2027-01-11 08:30:00 is unquoted" in p and "midnight" in p
               and '"2027-01-11 08:30:00"' in p for p in problems), problems


def test_time_limits_without_a_queue(config):
    final = _phase(config, 1)
    assert config["queue"] is None and final["execution_time_limit"] > 600
    assert effective_time_limit(config, final) == 600
    assert effective_time_limit(config, final, default_queue_limit=1200) == 1200
    assert effective_time_limit(config, _phase(config, 0)) == _phase(config, 0)["execution_time_limit"] <= 600
    problems = check_time_limits(config)
    assert len(problems) == 1 and "phases[1] (Final): execution_time_limit 3600 s" in problems[0]
    assert "default queue stops every step at 600 s" in problems[0]
    with_queue = dict(config, queue="6f1b3c52-9a43-4d57-8a2b-0c1d2e3f4a5b")
    assert check_time_limits(with_queue) == [] and effective_time_limit(with_queue, final) == 3600


def _phase(config, i):
    return config["phases"][i]


BROKEN = {
    "version 1": (lambda c, r: c.update(version=1), "version: 1, expected 2"),
    "no leaderboards": (lambda c, r: c.pop("leaderboards"), "missing required key 'leaderboards'"),
    "date without time": (lambda c, r: _phase(c, 0).update(start="2027-01-11"), "is not a 'YYYY-MM-DD HH:MM:SS' date"),
    "unquoted datetime": (lambda c, r: _phase(c, 1).update(end=datetime(2027, 4, 11, 23, 59, 59)),
                          "phases[1] (Final).end: 2027-04-11 23:59:59 is unquoted"),
    "unquoted date": (lambda c, r: _phase(c, 0).update(start=date(2027, 1, 11)), "is unquoted, so YAML reads it"),
    "column title over 36": (lambda c, r: c["leaderboards"][0]["columns"][1].update(title="B" * 37),
                             "leaderboards[0].columns[1].title: 'BBBB"),
    "column key over 36": (lambda c, r: c["leaderboards"][0]["columns"][2].update(key="k" * 37),
                           "has 37 characters; CodaBench stores at most 36 (column key)"),
    "leaderboard title over 64": (lambda c, r: c["leaderboards"][0].update(title="T" * 65),
                                  "has 65 characters; CodaBench stores at most 64 (leaderboard title)"),
    "leaderboard key over 36": (lambda c, r: c["leaderboards"][0].update(key="m" * 37), "(leaderboard key)"),
    "silent default left out": (lambda c, r: c.pop("show_detailed_results_in_leaderboard"),
                                "'show_detailed_results_in_leaderboard' not set: CodaBench silently uses True"),
    "phase flag left out": (lambda c, r: _phase(c, 1).pop("hide_output"),
                            "phases[1] (Final): 'hide_output' not set: CodaBench silently uses False"),
    "queue not a vhost": (lambda c, r: c.update(queue="my-gpu-queue"), "queue: 'my-gpu-queue' is not a queue vhost"),
    "end equals next start": (lambda c, r: _phase(c, 0).update(end=_phase(c, 1)["start"]),
                              "starts exactly when"),
    "overlapping phases": (lambda c, r: _phase(c, 1).update(start="2027-02-01 00:00:00"), "phases must be sequential"),
    "open-ended first phase": (lambda c, r: _phase(c, 0).pop("end"), "needs an end date"),
    "reference as a plain file": (lambda c, r: c["tasks"][0].update(reference_data="reference_data/eval/reference.csv"),
                                  "is a plain file; reference a folder"),
    "missing folder": (lambda c, r: c["tasks"][1].update(input_data="input_data/final"), "folder 'input_data/final' not found"),
    "phase with unknown task": (lambda c, r: _phase(c, 1).update(tasks=[7]), "must list existing task indices"),
    "column without sorting": (lambda c, r: c["leaderboards"][0]["columns"][3].pop("sorting"), "missing 'sorting'"),
    "primary not at index 0": (lambda c, r: c["leaderboards"][0]["columns"][0].update(index=10),
                               "the primary score 'degraded_macro_f1' must be at index 0"),
    "docker latest": (lambda c, r: c.update(docker_image="docker.io/wbcbench/bundle:latest"), "uses ':latest'"),
    "docker untagged": (lambda c, r: c.update(docker_image="wbcbench/bundle"), "has no tag"),
    "metadata file in a program": (lambda c, r: (r / "ingestion_program" / "metadata").write_text("x"),
                                   "is named 'metadata'"),
    "empty page": (lambda c, r: (r / "pages" / "overview.md").write_text(""), "is empty"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_variants_are_caught(case, config, small_bundle, tmp_path):
    root = copy_bundle(small_bundle, tmp_path / "root")
    (root / "starting_kit").mkdir()
    (root / "starting_kit" / "model.py").write_text("")
    broken = copy.deepcopy(config)
    mutate, expected = BROKEN[case]
    mutate(broken, root)
    problems = check_competition(broken, root)
    assert any(expected in problem for problem in problems), problems


def test_score_key_mismatch_named(config):
    problems = check_score_keys(config, LEADERBOARD_KEYS[:-1] + ("fps",))
    assert "leaderboard column 'images_per_second' is not a key score.py writes" in problems[0]


def test_docker_tag_same_in_yaml_readme_and_dockerfile(config):
    tag = config["docker_image"]
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11\.\d+-slim-bookworm$", dockerfile, re.M)
    assert f'org.opencontainers.image.ref.name="{tag}"' in dockerfile
    installs = [line for line in dockerfile.splitlines() if "pip install" in line]
    assert installs and all("-r /tmp/requirements.txt -c /tmp/constraints.txt" in line for line in installs)
    assert "COPY requirements.txt constraints.txt /tmp/" in dockerfile
    checklist = (REPO / "ORGANIZERS.md").read_text()
    builds = re.findall(r"docker build\s+(?:\S+\s+)*?-t\s+(\S+)", checklist)
    assert builds, "ORGANIZERS.md has no `docker build -t TAG .` command (step 2)"
    assert set(builds) == {tag}
