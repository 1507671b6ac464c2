"""Hostile submissions against the real ingestion program: each ends in a named failure or an honest result.

One test per row of the attack table in pages/starting_kit.md (issue 9), plus the ways the model's process can
end and the submission-zip checks. Every run is `ingestion.py` as a subprocess on tiny generated zips.
"""
import os
import time
import zipfile
from pathlib import Path

import pytest

from test_ingestion_runs import IMAGES_PER_SET, LABEL_MODEL, ingest, make_input, make_submission, rows

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="process checks need Linux /proc")


def quick_env(tmp_path, **variables):
    """The environment of an ingestion run with its own TMPDIR, so leftovers can be counted."""
    temp = tmp_path / "tmpdir"
    temp.mkdir(exist_ok=True)
    return {**os.environ, "TMPDIR": str(temp), **{k: str(v) for k, v in variables.items()}}


def test_a_slowed_clock_in_the_model_does_not_change_the_measured_speed(tmp_path):
    model = """
    import time
    class Model:
        def load(self):
            real = time.monotonic, time.perf_counter
            time.monotonic = lambda: real[0]() / 10000
            time.perf_counter = lambda: real[1]() / 10000
        def predict(self, image):
            time.sleep(0.02)
            return "SNE"
    """
    done, report, _ = ingest(tmp_path, make_submission(tmp_path / "sub", model))
    assert done.returncode == 0, done.stderr
    predicting = sum(report["sets"][s]["seconds"] for s in ("pristine", "degraded"))
    assert predicting >= 2 * IMAGES_PER_SET * 0.02
    assert report["images_per_second"] <= 2 * IMAGES_PER_SET / predicting + 1e-3 < 60


def test_a_replaced_os_exit_cannot_rewrite_the_report(tmp_path):
    model = """
    import os
    from pathlib import Path
    OUT = Path(open(f"/proc/{os.getppid()}/cmdline").read().split("\\0")[3])
    real_exit = os._exit
    def forged_exit(code):
        (OUT / "run_report.json").write_text('{"status": "ok", "reason": null}')
        real_exit(0)
    class Model:
        def load(self):
            os._exit = forged_exit
        def predict(self, image):
            if round(image.getpixel((4, 4))[0] / 20) % 3 == 0:
                raise ValueError("one in three")
            return "SNE"
    """
    done, report, output = ingest(tmp_path, make_submission(tmp_path / "sub", model))
    assert done.returncode == 1
    assert report["status"] == "failed" and report["reason"].startswith("8 of 24 images failed (33.33%)")
    assert report["unexpected_output_files"] == ["run_report.json"]


def test_a_gil_holding_loop_is_stopped_by_the_budget(tmp_path):
    model = """
    class Model:
        def predict(self, image):
            return ["SNE", "BA"][sum(range(10**12)) % 2]
    """
    started = time.monotonic()
    done, report, _ = ingest(tmp_path, make_submission(tmp_path / "sub", model), None, "--budget-seconds", "3",
                             timeout=30)
    assert time.monotonic() - started < 15
    assert done.returncode == 1
    assert report["reason"].startswith("time budget of 3 s exceeded while predicting the pristine set (0 of 24 images "
                                       "done); the predictions made so far were written; the whole phase needs a "
                                       "faster model")


def test_keyboard_interrupt_in_predict_batch_falls_back_to_predict(tmp_path):
    model = """
    class Model:
        def load(self):
            pass
        def predict(self, image):
            return "EO"
        def predict_batch(self, images):
            raise KeyboardInterrupt
    """
    done, report, output = ingest(tmp_path, make_submission(tmp_path / "sub", model))
    assert done.returncode == 0, done.stderr
    warning = "predict_batch raised KeyboardInterrupt (model.py:8); that batch was predicted image by image with predict"
    assert report["warnings"] == [warning, warning] and report["batch_fallbacks"] == 2
    assert f"[ingestion] warning: {warning}" in done.stderr
    assert {row[2] for row in rows(output)[1:]} == {"EO"}


def test_a_raising_generator_and_an_unreadable_tensor_are_per_image_errors(tmp_path):
    model = """
    class Tensor:
        def detach(self):
            return self
        def cpu(self):
            raise RuntimeError("device lost")
    class Model:
        def load(self):
            pass
        def predict(self, image):
            return Tensor() if image.getpixel((4, 4))[0] > 200 else "MO"
        def predict_batch(self, images):
            yield "MO"
            raise RuntimeError("generator broke")
    """
    done, report, _ = ingest(tmp_path, make_submission(tmp_path / "sub", model), None, "--max-error-rate", "0.5")
    assert done.returncode == 0, done.stderr
    assert report["warnings"][0] == ("predict_batch returned a generator that raised RuntimeError: generator broke "
                                     "(model.py:14); that batch was predicted image by image with predict")
    assert report["errors"][0]["error"] == ("predict returned a Tensor that raised RuntimeError: device lost "
                                            "(model.py:6) when read")
    assert report["errors_total"] == 2


