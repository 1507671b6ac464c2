"""Hostile submissions of each class of issue 24, against the real ingestion and scoring programs: each ends in a
named failure or a correct score, leaves no process behind, and forges nothing that reaches scores.json.

One test (or parametrized family) per class: the answer channel, the pixel buffer, the captured log and the output
folder, signals to the supervisor, survivors, input tampering, odd zips, requirements markers, valid submissions that
must run, sizes and control characters. The submission's own `metadata` command needs the worker's second container:
tests/test_codabench_run.py has it, with the emulator's side of the log, zip and output-folder classes. Every run is
ingestion.py (or score.py) as a subprocess on tiny generated zips.
"""
import ast
import json
import os
import secrets
import signal
import textwrap
import time
import zipfile
from pathlib import Path

import pytest

import pid_namespace
from output_capture import CappedLog
from scoring_inputs import REPO, predictions_frame, reference_frame, run_report, run_score, write_input
from test_ingestion_runs import IMAGES_PER_SET, LABEL_MODEL, ingest, make_input, make_submission, rows

pytestmark = pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="process checks need Linux /proc")
NO_NAMESPACE = None if pid_namespace.unshare_command() else "this machine allows no unprivileged PID namespace"
SUPERVISOR_ARGV = 'open(f"/proc/{os.getppid()}/cmdline").read().split("\\0")'  # python ingestion.py IN OUT PROG SUB


def failed_by_name(done, report, start: str) -> None:
    """A named failure: exit 1, a report whose reason starts with `start`, no traceback, no internal error."""
    assert done.returncode == 1, done.stderr[-3000:]
    assert report is not None and report["status"] == "failed", done.stderr[-3000:]
    assert report["reason"].startswith(start), report["reason"]
    assert "Traceback" not in done.stderr and "internal error" not in report["reason"]


def processes_named(name: str) -> list[int]:
    """Live processes whose name (/proc/<pid>/comm, set with prctl) is `name`: a model's processes name themselves,
    since their pids may belong to the supervisor's own PID namespace."""
    found = []
    for entry in filter(str.isdigit, os.listdir("/proc")):
        try:
            comm = Path(f"/proc/{entry}/comm").read_text().strip()
            state = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if comm == name and state != "Z":
            found.append(int(entry))
    return found


def kill_named(name: str) -> list[int]:
    """Kill what a failed test left running (so that a red test leaves this machine as it was); returns them."""
    found = processes_named(name)
    for pid in found:
        os.kill(pid, signal.SIGKILL)
    return found


def on_the_last_image(action: str) -> str:
    """A model that answers SNE and, asked for the run's last image, first runs `action` (os, subprocess, sys and
    time imported)."""
    return f"""
import os, subprocess, sys, time
class Model:
    def load(self):
        self.calls = 0
    def predict(self, image):
        self.calls += 1
        if self.calls == {2 * IMAGES_PER_SET}:
{textwrap.indent(action.strip(), " " * 12)}
        return "SNE"
"""


# --- 1. The answer channel ------------------------------------------------------------------------------------------

ANSWER_CHANNEL = '''
import os

def answer_fd():
    """The write end of the ingestion's answer pipe: a write-only pipe that is not stdout or stderr."""
    for fd in range(3, 256):
        try:
            if not os.readlink(f"/proc/self/fd/{fd}").startswith("pipe:"):
                continue
            flags = int(open(f"/proc/self/fdinfo/{fd}").read().split("flags:")[1].split()[0], 8)
        except (OSError, IndexError):
            continue
        if flags & os.O_ACCMODE == os.O_WRONLY:
            return fd

def forge(payload):
    """One message in multiprocessing.Connection's framing (4-byte big-endian length, then the bytes)."""
    fd = answer_fd()
    data = len(payload).to_bytes(4, "big") + payload
    while data:
        data = data[os.write(fd, data):]
'''
PREDICTING = {
    "items a number": b'{"items": 5}',
    "warnings null": b'{"done": {"warnings": null, "fallbacks": 0}}',
    "5,000-digit number": b'{"done": {"warnings": [], "fallbacks": ' + b"9" * 5000 + b"}}",
    "5,000-digit text": b'{"done": {"warnings": [], "fallbacks": "' + b"9" * 5000 + b'"}}',
    "non-ASCII number": '{"done": {"warnings": [], "fallbacks": "\u0663"}}'.encode(),
    "NaN": b'{"items": [[0, "SNE", [NaN, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], null]]}',
    "1e999": b'{"items": [[0, "SNE", [1e999, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1], null]]}',
    "nested 100,000 deep": b"[" * 100_000 + b"]" * 100_000,
    "a bool for an index": b'{"items": [[true, "SNE", null, null]]}',
    "an index out of the batch": b'{"items": [[99, "SNE", null, null]]}',
    "an unknown label": b'{"items": [[0, "NEUTROPHIL", null, null]]}',
    "a field too many": b'{"done": {"warnings": [], "fallbacks": 0, "more": 1}}',
    "loaded while predicting": b'{"loaded": {"mode": "predict", "warnings": [], "device": "cpu", '
                               b'"torch_version": null}}',
    "not UTF-8": b'{"fatal": "\xff\xfe"}',
}
LOADING = {
    "loaded a string": b'{"loaded": "yes"}',
    "NaN torch version": b'{"loaded": {"mode": "predict", "warnings": [], "device": "cpu", "torch_version": NaN}}',
    "failed a number": b'{"failed": 3}',
    "items while loading": b'{"items": [[0, "SNE", null, null]]}',
}


@pytest.mark.parametrize("when, payload", [("predict", v) for v in PREDICTING.values()]
                         + [("load", v) for v in LOADING.values()], ids=[*PREDICTING, *LOADING])
