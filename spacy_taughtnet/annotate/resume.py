"""What makes an `annotate` output safe to resume: the files beside it, its lock, its manifest.

OUTPUT is the output's resolved path (symlinks and `..` followed), so every name of it has
the same files beside it. Beside OUTPUT:
  OUTPUT.lock           an exclusive flock (non-blocking) held for the whole run, so a second
                        run on the same output fails at once instead of appending duplicates.
                        The file stays; the lock is the flock, not the file. A hard link to
                        OUTPUT has its own OUTPUT.lock, so the run also holds a flock on the
                        output file itself, from the start if it exists, else from when the run
                        creates it (before its first record): a hard link can only be made to
                        a file that exists, and a run through one takes the same flock.
  OUTPUT.manifest.json  what wrote the output: the model (name, version, a sha256 of its config
                        and its pipeline digest), the options that change the output, and a
                        digest of the input (written atomically before the first record).
  .OUTPUT.overwrite.tmp the output of an --overwrite run, moved onto OUTPUT when complete.

The input digest is a sha256 per block of BLOCK_RECORDS records, each chained on the one
before, so it stays small (36k digests for PubMed's 36M abstracts) and still says where two
inputs first differ. A resumed run recomputes it and refuses any difference in the model,
the options or the input, saying what differs; --overwrite starts afresh.
"""
import fcntl
import hashlib
import json
import os
from contextlib import contextmanager
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple, Union

from ..atomic import atomic_path, is_same_file
from ..digests import pipeline_digest
from ..errors import AnnotateError, OutputLockedError, ResumeError
from ..formats import Record, pubtator_clean, scan_output

# 2: the model's files digested by digests.pipeline_digest ("pipeline_sha256"). Version 1
# digested every file of the model's folder, a rule no longer computed: its outputs are not resumed.
MANIFEST_VERSION = 2
BLOCK_RECORDS = 1000
START_AFRESH = "pass --overwrite to start afresh (the old output stays until the new one is complete)"

# Manifest option -> command-line option, to say which option differs.
_OPTION_FLAGS = {"input_format": "--input-format", "output_format": "--output-format", "chunk_chars": "--chunk-chars",
                 "threshold": "--threshold"}


@dataclass(frozen=True)
class OutputFiles:
    """An output and the files that annotate keeps beside it."""

    output: Path

    @property
    def manifest(self) -> Path:
        return self.output.with_name(f"{self.output.name}.manifest.json")

    @property
    def lock(self) -> Path:
        return self.output.with_name(f"{self.output.name}.lock")

    @property
    def staged(self) -> Path:
        return self.output.with_name(f".{self.output.name}.overwrite.tmp")

    def check_not_input(self, input_path: Path) -> None:
        """Raise if the output, or a file written beside it, is the input (the same file by
        any name: a symlink, `..`, a hard link). Call it once the output's folder exists."""
        if is_same_file(self.output, input_path):
            raise AnnotateError(f"{self.output}: the output is the input {input_path}; give another output path")
        for path in (self.manifest, self.lock, self.staged):
            if is_same_file(path, input_path):
                raise AnnotateError(
                    f"{path}: annotate keeps this file beside the output {self.output}, but it is the input; "
                    "give another output path or rename the input"
                )


@contextmanager
def writing(path: Path) -> Iterator[None]:
    """Raise an OSError of the block as an AnnotateError naming `path`: that of a full disk
    (`[Errno 28] No space left on device`) names no file."""
    try:
        yield
    except OSError as err:
        raise AnnotateError(f"{path}: cannot write: {err.strerror or err}") from None


class OutputLock:
    """Exclusive, non-blocking flocks on OUTPUT.lock and on the output itself for the
    duration of a run (see the module docstring).

    flock is advisory and unreliable on some network filesystems (older NFS, some FUSE
    mounts): there two runs on two machines may both get it."""

    def __init__(self, files: OutputFiles) -> None:
        self.files = files
        self._lock_fd: Optional[int] = None
        self._output_fd: Optional[int] = None

    def __enter__(self) -> "OutputLock":
        fd = os.open(self.files.lock, os.O_RDWR | os.O_CREAT, 0o666)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.read(fd, 32).decode("ascii", "replace").strip()
            os.close(fd)
            by = f"process {holder}" if holder.isdigit() else "another process"
            raise OutputLockedError(
                f"{self.files.output} is being written by another annotate run ({by} holds {self.files.lock}); "
                "wait for it to end, or write to another output"
            ) from None
        self._lock_fd = fd
        try:
            with writing(self.files.lock):
                os.ftruncate(fd, 0)
                os.write(fd, f"{os.getpid()}\n".encode("ascii"))
            if self.files.output.exists():
                self._lock_output(os.O_RDONLY)
        except BaseException:
            self.__exit__()
            raise
        return self

    def hold_output(self) -> None:
        """Lock the output itself, creating it if it is missing; call it before writing it."""
        if self._output_fd is None:
            self._lock_output(os.O_RDONLY | os.O_CREAT)

    def _lock_output(self, flags: int) -> None:
        fd = os.open(self.files.output, flags | os.O_NONBLOCK, 0o666)  # O_NONBLOCK: a FIFO does not wait for a writer
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise OutputLockedError(
                f"{self.files.output} is being written by another annotate run, through another name of the file "
                "(a hard link); wait for it to end, or write to another output"
            ) from None
        self._output_fd = fd

    def __exit__(self, *exc: Any) -> None:
        for fd in (self._output_fd, self._lock_fd):
            if fd is not None:
                os.close(fd)  # releases its flock
        self._lock_fd = self._output_fd = None


