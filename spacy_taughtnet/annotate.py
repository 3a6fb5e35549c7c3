"""Annotate documents with a pipeline: input readers, output writers, resumable runs,
and chunking of long documents.

Input formats:
  text      one document per line; its id is the line number (1-based). A blank or
            whitespace-only line is an (empty) document too, so output record i is line i.
  jsonl     one JSON object per line, {"id": ..., "text": "..."}; "id" (a string or an
            integer) defaults to the line number; blank lines are skipped.
  pubtator  PubTator abstracts: `PMID|t|title`, `PMID|a|abstract`, a blank line between
            documents; annotation lines (`PMID<TAB>...`) in the input are ignored. The
            text is the title and the abstract joined by one space, as PubTator does, and
            offsets refer to that text.

Output formats:
  jsonl     {"id": ..., "text": ..., "entities": [{"start", "end", "label", "text",
            "confidence"}]} per document ("text" can be left out).
  pubtator  the t and a lines, then `PMID<TAB>start<TAB>end<TAB>text<TAB>label` per entity,
            then a blank line. Line breaks in a text are written as spaces (and tabs in
            an entity's text too), which keeps every offset.

Offsets are character offsets (Unicode code points, Python string indices, as in spaCy),
end exclusive: text[start:end] is the entity's text.

Resuming: the output is appended one whole record at a time. A run that finds an output
already there checks that its complete records are the first records of the input (same
ids, same texts where the output holds them), truncates a trailing partial record left by
a crash, and annotates only the rest.

Long documents: a text longer than `chunk_chars` is cut into pieces of at most that many
characters, at a line break, else after a sentence end, else at whitespace (a hard cut
only if a piece holds no whitespace at all); each piece is a separate Doc and its entities'
offsets are shifted back into the whole text. A batch then holds at most
batch_size * chunk_chars characters, whatever the length of a document, which bounds the
memory (raising nlp.max_length instead would build one Doc, and one pass of the model, for
the whole text). An entity cannot span a cut; cutting at line breaks and sentence ends
makes one there unlikely.
"""
import json
import re
import sys
import time
from collections import deque
from dataclasses import dataclass
from itertools import islice
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple, Union

from .errors import AnnotateError, BadRecordError

INPUT_FORMATS = ("text", "jsonl", "pubtator")
OUTPUT_FORMATS = ("jsonl", "pubtator")
DEFAULT_CHUNK_CHARS = 5000

_INPUT_SUFFIXES = {".txt": "text", ".text": "text", ".jsonl": "jsonl", ".pubtator": "pubtator"}
_OUTPUT_SUFFIXES = {".jsonl": "jsonl", ".pubtator": "pubtator"}
_PUBTATOR_TEXT_LINE = re.compile(r"^([^|\t]+)\|([ta])\|(.*)$", re.DOTALL)
_SENTENCE_END = re.compile(r"[.!?][\"')\]]*\s")

Entity = Dict[str, Any]


@dataclass
class Record:
    """One input document. `line` is where it starts in the input file; `title` and
    `abstract` are set for PubTator input."""

    id: Union[str, int]
    text: str
    line: int
    title: Optional[str] = None
    abstract: Optional[str] = None


OnBad = Callable[[BadRecordError], None]


def raise_bad(err: BadRecordError) -> None:
    raise err


def ignore_bad(err: BadRecordError) -> None:
    pass


# ----------------------------------------------------------------------------- formats


def detect_format(path: Union[str, Path], given: Optional[str], *, output: bool = False) -> str:
    """The format given, else the one the file's extension names (case-insensitive; a
    `.pubtator` anywhere among the suffixes wins, e.g. `CDR.PubTator.txt`)."""
    allowed = OUTPUT_FORMATS if output else INPUT_FORMATS
    what = "output" if output else "input"
    if given:
        fmt = given.lower()
        if fmt == "txt":
            fmt = "text"
        if fmt not in allowed:
            raise AnnotateError(f"unknown {what} format {given!r}; choose one of {', '.join(allowed)}")
        return fmt
    suffixes = [s.lower() for s in Path(path).suffixes]
    by_suffix = _OUTPUT_SUFFIXES if output else _INPUT_SUFFIXES
    if ".pubtator" in suffixes:
        return "pubtator"
    if suffixes and suffixes[-1] in by_suffix:
        return by_suffix[suffixes[-1]]
    known = ", ".join(sorted(by_suffix))
    raise AnnotateError(
        f"{path}: cannot tell the {what} format from the extension (known: {known}); "
        f"pass --{what}-format ({'/'.join(allowed)})"
    )


