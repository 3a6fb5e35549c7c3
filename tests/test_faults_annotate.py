"""Fault injection for `annotate`: processes killed with SIGKILL at several points, concurrent
runs on one output, dead worker processes, corrupted or edited manifests; and bad input to
`annotate` and `render`: an output that is the input, hostile ids and labels, damaged gzip.

Every resumed or repeated run must end byte-identical to one uninterrupted run.

A run to kill is a fork of this test process running the command line (spaCy and its plugins
are imported already, so it starts in well under a second, where `python -m spacy_taughtnet`
takes several); test_annotate.py runs the real entry point."""
import gzip
import json
import multiprocessing
import os
import re
import resource
import signal
import sys
import time
import tracemalloc
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Callable, Iterator, List, Optional

import pytest
import spacy
from helpers import alive, children_of, cli, gone_soon, write_input

from spacy_taughtnet.annotate import annotate_records
from spacy_taughtnet.annotate import resume as annotate_resume
from spacy_taughtnet.cli import app
from spacy_taughtnet.errors import AnnotateError
from spacy_taughtnet.formats import Record, detect_format, read_records

pytestmark = pytest.mark.slow  # fault injection: killed runs and reruns
N_DOCS = 1000  # about a second of annotation for the small model
WORDS = "Patients with breast cancer received aspirin ; cisplatin induced renal failure in mice".split()


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