def test_huge_probabilities_are_a_per_image_error_in_ingestion(tmp_path):
    model = """
    class Model:
        def predict(self, image):
            return [1e308] * 13
    """
    done, report, _ = ingest(tmp_path, make_submission(tmp_path / "sub", model))
    assert done.returncode == 1
    assert report["errors"][0]["error"] == ("predict returned probabilities whose sum is not a finite number "
                                            "(largest 1e+308); return probabilities, e.g. a softmax")


def test_writing_to_every_file_descriptor_reaches_neither_the_console_nor_past_the_cap(tmp_path):
    model = """
    import os
    class Model:
        def load(self):
            for fd in range(3, 256):
                try:
                    os.write(fd, b"x" * 1000)
                except OSError:
                    pass
            os.write(1, b"y" * 6_000_000)
        def predict(self, image):
            return "BA"
    """
    done, report, output = ingest(tmp_path, make_submission(tmp_path / "sub", model))
    assert "xxxx" not in done.stderr + done.stdout and "yyyy" not in done.stderr + done.stdout
    assert (output / "submission_output.log").stat().st_size < 5_000_200
    # the only descriptor it could write to besides its output is its own answer channel: a named failure
    assert report["status"] == "failed"
    assert report["reason"].startswith("the submission's process sent back an answer that is not the ingestion's")


def test_a_symlink_left_in_the_output_is_removed(tmp_path):
    model = """
    import os
    from pathlib import Path
    class Model:
        def load(self):
            out = Path(open(f"/proc/{os.getppid()}/cmdline").read().split("\\0")[3])
            (out / "passwd").symlink_to("/etc/passwd")
            (out / "metadata").write_text("exitCode: 0\\n")
        def predict(self, image):
            return "PC"
    """
    done, report, output = ingest(tmp_path, make_submission(tmp_path / "sub", model))
    assert done.returncode == 0, done.stderr
    assert sorted(p.name for p in output.iterdir()) == ["predictions.csv", "run_report.json", "submission_output.log"]
    assert report["unexpected_output_files"] == ["metadata", "passwd"]


def test_the_model_process_holds_no_image_ids(tmp_path):
    model = """
    import gc, sys
    class Model:
        def load(self):
            self.found = None
        def predict(self, image):
            if self.found is None:  # once: walking every object is slow
                frame, seen = sys._getframe(), []
                while frame is not None:
                    seen.append(repr(frame.f_locals))
                    frame = frame.f_back
                seen += [repr(o)[:1000] for o in gc.get_objects() if isinstance(o, (dict, list, tuple))]
                marker = "".join(["0"] * 11)  # built at run time: the code constants must not hold it
                self.found = any(marker in text for text in seen)
            return "LY" if self.found else "SNE"
    """
    done, report, output = ingest(tmp_path, make_submission(tmp_path / "sub", model))
    assert done.returncode == 0, done.stderr
    assert {row[2] for row in rows(output)[1:]} == {"SNE"}


@pytest.mark.parametrize("action, reason", [
    ("os._exit(7)", "the submission's process exited with code 7 (os._exit, or sys.exit outside load/predict)"),
    ("os.kill(os.getpid(), signal.SIGSEGV)", "the submission's process was killed by SIGSEGV (a crash in native code)"),
    ("os.abort()", "the submission's process was killed by SIGABRT (an abort in native code)"),
    ("os.kill(os.getpid(), signal.SIGKILL)", "the submission's process was killed by SIGKILL (the system's "
                                             "out-of-memory killer, or another process)"),
])
def test_every_way_the_model_process_dies_is_named(tmp_path, action, reason):
    model = f"""
    import os, signal
    class Model:
        def predict(self, image):
            if image.getpixel((4, 4))[0] > 90:
                {action}
            return "SNE"
    """
    done, report, output = ingest(tmp_path, make_submission(tmp_path / "sub", model))
    assert done.returncode == 1
    assert report["reason"] == (f"{reason} while predicting the pristine set (5 of 24 images done); "
                                "the predictions made so far were written")
    assert len(rows(output)) == 1 + 5 and f"[ingestion] failed: {reason}" in done.stderr


def test_out_of_memory_under_the_memory_limit_is_named(tmp_path):
    model = """
    class Model:
        def load(self):
            self.blocks = [bytearray(50 * 2**20) for _ in range(100)]
        def predict(self, image):
            return "SNE"
    """
    env = quick_env(tmp_path, WBC_MEMORY_LIMIT_MB=1500)
    done, report, _ = ingest(tmp_path, make_submission(tmp_path / "sub", model), env=env)
    assert report["reason"] == ("the submission ran out of memory (MemoryError; the memory limit is 1500 MB "
                                "(WBC_MEMORY_LIMIT_MB)) while loading the submission (0 of 24 images done); no "
                                "prediction was made")
    assert report["memory_limit_mb"] == 1500


def test_system_exit_in_predict_costs_only_that_image(tmp_path):
    model = """
    import sys
    class Model:
        def predict(self, image):
            if image.getpixel((4, 4))[0] > 200:
                sys.exit(3)
            return "SNE"
    """
    done, report, _ = ingest(tmp_path, make_submission(tmp_path / "sub", model), None, "--max-error-rate", "0.1")
    assert done.returncode == 0, done.stderr
    assert report["errors"][0]["error"] == "predict raised SystemExit: 3 (model.py:6)"


