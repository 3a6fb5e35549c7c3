"""Running a pipeline over an input file: loading it, the nlp.pipe loop, long documents in
pieces, and `annotate_file`, which locks, checks and resumes the output (see resume.py).

Long documents: a text longer than `chunk_chars` is cut into pieces of at most that many
characters, at a line break, else after a sentence end, else at whitespace (a hard cut
only if a piece holds no whitespace at all); each piece is a separate Doc and its entities'
offsets are shifted back into the whole text. A batch then holds at most
batch_size * chunk_chars characters, whatever the length of a document, which bounds the
memory (raising nlp.max_length instead would build one Doc, and one pass of the model, for
the whole text). An entity cannot span a cut; cutting at line breaks and sentence ends
makes one there unlikely.
"""
import os
import re
import sys
import time
from collections import deque
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import (  # duplicates check: an import block, alike wherever these names are imported
    Any,
    BinaryIO,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Tuple,
    Union,
)

from ..errors import AnnotateError, BadRecordError, ResumeError, WorkerError
from ..formats import (
    Entity,
    FileExtent,
    InputFiles,
    OnBad,
    Record,
    check_record,
    detect_format,
    format_record,
    ignore_bad,
)
from .resume import (  # duplicates check: an import block, alike wherever these names are imported
    START_AFRESH,
    InputDigest,
    OutputFiles,
    OutputLock,
    check_resumable,
    finish_interrupted_swap,
    load_manifest,
    make_manifest,
    model_digest,
    resume_output,
    swap_in,
    write_manifest,
    writing,
)
from .workers import WorkerGuard

DEFAULT_CHUNK_CHARS = 5000

_SENTENCE_END = re.compile(r"[.!?][\"')\]]*\s")