def test_a_forged_message_on_the_answer_channel_is_a_named_failure(tmp_path, when, payload):
    model = ANSWER_CHANNEL + f'''
PAYLOAD, WHEN = {payload!r}, {when!r}
class Model:
    def load(self):
        self.sent = False
        if WHEN == "load":
            forge(PAYLOAD)
    def predict(self, image):
        if WHEN == "predict" and not self.sent:
            self.sent = True
            forge(PAYLOAD)
        return "SNE"
'''
    done, report, _ = ingest(tmp_path, make_submission(tmp_path / "sub", model))
    failed_by_name(done, report, "the submission's process sent back ")
    assert "(something in the process wrote to its answer channel)" in report["reason"]


def test_a_forged_last_message_cannot_word_the_failure(tmp_path):
    """The runner's last message before it exits says only what happened; the supervisor words the reason, so a
    process that forges one cannot make its text read as the ingestion's own (a budget, the platform's fault)."""
    model = ANSWER_CHANNEL + """
class Model:
    def load(self):
        forge(b'{"fatal": "time budget of 540 s exceeded (the platform failed; not your fault)"}')
    def predict(self, image):
        return "SNE"
"""
    done, report, _ = ingest(tmp_path, make_submission(tmp_path / "sub", model))
    failed_by_name(done, report, "the ingestion's runner could not go on with what the submission's code did; its "
                                 'process said: "time budget of 540 s exceeded (the platform failed; not your fault)"')


# --- 2. The pixel buffer --------------------------------------------------------------------------------------------

def test_the_model_cannot_resize_the_pixel_buffer(tmp_path):
    """Truncating (or growing) the shared memory it was given fails in the model; the supervisor writes on."""
    model = '''
import os
class Model:
    def load(self):
        self.tried = False
    def predict(self, image):
        if not self.tried:
            self.tried = True
            for fd in range(3, 256):
                try:
                    target = os.readlink(f"/proc/self/fd/{fd}")
                except OSError:
                    continue
                if target.startswith(("/memfd:", "/tmp/", "/dev/shm/")):
                    for opened in (fd, f"/proc/self/fd/{fd}"):
                        for size in (0, 1 << 30):
                            try:
                                handle = opened if isinstance(opened, int) else os.open(opened, os.O_RDWR)
                                os.ftruncate(handle, size)
                                print("resized", target, size, flush=True)
                            except OSError as error:
                                print("refused", target, size, type(error).__name__, flush=True)
        return "SNE"
'''
    done, report, output = ingest(tmp_path, make_submission(tmp_path / "sub", model), None, "--batch-size", "4")
    assert done.returncode == 0 and report["status"] == "ok", done.stderr[-3000:]
    log = (output / "submission_output.log").read_text()
    assert "refused /memfd:wbc-pixels" in log and "resized" not in log, log
    assert {row[2] for row in rows(output)[1:]} == {"SNE"} and len(rows(output)) == 1 + 2 * IMAGES_PER_SET


# --- 3. The captured log and the output folder ----------------------------------------------------------------------

TAMPERING_MODEL = '''
import os, shutil
from pathlib import Path
SECRET = {secret!r}
KIND = {kind!r}

def replace(path):
    """Put KIND where the supervisor's file was."""
    if KIND == "write":
        with open(path, "ab") as handle:
            handle.write(b"z" * 50_000_000)
        return
    path.unlink()
    if KIND == "link":
        path.symlink_to(SECRET)
    elif KIND == "folder":
        (path / "inside").mkdir(parents=True)
    elif KIND == "fifo":
        os.mkfifo(path)

class Model:
    def load(self):
        print("hello from load", flush=True)
        own_tmp = Path(os.environ["TMPDIR"])
        for root, dirs, files in os.walk(own_tmp.parent):  # the supervisor's temporary folder
            if Path(root) == own_tmp or own_tmp in Path(root).parents:
                continue
            for name in files:
                replace(Path(root) / name)
        out = Path({argv}[3])
        (out / "submission_output.log").symlink_to(SECRET)
        (out / "predictions.csv").mkdir()
        os.mkfifo(out / ".run_report.json.partial")
        (out / ".predictions.csv.partial").symlink_to(SECRET)
    def predict(self, image):
        return "SNE"
'''


@pytest.mark.parametrize("kind", ["link", "folder", "fifo", "delete", "write"])
def test_nothing_the_model_can_reach_is_followed_or_kept(tmp_path, kind):
    """The log has no path the model could find; the outputs are written without following what it planted, and the
    output folder holds only the three regular outputs afterwards."""
    secret = tmp_path / "secret.txt"
    secret.write_text("secret")
    model = TAMPERING_MODEL.format(secret=str(secret), kind=kind, argv=SUPERVISOR_ARGV)
    done, report, output = ingest(tmp_path, make_submission(tmp_path / "sub", model), timeout=60)
    assert done.returncode == 0 and report["status"] == "ok", done.stderr[-3000:]
    assert secret.read_text() == "secret"
    assert sorted(p.name for p in output.iterdir()) == ["predictions.csv", "run_report.json", "submission_output.log"]
    assert all(p.is_file() and not p.is_symlink() for p in output.iterdir())
    assert (output / "submission_output.log").read_text() == "hello from load\n"
    assert report["submission_log"]["bytes_printed"] == len("hello from load\n")
    assert {".predictions.csv.partial", ".run_report.json.partial", "predictions.csv/",
            "submission_output.log"} <= set(report["unexpected_output_files"])


DEEP_TREES_MODEL = """
import os, sys
from pathlib import Path

def deep(where, levels=3000):
    \"\"\"A tree `levels` folders deep, made relative to a descriptor (no path is ever that long).\"\"\"
    os.mkdir(where)
    folder = os.open(where, os.O_RDONLY)
    for _ in range(levels):
        os.mkdir("d", dir_fd=folder)
        os.close(os.open("f", os.O_CREAT | os.O_WRONLY, dir_fd=folder))
        inner = os.open("d", os.O_RDONLY, dir_fd=folder)
        os.close(folder)
        folder = inner
    os.close(folder)
    os.chmod(where, 0o500)

class Model:
    def load(self):
        deep(Path(os.environ["TMPDIR"]) / "deep")
        deep(Path.cwd() / "deep")
        deep(Path({argv}[3]) / "deep")
    def predict(self, image):
        return "SNE"
"""