def _lines(path: Path, on_bad: OnBad) -> Iterator[Tuple[int, str]]:
    """(line number, line) for each line of a UTF-8 file, without its line break.

    Lines end at '\\n' only (a '\\r' before it is dropped), so other control characters,
    and Unicode line separators, stay inside their line. A line that is not valid UTF-8
    goes to on_bad."""
    with path.open("rb") as f:
        for number, raw in enumerate(f, 1):
            if raw.endswith(b"\n"):
                raw = raw[:-1]
            if raw.endswith(b"\r"):
                raw = raw[:-1]
            if number == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            try:
                line = raw.decode("utf8")
            except UnicodeDecodeError as err:
                on_bad(
                    BadRecordError(
                        path,
                        number,
                        f"not valid UTF-8 (byte 0x{raw[err.start]:02x} at byte {err.start + 1} "
                        "of the line); convert the file to UTF-8, e.g. with iconv",
                    )
                )
                continue
            yield number, line


def read_text(path: Path, on_bad: OnBad = raise_bad) -> Iterator[Record]:
    for number, line in _lines(path, on_bad):
        yield Record(id=number, text=line, line=number)


def read_jsonl(path: Path, on_bad: OnBad = raise_bad) -> Iterator[Record]:
    for number, line in _lines(path, on_bad):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError as err:
            reason = f"{err.msg}: column {err.colno}" if isinstance(err, json.JSONDecodeError) else str(err)
            on_bad(BadRecordError(path, number, f"invalid JSON: {reason}"))
            continue
        if not isinstance(obj, dict):
            on_bad(BadRecordError(path, number, f"expected a JSON object with a \"text\", got {type(obj).__name__}"))
            continue
        text = obj.get("text")
        if not isinstance(text, str):
            got = "no \"text\"" if "text" not in obj else f"\"text\" of type {type(text).__name__}"
            on_bad(BadRecordError(path, number, f"expected a string \"text\", got {got}"))
            continue
        doc_id = obj.get("id", number)
        if isinstance(doc_id, bool) or not isinstance(doc_id, (str, int)):
            on_bad(BadRecordError(path, number, f"\"id\" must be a string or an integer, got {doc_id!r}"))
            continue
        if not _encodable(text) or not _encodable(str(doc_id)):
            on_bad(BadRecordError(path, number, "the text or id holds an unpaired surrogate (\\ud800-\\udfff)"))
            continue
        yield Record(id=doc_id, text=text, line=number)


def read_pubtator(path: Path, on_bad: OnBad = raise_bad) -> Iterator[Record]:
    current: Optional[Record] = None

    def finish(doc: Record) -> Record:
        title, abstract = doc.title or "", doc.abstract or ""
        doc.text = f"{title} {abstract}" if abstract else title
        return doc

    for number, line in _lines(path, on_bad):
        if not line.strip():
            if current is not None:
                yield finish(current)
                current = None
            continue
        match = _PUBTATOR_TEXT_LINE.match(line)
        if match:
            pmid, kind, content = match.groups()
            if kind == "t":
                if current is not None:  # no blank line between two documents
                    yield finish(current)
                current = Record(id=pmid, text="", line=number, title=content)
            elif current is None or current.id != pmid:
                on_bad(BadRecordError(path, number, f"abstract line of PMID {pmid} without its title line ({pmid}|t|...) before it"))
            elif current.abstract is not None:
                on_bad(BadRecordError(path, number, f"a second abstract line for PMID {pmid}"))
            else:
                current.abstract = content
            continue
        if "\t" in line:
            pmid = line.split("\t", 1)[0]
            if current is not None and pmid == current.id:
                continue  # an annotation or relation line of the input: ignored
            on_bad(BadRecordError(path, number, f"annotation line of PMID {pmid} outside that PMID's document"))
            continue
        on_bad(
            BadRecordError(
                path, number, f"not a PubTator line (expected PMID|t|title, PMID|a|abstract or PMID<TAB>...): {line[:60]!r}"
            )
        )
    if current is not None:
        yield finish(current)


_READERS = {"text": read_text, "jsonl": read_jsonl, "pubtator": read_pubtator}


