"""Fault injection for `annotate`: real processes killed with SIGKILL at several points,
concurrent runs on one output, dead worker processes, corrupted or edited manifests.

Every resumed or repeated run must end byte-identical to one uninterrupted run."""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, List

import pytest
from test_annotate import cli, train_model, write_input

N_DOCS = 2000  # about 2 s of annotation for the small model on a busy core
WORDS = "Patients with breast cancer received aspirin ; cisplatin induced renal failure in mice".split()


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("faults") / "model"
    train_model().to_disk(path)
    return path


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    samples = [(" ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(4 + i % 9)) + f" {i} .", "") for i in range(N_DOCS)]
    return write_input(tmp_path_factory.mktemp("faults_input") / "in.jsonl", "jsonl", samples)


@pytest.fixture(scope="module")
def clean(model_path, source, tmp_path_factory) -> Path:
    """The output of one uninterrupted run (in this process)."""
    out = tmp_path_factory.mktemp("faults_clean") / "clean.jsonl"
    result = cli("annotate", model_path, source, out, "--no-progress")
    assert result.exit_code == 0, result.output
    return out


def start(model_path: Path, source: Path, out: Path, *options) -> subprocess.Popen:
    """annotate in a process of its own; its stderr goes to OUT.stderr (a file, not a pipe,
    which a worker outliving it would hold open)."""
    command = [sys.executable, "-m", "spacy_taughtnet", "annotate", str(model_path), str(source), str(out), "--no-progress", *options]
    with stderr_file(out).open("w") as stderr:
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=stderr)


def stderr_file(out: Path) -> Path:
    return out.with_name(out.name + ".stderr")


def wait_for(condition: Callable[[], bool], proc: subprocess.Popen, out: Path, timeout: float = 60.0) -> None:
    """Poll until condition() holds; fail if the annotate process writing `out` ends first
    or the time runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        if proc.poll() is not None:
            pytest.fail(f"annotate ended (exit {proc.returncode}) before the fault point: {stderr_file(out).read_text()}")
        if time.monotonic() > deadline:
            proc.kill()
            pytest.fail("the fault point was not reached in time")
        time.sleep(0.01)


def records_in(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def children_of(pid: int) -> List[int]:
    """Live (not zombie) child processes of pid, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # ended meanwhile
                continue
            state, ppid = stat.rsplit(")", 1)[1].split()[:2]
            if int(ppid) == pid and state != "Z":
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize("point", ["before any record", "early", "late"])
def test_kill_then_resume_is_byte_identical(tmp_path, model_path, source, clean, point):
    out = tmp_path / "out.jsonl"
    at = {"before any record": 0, "early": 50, "late": N_DOCS * 2 // 3}[point]
    proc = start(model_path, source, out)
    if at:
        wait_for(lambda: records_in(out) >= at, proc, out)
    else:
        wait_for((tmp_path / "out.jsonl.lock").exists, proc, out)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert records_in(out) < N_DOCS
    result = cli("annotate", model_path, source, out, "--no-progress")
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == clean.read_bytes()
    manifest = json.loads((tmp_path / "out.jsonl.manifest.json").read_text())
    assert manifest == json.loads(Path(f"{clean}.manifest.json").read_text())


def test_killed_overwrite_keeps_the_old_output(tmp_path, model_path, source, clean):
    out = tmp_path / "out.jsonl"
    manifest = tmp_path / "out.jsonl.manifest.json"
    assert cli("annotate", model_path, source, out, "--no-progress", "--no-text").exit_code == 0
    old, old_manifest = out.read_bytes(), manifest.read_bytes()
    proc = start(model_path, source, out, "--overwrite")
    staged = tmp_path / ".out.jsonl.overwrite.tmp"
    wait_for(lambda: records_in(staged) >= 100 or out.read_bytes() != old, proc, out)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert out.read_bytes() == old and manifest.read_bytes() == old_manifest
    # The old run is whole: resuming it writes nothing; the killed run's leftovers go.
    result = cli("annotate", model_path, source, out, "--no-progress", "--no-text")
    assert result.exit_code == 0 and f"0 docs written, {N_DOCS} already there" in result.stderr
    assert not staged.exists() and out.read_bytes() == old
    result = cli("annotate", model_path, source, out, "--no-progress", "--overwrite")
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == clean.read_bytes()


def test_a_second_run_on_the_same_output_fails_fast(tmp_path, model_path, source, clean):
    """Two runs on one output once wrote thousands of duplicated records."""
    out = tmp_path / "out.jsonl"
    proc = start(model_path, source, out)
    wait_for(lambda: records_in(out) >= 1, proc, out)
    began = time.monotonic()
    result = cli("annotate", model_path, source, out, "--no-progress")
    took = time.monotonic() - began
    assert result.exit_code == 1 and "is being written by another annotate run" in result.stderr, result.output
    assert f"process {proc.pid}" in result.stderr and took < 5
    assert proc.poll() is None, "the first run must still be running, or the check proved nothing"
    assert proc.wait(timeout=120) == 0, stderr_file(out).read_text()
    assert out.read_bytes() == clean.read_bytes()


def test_workers_die_with_their_parent(tmp_path, model_path, source):
    out = tmp_path / "out.jsonl"
    proc = start(model_path, source, out, "--n-process", "2", "--batch-size", "8")
    workers: List[int] = []
    try:
        wait_for(lambda: records_in(out) >= 1, proc, out)
        workers = children_of(proc.pid)
        assert len(workers) == 2
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        deadline = time.monotonic() + 5
        while any(alive(pid) for pid in workers) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert not any(alive(pid) for pid in workers)
    finally:  # never leave workers behind, whatever failed
        for pid in workers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def test_a_dead_worker_fails_the_run(tmp_path, model_path, source, clean):
    out = tmp_path / "out.jsonl"
    proc = start(model_path, source, out, "--n-process", "2", "--batch-size", "8")
    workers: List[int] = []
    try:
        wait_for(lambda: records_in(out) >= 1, proc, out)
        workers = children_of(proc.pid)
        assert len(workers) == 2
        os.kill(workers[0], signal.SIGKILL)
        proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        pytest.fail("annotate hung after one of its workers died")
    finally:
        for pid in workers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)
    stderr = stderr_file(out).read_text()
    assert proc.returncode == 1, stderr
    error = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and f"worker process {workers[0]}" in error[0] and "SIGKILL" in error[0]
    assert "rerun the same command to resume" in error[0]
    result = cli("annotate", model_path, source, out, "--no-progress")
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == clean.read_bytes()


def test_resume_refuses_a_corrupted_or_edited_manifest(tmp_path, model_path, source, clean):
    out = tmp_path / "out.jsonl"
    manifest = tmp_path / "out.jsonl.manifest.json"
    good = Path(f"{clean}.manifest.json").read_text()
    out.write_bytes(b"".join(clean.read_bytes().splitlines(keepends=True)[:300]))
    edited = json.loads(good)
    edited["input"]["blocks"][0] = "0" * 64
    edited_chunks = json.loads(good)
    edited_chunks["options"]["chunk_chars"] = 4000
    for content, says in [
        (good[: len(good) // 2], "is not a valid annotate manifest"),
        ("[]", "is not a valid annotate manifest"),
        (json.dumps(edited), f"{source}: records 1-1000 (from line 1) differ"),
        (json.dumps(edited_chunks), "--chunk-chars 5000 (was 4000)"),
    ]:
        manifest.write_text(content)
        result = cli("annotate", model_path, source, out, "--no-progress")
        assert result.exit_code == 1 and says in result.stderr, result.output
        assert "--overwrite" in result.stderr and records_in(out) == 300
    manifest.write_text(good)
    result = cli("annotate", model_path, source, out, "--no-progress")
    assert result.exit_code == 0 and out.read_bytes() == clean.read_bytes()