def test_trees_too_deep_for_shutil_are_removed_and_the_run_reported(tmp_path):
    """Folders 3000 deep in the model's TMPDIR, its own folder (unpacked into the supervisor's temporary folder) and
    the output folder (shutil.rmtree: RecursionError): the run is reported, and nothing of them is left."""
    submission = make_submission(tmp_path / "sub", DEEP_TREES_MODEL.format(argv=SUPERVISOR_ARGV))
    with zipfile.ZipFile(tmp_path / "sub.zip", "w") as bundle:
        bundle.write(submission / "model.py", "model.py")
    temp = tmp_path / "supervisor_tmp"
    temp.mkdir()
    done, report, output = ingest(tmp_path, tmp_path / "sub.zip", env={**os.environ, "TMPDIR": str(temp)},
                                  timeout=120)
    assert done.returncode == 0 and report["status"] == "ok", done.stderr[-3000:]
    assert report["warnings"] == ["the submission wrote into the output folder (removed before the outputs were "
                                  "written): deep/"]
    assert sorted(p.name for p in output.iterdir()) == ["predictions.csv", "run_report.json", "submission_output.log"]
    assert list(temp.iterdir()) == []  # the supervisor's temporary folder, the unpacked submission in it, is gone


def test_many_entries_left_in_the_output_folder_cost_a_listing_not_a_product(tmp_path):
    """5,000 new folders of 20 files each (105,000 entries): each new folder goes whole, so the clean-up is one
    listing of the top and one removal per entry (seconds), not every path checked against every folder (minutes,
    past the test's timeout)."""
    model = f"""
import os
from pathlib import Path
class Model:
    def load(self):
        out = Path({SUPERVISOR_ARGV}[3])
        for index in range(5000):
            (out / f"junk{{index}}").mkdir()
            for name in range(20):
                (out / f"junk{{index}}" / str(name)).touch()
    def predict(self, image):
        return "SNE"
"""
    done, report, output = ingest(tmp_path, make_submission(tmp_path / "sub", model), timeout=60)
    assert done.returncode == 0 and report["status"] == "ok", done.stderr[-3000:]
    assert report["warnings"] == ["the submission wrote into the output folder (removed before the outputs were "
                                  "written): junk0/, junk1/, junk10/, junk100/, junk1000/ and 4995 more"]
    assert sorted(p.name for p in output.iterdir()) == ["predictions.csv", "run_report.json", "submission_output.log"]


@pytest.mark.parametrize("renamed", ["the output folder", "the folder above it"])
def test_an_output_folder_moved_away_gets_the_outputs_and_so_does_its_path(tmp_path, renamed):
    """The model renames the output folder (or the folder above it) and puts forged outputs in a new folder at the
    old path. The path, which the scorer reads, gets the real outputs, the forged ones removed; so does the moved
    folder, which on CodaBench is the mount the worker uploads wherever it is."""
    model = f"""
import os
from pathlib import Path
class Model:
    def load(self):
        out = Path({SUPERVISOR_ARGV}[3])
        moved = out if {renamed == "the output folder"} else out.parent
        moved.rename(moved.with_name("moved"))
        out.mkdir(parents=True)
        (out / "run_report.json").write_text('{{"status": "ok", "forged": true}}')
    def predict(self, image):
        return "SNE"
"""
    root = tmp_path / "mount"
    done, report, output = ingest(root, make_submission(tmp_path / "sub", model), make_input(tmp_path / "input_data"))
    moved = (root / "moved") if renamed == "the output folder" else (tmp_path / "moved" / "output")
    for folder in (output, moved):
        written = json.loads((folder / "run_report.json").read_text())
        assert done.returncode == 0 and written["status"] == "ok" and "forged" not in written, done.stderr[-3000:]
        assert sorted(p.name for p in folder.iterdir()) == ["predictions.csv", "run_report.json",
                                                            "submission_output.log"]
    assert f"the output folder {output} was moved during the run (it, or a folder above it, was renamed); the " \
           "outputs were written both at its path and into the moved folder" in report["warnings"]


def test_outputs_that_cannot_be_written_are_named_not_a_traceback(tmp_path):
    """The model lowers its supervisor's file-size limit (same user: prlimit is allowed), so no output can be written:
    the console says which file could not be written and why, and the run fails (exit 1) without a traceback."""
    model = on_the_last_image("""
import resource
resource.prlimit(os.getppid(), resource.RLIMIT_FSIZE, (1, 1))
""")
    done, report, output = ingest(tmp_path, make_submission(tmp_path / "sub", model), timeout=60)
    assert done.returncode == 1 and report is None, done.stderr[-3000:]
    assert not [path.name for path in output.iterdir() if path.name.endswith(".partial")]  # none left half written
    assert (f"failed: the ingestion program could not write run_report.json in {output}: File too large; the run is "
            f"lost (the ingestion program could not write predictions.csv: File too large in {output})") in done.stderr
    assert "Traceback" not in done.stderr


def test_a_log_that_cannot_be_written_is_said_and_drained(tmp_path):
    """The log's file fails (a full disk: /dev/full): what the model prints is still drained and counted, never
    blocking it, and the loss is said."""
    log = CappedLog(1 << 20)
    log._log = open("/dev/full", "wb", buffering=0)  # the kernel's own always-full file
    os.write(log.write_fd, b"x" * 300_000)
    log.stop()
    assert log.total_bytes == 300_000 and log.kept_bytes == 0 and log.truncated
    assert log.write_error == "No space left on device"