def read_records(path: Union[str, Path], fmt: str, on_bad: OnBad = raise_bad) -> Iterator[Record]:
    """The documents of an input file, in order. A line that cannot be read goes to on_bad,
    which raises (the default) or logs and returns, to skip it."""
    return _READERS[fmt](Path(path), on_bad)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf8")
    except UnicodeEncodeError:
        return False
    return True


def _pubtator_clean(text: str) -> str:
    """Line breaks to spaces: one document's lines stay lines; offsets do not move."""
    return text.replace("\r", " ").replace("\n", " ")


def check_record(record: Record, output_format: str, input_path: Union[str, Path]) -> None:
    """Raise BadRecordError if the record cannot be written in the output format."""
    if output_format == "pubtator":
        doc_id = str(record.id)
        if not doc_id or any(c in doc_id for c in "|\t\r\n") or doc_id != doc_id.strip():
            raise BadRecordError(
                input_path, record.line, f"id {doc_id!r} cannot be a PubTator PMID (empty, or holds '|', a tab, a line break or edge spaces)"
            )


def format_record(record: Record, entities: List[Entity], fmt: str, *, include_text: bool = True) -> bytes:
    """One output record, as the bytes to append (ending with its terminator)."""
    if fmt == "jsonl":
        obj: Dict[str, Any] = {"id": record.id}
        if include_text:
            obj["text"] = record.text
        obj["entities"] = entities
        return (json.dumps(obj, ensure_ascii=False) + "\n").encode("utf8")
    pmid = str(record.id)
    if record.title is not None:
        title, abstract = record.title, record.abstract or ""
    else:
        title, abstract = record.text, ""
    lines = [f"{pmid}|t|{_pubtator_clean(title)}", f"{pmid}|a|{_pubtator_clean(abstract)}"]
    for ent in entities:
        mention = _pubtator_clean(ent["text"]).replace("\t", " ")
        lines.append(f"{pmid}\t{ent['start']}\t{ent['end']}\t{mention}\t{ent['label']}")
    return ("\n".join(lines) + "\n\n").encode("utf8")


# ----------------------------------------------------------------------------- existing output


@dataclass
class _DoneRecord:
    id: str
    text: Optional[str]  # None where the output does not hold the text
    line: int


def _scan_output(path: Path, fmt: str) -> Iterator[Tuple[_DoneRecord, int]]:
    """Each complete record of an output file with the byte offset where it ends. A
    trailing partial record (no terminator) is not yielded; a complete record that cannot
    be read raises AnnotateError."""

    def corrupt(line: int, reason: str) -> AnnotateError:
        return AnnotateError(
            f"{path}:{line}: the existing output is not a {fmt} file written by annotate ({reason}); "
            "fix or remove it, or pass --overwrite to start afresh"
        )

    with path.open("rb") as f:
        offset = 0
        if fmt == "jsonl":
            for number, raw in enumerate(f, 1):
                offset += len(raw)
                if not raw.endswith(b"\n"):
                    return
                try:
                    obj = json.loads(raw.decode("utf8"))
                except ValueError as err:
                    raise corrupt(number, f"invalid JSON: {err}") from None
                if not isinstance(obj, dict) or "id" not in obj or not isinstance(obj.get("entities"), list):
                    raise corrupt(number, "a record needs an \"id\" and \"entities\"")
                text = obj.get("text")
                yield _DoneRecord(str(obj["id"]), text if isinstance(text, str) else None, number), offset
            return
        block: List[str] = []
        first_line = 1
        for number, raw in enumerate(f, 1):
            offset += len(raw)
            if not raw.endswith(b"\n"):
                return
            try:
                line = raw[:-1].decode("utf8")
            except UnicodeDecodeError:
                raise corrupt(number, "not valid UTF-8") from None
            if line:
                if not block:
                    first_line = number
                block.append(line)
                continue
            if len(block) < 2:
                raise corrupt(first_line if block else number, "a document needs its t and a lines")
            title, abstract = (_PUBTATOR_TEXT_LINE.match(x) for x in block[:2])
            if not title or not abstract or title.group(2) != "t" or abstract.group(2) != "a" or title.group(1) != abstract.group(1):
                raise corrupt(first_line, "a document starts with PMID|t|title and PMID|a|abstract")
            pmid = title.group(1)
            if any(x.split("\t", 1)[0] != pmid for x in block[2:]):
                raise corrupt(first_line, f"an annotation line of another PMID in the document of {pmid}")
            joined = f"{title.group(3)} {abstract.group(3)}" if abstract.group(3) else title.group(3)
            yield _DoneRecord(pmid, joined, first_line), offset
            block = []