def _run_cli(args: List[str], stderr_path: str, file_size_limit: Optional[int]) -> None:
    """A forked child's main: the command line, stderr to a file (not a pipe, which a worker
    outliving the child would hold open), exiting with the command's exit code. With
    file_size_limit, a write past that size fails (EFBIG), as one on a full disk does (ENOSPC)."""
    if file_size_limit is not None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the failing write returns an error instead
        resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))
    signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a shell, also where a background pytest ignores it
    fd = os.open(stderr_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    os.dup2(fd, 2)
    sys.stdout = open(os.devnull, "w")
    sys.stderr = open(2, "w", buffering=1, closefd=False)
    code = 0
    try:
        app(args, prog_name="spacy-taughtnet")
    except SystemExit as exit:
        code = exit.code if isinstance(exit.code, int) else 1
    sys.stderr.flush()
    os._exit(code)


class Annotate:
    """`annotate MODEL SOURCE OUT --no-progress OPTIONS` in a process of its own."""

    def __init__(self, model_path: Path, source: Path, out: Path, *options: str, file_size_limit: Optional[int] = None) -> None:
        self.out, self.log = out, out.with_name(out.name + ".stderr")
        args = ["annotate", str(model_path), str(source), str(out), "--no-progress", *options]
        self.process = multiprocessing.get_context("fork").Process(target=_run_cli, args=(args, str(self.log), file_size_limit))
        self.process.start()
        self.pid = self.process.pid

    def poll(self) -> Optional[int]:
        return self.process.exitcode

    def wait(self, timeout: float) -> Optional[int]:
        """The exit code (negative: killed by that signal); None if still running after timeout."""
        self.process.join(timeout)
        return self.process.exitcode

    def kill(self) -> None:
        os.kill(self.pid, signal.SIGKILL)
        self.process.join()

    def stderr(self) -> str:
        return self.log.read_text() if self.log.exists() else ""


def wait_for(condition: Callable[[], bool], run: Annotate, timeout: float = 60.0) -> None:
    """Poll until condition() holds; fail if the run ends first or the time runs out."""
    deadline = time.monotonic() + timeout
    while not condition():
        if run.poll() is not None:
            pytest.fail(f"annotate ended (exit {run.poll()}) before the fault point: {run.stderr()}")
        if time.monotonic() > deadline:
            run.kill()
            pytest.fail("the fault point was not reached in time")
        time.sleep(0.01)


def records_in(path: Path) -> int:
    return path.read_bytes().count(b"\n") if path.exists() else 0


def blocked_on_a_pipe(pid: int) -> bool:
    """Whether process `pid` waits to write to a full pipe."""
    try:
        return Path(f"/proc/{pid}/wchan").read_text().endswith("pipe_write")
    except OSError:
        return False


@pytest.mark.parametrize("point", ["output locked", "manifest written", "early", "late"])
def test_kill_then_resume_is_byte_identical(tmp_path, model_path, source, clean, point):
    out = tmp_path / "out.jsonl"
    reached = {
        "output locked": (tmp_path / "out.jsonl.lock").exists,  # reading the input or loading the model
        "manifest written": (tmp_path / "out.jsonl.manifest.json").exists,
        "early": lambda: records_in(out) >= 50,
        "late": lambda: records_in(out) >= N_DOCS // 2,
    }[point]
    run = Annotate(model_path, source, out)
    wait_for(reached, run)
    run.kill()
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
    run = Annotate(model_path, source, out, "--overwrite")
    staged = tmp_path / ".out.jsonl.overwrite.tmp"
    wait_for(lambda: records_in(staged) >= 100 or out.read_bytes() != old, run)
    run.kill()
    assert out.read_bytes() == old and manifest.read_bytes() == old_manifest
    # The old run is whole: resuming it writes nothing; the killed run's leftovers go.
    result = cli("annotate", model_path, source, out, "--no-progress", "--no-text")
    assert result.exit_code == 0 and f"0 docs written, {N_DOCS} already there" in result.stderr
    assert not staged.exists() and out.read_bytes() == old
    result = cli("annotate", model_path, source, out, "--no-progress", "--overwrite")
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == clean.read_bytes()


@pytest.mark.parametrize("killed", ["before the move", "after the move"])
def test_an_overwrite_killed_while_swapping_is_finished_by_the_next_run(tmp_path, model_path, source, clean, monkeypatch, killed):
    """--overwrite moves its complete output into place in two steps (manifest marked, file
    moved, mark removed); a run killed between them is finished by the next run."""
    out = tmp_path / "out.jsonl"
    manifest, staged = tmp_path / "out.jsonl.manifest.json", tmp_path / ".out.jsonl.overwrite.tmp"
    assert cli("annotate", model_path, source, out, "--no-progress", "--no-text").exit_code == 0
    old = out.read_bytes()
    real_replace, real_write = os.replace, annotate_resume.write_manifest

    def replace(src, dst):
        if killed == "before the move" and Path(src) == staged:
            raise SystemExit("killed")
        real_replace(src, dst)

    def write_manifest(path, content):
        if killed == "after the move" and not content.get("swap_pending"):
            raise SystemExit("killed")
        real_write(path, content)

    monkeypatch.setattr(os, "replace", replace)
    monkeypatch.setattr(annotate_resume, "write_manifest", write_manifest)
    cli("annotate", model_path, source, out, "--no-progress", "--overwrite")
    monkeypatch.undo()
    assert json.loads(manifest.read_text())["swap_pending"] is True
    assert out.read_bytes() == (old if killed == "before the move" else clean.read_bytes())
    assert staged.exists() == (killed == "before the move")
    result = cli("annotate", model_path, source, out, "--no-progress")  # resumes the --overwrite run
    assert result.exit_code == 0 and f"0 docs written, {N_DOCS} already there" in result.stderr, result.output
    assert out.read_bytes() == clean.read_bytes() and not staged.exists()
    assert json.loads(manifest.read_text()) == json.loads(Path(f"{clean}.manifest.json").read_text())


def test_a_second_run_on_the_same_output_fails_fast(tmp_path, model_path, source, clean):
    """Two runs on one output once wrote thousands of duplicated records."""
    out = tmp_path / "out.jsonl"
    run = Annotate(model_path, source, out)
    wait_for(lambda: records_in(out) >= 1, run)
    os.kill(run.pid, signal.SIGSTOP)  # the first run stays in the middle of its output
    try:
        began = time.monotonic()
        result = cli("annotate", model_path, source, out, "--no-progress")
        took = time.monotonic() - began
    finally:
        os.kill(run.pid, signal.SIGCONT)
    assert result.exit_code == 1 and "is being written by another annotate run" in result.stderr, result.output
    assert f"process {run.pid}" in result.stderr and took < 5
    assert run.wait(timeout=120) == 0, run.stderr()
    assert out.read_bytes() == clean.read_bytes()


@contextmanager
def two_workers(run: Annotate) -> Iterator[List[int]]:
    """The two worker processes of a run of --n-process 2, once it has written a record;
    killed at the end if they are still there, whatever failed."""
    wait_for(lambda: records_in(run.out) >= 1, run)
    workers = children_of(run.pid)
    try:
        assert len(workers) == 2
        yield workers
    finally:
        for pid in workers:
            if alive(pid):
                os.kill(pid, signal.SIGKILL)


def wait_or_fail(run: Annotate, what: str, timeout: float = 30) -> None:
    if run.wait(timeout) is None:
        run.kill()
        pytest.fail(f"annotate hung {what}")


def test_workers_die_with_their_parent(tmp_path, model_path, source):
    run = Annotate(model_path, source, tmp_path / "out.jsonl", "--n-process", "2", "--batch-size", "8")
    with two_workers(run) as workers:
        run.kill()
        assert gone_soon(workers)


@pytest.mark.parametrize("worker", [0, 1])
def test_a_dead_worker_fails_the_run(tmp_path, model_path, source, clean, worker):
    out = tmp_path / "out.jsonl"
    run = Annotate(model_path, source, out, "--n-process", "2", "--batch-size", "8")
    with two_workers(run) as workers:
        os.kill(workers[worker], signal.SIGKILL)
        wait_or_fail(run, "after one of its workers died")
    stderr = run.stderr()
    assert run.poll() == 1, stderr
    error = [line for line in stderr.splitlines() if line.startswith("Error:")]
    assert len(error) == 1 and f"worker process {workers[worker]} of --n-process 2 died (killed by SIGKILL" in error[0]
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
        (json.dumps(edited), f"{source}: records 1-{N_DOCS} (from line 1) differ"),
        (json.dumps(edited_chunks), "--chunk-chars 5000 (was 4000)"),
    ]:
        manifest.write_text(content)
        result = cli("annotate", model_path, source, out, "--no-progress")
        assert result.exit_code == 1 and says in result.stderr, result.output
        assert "--overwrite" in result.stderr and records_in(out) == 300
    manifest.write_text(good)
    result = cli("annotate", model_path, source, out, "--no-progress")
    assert result.exit_code == 0 and out.read_bytes() == clean.read_bytes()