PRIVILEGE_PROBE = """
import ctypes, os
class Model:
    def load(self):
        status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
        print("CapEff", status["CapEff"].strip(), "NoNewPrivs", status["NoNewPrivs"].strip(), flush=True)
        try:
            open(f"/proc/{os.getppid()}/mem", "rb")
            print("supervisor memory: opened", flush=True)
        except OSError as error:
            print("supervisor memory:", type(error).__name__, flush=True)
        libc = ctypes.CDLL(None, use_errno=True)
        print("mount:", libc.mount(b"none", b"/tmp", b"tmpfs", 0, None), flush=True)
    def predict(self, image):
        return "SNE"
"""


def test_the_model_holds_no_capability_a_container_lacks(tmp_path):
    """Started as root (in a PID namespace of its own, root keeps every capability there), the model could mount a
    folder over the output folder or read its supervisor's memory. Its process keeps at most docker's default
    capabilities, for good (no new privileges on exec): it can do neither."""
    done, report, output = ingest(tmp_path, make_submission(tmp_path / "sub", PRIVILEGE_PROBE))
    assert done.returncode == 0 and report["status"] == "ok", done.stderr[-3000:]
    printed = dict(line.split(" ", 1) if line.startswith("CapEff") else line.split(": ", 1)
                   for line in (output / "submission_output.log").read_text().splitlines())
    cap_eff, no_new_privs = printed["CapEff"].split(" NoNewPrivs ")
    assert int(cap_eff, 16) & ~0xA80425FB == 0 and no_new_privs == "1", printed
    assert printed["supervisor memory"] == "PermissionError" and printed["mount"] == "-1", printed


# --- 4. Signals to the supervisor -----------------------------------------------------------------------------------

@pytest.mark.parametrize("name", ["SIGTERM", "SIGINT", "SIGHUP", "SIGUSR1", "SIGALRM"])
def test_a_signal_to_the_supervisor_is_a_named_failure(tmp_path, name):
    model = f'''
import os, signal, time
class Model:
    def predict(self, image):
        os.kill(os.getppid(), signal.{name})
        time.sleep(1)
        return "SNE"
'''
    done, report, _ = ingest(tmp_path, make_submission(tmp_path / "sub", model))
    failed_by_name(done, report, f"the ingestion program was sent {name} (by the submission's process, or by "
                                 "whoever stopped the run) while predicting the pristine set")


@pytest.mark.parametrize("name", ["SIGSEGV", "SIGBUS", "SIGTSTP"])
def test_a_fault_or_stop_signal_sent_to_the_supervisor_changes_nothing(tmp_path, name):
    model = f'''
import os, signal
class Model:
    def predict(self, image):
        os.kill(os.getppid(), signal.{name})
        return "SNE"
'''
    done, report, output = ingest(tmp_path, make_submission(tmp_path / "sub", model))
    assert done.returncode == 0 and report["status"] == "ok", done.stderr[-3000:]
    assert len(rows(output)) == 1 + 2 * IMAGES_PER_SET


def test_a_frozen_supervisor_still_keeps_the_budget(tmp_path):
    """SIGSTOP cannot be caught: the model freezes its supervisor just before its last answer, past the budget, and a
    helper thaws it. The run fails on the supervisor's own clock (or, where it is PID 1 of its namespace as in the
    competition container, the stop never lands and the run finishes in time)."""
    model = on_the_last_image("""
THAW = "import os, signal, sys, time; time.sleep(4); os.kill(int(sys.argv[1]), signal.SIGCONT)"
subprocess.Popen([sys.executable, "-c", THAW, str(os.getppid())], start_new_session=True)
os.kill(os.getppid(), 19)  # SIGSTOP
""")
    done, report, _ = ingest(tmp_path, make_submission(tmp_path / "sub", model), None, "--budget-seconds", "3",
                             timeout=60)
    if report["status"] == "ok":
        assert report["load_seconds"] + sum(report["sets"][s]["seconds"] for s in ("pristine", "degraded")) < 3
    else:
        failed_by_name(done, report, "time budget of 3 s exceeded")


@pytest.mark.skipif(NO_NAMESPACE is not None, reason=str(NO_NAMESPACE))
def test_killing_the_supervisor_leaves_no_process(tmp_path):
    """SIGKILL cannot be caught either: as PID 1 (the container; locally its own namespace) the supervisor does not
    receive it from the model, and nothing the model started outlives the run."""
    name = f"wbc{secrets.token_hex(5)}"
    model = f'''
import ctypes, os, signal, subprocess, sys
NAMED = "import ctypes, time; ctypes.CDLL(None).prctl(15, {name!r}.encode(), 0, 0, 0); time.sleep(120)"
class Model:
    def load(self):
        subprocess.Popen([sys.executable, "-c", NAMED], start_new_session=True)
        os.kill(os.getppid(), signal.SIGKILL)
    def predict(self, image):
        return "SNE"
'''
    try:
        done, report, output = ingest(tmp_path, make_submission(tmp_path / "sub", model))
        survivors = processes_named(name)
    finally:
        kill_named(name)
    assert not survivors
    assert done.returncode == 0 and report["status"] == "ok", done.stderr[-3000:]
    assert report["warnings"] == ["1 process the submission started was still running; killed"]


# --- 5. Survivors ---------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("new_session", [
    False, pytest.param(True, marks=pytest.mark.skipif(NO_NAMESPACE is not None, reason=str(NO_NAMESPACE)))])