def processes_running(marker):
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if marker in cmdline.read_bytes():
                found.append(cmdline.parent.name)
        except OSError:
            pass
    return found


def test_no_process_or_temporary_folder_outlives_the_run(tmp_path):
    model = """
    import os, subprocess, threading, time
    class Model:
        def load(self):
            subprocess.Popen(["sleep", "987"], start_new_session=True)
            if os.fork() == 0:  # a double-forked daemon in a new session
                os.setsid()
                if os.fork() == 0:
                    os.execvp("sleep", ["sleep", "987"])
                os._exit(0)
            threading.Thread(target=time.sleep, args=(600,)).start()  # a non-daemon thread
        def predict(self, image):
            return "SNE"
    """
    env = quick_env(tmp_path)
    started = time.monotonic()
    done, report, _ = ingest(tmp_path, make_submission(tmp_path / "sub", model), env=env)
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 20
    assert processes_running(b"sleep\x00987") == []
    assert list((tmp_path / "tmpdir").iterdir()) == []
    assert report["warnings"] == ["2 processes the submission started were still running; killed"]


def test_the_first_images_all_failing_stop_the_run_early(tmp_path):
    model = """
    class Model:
        def predict(self, image):
            raise RuntimeError("no weights loaded")
    """
    done, report, output = ingest(tmp_path, make_submission(tmp_path / "sub", model), None, "--batch-size", "4",
                                  "--fail-fast-images", "8")
    assert done.returncode == 1
    assert report["reason"] == ("the first 8 images all failed, so the run was stopped early (fail-fast after 8 "
                                "images, WBC_FAIL_FAST_IMAGES); first: pristine/000000000000: predict raised "
                                "RuntimeError: no weights loaded (model.py:4)")
    assert report["errors_total"] == 8


def test_time_budget_json_in_the_input_folder_sets_the_budget(tmp_path):
    model = """
    import time
    class Model:
        def load(self):
            time.sleep(600)
        def predict(self, image):
            return "SNE"
    """
    input_dir = make_input(tmp_path / "input_data")
    (input_dir / "time_budget.json").write_text('{"seconds": 2}')
    env = {k: v for k, v in os.environ.items() if k != "WBC_TIME_BUDGET_SECONDS"}
    done, report, _ = ingest(tmp_path, make_submission(tmp_path / "sub", model), input_dir, env=env, timeout=30)
    assert report["budget_seconds"] == 2
    assert report["reason"].startswith("time budget of 2 s exceeded while loading the submission")


def test_the_model_process_environment_hides_the_program_and_output(tmp_path):
    model = """
    import os, sys
    class Model:
        def load(self):
            print(repr(sorted(os.environ.items())), repr(sys.argv), os.getcwd())
        def predict(self, image):
            return "SNE"
    """
    env = quick_env(tmp_path, WBC_PROBE="x")
    env["PATH"] = f"{Path(__file__).parents[1] / '.venv' / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    done, report, output = ingest(tmp_path, make_submission(tmp_path / "sub", model), env=env)
    assert done.returncode == 0, done.stderr
    seen = (output / "submission_output.log").read_text()
    assert "ingestion_program" not in seen and str(output) not in seen and "WBC_PROBE" not in seen
    assert str(Path(__file__).parents[1] / ".venv" / "bin") not in seen


def zip_with(path, names, data=b"x"):
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("model.py", LABEL_MODEL)
        for name in names:
            archive.writestr(name, data)
    return path


def test_a_zip_name_that_is_not_utf8_is_a_submission_error(tmp_path):
    archive = zip_with(tmp_path / "submission.zip", ["weights_caf\u00e9.bin"])
    raw = archive.read_bytes().replace("caf\u00e9".encode("utf-8"), b"caf\xe9\xff")  # same length, invalid UTF-8
    archive.write_bytes(raw)
    done, report, _ = ingest(tmp_path, archive)
    assert done.returncode == 1
    assert report["reason"].startswith(f"the submission zip {archive} has a file name that is not valid UTF-8")


def test_a_zip_bomb_is_refused_before_unpacking(tmp_path):
    archive = zip_with(tmp_path / "submission.zip", ["zeros.bin"], data=bytes(3 * 2**20))
    assert archive.stat().st_size < 100_000
    done, report, _ = ingest(tmp_path, archive, None, "--max-unpacked-mb", "2")
    assert done.returncode == 1
    assert report["reason"] == (f"the submission zip {archive} unpacks to 3 MB, more than the 2 MB allowed "
                                "(WBC_MAX_UNPACKED_MB)")


def test_an_oversized_requirements_txt_is_refused(tmp_path):
    submission = make_submission(tmp_path / "sub", LABEL_MODEL, requirements__txt="numpy\n" * 1001)
    done, report, _ = ingest(tmp_path, submission)
    assert done.returncode == 1
    assert report["reason"] == ("requirements.txt is too large (6,006 bytes, 1,001 lines; at most 1,000,000 bytes and "
                                "1,000 lines): list only the packages model.py imports")