class InputDigest:
    """sha256 digests of an input's records, one per block of `block_records` records, each
    block's digest chained on the previous one's; `block_lines` holds the line where each
    block starts (for messages)."""

    def __init__(self, block_records: Optional[int] = None) -> None:
        self.block_records = block_records or BLOCK_RECORDS
        self.blocks: List[str] = []
        self.block_lines: List[int] = []
        self.records = 0
        self._open: Optional[Any] = None

    def add(self, record: Record) -> None:
        if self._open is None:
            self._open = hashlib.sha256(bytes.fromhex(self.blocks[-1]) if self.blocks else b"")
            self.block_lines.append(record.line)
        # Everything that reaches the output; the id keeps its type (1 and "1" differ).
        self._open.update(json.dumps([record.id, record.text, record.title, record.abstract]).encode("ascii") + b"\n")
        self.records += 1
        if self.records % self.block_records == 0:
            self._close_block()

    def block_span(self, block: int) -> str:
        """Which records a block holds, for messages."""
        first = block * self.block_records + 1
        last = min(first + self.block_records - 1, self.records)
        return f"records {first}-{last} (from line {self.block_lines[block]})"

    def finish(self) -> "InputDigest":
        if self._open is not None:
            self._close_block()
        return self

    def _close_block(self) -> None:
        self.blocks.append(self._open.hexdigest())
        self._open = None

    def as_dict(self, path: Path) -> Dict[str, Any]:
        return {"path": str(path), "records": self.records, "block_records": self.block_records, "blocks": self.blocks}


def model_digest(nlp: Any) -> Dict[str, Optional[str]]:
    """The model's package name and version, a sha256 of its config and its pipeline digest
    (digests.pipeline_digest of the folder it was loaded from; None for a pipeline not loaded
    from disk)."""
    return {
        "name": f"{nlp.lang}_{nlp.meta.get('name', '')}",
        "version": str(nlp.meta.get("version", "")),
        "config_sha256": hashlib.sha256(nlp.config.to_str().encode("utf8")).hexdigest(),
        "pipeline_sha256": pipeline_digest(nlp.path) if nlp.path is not None else None,
    }


def make_manifest(model: Dict[str, Optional[str]], options: Dict[str, Any], input_path: Path, digest: InputDigest) -> Dict[str, Any]:
    return {"annotate_manifest": MANIFEST_VERSION, "model": model, "options": options, "input": digest.as_dict(input_path)}


def write_manifest(path: Path, manifest: Dict[str, Any]) -> None:
    with writing(path), atomic_path(path) as tmp:
        tmp.write_text(json.dumps(manifest, indent=1) + "\n", encoding="utf8")


def load_manifest(files: OutputFiles) -> Dict[str, Any]:
    """The manifest of an output to resume; ResumeError if it is missing or not valid."""

    def invalid(reason: str) -> ResumeError:
        return ResumeError(f"cannot resume {files.output}: {files.manifest} is not a valid annotate manifest ({reason}); {START_AFRESH}")

    if not files.manifest.exists():
        raise ResumeError(
            f"cannot resume {files.output}: {files.manifest} is missing, so nothing says which model, options "
            f"and input wrote it; {START_AFRESH}"
        )
    try:
        manifest = json.loads(files.manifest.read_text(encoding="utf8"))
    except (ValueError, RecursionError) as err:
        raise invalid(f"not JSON: {err}") from None
    if isinstance(manifest, dict) and manifest.get("annotate_manifest") == 1:
        raise ResumeError(
            f"cannot resume {files.output}: {files.manifest} was written by an older spacy-taughtnet, whose digest "
            f"of the model cannot be checked; {START_AFRESH}"
        )
    if not isinstance(manifest, dict) or manifest.get("annotate_manifest") != MANIFEST_VERSION:
        raise invalid(f"no \"annotate_manifest\": {MANIFEST_VERSION}")
    model, options, source = manifest.get("model"), manifest.get("options"), manifest.get("input")
    if not isinstance(model, dict) or not isinstance(options, dict) or not isinstance(source, dict):
        raise invalid("it needs \"model\", \"options\" and \"input\" objects")
    block_records, blocks = source.get("block_records"), source.get("blocks")
    if isinstance(block_records, bool) or not isinstance(block_records, int) or block_records < 1:
        raise invalid("\"input.block_records\" must be a positive integer")
    if not isinstance(blocks, list) or not all(isinstance(b, str) for b in blocks) or not isinstance(source.get("records"), int):
        raise invalid("\"input\" needs \"records\" and a list of \"blocks\"")
    return manifest