def test_a_process_that_forks_continuously_cannot_rewrite_the_report(tmp_path, new_session):
    """It takes a new pid every few microseconds (also leaving its session each time: where the supervisor is PID 1)
    and waits for the report to rewrite it; killed before the outputs are written, it never sees one."""
    name = f"wbc{secrets.token_hex(5)}"
    model = f'''
import ctypes, json, os, time
from pathlib import Path

def fork_for_ever(out):
    ctypes.CDLL(None).prctl(15, {name!r}.encode(), 0, 0, 0)
    deadline = time.time() + 30
    while time.time() < deadline:
        if os.fork():
            os._exit(0)  # the parent leaves, the child goes on under a new pid
        if {new_session}:
            os.setsid()
        report = out / "run_report.json"
        if report.is_file() and '"status": "failed"' in report.read_text():
            forged = json.loads(report.read_text())
            forged.update(status="ok", reason=None, images_per_second=3e8)
            report.write_text(json.dumps(forged))
    os._exit(0)

class Model:
    def load(self):
        out = Path({SUPERVISOR_ARGV}[3])
        if os.fork() == 0:
            os.setsid()
            fork_for_ever(out)
    def predict(self, image):
        if round(image.getpixel((4, 4))[0] / 20) % 3 == 0:
            raise ValueError("one in three")
        return "SNE"
'''
    try:
        done, report, output = ingest(tmp_path, make_submission(tmp_path / "sub", model))
        time.sleep(1)
        survivors = processes_named(name)
        final = json.loads((output / "run_report.json").read_text())
    finally:
        kill_named(name)
    assert not survivors
    failed_by_name(done, report, "8 of 24 images failed")
    assert final == report  # the supervisor's, status failed: nothing rewrote it


FORK_BOMB = """
for _ in range(40):
    if os.fork() == 0:
        ctypes.CDLL(None).prctl(15, NAME, 0, 0, 0)
        time.sleep(60)
        os._exit(0)
"""
THREAD_BOMB = """
ctypes.CDLL(None).prctl(15, NAME, 0, 0, 0)
for _ in range(40):
    threading.Thread(target=time.sleep, args=(60,), daemon=True).start()
"""


@pytest.mark.skipif(NO_NAMESPACE is not None, reason=str(NO_NAMESPACE))
@pytest.mark.parametrize("bomb", [FORK_BOMB, THREAD_BOMB], ids=["processes", "threads"])
def test_a_flood_of_processes_or_threads_is_killed_at_once_and_named(tmp_path, bomb):
    """A fork or thread bomb fills the machine's pid table (the platform's container sets no limit) unless stopped:
    past --max-threads, all its processes' threads together, every process of the submission is killed within a
    watch interval."""
    name = f"wbc{secrets.token_hex(5)}"
    model = f"""
import ctypes, os, threading, time
NAME = {name.encode()!r}
class Model:
    def load(self):
{textwrap.indent(bomb.strip(), " " * 8)}
        time.sleep(60)
    def predict(self, image):
        return "SNE"
"""
    try:
        started = time.monotonic()
        done, report, _ = ingest(tmp_path, make_submission(tmp_path / "sub", model), None, "--max-threads", "20")
        seconds = time.monotonic() - started
        survivors = processes_named(name)
    finally:
        kill_named(name)
    assert not survivors
    failed_by_name(done, report, "the submission ran ")
    assert ("more than the 20 allowed (WBC_MAX_THREADS); all of them were killed while loading the submission "
            "(0 of 24 images done)") in report["reason"], report["reason"]
    assert seconds < 30  # not the minute its threads sleep


@pytest.mark.parametrize("fill", ["write", "preallocate"])
def test_a_model_filling_the_disk_is_stopped_by_name(tmp_path, fill):
    """The platform gives a submission the machine's own disk with no quota: past --max-disk-mb taken on a filesystem
    it can write to, written or preallocated (posix_fallocate: no byte written), its processes are killed."""
    make = {"write": "for _ in range(300):\n                handle.write(bytes(2**20))\n                handle.flush()",
            "preallocate": "os.posix_fallocate(handle.fileno(), 0, 300 * 2**20)"}[fill]
    model = f"""
import os, tempfile, time
class Model:
    def load(self):
        with open(os.path.join(tempfile.gettempdir(), "filler"), "wb") as handle:
            {make}
            os.fsync(handle.fileno())
            time.sleep(60)
    def predict(self, image):
        return "SNE"
"""
    started = time.monotonic()
    done, report, _ = ingest(tmp_path, make_submission(tmp_path / "sub", model), None, "--max-disk-mb", "100")
    failed_by_name(done, report, "the free space of the filesystem holding ")
    assert ("MB while the submission ran, more than the 100 MB allowed (WBC_MAX_DISK_MB, and at most half of what was "
            "free); every process of the submission was killed while loading the submission") in report["reason"]
    assert time.monotonic() - started < 30  # not the minute it sleeps


def test_a_process_forking_and_exiting_in_a_loop_leaves_no_zombies(tmp_path):
    """Each exited fork is re-parented to the supervisor, which collects it as the run goes: left as zombies until
    the end, a longer loop would fill the machine's pid table (32,768 on many) in seconds."""
    model = """
import os, time
class Model:
    def load(self):
        done_read, done_write = os.pipe()
        if os.fork() == 0:
            for _ in range(2000):  # each round the parent exits and its child goes on
                if os.fork():
                    os._exit(0)
            os.write(done_write, b"x")
            os._exit(0)
        os.read(done_read, 1)
        time.sleep(0.5)  # ten of the supervisor's watch intervals
        zombies = 0
        for entry in filter(str.isdigit, os.listdir("/proc")):
            try:
                zombies += open(f"/proc/{entry}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"
            except OSError:
                pass
        print("zombies:", zombies, flush=True)
    def predict(self, image):
        return "SNE"
"""
    done, report, output = ingest(tmp_path, make_submission(tmp_path / "sub", model))
    assert report["status"] == "ok", report["reason"]
    (line,) = [line for line in (output / "submission_output.log").read_text().splitlines() if "zombies" in line]
    assert int(line.split()[1]) < 20, line


# --- 6. How the model's process ends -------------------------------------------------------------------------------

def test_a_model_killed_by_a_real_time_signal_is_named(tmp_path):
    model = """
import os, signal
class Model:
    def load(self):
        os.kill(os.getpid(), signal.SIGRTMIN + 1)
    def predict(self, image):
        return "SNE"
"""
    done, report, _ = ingest(tmp_path, make_submission(tmp_path / "sub", model))
    failed_by_name(done, report, f"the submission's process was killed by signal {signal.SIGRTMIN + 1} ")