# ----------------------------------------------------------------------------- render: its output and its page


@pytest.mark.parametrize("how", ["same path", "dotdot", "hard link", "symlink"])
def test_render_never_writes_over_its_input(tmp_path, model_path, how):
    """`render M in.jsonl in.jsonl` replaced the input with the page."""
    src = write_input(tmp_path / "in.jsonl", "jsonl")
    before = src.read_bytes()
    out = {
        "same path": src,
        "dotdot": tmp_path / "sub" / ".." / "in.jsonl",
        "hard link": tmp_path / "link.jsonl",
        "symlink": tmp_path / "sym.jsonl",
    }[how]
    if how == "hard link":
        os.link(src, out)
    elif how == "symlink":
        out.symlink_to(src)
    result = cli("render", model_path, src, out)
    assert result.exit_code == 1 and "is the input" in result.stderr, result.output
    assert str(out) in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert src.read_bytes() == before


class PageReader(HTMLParser):
    """The tags of a page, and the text of each h2 (a document's id) and span (an entity's label)."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: List[str] = []
        self.open: List[str] = []
        self.texts: dict = {"h2": [], "span": []}

    def handle_starttag(self, tag, attrs) -> None:
        self.tags.append(tag)
        if tag != "br":
            self.open.append(tag)
        if tag in self.texts:
            self.texts[tag].append("")

    def handle_endtag(self, tag) -> None:
        assert self.open.pop() == tag

    def handle_data(self, data) -> None:
        if self.open and self.open[-1] in self.texts:
            self.texts[self.open[-1]][-1] += data


def test_render_escapes_ids_labels_and_text(tmp_path):
    """A hostile id, label or text is shown as text: the page holds displaCy's tags only."""
    hostile_id = "<script>alert(document.cookie)</script>"
    hostile_label = "<img src=x onerror=alert(1)>"
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns([{"label": hostile_label, "pattern": "aspirin"}])
    nlp.to_disk(tmp_path / "ruler")
    src = tmp_path / "in.jsonl"
    src.write_text(
        json.dumps({"id": hostile_id, "text": "<script>alert(1)</script> took aspirin"}) + "\n"
        + json.dumps({"id": "plain", "text": "no entity <b onmouseover=alert(2)>here</b> & <script>x</script>"}) + "\n",
        encoding="utf8",
    )
    page = tmp_path / "page.html"
    result = cli("render", tmp_path / "ruler", src, page)
    assert result.exit_code == 0, result.output
    reader = PageReader()
    reader.feed(page.read_text(encoding="utf8"))
    assert set(reader.tags) <= {"html", "head", "title", "body", "figure", "h2", "div", "mark", "span", "br"}
    assert reader.texts["h2"] == [hostile_id, "plain"]
    assert reader.texts["span"] == [hostile_label]


