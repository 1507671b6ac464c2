"""Every command the documentation gives is run by the suite, at the smallest size that still runs its real code.

RUN_BY is the one list the documentation and the tests share: each command key the docs name (read from their bash
blocks and inline code by tests/documented_commands.py) maps to the test that runs it, in this file or elsewhere. A
new command in the docs without an entry turns the suite red; so does an entry whose test is gone. The Makefile
targets run for real in a copy of the repository, `make demo` included, whose leaderboard row must be the README's.
"""
import json
import os
import re
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from documented_commands import documented_commands, documents
from recipe_settings import DEFAULT_PROFILES

REPO = Path(__file__).resolve().parents[1]
THIS = "tests/test_documented_commands.py"
# command key -> the test that runs it ("file::test"). Tests elsewhere run the same entry point (the script's main()
# or the script as a subprocess) with small inputs.
RUN_BY = {
    "make demo": f"{THIS}::test_make_demo_prints_the_readmes_row",
    "make demo-timm": f"{THIS}::test_make_demo_timm_prints_the_pages_row",
    "make check": f"{THIS}::test_make_check_runs_a_zip_through_both_steps",
    "make bench": f"{THIS}::test_make_bench_runs_the_bench_scripts",
    "make resnet50": f"{THIS}::test_make_baseline_targets_train_zip_and_dry_run",
    "make ensemble": f"{THIS}::test_make_baseline_targets_train_zip_and_dry_run",
    "make efficientnet_lite0": f"{THIS}::test_make_baseline_targets_train_zip_and_dry_run",
    "make baseline-zips": f"{THIS}::test_make_baseline_targets_train_zip_and_dry_run",
    "make ranking-report": f"{THIS}::test_make_baseline_targets_train_zip_and_dry_run",
    "make venv": f"{THIS}::test_the_environment_targets_are_up_to_date",
    "make organizer-venv": f"{THIS}::test_the_environment_targets_are_up_to_date",
    "make test": f"{THIS}::test_ci_runs_the_readmes_test_command",
    "ingestion_program/ingestion.py": "tests/test_ingestion_runs.py::test_label_model_writes_sorted_predictions_and_report",
    "scoring_program/score.py": "tests/test_scoring_failures.py::test_fails_with_exact_message",
    "tools/prepare.py": "tests/test_prepare_phases.py::test_phase_size_is_class_stratified_each_cell_once",
    "tools/pack.py": "tests/test_pack.py::test_command_line_refusal_is_one_line_per_reason",
    "tools/codabench_run.py": "tests/test_codabench_run.py::"
                              "test_a_prediction_step_where_the_submissions_own_program_ran_is_refused",
    "tools/rank.py": "tests/test_ranking.py::test_command_line_with_rank_stability",
    "tools/ranking_report.py": "tests/test_ranking_report.py::test_command_writes_the_page_and_its_figures",
    "tools/set_share.py": f"{THIS}::test_set_share_prints_the_widths_table",
    "starting_kit/train.py": f"{THIS}::test_the_kits_trainers_from_their_command_lines",
    "starting_kit_timm/train.py": f"{THIS}::test_the_kits_trainers_from_their_command_lines",
    "baselines/train_baseline.py": f"{THIS}::test_make_baseline_targets_train_zip_and_dry_run",
    "baselines/pack_baseline.py": f"{THIS}::test_make_baseline_targets_train_zip_and_dry_run",
    "baselines/stress_set.py": f"{THIS}::test_stress_set_degrades_the_degraded_cells_anew",
    "torchrun baselines/train_baseline.py": "tests/test_baselines_ddp.py::"
                                            "test_two_gloo_ranks_train_one_step_and_rank_0_writes_the_submission",
    "docker run bench/baseline_throughput.py": f"{THIS}::test_make_bench_runs_the_bench_scripts",
    **{f"bench/{name}": f"{THIS}::test_make_bench_runs_the_bench_scripts"
       for name in ("ingestion_overhead.py", "scoring_scale.py", "prepare_scale.py", "baseline_throughput.py")},
    "zip": f"{THIS}::test_the_kits_zip_command_makes_a_valid_submission",
}
# Commands the suite cannot run here (no docker daemon, no hub account, no GPU); the step after each is tested.
NOT_RUN = {
    "docker build": "needs a docker daemon; the Dockerfile's pins are checked by test_competition_yaml.py",
    "docker push": "needs a registry account",
    "hf auth": "needs a Hugging Face account; prepare.py --hub runs offline from a local copy (test_prepare_hub.py)",
}
SMALL_BASELINE = ("--epochs 1 --max-steps 1 --limit-train 32 --limit-eval 16 --input-size 32 --pretrained off "
                  "--workers 0 --threads 1 --no-evaluate")