HALF_A_MESSAGE = {  # what the model's process writes on its answer channel (sys.argv[2]) before it exits
    "nothing": "",
    "a length alone": "os.write(int(sys.argv[2]), (1000).to_bytes(4, 'big'))",
    "a length and part of its message": "os.write(int(sys.argv[2]), (1000).to_bytes(4, 'big') + b'{\"items')",
    "a length, then a child dripping a byte every 0.1 s": (
        "os.write(int(sys.argv[2]), (1000).to_bytes(4, 'big'))\n"
        "        if os.fork() == 0:\n"
        "            for _ in range(3000): os.write(int(sys.argv[2]), b' '); time.sleep(0.1)\n"
        "            os._exit(0)"),
}


@pytest.mark.parametrize("written", list(HALF_A_MESSAGE))
def test_a_crash_is_named_at_once_though_a_child_holds_the_answer_channel(tmp_path, written):
    """The model's process exits while a process it started keeps the answer channel open (no end of file), with
    nothing, or half a message, left on it: the run fails within seconds naming the exit code, not after the whole
    budget as a model too slow."""
    model = f"""
import os, sys, time
class Model:
    def load(self):
        if os.fork() == 0:
            time.sleep(300)
            os._exit(0)
    def predict(self, image):
        {HALF_A_MESSAGE[written] or "pass"}
        os._exit(3)
"""
    started = time.monotonic()
    done, report, _ = ingest(tmp_path, make_submission(tmp_path / "sub", model), None, "--budget-seconds", "60",
                             timeout=90)
    failed_by_name(done, report, "the submission's process exited with code 3")
    assert time.monotonic() - started < 30


def test_a_model_that_stops_reading_its_requests_cannot_hold_up_the_end(tmp_path):
    """After its last answer the model fills its request channel and never reads again: the supervisor's stop
    request must not wait for it (the run ends at once, its predictions kept)."""
    model = on_the_last_image("""
from multiprocessing.connection import Connection
writer = os.open(f"/proc/self/fd/{sys.argv[1]}", os.O_WRONLY | os.O_NONBLOCK)
try:
    while True:
        os.write(writer, bytes(4096))
except BlockingIOError:
    pass
Connection.recv_bytes = lambda *args, **kwargs: time.sleep(10**6)
""")
    started = time.monotonic()
    done, report, _ = ingest(tmp_path, make_submission(tmp_path / "sub", model), None, "--budget-seconds", "60",
                             timeout=90)
    assert done.returncode == 0 and report["status"] == "ok", done.stderr[-3000:]
    assert report["sets"]["degraded"]["predicted"] == IMAGES_PER_SET
    assert time.monotonic() - started < 30


BROKEN_STR = """
class Bad(Exception):
    def __str__(self):
        raise TypeError("no message for you")
class Model:
    def load(self):
        if WHERE == "load":
            raise Bad()
    def predict(self, image):
        raise Bad()
"""


def test_an_exception_whose_message_raises_is_still_reported(tmp_path):
    """The submission's exception raises again when the runner reads its message: in predict it is that image's
    error (the run goes on), in load it fails the run by name; never an exit code that blames os._exit."""
    done, report, _ = ingest(tmp_path / "predict", make_submission(tmp_path / "predict" / "sub",
                                                                   'WHERE = "predict"' + BROKEN_STR),
                             None, "--max-error-rate", "1")
    assert report["status"] == "ok" and report["errors_total"] == 2 * IMAGES_PER_SET, done.stderr[-3000:]
    assert report["errors"][0]["error"].startswith("predict raised <wbc_submission_model.Bad object at ")
    assert "whose message could not be read" in report["errors"][0]["error"]
    done, report, _ = ingest(tmp_path / "load", make_submission(tmp_path / "load" / "sub",
                                                                'WHERE = "load"' + BROKEN_STR))
    assert done.returncode == 1 and report["status"] == "failed"  # the participant's traceback is shown: no
    assert report["reason"].startswith("Model.load() raised <wbc_submission_model.Bad object at ")  # failed_by_name
    assert "<exception str() failed>" in report["traceback"]


def test_text_that_cannot_be_encoded_reaches_the_report_and_the_page(tmp_path):
    """A lone surrogate (what Python makes of a file name's undecodable byte) in a model's error: the run report,
    the console and the scorer's page carry U+FFFD instead, and nothing crashes writing them."""
    model = """
import os
class Model:
    def predict(self, image):
        raise RuntimeError("cannot read " + os.fsdecode(b"weights-\\xff.pt"))
"""
    done, report, _ = ingest(tmp_path, make_submission(tmp_path / "sub", model), None, "--max-error-rate", "1")
    assert done.returncode == 0 and report["status"] == "ok", done.stderr[-3000:]
    assert report["errors"][0]["error"].startswith("predict raised RuntimeError: cannot read weights-\ufffd.pt")
    reference = reference_frame()
    accepted = run_report(reference)
    accepted["warnings"] = [report["errors"][0]["error"] + "\udcff"]
    input_dir = write_input(tmp_path / "score", reference, predictions_frame(reference), accepted)
    completed = run_score(input_dir, tmp_path / "score" / "out", "--bootstrap", "5")
    assert completed.returncode == 0, completed.stderr[-3000:]
    assert "weights-\ufffd.pt" in (tmp_path / "score" / "out" / "detailed_results.html").read_text()