def chunk_text(text: str, max_chars: int) -> Iterator[Tuple[int, str]]:
    """(offset, piece) pieces of a text, each at most max_chars long, which put back
    together make the text, one at a time. A cut falls in the second half of a piece's
    window: after its last line break, else after its last sentence end, else after its last
    whitespace, else (no whitespace at all) at the window's end."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be positive, got {max_chars}")
    start = 0
    while len(text) - start > max_chars:
        hi = start + max_chars
        lo = start + max_chars // 2
        cut = text.rfind("\n", lo, hi) + 1
        if not cut:
            ends = [m.end() for m in _SENTENCE_END.finditer(text, lo, hi)]
            cut = ends[-1] if ends else 0
        if not cut:
            cut = max(text.rfind(" ", lo, hi), text.rfind("\t", lo, hi)) + 1
        if not cut:
            cut = next((i + 1 for i in range(hi - 1, lo - 1, -1) if text[i].isspace()), hi)
        yield start, text[start:cut]
        start = cut
    yield start, text[start:]


def scored_groups(doc: Any) -> Dict[str, List[Tuple[Any, float]]]:
    """(span, score) of each span group of a doc that carries scores in attrs["scores"]
    (taughtnet_ner's `spans_key` group, a spancat's), by the group's key; scores rounded to 4
    significant digits: compact, and a positive score never rounds to 0."""
    groups = {}
    for key, group in doc.spans.items():
        values = group.attrs.get("scores")
        if values is not None and len(values) == len(group):
            groups[key] = [(span, float(f"{float(value):.4g}")) for span, value in zip(group, values)]
    return groups


def span_scores(doc: Any) -> Dict[Tuple[int, int, str], float]:
    """{(start_char, end_char, label): score} from every scored span group of a doc (scored_groups)."""
    return {(span.start_char, span.end_char, span.label_): score for group in scored_groups(doc).values() for span, score in group}


def check_threshold(threshold: Optional[float]) -> None:
    if threshold is not None and not 0.0 <= threshold <= 1.0:
        raise AnnotateError(f"--threshold is a probability, from 0 to 1; got {threshold}")


def check_spans(nlp: Any, out_fmt: str) -> None:
    """--spans needs JSONL output and a pipeline with a component that sets span groups."""
    if out_fmt != "jsonl":
        raise AnnotateError(f"--spans writes JSONL only (each record's \"spans\"); the output format is {out_fmt}")
    if not any("doc.spans" in nlp.get_pipe_meta(name).assigns for name in nlp.pipe_names):
        raise AnnotateError(f"--spans: no component of the pipeline sets span groups (doc.spans); its pipes: {', '.join(nlp.pipe_names)}")


@dataclass
class _Pending:
    """A record of annotate_records whose entities are not all back from the pipeline."""

    record: Record
    entities: List[Entity] = field(default_factory=list)
    groups: Dict[str, List[Entity]] = field(default_factory=dict)
    out: int = 0  # pieces sent to the pipeline and not yet back
    all_sent: bool = False


def annotate_records(
    nlp: Any,
    records: Iterable[Record],
    *,
    batch_size: int = 64,
    n_process: int = 1,
    chunk_chars: int = DEFAULT_CHUNK_CHARS,
    spans: bool = False,
    threshold: Optional[float] = None,
) -> Iterator[Tuple[Record, List[Entity], Optional[Dict[str, List[Entity]]]]]:
    """(record, entities, span groups) for each record, in input order: the entities of
    doc.ents, each with its score in a span group (`confidence`, None without one); with
    `spans`, each scored span group (scored_groups) by its key, its spans as entities (None
    without `spans`). `threshold`: entities and spans whose confidence is below it are left
    out (those without a confidence are kept). Texts longer than chunk_chars
    (or nlp.max_length) are annotated piece by piece (see chunk_text): the pieces are cut as
    the pipeline takes them and only their entities are kept, so a document's length adds
    its entities, and no more, to the memory. Whitespace-only texts and pieces are not sent
    to the pipeline. With n_process != 1 the workers die with this process, and a dead
    worker raises WorkerError (see workers.py)."""
    chunk_chars = min(chunk_chars, nlp.max_length)
    pending: deque = deque()  # _Pending of each record not yet yielded, in input order
    sent: deque = deque()  # (its _Pending, its offset) of each piece sent to the pipeline, in order

    def texts() -> Iterator[str]:
        for record in records:
            entry = _Pending(record)
            pending.append(entry)
            for offset, piece in chunk_text(record.text, chunk_chars):
                if piece.strip():
                    entry.out += 1
                    sent.append((entry, offset))
                    yield piece
            entry.all_sent = True

    def finished() -> Iterator[Tuple[Record, List[Entity], Optional[Dict[str, List[Entity]]]]]:
        while pending and pending[0].all_sent and not pending[0].out:
            entry = pending.popleft()
            yield entry.record, entry.entities, entry.groups if spans else None

    guard = WorkerGuard() if n_process != 1 else None
    with guard or nullcontext():
        try:
            for doc in nlp.pipe(texts(), batch_size=batch_size, n_process=n_process):
                entry, offset = sent.popleft()
                text = entry.record.text
                scores = span_scores(doc)
                for ent in doc.ents:
                    start, end = ent.start_char + offset, ent.end_char + offset
                    confidence = scores.get((ent.start_char, ent.end_char, ent.label_))
                    if threshold is None or confidence is None or confidence >= threshold:
                        entry.entities.append(
                            {"start": start, "end": end, "label": ent.label_, "text": text[start:end], "confidence": confidence}
                        )
                if spans:
                    for key, group in scored_groups(doc).items():
                        found = entry.groups.setdefault(key, [])
                        for span, score in group:
                            if threshold is None or score >= threshold:
                                start, end = span.start_char + offset, span.end_char + offset
                                found.append({"start": start, "end": end, "label": span.label_, "text": text[start:end], "confidence": score})
                entry.out -= 1
                yield from finished()
        except (EOFError, OSError) as err:  # spaCy reading the result pipe of a worker that is gone
            if guard is None:
                raise
            raise guard.failure(n_process, err) from None
    yield from finished()
    if pending:  # cannot happen: every piece sent comes back
        raise RuntimeError(f"{len(pending)} documents were sent to the pipeline and not returned")


def load_pipeline(model: str) -> Any:
    """spacy.load, with any failure as a one-line AnnotateError."""
    import spacy

    path = Path(model)
    if (model.startswith((".", "/", "~")) or path.parent != Path(".")) and not path.exists():
        raise AnnotateError(f"cannot load model {model!r}: no such file or directory")
    if path.is_file():
        raise AnnotateError(f"cannot load model {model!r}: it is a file; give a pipeline directory (nlp.to_disk) or an installed package name")
    try:
        nlp = spacy.load(model)
    except Exception as err:  # spaCy raises OSError, ValueError, config and registry errors
        first = (str(err).strip().splitlines() or [type(err).__name__])[0]
        raise AnnotateError(f"cannot load model {model!r}: {first}") from None
    if not any("doc.ents" in nlp.get_pipe_meta(name).assigns for name in nlp.pipe_names):
        raise AnnotateError(f"model {model!r} has no component that sets entities (its pipes: {', '.join(nlp.pipe_names) or 'none'})")
    return nlp


def checked_records(
    inputs: InputFiles, in_fmt: str, out_fmt: str, on_bad: OnBad, *, extents_read: Optional[List[FileExtent]] = None,
    upto: Optional[List[FileExtent]] = None,
) -> Iterator[Record]:
    """The input's records that can be written in the output format; a line that cannot be
    read, or a record that cannot be written, goes to on_bad. extents_read, upto: see
    InputFiles.records."""
    for record in inputs.records(in_fmt, on_bad, extents_read=extents_read, upto=upto):
        try:
            check_record(record, out_fmt, inputs.files[record.file])
        except BadRecordError as err:
            on_bad(err)
            continue
        yield record


@dataclass
class DigestedInput:
    """What the first pass over an input found: the digest of its records, the records of
    each file that go to the output (`counts`), and how far it read each file."""

    digest: InputDigest
    counts: List[int]
    extents: List[FileExtent]


def digest_input(
    inputs: InputFiles, in_fmt: str, out_fmt: str, on_bad: OnBad, block_records: Optional[int] = None
) -> DigestedInput:
    """The first pass over the input: every record checked (a bad one goes to on_bad) and
    digested."""
    digested = DigestedInput(InputDigest(block_records), [0] * len(inputs.files), [])
    for record in checked_records(inputs, in_fmt, out_fmt, on_bad, extents_read=digested.extents):
        digested.digest.add(record)
        digested.counts[record.file] += 1
    digested.digest.finish()
    return digested


def digested_records(inputs: InputFiles, in_fmt: str, out_fmt: str, digested: DigestedInput) -> Iterator[Record]:
    """The second pass over the input: the records that the first pass digested, no more
    (records appended to a file since are left for another run). They are digested again:
    a block of records that differs from the first pass's (a file edited meanwhile) raises
    AnnotateError before its last record is yielded; one left incomplete, at the end."""
    digest, again = digested.digest, InputDigest(digested.digest.block_records)

    def check_block(block: int) -> None:
        if block >= len(digest.blocks) or again.blocks[block] != digest.blocks[block]:
            raise AnnotateError(
                f"{inputs.given}: {again.block_span(block)} changed during this run; rerun with --overwrite "
                "once the input stays the same"
            )

    for record in checked_records(inputs, in_fmt, out_fmt, ignore_bad, upto=digested.extents):
        closed = len(again.blocks)
        again.add(record)
        if len(again.blocks) > closed:
            check_block(closed)
        yield record
    closed = len(again.blocks)
    again.finish()
    if len(again.blocks) > closed:
        check_block(closed)
    if again.records < digest.records:
        raise AnnotateError(
            f"{inputs.given}: records {again.records + 1}-{digest.records} were removed during this run; rerun with "
            "--overwrite once the input stays the same"
        )


def input_manifest(model: Dict[str, Optional[str]], options: Dict[str, Any], inputs: InputFiles, digested: DigestedInput) -> Dict[str, Any]:
    """resume.make_manifest; the input of a folder or pattern also lists its files in order,
    with their records, so that a rerun reading other files is refused (check_input_files)."""
    manifest = make_manifest(model, options, Path(inputs.given), digested.digest)
    if inputs.kind != "file":
        manifest["input"]["files"] = [{"name": name, "records": n} for name, n in zip(inputs.names, digested.counts)]
    return manifest


def check_input_files(old: Dict[str, Any], new: Dict[str, Any], files: OutputFiles) -> None:
    """Raise ResumeError, saying what differs, unless this run reads the files (names, order,
    records of each) that the run being resumed read. The records' content is the digest's."""
    was, now = old["input"].get("files"), new["input"].get("files")
    if was == now:
        return
    if was is not None and not (isinstance(was, list) and all(
            isinstance(f, dict) and isinstance(f.get("name"), str) and isinstance(f.get("records"), int) for f in was)):
        raise ResumeError(
            f"cannot resume {files.output}: {files.manifest} is not a valid annotate manifest "
            f"(\"input.files\" must list {{\"name\", \"records\"}} objects); {START_AFRESH}"
        )
    path, old_path = new["input"]["path"], old["input"]["path"]
    if was is None or now is None:
        problem = (f"this run reads the file {path}, the run being resumed read the {len(was)} files of {old_path}" if now is None
                   else f"this run reads the {len(now)} files of {path}, the run being resumed read the file {old_path}")
    else:
        names, old_names = [f["name"] for f in now], [f["name"] for f in was]
        gone, added = [n for n in old_names if n not in names], [n for n in names if n not in old_names]
        if gone or added or names != old_names:
            problem = f"{path} names {len(names)} files, the input of the run being resumed {len(old_names)}" + "".join(
                f"; {what}: {_some(which)}" for what, which in (("not there now", gone), ("new", added)) if which)
        else:
            name, n, old_n = next((f["name"], f["records"], o["records"]) for f, o in zip(now, was) if f != o)
            problem = f"{name} of {path} has {n} records, {old_n} in the input of the run being resumed"
    raise ResumeError(f"cannot resume {files.output}: {problem}; {START_AFRESH}")


def _some(names: List[str], shown: int = 3) -> str:
    more = f" and {len(names) - shown} more" if len(names) > shown else ""
    return ", ".join(names[:shown]) + more


def check_output_apart(inputs: InputFiles, files: OutputFiles, *, output_is_file: bool = True) -> None:
    """Raise AnnotateError if the output, or a file beside it, is one of the input's files,
    or if a rerun would read the output file as input. Call it once the output's folder exists."""
    for path in inputs.files:
        files.check_not_input(path)
    if output_is_file and inputs.would_read(files.output):
        where = "is in the input folder" if inputs.kind == "folder" else "matches the input pattern"
        raise AnnotateError(f"{files.output}: the output {where} {inputs.given}, so a rerun would read it as input; write it elsewhere")