def defined_tests() -> set[str]:
    """Every 'tests/<file>::<test>' defined in the suite."""
    return {f"tests/{path.name}::{name}" for path in (REPO / "tests").glob("test_*.py")
            for name in re.findall(r"^def (test_\w+)", path.read_text(encoding="utf-8"), re.M)}


def test_every_documented_command_is_run_by_a_test():
    documented = documented_commands()
    missing = {key: files for key, files in documented.items() if key not in RUN_BY and key not in NOT_RUN}
    assert not missing, f"commands in the docs that no test runs (add each to RUN_BY with its test): {missing}"
    gone = {key: test for key, test in RUN_BY.items() if test not in defined_tests()}
    assert not gone, f"RUN_BY names tests that do not exist: {gone}"
    stale = sorted(set(RUN_BY) - set(documented))
    assert not stale, f"RUN_BY lists commands no document gives any more: {stale}"


def test_ci_runs_the_readmes_test_command():
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert "make test" in readme and "make test" in (REPO / ".ci" / "run").read_text(encoding="utf-8")
    recipe = subprocess.run(["make", "-n", "-o", ".venv/.installed", "-o", ".venv/.organizer-installed", "test"],
                            cwd=REPO, capture_output=True, text=True, check=True).stdout
    assert "-m pytest -q tests" in recipe  # this suite: the command runs every file of it


def test_the_environment_targets_are_up_to_date():
    """The suite runs inside the environment `make venv` (and `make organizer-venv`, which `make test` adds) built:
    both targets are up to date, so their recipes ran."""
    for target in ("venv", "organizer-venv"):
        assert subprocess.run(["make", "-q", target], cwd=REPO).returncode == 0, f"make {target} is not up to date"


# ---------------------------------------------------------------- the Makefile, in a copy of the repository ------
def _make(copy: Path, *args: str, timeout: int = 1800) -> subprocess.CompletedProcess:
    """make in the copy, the environment taken as built (its stamps are older than the copied requirements); the
    timeout leaves room for a machine shared with other jobs (the demo-timm training took over 600 s on one)."""
    done = subprocess.run(["make", "-o", ".venv/.installed", "-o", ".venv/.organizer-installed", *args], cwd=copy,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"make {' '.join(args)}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    return done


@pytest.fixture(scope="module")
def repository_copy(tmp_path_factory) -> Path:
    """The repository's committed files (as a fresh clone has them) with this environment's .venv, after
    `make demo`; the printed output is kept for the test of the README's row."""
    copy = tmp_path_factory.mktemp("clone") / "repository"
    listed = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=REPO,
                            capture_output=True, check=True).stdout.decode().split("\0")
    for name in filter(None, listed):
        if (REPO / name).is_file():
            (copy / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO / name, copy / name)
    (copy / ".venv").symlink_to(Path(sys.prefix), target_is_directory=True)
    (copy / "demo.out").write_text(_make(copy, "demo").stdout)
    return copy