# --- 7. Input tampering ---------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["fifo", "link", "folder"])
def test_an_input_zip_swapped_by_the_model_is_never_opened(tmp_path, kind):
    """The model puts a FIFO (whose open would block for ever), a link or a folder where degraded.zip was, before
    the supervisor reads that set: the supervisor opened both zips before the model started."""
    model = f'''
import os
from pathlib import Path
class Model:
    def load(self):
        zip_path = Path({SUPERVISOR_ARGV}[2]) / "degraded.zip"
        zip_path.rename(zip_path.with_name("moved.zip"))
        if {kind!r} == "fifo":
            os.mkfifo(zip_path)
        elif {kind!r} == "link":
            zip_path.symlink_to("/dev/zero")
        else:
            zip_path.mkdir()
    def predict(self, image):
        return "SNE"
'''
    started = time.monotonic()
    done, report, output = ingest(tmp_path, make_submission(tmp_path / "sub", model), None, "--budget-seconds", "20",
                                  timeout=60)
    assert time.monotonic() - started < 20
    assert done.returncode == 0 and report["status"] == "ok", done.stderr[-3000:]
    assert report["sets"]["degraded"]["predicted"] == IMAGES_PER_SET


def test_an_input_zip_that_is_not_a_regular_file_is_named(tmp_path):
    input_dir = make_input(tmp_path / "input_data")
    (input_dir / "degraded.zip").unlink()
    os.mkfifo(input_dir / "degraded.zip")
    done, report, _ = ingest(tmp_path, make_submission(tmp_path / "sub", LABEL_MODEL), input_dir, timeout=30)
    failed_by_name(done, report, f"input zip unusable: {input_dir}/degraded.zip is a FIFO, not a file; the input "
                                 "data must hold the zips themselves")


# --- 8. Odd zips ----------------------------------------------------------------------------------------------------

def _zip(path: Path, entries: list) -> Path:
    """model.py, then (name, data, compression method) entries."""
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("model.py", LABEL_MODEL)
        for name, data, method in entries:
            archive.writestr(name, data, compress_type=method)
    return path


def _rewritten(path: Path, change) -> Path:
    """The zip with its bytes changed in place by change(bytearray, entry of weights.bin): a foreign or broken tool."""
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo("weights.bin")
    data = bytearray(path.read_bytes())
    change(data, info)
    path.write_bytes(bytes(data))
    return path


def _corrupt_deflate(data: bytearray, info: zipfile.ZipInfo) -> None:
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)  # a local header's fixed part: 30 bytes
    data[start + 4:start + 12] = b"\xff" * 8


def _encrypted(data: bytearray, info: zipfile.ZipInfo) -> None:
    """The 'encrypted' flag bit in the entry's local header (flags at 6) and central directory record (at 8)."""
    central = data.rindex(b"PK\x01\x02")  # weights.bin is the last entry
    for flags in (info.header_offset + 6, central + 8):
        data[flags] |= 0x1


def _method_99(data: bytearray, info: zipfile.ZipInfo) -> None:
    """The compression method of the entry in its local header (at 8) and its central directory record (at 10)."""
    data[info.header_offset + 8:info.header_offset + 10] = (99).to_bytes(2, "little")
    central = data.rindex(b"PK\x01\x02")  # weights.bin is the last entry
    data[central + 10:central + 12] = (99).to_bytes(2, "little")


ODD_ZIPS = {  # builder, and what the reason says after "the submission zip <path> "
    "encrypted": (lambda p: _rewritten(_zip(p, [("weights.bin", b"w" * 100, zipfile.ZIP_STORED)]), _encrypted),
                  "has an encrypted entry ('weights.bin'); zip it again without a password"),
    "bad deflate": (lambda p: _rewritten(_zip(p, [("weights.bin", os.urandom(4000), zipfile.ZIP_DEFLATED)]),
                                         _corrupt_deflate),
                    "cannot be unpacked at 'weights.bin' ("),
    "unknown method": (lambda p: _rewritten(_zip(p, [("weights.bin", b"w" * 100, zipfile.ZIP_STORED)]),
                                            _method_99),
                       "stores 'weights.bin' with compression method 99 (unknown), which cannot be unpacked"),
    "300-character name": (lambda p: _zip(p, [("a" * 300 + ".bin", b"w", zipfile.ZIP_STORED)]),
                           "has an entry whose name is too long ("),
    "a file and a folder": (lambda p: _zip(p, [("weights", b"w", zipfile.ZIP_STORED),
                                               ("weights/inner.bin", b"x", zipfile.ZIP_STORED)]),
                            "has both a file and a folder named 'weights'; rename one of them"),
}


@pytest.mark.parametrize("build, problem", ODD_ZIPS.values(), ids=list(ODD_ZIPS))
def test_every_unpack_problem_is_named(tmp_path, build, problem):
    archive = build(tmp_path / "submission.zip")
    done, report, _ = ingest(tmp_path, archive)
    failed_by_name(done, report, f"the submission zip {archive} {problem}")


# --- 9. Requirements ------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("line, detail", [
    ('pillow; python_version ~= "3"', "marker 'python_version ~= \"3\"' cannot be evaluated (Undefined"),
    ('numpy; os_name === "posix"', "marker 'os_name === \"posix\"' cannot be evaluated (Undefined"),
    ("numpy; " + "(" * 3000 + 'os_name == "posix"' + ")" * 3000, "nested too deeply to be read"),
])
def test_a_requirement_that_cannot_be_evaluated_is_an_invalid_line(tmp_path, line, detail):
    submission = make_submission(tmp_path / "sub", LABEL_MODEL, requirements__txt=f"scikit-learn\n{line}\n")
    done, report, _ = ingest(tmp_path, submission)
    assert done.returncode == 0 and report["status"] == "ok", done.stderr[-3000:]
    entries = report["requirements"]["entries"]
    assert [entry["status"] for entry in entries] == ["satisfied", "invalid"]
    assert entries[1]["detail"].startswith(detail), entries[1]["detail"]


# --- 10. Valid submissions that must run ----------------------------------------------------------------------------

SHADOWING = ("random", "json", "typing", "types", "signal", "ctypes", "resource", "traceback", "linecache",
             "tokenize", "importlib", "multiprocessing", "mmap", "gc", "numpy", "packaging", "warnings", "enum", "re",
             "functools", "collections", "pathlib")