@dataclass
class AnnotateSummary:
    total: int  # documents in the input (bad lines skipped not counted)
    resumed: int  # documents found already written
    written: int  # documents written by this run
    bad_lines: int  # input lines skipped (--skip-bad)
    discarded_bytes: int  # partial record removed from the output's end


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


@dataclass
class AnnotateRun:
    """What both backends of annotate (annotate_file, ray_backend.annotate_ray) set up alike:
    the input's files and format, the output's format and the files beside it, and the bad
    input lines skipped (skip_bad, logged with `log`)."""

    inputs: InputFiles
    in_fmt: str
    out_fmt: str
    files: OutputFiles
    skip_bad: bool
    log: Callable[[str], None]
    bad_lines: int = 0

    @classmethod
    def start(
        cls, input_path: Union[str, Path], output_path: Union[str, Path], input_format: Optional[str],
        output_format: Optional[str], *, skip_bad: bool, log: Callable[[str], None], output_is_file: bool = True,
    ) -> "AnnotateRun":
        """Before the output is locked: the input's files and format (InputFiles.resolve), the
        output's format, the output (its resolved path: a symlink to it is it) not a folder if
        output_is_file, its folder made, and checked apart from the input (check_output_apart)."""
        inputs, in_fmt = InputFiles.resolve(input_path, input_format)
        out_fmt = detect_format(output_path, output_format, output=True)
        output_path = Path(output_path).resolve()
        if output_is_file and output_path.is_dir():
            raise AnnotateError(f"{output_path}: is a directory; give an output file")
        output_path.parent.mkdir(parents=True, exist_ok=True)
        files = OutputFiles(output_path)
        check_output_apart(inputs, files, output_is_file=output_is_file)
        return cls(inputs, in_fmt, out_fmt, files, skip_bad, log)

    def on_bad(self, err: BadRecordError) -> None:
        """An input line that cannot be read: raised, or with skip_bad logged, counted and skipped."""
        if not self.skip_bad:
            raise err
        self.bad_lines += 1
        self.log(f"Skipped {err}")

    def digest(
        self, nlp: Any, *, include_text: bool, chunk_chars: int, block_records: Optional[int] = None,
        spans: bool = False, threshold: Optional[float] = None,
    ) -> Tuple[DigestedInput, Dict[str, Any]]:
        """The first pass over the input (digest_input) and this run's manifest: nlp's digest,
        the options that change the output (spans and threshold only where given, so that an
        output of a run without them resumes as before), the input's digest."""
        digested = digest_input(self.inputs, self.in_fmt, self.out_fmt, self.on_bad, block_records)
        options = {
            "input_format": self.in_fmt,
            "output_format": self.out_fmt,
            "include_text": include_text,
            "chunk_chars": min(chunk_chars, nlp.max_length),
        }
        if spans:
            options["spans"] = True
        if threshold is not None:
            options["threshold"] = threshold
        return digested, input_manifest(model_digest(nlp), options, self.inputs, digested)

    def records(self, digested: DigestedInput) -> Iterator[Record]:
        """The second pass over the input (digested_records)."""
        return digested_records(self.inputs, self.in_fmt, self.out_fmt, digested)