def _row(text: str) -> dict[str, str]:
    """The `  key value` lines of a printed leaderboard row (images_per_second depends on the machine)."""
    return {key: value for key, value in re.findall(r"^  (\w+)\s+([\d.]+)$", text, re.M)
            if key != "images_per_second"}


def test_make_demo_prints_the_readmes_row(repository_copy):
    printed = _row((repository_copy / "demo.out").read_text())
    readme = (REPO / "README.md").read_text(encoding="utf-8")
    assert len(printed) == 9 and printed == _row(readme), "README.md's row is not what `make demo` prints"
    assert _page_row("starting_kit") == _rounded(printed), "pages/starting_kit.md's row differs from make demo's"
    assert json.loads((repository_copy / "input_data" / "eval" / "time_budget.json").read_text()) == {"seconds": 540}


def test_make_demo_timm_prints_the_pages_row(repository_copy):
    """The deep-learning kit's row of pages/starting_kit.md is what `make demo-timm` prints (seeded training)."""
    printed = _row(_make(repository_copy, "demo-timm").stdout)
    assert _page_row("starting_kit_timm") == _rounded(printed), "pages/starting_kit.md's timm row differs"


def _page_row(kit: str) -> list[float]:
    """A kit's row of the demo-score table in pages/starting_kit.md."""
    row = re.search(rf"^\| `{kit}` \| (.+) \|$", (REPO / "pages" / "starting_kit.md").read_text(), re.M)
    return [float(value) for value in row.group(1).split(" | ")]


def _rounded(printed: dict[str, str]) -> list[float]:
    """The printed row in the table's column order, to the table's 3 decimals."""
    order = ("pristine_macro_f1", "degraded_macro_f1",
             *(f"severity_{s}_macro_f1" for s in ("pristine", "mild", "moderate", "extreme")))
    return [round(float(printed[key]), 3) for key in order]


def test_make_check_runs_a_zip_through_both_steps(repository_copy, tmp_path):
    kit = repository_copy / "starting_kit"
    submission = tmp_path / "submission.zip"
    with zipfile.ZipFile(submission, "w") as archive:
        for name in ("model.py", "classifier.joblib", "metadata", "requirements.txt"):
            archive.write(kit / name, name)
    done = _make(repository_copy, "check", f"SUB={submission}")
    assert "status: Finished" in done.stdout and "Degraded macro-F1 (primary)" in done.stdout


def test_make_baseline_targets_train_zip_and_dry_run(repository_copy):
    """Each baseline target at the smallest size (one step on 32 images at 32 px), then baseline-zips' zips and dry
    runs, then the ranking report over the dry runs' outputs."""
    small = f"BASELINE_ARGS={SMALL_BASELINE}"
    for target in ("resnet50", "ensemble", "efficientnet_lite0"):
        _make(repository_copy, target, small)
        card = json.loads((repository_copy / "baselines" / target / "card.json").read_text())
        assert card["members"] and card["baseline"] == target
        assert card["recipe"]["profile"] == DEFAULT_PROFILES[target]
    ensemble = json.loads((repository_copy / "baselines" / "ensemble" / "card.json").read_text())
    named = sorted(member["weights"] for member in ensemble["members"] + ensemble["left_out"])  # three of one network
    assert named == [f"weights_tf_efficientnet_lite0_{k}.safetensors" for k in (1, 2, 3)]
    # the plain fine-tune the recipe is measured against, as baselines/README.md trains it
    plain = subprocess.run([sys.executable, "baselines/train_baseline.py", "build/demo_release", "--baseline",
                            "efficientnet_lite0", "--profile", "cpu-plain", "--keep-epoch", "last", "--out",
                            "build/plain_finetune", *SMALL_BASELINE.split()], cwd=repository_copy,
                           capture_output=True, text=True, timeout=600)
    assert plain.returncode == 0, plain.stderr[-3000:]
    card = json.loads((repository_copy / "build" / "plain_finetune" / "card.json").read_text())
    assert (card["recipe"]["profile"], card["tta"], card["members"][0]["training"]["kept_by"]) == \
        ("cpu-plain", "none", "last")
    _make(repository_copy, "baseline-zips", small)
    outputs = {name: repository_copy / "build" / "dryrun" / name for name in ("efficientnet_lite0", "ensemble")}
    for folder in outputs.values():
        scores = json.loads((folder / "output" / "scores.json").read_text())
        assert 0 <= scores["degraded_macro_f1"] <= 1
    teams = " ".join(f"{name}={folder / 'input' / 'res'}" for name, folder in outputs.items())
    _make(repository_copy, "ranking-report", f"TEAMS={teams}", "RANKING_PHASE=eval")
    assert (repository_copy / "build" / "ranking_report" / "ranking_report.html").is_file()