def resume(
    output_path: Path,
    output_format: str,
    records: Iterator[Record],
    input_path: Union[str, Path],
) -> Tuple[int, int]:
    """Check the existing output against the first input records, consuming those from
    `records`, and cut a trailing partial record off the output.

    Returns (records already done, bytes of partial record removed)."""
    if not output_path.exists() or output_path.stat().st_size == 0:
        return 0, 0
    n_done, good_size = 0, 0
    for done, end in _scan_output(output_path, output_format):
        record = next(records, None)
        if record is None:
            raise AnnotateError(
                f"{output_path} holds more records than {input_path} (record {n_done + 1}, id {done.id}, "
                "has no input document): not an output of this input; pass --overwrite to start afresh"
            )
        expected_text = _pubtator_clean(record.text) if output_format == "pubtator" else record.text
        if done.id != str(record.id) or (done.text is not None and done.text != expected_text):
            what = f"id {done.id}" if done.id != str(record.id) else "a different text"
            raise AnnotateError(
                f"{output_path}:{done.line}: the existing output does not continue the input: its record "
                f"{n_done + 1} has {what} where {input_path}:{record.line} has id {record.id}; "
                "pass --overwrite to start afresh (or write to another file)"
            )
        n_done, good_size = n_done + 1, end
    size = output_path.stat().st_size
    if size > good_size:
        with output_path.open("r+b") as f:
            f.truncate(good_size)
    return n_done, size - good_size


# ----------------------------------------------------------------------------- annotation


def chunk_text(text: str, max_chars: int) -> List[Tuple[int, str]]:
    """(offset, piece) pieces of a text, each at most max_chars long, which put back
    together make the text. A cut falls in the second half of a piece's window: after its
    last line break, else after its last sentence end, else after its last whitespace,
    else (no whitespace at all) at the window's end."""
    if max_chars < 1:
        raise ValueError(f"max_chars must be positive, got {max_chars}")
    pieces = []
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
        pieces.append((start, text[start:cut]))
        start = cut
    pieces.append((start, text[start:]))
    return pieces


def _confidence(span: Any, attr: str) -> Optional[float]:
    if not span.has_extension(attr):
        return None
    value = span._.get(attr)
    # 4 significant digits: compact, and a positive value never rounds to 0.
    return None if value is None else float(f"{value:.4g}")


def annotate_records(
    nlp: Any,
    records: Iterable[Record],
    *,
    batch_size: int = 64,
    n_process: int = 1,
    chunk_chars: int = DEFAULT_CHUNK_CHARS,
) -> Iterator[Tuple[Record, List[Entity]]]:
    """(record, entities) for each record, in input order. Texts longer than chunk_chars
    (or nlp.max_length) are annotated piece by piece (see chunk_text); whitespace-only
    texts and pieces are not sent to the pipeline."""
    from .component import CONFIDENCE_ATTR

    chunk_chars = min(chunk_chars, nlp.max_length)
    pending: deque = deque()  # [record, pieces not yet annotated, entities], in input order
    offsets: deque = deque()  # offset of each piece sent to the pipeline, in order

    def texts() -> Iterator[str]:
        for record in records:
            pieces = [(off, piece) for off, piece in chunk_text(record.text, chunk_chars) if piece.strip()]
            pending.append([record, len(pieces), []])
            for off, piece in pieces:
                offsets.append(off)
                yield piece

    def finished() -> Iterator[Tuple[Record, List[Entity]]]:
        while pending and pending[0][1] == 0:
            record, _, entities = pending.popleft()
            yield record, entities

    for doc in nlp.pipe(texts(), batch_size=batch_size, n_process=n_process):
        yield from finished()
        entry, offset = pending[0], offsets.popleft()
        text = entry[0].text
        for ent in doc.ents:
            start, end = ent.start_char + offset, ent.end_char + offset
            entry[2].append(
                {"start": start, "end": end, "label": ent.label_, "text": text[start:end], "confidence": _confidence(ent, CONFIDENCE_ATTR)}
            )
        entry[1] -= 1
        yield from finished()
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