def annotate_file(
    nlp: Union[Any, str],
    input_path: Union[str, Path],
    output_path: Union[str, Path],
    *,
    input_format: Optional[str] = None,
    output_format: Optional[str] = None,
    batch_size: int = 64,
    n_process: int = 1,
    chunk_chars: int = DEFAULT_CHUNK_CHARS,
    include_text: bool = True,
    spans: bool = False,
    threshold: Optional[float] = None,
    skip_bad: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = _stderr,
) -> AnnotateSummary:
    """Annotate an input (a file, a folder or a glob pattern, see InputFiles) into an output
    file, resuming an output already there.

    nlp is a loaded pipeline, or the name or path of one, loaded once the output is locked
    (so a second run on the same output fails before loading it).

    The output is locked for the run (OutputLock). The input is read twice: a first pass
    checks every line (a bad line raises BadRecordError, or with skip_bad is logged and
    skipped), counts the documents and digests them, so a bad line stops the run before
    any annotation; the second pass annotates those documents (digested_records). An
    existing output is resumed only if its manifest names this model, these options and this
    input (ResumeError otherwise); with overwrite the new output is written beside it and
    moved onto it when complete. The output is its resolved path: a symlink to it is it.

    spans: write each record's scored span groups too (JSONL output; annotate_records);
    threshold: leave out entities and spans of a lower confidence (annotate_records)."""
    check_threshold(threshold)
    run = AnnotateRun.start(input_path, output_path, input_format, output_format, skip_bad=skip_bad, log=log)
    files, out_fmt = run.files, run.out_fmt
    output_path = files.output
    with OutputLock(files) as lock:
        finish_interrupted_swap(files)
        existing = output_path.exists() and output_path.stat().st_size > 0
        old_manifest = load_manifest(files) if existing and not overwrite else None
        if isinstance(nlp, str):
            nlp = load_pipeline(nlp)
        if spans:
            check_spans(nlp, out_fmt)
        digested, manifest = run.digest(
            nlp, include_text=include_text, chunk_chars=chunk_chars, spans=spans, threshold=threshold,
            block_records=old_manifest["input"]["block_records"] if old_manifest else None,
        )
        digest = digested.digest
        records = run.records(digested)
        staged = overwrite and existing
        n_done = discarded = 0
        if old_manifest is not None:
            check_input_files(old_manifest, manifest, files)
            check_resumable(old_manifest, manifest, digest, files)
            n_done, discarded = resume_output(output_path, out_fmt, records, run.inputs.given)
        elif not staged:
            write_manifest(files.manifest, manifest)  # before the first record
        if discarded:
            log(f"Removed a partial record ({discarded} bytes) from the end of {output_path}")
        if n_done:
            log(f"Resuming: {n_done} of {digest.records} documents already in {output_path}")
        target = files.staged if staged else output_path
        lock.hold_output()
        try:
            written = _write_records(
                nlp, records, target, out_fmt, total=digest.records, n_done=n_done, append=not staged, progress=progress,
                batch_size=batch_size, n_process=n_process, chunk_chars=chunk_chars, include_text=include_text,
                spans=spans, threshold=threshold,
            )
        except BaseException as err:
            if staged and files.staged.exists():
                files.staged.unlink()
            if isinstance(err, WorkerError):
                then = "the old output is kept; rerun the same command to start again" if staged else (
                    f"{output_path} holds whole records only: rerun the same command to resume")
                raise WorkerError(f"{err}; {then}") from None
            raise
        if staged:
            swap_in(files, manifest)
    return AnnotateSummary(total=digest.records, resumed=n_done, written=written, bad_lines=run.bad_lines, discarded_bytes=discarded)