def test_make_bench_runs_the_bench_scripts(small_release, trained_starting_kit, tmp_path):
    """`make bench` runs every bench script; each runs here at a tiny size, through its command line."""
    recipe = subprocess.run(["make", "-n", "-o", ".venv/.installed", "-W", "build/demo_release/.complete", "bench"],
                            cwd=REPO, capture_output=True, text=True).stdout
    scripts = sorted(path.name for path in (REPO / "bench").glob("*.py") if not path.is_symlink())  # project_folders
    assert [name for name in scripts if f"bench/{name}" in recipe] == [name for name in scripts
                                                                         if name != "baseline_throughput.py"]
    runs = {
        "baseline_throughput.py": ["-n", "2", "--input-size", "32", "--tta", "flip", "--batch-size", "2"],
        "ingestion_overhead.py": ["-n", "8", "--input-size", "32", "--repeats", "1", "--batch-size", "4",
                                  "--input-data", str(tmp_path / "none")],
        "scoring_scale.py": ["--rows", "2000", "--bootstrap", "20"],
        "prepare_scale.py": ["--demo-release", str(small_release), "--work", str(tmp_path / "scale"), "--eval", "40",
                             "--test", "60", "--submission", str(trained_starting_kit)],
    }
    assert set(runs) == set(scripts)
    printed = {}
    for name, arguments in runs.items():
        done = subprocess.run([sys.executable, str(REPO / "bench" / name), *arguments], capture_output=True,
                              text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
        assert done.returncode == 0, f"bench/{name}: {done.stdout[-2000:]}\n{done.stderr[-3000:]}"
        printed[name] = done.stdout
    assert json.loads((tmp_path / "scale" / "results.json").read_text())["scoring"]["scores"]["degraded_macro_f1"] >= 0
    *timed, ratio = [json.loads(line) for line in printed["baseline_throughput.py"].splitlines()]
    assert [(t["baseline"], t["members"], t["passes_per_image"]) for t in timed] == [
        ("resnet50", ["resnet50"], 4), ("ensemble", ["swin_tiny_patch4_window7_224", "convnextv2_tiny", "resnet50"], 12)]
    assert ratio["seconds_over_first"]["ensemble / resnet50"] > 0


# ---------------------------------------------------------------- scripts without a test of their own elsewhere ---
def test_set_share_prints_the_widths_table():
    done = subprocess.run([sys.executable, str(REPO / "tools" / "set_share.py"), "--cells", "300", "--shares", "0.5",
                           "0.8", "--bootstrap", "50"], capture_output=True, text=True, timeout=300, check=True)
    rows = [line for line in done.stdout.splitlines() if line.startswith("| 300 cells |")]
    assert len(rows) == 2 and all(0 < float(width) < 1 for row in rows for width in row.strip("| ").split(" | ")[3:])


def test_the_kits_trainers_from_their_command_lines(small_release, tmp_path):
    for kit, arguments in (("starting_kit", ["--out", str(tmp_path / "skl" / "classifier.joblib"), "--seed", "0"]),
                           ("starting_kit_timm", ["--out", str(tmp_path / "timm"), "--architecture", "resnet10t",
                                                  "--input-size", "16", "--epochs", "1", "--limit", "64",
                                                  "--threads", "1", "--pretrained"])):
        (tmp_path / ("skl" if kit == "starting_kit" else "timm")).mkdir()
        done = subprocess.run([sys.executable, str(REPO / kit / "train.py"), str(small_release), *arguments],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, f"{kit}/train.py: {done.stderr[-3000:]}"
    assert (tmp_path / "skl" / "classifier.joblib").is_file() and (tmp_path / "timm" / "weights.safetensors").is_file()


def test_the_kits_zip_command_makes_a_valid_submission(trained_starting_kit, small_bundle, tmp_path):
    """The kits' READMEs zip with the system's `zip`; where it is missing, zipfile writes the same entries."""
    names = ["model.py", "classifier.joblib", "metadata", "requirements.txt"]
    target = tmp_path / "submission.zip"
    if shutil.which("zip"):
        subprocess.run(["zip", "-r", str(target), *names], cwd=trained_starting_kit, check=True, capture_output=True)
    else:
        with zipfile.ZipFile(target, "w") as archive:
            for name in names:
                archive.write(trained_starting_kit / name, name)
    with zipfile.ZipFile(target) as archive:
        assert sorted(archive.namelist()) == sorted(names)
    done = subprocess.run([sys.executable, str(REPO / "ingestion_program" / "ingestion.py"),
                           str(small_bundle / "input_data" / "eval"), str(tmp_path / "out"),
                           str(REPO / "ingestion_program"), str(target)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]


def test_stress_set_degrades_the_degraded_cells_anew(small_release, small_bundle, tmp_path):
    out = tmp_path / "stress"
    subprocess.run([sys.executable, str(REPO / "baselines" / "stress_set.py"), str(small_bundle), str(small_release),
                    "--phase", "eval", "--out", str(out), "--seed", "1"], check=True, capture_output=True, timeout=300)
    source = (small_bundle / "reference_data" / "eval" / "reference.csv").read_text().splitlines()
    stress = (out / "reference_data" / "eval" / "reference.csv").read_text().splitlines()
    column = source[0].split(",").index("cell_id")

    def cells(lines, set_name):
        return sorted(line.split(",")[column] for line in lines[1:] if line.split(",")[1] == set_name)

    assert cells(stress, "pristine") == cells(source, "pristine")  # the same pristine set
    assert cells(stress, "degraded") == cells(source, "degraded")  # the same cells, degraded anew, each once
    with zipfile.ZipFile(out / "input_data" / "eval" / "degraded.zip") as archive:
        assert len(archive.namelist()) == len(cells(source, "degraded"))


def _anchors(markdown: str) -> set[str]:
    """GitHub's anchors for the headings of a markdown text: lower case, punctuation dropped, spaces as hyphens."""
    headings = re.findall(r"^#+\s+(.*?)\s*$", markdown, re.M)
    return {re.sub(r"\s", "-", re.sub(r"[^\w\s-]", "", heading.lower())) for heading in headings}


def test_every_relative_link_in_the_documentation_resolves():
    """A link to a file of the repository (and to a heading in it) that a reader can follow."""
    broken = []
    for document in documents():
        text = re.sub(r"^```.*?^```", "", document.read_text(), flags=re.M | re.S)
        for target in re.findall(r"\]\(([^)\s]+)\)", text):
            if re.match(r"^[a-z]+:", target):
                continue  # a web address
            path, _, anchor = target.partition("#")
            linked = (document.parent / path).resolve() if path else document
            if not linked.exists():
                broken.append(f"{document.relative_to(REPO)}: {target} (no such file)")
            elif anchor and linked.suffix == ".md" and anchor not in _anchors(linked.read_text()):
                broken.append(f"{document.relative_to(REPO)}: {target} (no such heading)")
    assert not broken, "\n".join(broken)