@dataclass
class AnnotateSummary:
    total: int  # documents in the input (bad lines skipped not counted)
    resumed: int  # documents found already written
    written: int  # documents written by this run
    bad_lines: int  # input lines skipped (--skip-bad)
    discarded_bytes: int  # partial record removed from the output's end


def _stderr(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def annotate_file(
    nlp: Any,
    input_path: Union[str, Path],
    output_path: Union[str, Path],
    *,
    input_format: Optional[str] = None,
    output_format: Optional[str] = None,
    batch_size: int = 64,
    n_process: int = 1,
    chunk_chars: int = DEFAULT_CHUNK_CHARS,
    include_text: bool = True,
    skip_bad: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = _stderr,
) -> AnnotateSummary:
    """Annotate an input file into an output file, resuming an output already there.

    The input is read twice: a first pass checks every line (a bad line raises
    BadRecordError, or with skip_bad is logged and skipped) and counts the documents, so
    a bad line stops the run before any annotation; the second pass annotates."""
    input_path, output_path = Path(input_path), Path(output_path)
    in_fmt = detect_format(input_path, input_format)
    out_fmt = detect_format(output_path, output_format, output=True)
    if not input_path.is_file():
        raise AnnotateError(f"{input_path}: input file not found")
    if output_path.exists() and output_path.resolve() == input_path.resolve():
        raise AnnotateError(f"{output_path}: the output would overwrite the input")
    if output_path.is_dir():
        raise AnnotateError(f"{output_path}: is a directory; give an output file")

    bad_lines = 0

    def log_bad(err: BadRecordError) -> None:
        nonlocal bad_lines
        bad_lines += 1
        log(f"Skipped {err}")

    def checked(on_bad: OnBad) -> Iterator[Record]:
        for record in read_records(input_path, in_fmt, on_bad):
            try:
                check_record(record, out_fmt, input_path)
            except BadRecordError as err:
                on_bad(err)
                continue
            yield record

    total = sum(1 for _ in checked(log_bad if skip_bad else raise_bad))
    records = checked(ignore_bad)
    output_path.parent.mkdir(parents=True, exist_ok=True)
    if overwrite and output_path.exists():
        output_path.unlink()
    n_done, discarded = resume(output_path, out_fmt, records, input_path)
    if discarded:
        log(f"Removed a partial record ({discarded} bytes) from the end of {output_path}")
    if n_done:
        log(f"Resuming: {n_done} of {total} documents already in {output_path}")
    written = 0
    from tqdm import tqdm

    bar = tqdm(total=total, initial=n_done, unit="doc", desc="Annotating", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    start, words = time.perf_counter(), 0
    try:
        # Unbuffered: every record goes to the file in one write, so a crash leaves whole
        # records plus at most one partial record, which the next run removes.
        with output_path.open("ab", buffering=0) as out:
            annotated = annotate_records(nlp, records, batch_size=batch_size, n_process=n_process, chunk_chars=chunk_chars)
            for record, entities in annotated:
                out.write(format_record(record, entities, out_fmt, include_text=include_text))
                written += 1
                if progress:
                    words += len(record.text.split())
                    elapsed = max(time.perf_counter() - start, 1e-9)
                    bar.set_postfix_str(f"{words / elapsed:,.0f} words/s", refresh=False)
                    bar.update(1)
    finally:
        bar.close()
    return AnnotateSummary(total=total, resumed=n_done, written=written, bad_lines=bad_lines, discarded_bytes=discarded)


def render_html(
    nlp: Any,
    records: Iterable[Record],
    *,
    limit: int = 20,
    chunk_chars: int = DEFAULT_CHUNK_CHARS,
) -> str:
    """An HTML page (displaCy, style "ent") of the first `limit` records, annotated, with
    the colours of displacy.COLORS and a stable fallback colour for other labels."""
    from spacy import displacy as spacy_displacy

    from .displacy import colors_for

    labels = set()
    for name in nlp.pipe_names:
        labels.update(nlp.pipe_labels.get(name, []))
    parsed = []
    for record, entities in annotate_records(nlp, islice(records, limit) if limit else records, chunk_chars=chunk_chars):
        labels.update(ent["label"] for ent in entities)
        ents = [{"start": e["start"], "end": e["end"], "label": e["label"]} for e in entities]
        parsed.append({"text": record.text, "ents": ents, "title": f"{record.id}"})
    return spacy_displacy.render(
        parsed, style="ent", manual=True, page=True, jupyter=False, options={"colors": colors_for(sorted(labels))}
    )