def test_a_submission_whose_files_shadow_modules_runs(tmp_path):
    """Helper files named like modules of the standard library or the image, which model.py never imports, break
    nothing: the model's process imports what it needs before the submission's folder is on sys.path."""
    files = {f"{name}__py": "raise ImportError('shadowed: this file must never be imported')\n" for name in SHADOWING}
    submission = make_submission(tmp_path / "sub", LABEL_MODEL, **files)
    (submission / "PIL").mkdir()
    (submission / "PIL" / "__init__.py").write_text("raise ImportError('shadowed')\n")
    env = {**os.environ, "PYTHONPATH": "."}  # a relative entry would name the submission's folder in its process
    done, report, output = ingest(tmp_path, submission, None, "--max-error-rate", "0", env=env)
    assert done.returncode == 0 and report["status"] == "ok", (done.stderr[-3000:], report and report["reason"])
    assert len(rows(output)) == 1 + 2 * IMAGES_PER_SET


def test_the_submissions_own_reference_csv_is_not_the_organizers(tmp_path):
    """A participant's train/reference.csv holds training labels, not this phase's test ids: it runs. A file of the
    submission that does list the test ids is refused, whatever its name inside reference_data/."""
    submission = make_submission(tmp_path / "sub", LABEL_MODEL)
    (submission / "train").mkdir()
    (submission / "train" / "reference.csv").write_text("image_id,label\ncell_0001,SNE\ncell_0002,BA\n")
    done, report, _ = ingest(tmp_path, submission)
    assert done.returncode == 0 and report["status"] == "ok", report and report["reason"]

    (submission / "reference_data").mkdir()
    (submission / "reference_data" / "labels.csv").write_text(f"image_id,label\n{0:012x},SNE\n")
    done, report, _ = ingest(tmp_path, submission)
    failed_by_name(done, report, f"refusing to run: reference data is reachable by the submission "
                                 f"({submission}/reference_data/labels.csv)")


def test_an_output_folder_holding_folders_named_like_the_outputs_is_cleared(tmp_path):
    """As the worker leaves it when a submission without a metadata file carries such folders (copied whole)."""
    for name in ("predictions.csv", "run_report.json", "submission_output.log"):
        (tmp_path / "output" / name / "inside").mkdir(parents=True)
    done, report, output = ingest(tmp_path, make_submission(tmp_path / "sub", LABEL_MODEL))
    assert done.returncode == 0 and report["status"] == "ok", done.stderr[-3000:]
    assert all((output / name).is_file() for name in ("predictions.csv", "run_report.json", "submission_output.log"))


# --- 11. Sizes and control characters -------------------------------------------------------------------------------

ESCAPES = "\x1b[31m\x1b]0;owned\x07\x1b[2J\u202e\r"
CONTROL = ("\x1b", "\x07", "\u202e")


def test_huge_messages_with_escape_sequences_are_capped_and_cleaned(tmp_path):
    """Six 15 MB error messages full of terminal escapes: a report of kilobytes, a console without escapes."""
    model = (f"ESCAPES = {ESCAPES!r}\n"
             "class Model:\n"
             "    def load(self):\n"
             "        self.calls = 0\n"
             "    def predict(self, image):\n"
             "        self.calls += 1\n"
             "        if self.calls <= 6:\n"
             "            raise ValueError(ESCAPES + 'x' * 15_000_000 + ESCAPES)\n"
             "        return 'SNE'\n")
    done, report, output = ingest(tmp_path, make_submission(tmp_path / "sub", model), None, "--max-error-rate", "1",
                                  timeout=120)
    assert done.returncode == 0 and report["status"] == "ok", done.stderr[-3000:]
    assert (output / "run_report.json").stat().st_size < 100_000
    error = report["errors"][0]["error"]
    assert error.startswith("predict raised ValueError: ") and "x" * 1000 in error
    assert error.endswith("[... cut: more than 2,000 characters]")
    assert len(error) < 2_100 and report["errors_total"] == 6
    assert not any(character in json.dumps(report, ensure_ascii=False) + done.stderr for character in CONTROL)


def test_the_scorer_caps_and_cleans_what_it_shows(tmp_path):
    reference = reference_frame()
    failed = run_report(reference, status="failed", reason=ESCAPES + "y" * 15_000_000)
    input_dir = write_input(tmp_path / "failed", reference, predictions_frame(reference), failed)
    completed = run_score(input_dir, tmp_path / "failed" / "out")
    assert completed.returncode == 1 and len(completed.stderr) < 5_000, completed.stderr[:300]
    assert not any(character in completed.stderr for character in CONTROL)

    accepted = run_report(reference)
    accepted["warnings"] = [ESCAPES + "w" * 1_000_000] * 6
    input_dir = write_input(tmp_path / "ok", reference, predictions_frame(reference), accepted)
    completed = run_score(input_dir, tmp_path / "ok" / "out", "--bootstrap", "5")
    assert completed.returncode == 0, completed.stderr
    page = (tmp_path / "ok" / "out" / "detailed_results.html").read_text()
    assert len(page) < 2_000_000 and not any(character in page for character in CONTROL)


# --- The trust boundary, visible in the files -----------------------------------------------------------------------

def _imports(module: str) -> set[str]:
    """The ingestion program's modules that `module` imports, transitively."""
    folder = REPO / "ingestion_program"
    found, queue = set(), [module]
    while queue:
        for node in ast.walk(ast.parse((folder / f"{queue.pop()}.py").read_text())):
            names = ([alias.name for alias in node.names] if isinstance(node, ast.Import)
                     else [node.module] if isinstance(node, ast.ImportFrom) else [])
            for name in names:
                if (folder / f"{name}.py").is_file() and name not in found:
                    found.add(name)
                    queue.append(name)
    return found


def test_the_supervisor_and_the_models_process_share_only_the_vocabulary_and_the_package_policy():
    from model_process import CHILD_MODULES

    assert _imports("model_runner") | {"model_runner"} == set(CHILD_MODULES)
    assert _imports("ingestion") & set(CHILD_MODULES) == {"challenge_labels", "requirements_check"}