# ----------------------------------------------------------------------------- unreadable input


JSONL_LINES = "".join(json.dumps({"id": i, "text": f"Patients {i} with breast cancer received aspirin ."}) + "\n" for i in range(400))
PUBTATOR_BLOCKS = "".join(f"{i}|t|Breast cancer {i}\n{i}|a|Patients received aspirin .\n\n" for i in range(400))
PUBMED_XML = "<PubmedArticleSet>" + "".join(
    f"<PubmedArticle><MedlineCitation><PMID>{i}</PMID><Article><ArticleTitle>Breast cancer {i}</ArticleTitle>"
    "<Abstract><AbstractText>Patients received aspirin .</AbstractText></Abstract></Article></MedlineCitation></PubmedArticle>"
    for i in range(400)
) + "</PubmedArticleSet>\n"
# a gzip member whose deflate data starts with a reserved block type: zlib.error
BAD_MEMBER = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + b"\xff" * 16


def damaged(content: str, damage: str) -> bytes:
    data = gzip.compress(content.encode("utf8"), mtime=0)
    if damage == "cut short":
        return data[: len(data) // 2]
    if damage == "corrupt":
        return data + BAD_MEMBER
    if damage == "bad crc":
        return data[:-8] + bytes([data[-8] ^ 1]) + data[-7:]
    assert damage == "invalid UTF-8"
    return gzip.compress(content.encode("utf8") + b"\xff\xfe\n", mtime=0)


@pytest.mark.parametrize("name,content,where", [
    ("in.jsonl.gz", JSONL_LINES, r":\d+: "),
    ("in.pubtator.gz", PUBTATOR_BLOCKS, r":\d+: "),
    ("in.xml.gz", PUBMED_XML, r": .*article \d+.*byte \d+"),
])
@pytest.mark.parametrize("damage", ["cut short", "corrupt", "bad crc"])
def test_a_damaged_gzip_input_is_one_line_naming_the_file(tmp_path, model_path, name, content, where, damage):
    """A truncated or corrupt .gz gave a zlib.error traceback, or just `Aborted.`."""
    src = tmp_path / name
    src.write_bytes(damaged(content, damage))
    for command in (["annotate", model_path, src, tmp_path / "out.jsonl", "--no-progress"], ["render", model_path, src, tmp_path / "page.html", "--limit", "0"]):
        result = cli(*command)
        assert result.exit_code == 1, result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("Error: ") and re.search(re.escape(str(src)) + where, lines[0]), result.stderr
    assert not (tmp_path / "page.html").exists()


@pytest.mark.parametrize("name,content,line", [("in.jsonl.gz", JSONL_LINES, 401), ("in.pubtator.gz", PUBTATOR_BLOCKS, 1201)])
def test_damaged_gzip_and_bad_utf8_name_the_line(tmp_path, name, content, line):
    """A second gzip member that is not deflate data is found after the first member's
    lines; invalid UTF-8 in a gzipped file is a bad line of its own."""
    for damage in ("corrupt", "invalid UTF-8"):
        src = tmp_path / name
        src.write_bytes(damaged(content, damage))
        with pytest.raises(AnnotateError, match=rf"^{re.escape(str(src))}:{line}: "):
            list(read_records(src, detect_format(src, None)))


@pytest.mark.parametrize("link", ["symlink", "hard link"])
def test_two_names_of_one_output_share_its_lock(tmp_path, model_path, source, clean, link):
    """Two runs writing one file under two names (out.jsonl and a symlink or a hard link
    alias.jsonl) once both exited 0, with every record written twice."""
    out, alias = tmp_path / "out.jsonl", tmp_path / "alias.jsonl"
    if link == "symlink":
        alias.symlink_to(out)
    else:
        out.touch()  # an empty output is started afresh, as a missing one
        os.link(out, alias)
    run = Annotate(model_path, source, out, "--batch-size", str(N_DOCS))  # its first record comes after 1000 docs
    wait_for((tmp_path / "out.jsonl.manifest.json").exists, run)
    os.kill(run.pid, signal.SIGSTOP)  # the first run holds the output and has written no record yet
    try:
        assert records_in(out) == 0
        result = cli("annotate", model_path, source, alias, "--no-progress")
    finally:
        os.kill(run.pid, signal.SIGCONT)
    assert result.exit_code == 1 and "is being written by another annotate run" in result.stderr, result.output
    assert run.wait(timeout=120) == 0, run.stderr()
    assert out.read_bytes() == clean.read_bytes()


def test_an_input_folder_named_through_a_symlink_keeps_the_output_out(tmp_path, model_path, source):
    """An output in the real folder of an input folder given through a symlink (or the other
    way round) was accepted, and the rerun read it as input."""
    real, link = tmp_path / "real", tmp_path / "link"
    real.mkdir()
    link.symlink_to(real)
    (real / "in.jsonl").write_bytes(source.read_bytes())
    for given, out in [(link, real / "out.jsonl"), (f"{link}/*.jsonl", real / "out.jsonl"), (real, link / "out.jsonl")]:
        result = cli("annotate", model_path, given, out, "--no-progress")
        assert result.exit_code == 1 and "so a rerun would read it as input" in result.stderr, result.output
        assert sorted(p.name for p in real.iterdir()) == ["in.jsonl"]


def stopped_after_first_record(run: Annotate) -> None:
    """Wait until `run` has digested its input and written a record, then stop it (SIGSTOP)."""
    wait_for(lambda: records_in(run.out) >= 1, run)
    os.kill(run.pid, signal.SIGSTOP)


def test_lines_appended_during_a_run_are_left_out(tmp_path, model_path, source, clean):
    """Lines appended to the input while a run went were annotated but left out of its
    manifest: 1500 records against `records: 1000`."""
    grown, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    grown.write_bytes(source.read_bytes())
    run = Annotate(model_path, grown, out)
    stopped_after_first_record(run)
    try:
        with grown.open("a") as f:
            f.writelines(json.dumps({"id": f"new-{i}", "text": f"aspirin {i} ."}) + "\n" for i in range(500))
    finally:
        os.kill(run.pid, signal.SIGCONT)
    assert run.wait(timeout=120) == 0, run.stderr()
    assert out.read_bytes() == clean.read_bytes()
    assert json.loads((tmp_path / "out.jsonl.manifest.json").read_text())["input"]["records"] == N_DOCS
    result = cli("annotate", model_path, grown, out, "--no-progress")
    assert result.exit_code == 1, result.output
    assert (f"{grown}: records {N_DOCS + 1}-{N_DOCS + 500} (from line {N_DOCS + 1}) differ from the input of the run being "
            f"resumed (it had {N_DOCS} records, this one has {N_DOCS + 500})") in result.stderr
    assert "--overwrite" in result.stderr and out.read_bytes() == clean.read_bytes()


def test_a_record_changed_during_a_run_fails_it(tmp_path, model_path, source, clean):
    changed, out = tmp_path / "in.jsonl", tmp_path / "out.jsonl"
    changed.write_bytes(source.read_bytes())
    run = Annotate(model_path, changed, out)
    stopped_after_first_record(run)
    try:
        with changed.open("r+b") as f:  # the same file, its last record edited in place
            f.seek(-4, os.SEEK_END)
            f.write(b"X")
    finally:
        os.kill(run.pid, signal.SIGCONT)
    assert run.wait(timeout=120) == 1
    error = [line for line in run.stderr().splitlines() if line.startswith("Error:")]
    assert error == [f"Error: {changed}: records 1-{N_DOCS} (from line 1) changed during this run; rerun with --overwrite "
                     "once the input stays the same"], run.stderr()
    assert records_in(out) < N_DOCS and clean.read_bytes().startswith(out.read_bytes())  # whole records, none changed
    result = cli("annotate", model_path, changed, out, "--no-progress")
    assert result.exit_code == 1 and f"records 1-{N_DOCS} (from line 1) differ from the input" in result.stderr, result.output


def test_the_output_format_comes_from_the_final_suffix():
    assert detect_format("x.pubtator.jsonl", None, output=True) == "jsonl"
    assert detect_format("x.jsonl.pubtator", None, output=True) == "pubtator"
    assert detect_format("CDR_TrainingSet.PubTator.txt", None) == "pubtator"  # an input's .pubtator anywhere


@pytest.mark.parametrize("full", ["manifest", "output"])
def test_a_full_disk_names_the_file(tmp_path, model_path, source, clean, full):
    """A write that fails for want of space said only `[Errno 28] No space left on device`. A
    file size limit fails the write the same way (EFBIG, `File too large`)."""
    out = tmp_path / "out.jsonl"
    run = Annotate(model_path, source, out, file_size_limit={"manifest": 300, "output": 20_000}[full])
    assert run.wait(timeout=120) == 1
    named = out if full == "output" else tmp_path / "out.jsonl.manifest.json"
    error = [line for line in run.stderr().splitlines() if line.startswith("Error:")]
    assert error == [f"Error: {named}: cannot write: File too large"], run.stderr()
    result = cli("annotate", model_path, source, out, "--no-progress")  # the space is back: nothing lost
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == clean.read_bytes()


# ----------------------------------------------------------------------------- stop signals, worker processes, memory


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_stop_signal_to_the_driver_alone_ends_the_run(tmp_path, model_path, source, clean, signum):
    """SIGINT to the driver alone (`kill -INT`; Ctrl-C signals the workers too) hung for good:
    spaCy, stopped by the KeyboardInterrupt, joined workers blocked on full result pipes.
    SIGTERM (a job scheduler's stop) ended the driver with no word."""
    out = tmp_path / "out.jsonl"
    run = Annotate(model_path, source, out, "--n-process", "2")
    with two_workers(run) as workers:
        os.kill(run.pid, signal.SIGSTOP)  # until a worker waits on its full result pipe
        try:
            wait_for(lambda: any(blocked_on_a_pipe(pid) for pid in workers), run)
            os.kill(run.pid, signum)
        finally:
            os.kill(run.pid, signal.SIGCONT)
        wait_or_fail(run, f"after {signal.Signals(signum).name}")
        assert gone_soon(workers)
    assert run.poll() == 130, run.stderr()
    assert run.stderr().splitlines() == [f"Interrupted: {out} holds whole records only; rerun the same command to resume"]
    assert 0 < records_in(out) < N_DOCS
    result = cli("annotate", model_path, source, out, "--no-progress")
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == clean.read_bytes()


def test_a_long_document_is_annotated_in_bounded_memory():
    """All the pieces of a long document were cut and listed at once: one more copy of its
    text (issue 26: a 20 MB document peaked at 1.67 GB). They are cut as the pipeline takes
    them now: beyond its entities, annotating a document holds a few batches of pieces,
    whatever its length; the entities are those of the whole text in one Doc."""
    nlp = spacy.blank("en")
    nlp.add_pipe("entity_ruler").add_patterns([{"label": "Chemical", "pattern": "aspirin"}])
    filler = "Patients with breast cancer received no treatment ; renal failure in mice .\n" * 130
    text = "".join(f"{filler}Case {i} took aspirin .\n" for i in range(400))  # 4 MB, 400 entities
    tracemalloc.start()
    try:
        ((_, entities, _),) = annotate_records(nlp, [Record(id=1, text=text, line=1)], batch_size=4, chunk_chars=500)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < len(text) / 4, f"{peak / 1e6:.2f} MB for a {len(text) / 1e6:.2f} MB text"
    nlp.max_length = len(text)  # the whole text in one Doc
    whole = [(ent.start_char, ent.end_char, ent.label_) for ent in nlp(text).ents]
    assert len(whole) == 400 and [(e["start"], e["end"], e["label"]) for e in entities] == whole