def _write_records(
    nlp: Any,
    records: Iterator[Record],
    target: Path,
    out_fmt: str,
    *,
    total: int,
    n_done: int,
    append: bool,
    progress: bool,
    include_text: bool,
    **pipe_options: Any,
) -> int:
    """Annotate `records` into `target`; the number written. Each record goes to the file
    as it comes, unbuffered, so a crash leaves whole records plus at most one partial
    record, which the next run removes. Appending, `target` is a resumable output;
    otherwise (a staged --overwrite output) it is written afresh and synced to disk at the
    end. An error writing it names it (writing)."""
    from tqdm import tqdm

    written, words = 0, 0
    bar = tqdm(total=total, initial=n_done, unit="doc", desc="Annotating", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    start = time.perf_counter()
    try:
        with target.open("ab" if append else "wb", buffering=0) as out:
            for record, entities, groups in annotate_records(nlp, records, **pipe_options):
                write_whole(out, format_record(record, entities, out_fmt, include_text=include_text, spans=groups), target)
                written += 1
                if progress:
                    words += len(record.text.split())
                    elapsed = max(time.perf_counter() - start, 1e-9)
                    bar.set_postfix_str(f"{words / elapsed:,.0f} words/s", refresh=False)
                    bar.update(1)
            if not append:
                with writing(target):
                    os.fsync(out.fileno())
    finally:
        bar.close()
    return written


def write_whole(out: BinaryIO, data: bytes, path: Path) -> None:
    """Write all of `data` to `out`, a file of `path` opened unbuffered, where one write may
    take only part of it (on a disk filling up); an error names `path`."""
    with writing(path):
        view = memoryview(data)
        while view:
            view = view[out.write(view):]