def _option(key: str, value: Any) -> str:
    if key == "include_text":
        return "--text" if value else "--no-text"
    if key in ("spans", "threshold") and (value is None or value is False):
        return f"no --{key}"  # a run without it records none
    if key == "spans":
        return "--spans"
    return f"{_OPTION_FLAGS.get(key, key)} {value}"


def check_resumable(old: Dict[str, Any], new: Dict[str, Any], digest: InputDigest, files: OutputFiles) -> None:
    """Raise ResumeError, saying what differs, unless this run (`new`, with the input's
    `digest`) has the model, options and input of the run that wrote the output (`old`)."""
    problem = _difference(old, new, digest)
    if problem:
        raise ResumeError(f"cannot resume {files.output}: {problem}; {START_AFRESH}")


def _difference(old: Dict[str, Any], new: Dict[str, Any], digest: InputDigest) -> Optional[str]:
    was, now = old["model"], new["model"]
    for key in ("name", "version"):
        if was.get(key) != now[key]:
            return f"the model differs from the one of the run being resumed: {key} {now[key]} (was {was.get(key)})"
    if was.get("config_sha256") != now["config_sha256"]:
        return f"the model differs from the one of the run being resumed: its config differs ({now['name']} {now['version']})"
    if was.get("pipeline_sha256") != now["pipeline_sha256"]:
        return f"the model differs from the one of the run being resumed: its files differ ({now['name']} {now['version']})"
    options = []
    for key in sorted(set(old["options"]) | set(new["options"])):
        value, old_value = new["options"].get(key), old["options"].get(key)
        if value != old_value:
            before = _option(key, old_value) if key in ("include_text", "spans", "threshold") else old_value
            options.append(f"{_option(key, value)} (was {before})")
    if options:
        return f"options differ from the run being resumed: {', '.join(options)}"
    path, old_blocks, old_records = new["input"]["path"], old["input"]["blocks"], old["input"]["records"]
    for i, (block, old_block) in enumerate(zip_longest(digest.blocks, old_blocks)):
        if block == old_block:
            continue
        if block is None:
            return f"{path} has {digest.records} records, fewer than the {old_records} of the input of the run being resumed"
        counts = f" (it had {old_records} records, this one has {digest.records})" if digest.records != old_records else ""
        return f"{path}: {digest.block_span(i)} differ from the input of the run being resumed{counts}"
    return None


def finish_interrupted_swap(files: OutputFiles) -> None:
    """Complete the swap of an --overwrite run killed while moving its output into place,
    or remove the staged output of one killed before (its old output is intact)."""
    try:
        manifest = json.loads(files.manifest.read_text(encoding="utf8"))
    except (OSError, ValueError, RecursionError):
        manifest = None
    if isinstance(manifest, dict) and manifest.get("swap_pending"):
        if files.staged.exists():
            os.replace(files.staged, files.output)
        del manifest["swap_pending"]
        write_manifest(files.manifest, manifest)
    elif files.staged.exists():
        files.staged.unlink()


def swap_in(files: OutputFiles, manifest: Dict[str, Any]) -> None:
    """Move a complete staged output onto the output, in two steps that a later run can
    finish (finish_interrupted_swap) if this one is killed between them."""
    write_manifest(files.manifest, {**manifest, "swap_pending": True})
    os.replace(files.staged, files.output)
    write_manifest(files.manifest, manifest)


def resume_output(
    output_path: Path,
    output_format: str,
    records: Iterator[Record],
    input_path: Union[str, Path],
) -> Tuple[int, int]:
    """Check the existing output's records against the first input records, consuming those
    from `records`, and cut a trailing partial record off the output.

    Returns (records already done, bytes of partial record removed)."""
    if not output_path.exists() or output_path.stat().st_size == 0:
        return 0, 0
    n_done, good_size = 0, 0
    for done, end in scan_output(output_path, output_format):
        record = next(records, None)
        if record is None:
            raise ResumeError(
                f"{output_path} holds more records than {input_path} (record {n_done + 1}, id {done.id}, "
                f"has no input document): not an output of this input; {START_AFRESH}"
            )
        expected_text = pubtator_clean(record.text) if output_format == "pubtator" else record.text
        if done.id != str(record.id) or (done.text is not None and done.text != expected_text):
            what = f"id {done.id}" if done.id != str(record.id) else "a different text"
            raise ResumeError(
                f"{output_path}:{done.line}: the existing output does not continue the input: its record "
                f"{n_done + 1} has {what} where {input_path}:{record.line} has id {record.id}; {START_AFRESH}"
            )
        n_done, good_size = n_done + 1, end
    size = output_path.stat().st_size
    if size > good_size:
        with output_path.open("r+b") as f:
            f.truncate(good_size)
    return n_done, size - good_size
