"""The document formats that `annotate` reads and writes (`render` and `prepare-transfer
--text` read them too): readers, writers, the reader of annotate's own output (to resume
it), and the one line reader of the package's text files (text_lines).

Input formats:
  text      one document per line; its id is the line number (1-based). A blank or
            whitespace-only line is an (empty) document too, so output record i is line i.
  jsonl     one JSON object per line, {"id": ..., "text": "..."}; "id" (a string or an
            integer) defaults to the line number; blank lines are skipped.
  pubtator  PubTator abstracts: `PMID|t|title`, `PMID|a|abstract`, a blank line between
            documents; annotation lines (`PMID<TAB>...`) in the input are ignored. The
            text is the title and the abstract joined by one space, as PubTator does, and
            offsets refer to that text.
  pubmed    PubMed's baseline/update XML (`pubmed*.xml.gz`): each PubmedArticle's PMID,
            ArticleTitle and AbstractText(s), read as a stream (iterparse); the text is the
            title and the abstract joined as for PubTator (the parts of a structured abstract
            joined by a space, inline markup such as <i> kept as its text). A record's "line"
            is its article's number in the file. DeleteCitation and book articles are skipped.

Any input file may be gzipped (detected by its first bytes; a file named `.gz` must be).

INPUT is a file, a folder (its files with a known input extension, hidden files left out) or
a glob pattern (`data/pubmed*.xml.gz`), its files taken in sorted order and read one after
another as one input (InputFiles). A text or JSONL document without an id of its own is
numbered as in the files' concatenation: the first line of a file follows the last line of
the file before.

Output formats:
  jsonl     {"id": "...", "text": ..., "entities": [{"start", "end", "label", "text",
            "confidence"}]} per document ("text" can be left out); the id is always a string
            (a line number too). With --spans, also "spans": {group key: [spans as entities]},
            each scored span group of the doc (taughtnet_ner's spans_key group).
  pubtator  the t and a lines, then `PMID<TAB>start<TAB>end<TAB>text<TAB>label` per entity,
            then a blank line. Line breaks in a text are written as spaces (and tabs in
            an entity's text too), which keeps every offset.

Offsets are character offsets (Unicode code points, Python string indices, as in spaCy),
end exclusive: text[start:end] is the entity's text.
"""
import codecs
import fnmatch
import glob
import gzip
import json
import os
import re
import xml.etree.ElementTree as ET
import zlib
from dataclasses import dataclass
from itertools import islice, takewhile
from pathlib import Path
from typing import (  # duplicates check: an import block, alike wherever these names are imported
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    Optional,
    Sequence,
    Tuple,
    Type,
    Union,
)

from .errors import AnnotateError, BadRecordError, TaughtNetError

INPUT_FORMATS = ("text", "jsonl", "pubtator", "pubmed")
OUTPUT_FORMATS = ("jsonl", "pubtator")

_INPUT_SUFFIXES = {".txt": "text", ".text": "text", ".jsonl": "jsonl", ".pubtator": "pubtator", ".xml": "pubmed"}
_OUTPUT_SUFFIXES = {".jsonl": "jsonl", ".pubtator": "pubtator"}
_PUBTATOR_TEXT_LINE = re.compile(r"^([^|\t]+)\|([ta])\|(.*)$", re.DOTALL)

Entity = Dict[str, Any]


@dataclass
class Record:
    """One input document. `line` is where it starts in its input file, `file` that file's
    index among the input's files (InputFiles); `title` and `abstract` are set for PubTator
    and PubMed input."""

    id: Union[str, int]
    text: str
    line: int
    title: Optional[str] = None
    abstract: Optional[str] = None
    file: int = 0


@dataclass
class Numbering:
    """Line numbers across the files of one input: `before` lines in the files already read,
    `lines` read so far of the current one."""

    before: int = 0
    lines: int = 0


@dataclass
class FileExtent:
    """How far one pass over an input read one of its files: the records it yielded and the
    lines it numbered."""

    records: int = 0
    lines: int = 0


OnBad = Callable[[BadRecordError], None]


def raise_bad(err: BadRecordError) -> None:
    raise err


def ignore_bad(err: BadRecordError) -> None:
    pass


def _json_error(err: Exception) -> str:
    if isinstance(err, RecursionError):
        return "nested too deeply"
    return f"{err.msg}: column {err.colno}" if isinstance(err, json.JSONDecodeError) else str(err)


def detect_format(path: Union[str, Path], given: Optional[str], *, output: bool = False) -> str:
    """The format given, else the one the file's extension names (case-insensitive; in an
    input's name a `.pubtator` anywhere among the suffixes wins, e.g. `CDR.PubTator.txt`)."""
    allowed = OUTPUT_FORMATS if output else INPUT_FORMATS
    what = "output" if output else "input"
    if given:
        fmt = given.lower()
        if fmt == "txt":
            fmt = "text"
        if fmt not in allowed:
            raise AnnotateError(f"unknown {what} format {given!r}; choose one of {', '.join(allowed)}")
        return fmt
    fmt = _format_of(Path(path), output=output)
    if fmt:
        return fmt
    known = ", ".join(sorted(_OUTPUT_SUFFIXES if output else _INPUT_SUFFIXES))
    raise AnnotateError(
        f"{path}: cannot tell the {what} format from the extension (known: {known}); "
        f"pass --{what}-format ({'/'.join(allowed)})"
    )


def _format_of(path: Path, *, output: bool = False) -> Optional[str]:
    """The format a file's extension names, if any: an output's final suffix (`x.pubtator.jsonl`
    is JSONL); an input's `.pubtator` anywhere among its suffixes, else its final one before
    an optional .gz."""
    suffixes = [s.lower() for s in path.suffixes]
    if output:
        return _OUTPUT_SUFFIXES.get(suffixes[-1]) if suffixes else None
    if suffixes[-1:] == [".gz"]:
        suffixes = suffixes[:-1]
    if ".pubtator" in suffixes:
        return "pubtator"
    return _INPUT_SUFFIXES.get(suffixes[-1]) if suffixes else None


def open_input(path: Path) -> Any:
    """An input file opened for reading bytes, decompressed if it is gzipped (it starts with
    gzip's magic bytes, or is named `.gz`: then one that is not gzip fails as it is read)."""
    with path.open("rb") as f:
        gzipped = f.read(2) == b"\x1f\x8b"
    return gzip.open(path, "rb") if gzipped or path.suffix.lower() == ".gz" else path.open("rb")


# What reading an opened input raises when its bytes cannot be read: a gzip file cut short
# (EOFError) or corrupt (zlib.error, gzip.BadGzipFile), a failing disk (OSError).
READ_ERRORS = (OSError, EOFError, zlib.error)


def text_lines(
    path: Union[str, Path], *, error: Type[TaughtNetError] = AnnotateError, on_bad: Optional[OnBad] = None,
    numbering: Optional[Numbering] = None,
) -> Iterator[Tuple[int, str]]:
    """(line number, line) for each line of a UTF-8 text file (gzipped or not, see
    open_input), without its line break or, on the first line, a BOM.

    Lines end at '\\n' only (a '\\r' before it is dropped), so other control characters,
    and Unicode line separators, stay inside their line. A missing file, or a line that
    cannot be read (a .gz cut short or corrupt, a disk error), raises `error` naming the file
    (and line); a line that is not valid UTF-8 goes to on_bad as a BadRecordError, or without
    on_bad raises `error` naming the file and line. `numbering.lines`, if given, counts every
    line read, whole or bad."""
    path = Path(path)
    if not path.is_file():
        raise error(f"{path}: file not found")
    for number, raw in _raw_lines(path, error):
        if numbering is not None:
            numbering.lines = number
        if raw.endswith(b"\n"):
            raw = raw[:-1]
        if raw.endswith(b"\r"):
            raw = raw[:-1]
        if number == 1 and raw.startswith(codecs.BOM_UTF8):  # written by some Windows editors
            raw = raw[len(codecs.BOM_UTF8):]
        try:
            line = raw.decode("utf8")
        except UnicodeDecodeError as err:
            reason = (f"not valid UTF-8 (byte 0x{raw[err.start]:02x} at byte {err.start + 1} of the line); "
                      "convert the file to UTF-8, e.g. with iconv")
            if on_bad is None:
                raise error(f"{path}:{number}: {reason}") from None
            on_bad(BadRecordError(path, number, reason))
            continue
        yield number, line


def _raw_lines(path: Path, error: Type[TaughtNetError]) -> Iterator[Tuple[int, bytes]]:
    """(line number, line as bytes) of a file; a failure to open or read it raises `error`
    naming the first line that could not be read."""
    number = 0
    try:
        with open_input(path) as f:
            for number, raw in enumerate(f, 1):
                yield number, raw
    except READ_ERRORS as err:
        raise error(f"{path}:{number + 1}: cannot read line {number + 1} or any after it: {err}") from None


def read_text(path: Path, on_bad: OnBad = raise_bad, numbering: Optional[Numbering] = None) -> Iterator[Record]:
    numbering = numbering or Numbering()
    for number, line in text_lines(path, on_bad=on_bad, numbering=numbering):
        yield Record(id=numbering.before + number, text=line, line=number)


def read_jsonl(path: Path, on_bad: OnBad = raise_bad, numbering: Optional[Numbering] = None) -> Iterator[Record]:
    numbering = numbering or Numbering()
    for number, line in text_lines(path, on_bad=on_bad, numbering=numbering):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except (ValueError, RecursionError) as err:
            on_bad(BadRecordError(path, number, f"invalid JSON: {_json_error(err)}"))
            continue
        if not isinstance(obj, dict):
            on_bad(BadRecordError(path, number, f"expected a JSON object with a \"text\", got {type(obj).__name__}"))
            continue
        text = obj.get("text")
        if not isinstance(text, str):
            got = "no \"text\"" if "text" not in obj else f"\"text\" of type {type(text).__name__}"
            on_bad(BadRecordError(path, number, f"expected a string \"text\", got {got}"))
            continue
        doc_id = obj.get("id", numbering.before + number)
        if isinstance(doc_id, bool) or not isinstance(doc_id, (str, int)):
            on_bad(BadRecordError(path, number, f"\"id\" must be a string or an integer, got {doc_id!r}"))
            continue
        if not _encodable(text) or not _encodable(str(doc_id)):
            on_bad(BadRecordError(path, number, "the text or id holds an unpaired surrogate (\\ud800-\\udfff)"))
            continue
        yield Record(id=doc_id, text=text, line=number)


def parse_pubtator(
    lines: Iterable[Tuple[int, str]], path: Path, on_bad: OnBad, *, strict: bool = False
) -> Iterator[Tuple[Record, bool]]:
    """The documents of PubTator lines ((number, line), without line breaks), each with
    whether a blank line ended it (not the next title line, or the end of the lines).

    A document is `PMID|t|title`, `PMID|a|abstract`, annotation lines `PMID<TAB>...`
    (not read), then a blank line; its text is the title and the abstract joined by one space.
    A line that does not fit goes to on_bad. strict (annotate's own output, as format_record
    writes it): so does a document whose abstract line does not follow its title line, or
    that no blank line ends, and a blank line outside a document."""
    current: Optional[Record] = None

    def finish(doc: Record) -> Record:
        title, abstract = doc.title or "", doc.abstract or ""
        doc.text = f"{title} {abstract}" if abstract else title
        return doc

    def bad(number: int, reason: str) -> None:
        on_bad(BadRecordError(path, number, reason))

    for number, line in lines:
        if not line.strip():
            if current is not None:
                if strict and current.abstract is None:
                    bad(number, f"the document of PMID {current.id} has no abstract line ({current.id}|a|...)")
                yield finish(current), True
                current = None
            elif strict:
                bad(number, "a blank line outside a document")
            continue
        match = _PUBTATOR_TEXT_LINE.match(line)
        if match:
            pmid, kind, content = match.groups()
            if kind == "t":
                if current is not None:  # no blank line between two documents
                    if strict:
                        bad(number, f"no blank line before the title line of PMID {pmid}")
                    yield finish(current), False
                current = Record(id=pmid, text="", line=number, title=content)
            elif current is None or current.id != pmid:
                bad(number, f"abstract line of PMID {pmid} without its title line ({pmid}|t|...) before it")
            elif current.abstract is not None:
                bad(number, f"a second abstract line for PMID {pmid}")
            else:
                current.abstract = content
            continue
        if "\t" in line:
            pmid = line.split("\t", 1)[0]
            if current is not None and pmid == current.id:
                if strict and current.abstract is None:
                    bad(number, f"an annotation line before the abstract line of PMID {pmid}")
                continue  # an annotation or relation line of the input: not read
            bad(number, f"annotation line of PMID {pmid} outside that PMID's document")
            continue
        bad(number, f"not a PubTator line (expected PMID|t|title, PMID|a|abstract or PMID<TAB>...): {line[:60]!r}")
    if current is not None:
        yield finish(current), False


def read_pubtator(path: Path, on_bad: OnBad = raise_bad, numbering: Optional[Numbering] = None) -> Iterator[Record]:
    for record, _ in parse_pubtator(text_lines(path, on_bad=on_bad, numbering=numbering), path, on_bad):
        yield record


def _all_text(element: Optional[ET.Element]) -> str:
    return "".join(element.itertext()) if element is not None else ""


def read_pubmed(path: Path, on_bad: OnBad = raise_bad, numbering: Optional[Numbering] = None) -> Iterator[Record]:
    """`numbering` is not used: every article has its PMID."""
    number = 0
    with open_input(path) as f:
        try:
            parse = ET.iterparse(f, events=("start", "end"))
            _, root = next(parse)
            for event, element in parse:
                if event != "end" or element.tag not in ("PubmedArticle", "PubmedBookArticle", "DeleteCitation"):
                    continue
                if element.tag == "PubmedArticle":
                    number += 1
                    pmid = (element.findtext("MedlineCitation/PMID") or "").strip()
                    article = element.find("MedlineCitation/Article")
                    if not pmid or article is None:
                        on_bad(BadRecordError(path, number, "a PubmedArticle without MedlineCitation/PMID or Article"))
                    else:
                        title = _all_text(article.find("ArticleTitle"))
                        abstract = " ".join(_all_text(part) for part in article.findall("Abstract/AbstractText"))
                        yield Record(id=pmid, text=f"{title} {abstract}" if abstract else title, line=number, title=title, abstract=abstract)
                root.clear()  # the articles read so far: memory stays flat
        except ET.ParseError as err:  # a file cut short or not XML: nothing after it can be read
            raise AnnotateError(f"{path}: not valid PubMed XML after article {number}: {err}") from None
        except READ_ERRORS as err:  # the XML parser was given the bytes before f.tell()
            raise AnnotateError(f"{path}: cannot read after article {number}, past byte {f.tell()} of the XML: {err}") from None


_READERS = {"text": read_text, "jsonl": read_jsonl, "pubtator": read_pubtator, "pubmed": read_pubmed}


def read_records(path: Union[str, Path], fmt: str, on_bad: OnBad = raise_bad, numbering: Optional[Numbering] = None) -> Iterator[Record]:
    """The documents of an input file, in order. A line that cannot be read goes to on_bad,
    which raises (the default) or logs and returns, to skip it. `numbering`: where the
    file's lines start among the files of its input (InputFiles.records)."""
    return _READERS[fmt](Path(path), on_bad, numbering)


_GLOB_MAGIC = re.compile(r"[*?[]")


@dataclass(frozen=True)
class InputFiles:
    """The files an INPUT names, in the order they are read: one file ("file"); a folder's
    files with a known input extension, hidden ones left out, sorted ("folder"); or the files
    a glob pattern matches, sorted ("glob"). `base` is the folder, or the pattern's leading
    folder: the manifest names the files relative to it."""

    given: str
    kind: str
    files: Tuple[Path, ...]
    base: Path

    @classmethod
    def resolve(cls, given: Union[str, Path], fmt: Optional[str]) -> Tuple["InputFiles", str]:
        """The files of INPUT `given` and their format: `fmt` if given, else the one their
        extensions name, which must be the same for all."""
        path, given = Path(given), str(given)
        if path.is_file():
            return cls(given, "file", (path,), path.parent), detect_format(path, fmt)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and not p.name.startswith(".") and _format_of(p))
            if not files:
                known = ", ".join(sorted(_INPUT_SUFFIXES))
                raise AnnotateError(f"{path}: no input file in this folder (none ends in {known}, optionally .gz)")
            inputs = cls(given, "folder", tuple(files), path)
        elif _GLOB_MAGIC.search(given):
            files = sorted(Path(p) for p in glob.glob(given) if os.path.isfile(p))
            if not files:
                raise AnnotateError(f"{given}: no input file matches this pattern")
            leading = list(takewhile(lambda part: not _GLOB_MAGIC.search(part), path.parts))
            inputs = cls(given, "glob", tuple(files), Path(*leading) if leading else Path("."))
        else:
            raise AnnotateError(f"{path}: input file not found")
        formats = [detect_format(f, fmt) for f in files]
        other = next((i for i, found in enumerate(formats) if found != formats[0]), None)
        if other is not None:
            raise AnnotateError(
                f"{given}: holds files of two formats ({files[0].name}: {formats[0]}, {files[other].name}: "
                f"{formats[other]}); give the files of one format (a glob such as FOLDER/*.jsonl), or --input-format"
            )
        return inputs, formats[0]

    @property
    def names(self) -> List[str]:
        """The files' paths relative to `base`."""
        return [f.relative_to(self.base).as_posix() for f in self.files]

    def records(
        self, fmt: str, on_bad: OnBad = raise_bad, *, extents_read: Optional[List[FileExtent]] = None,
        upto: Optional[Sequence[FileExtent]] = None,
    ) -> Iterator[Record]:
        """The records of every file, one file after another (each record's `file` set).
        `extents_read`, if given, gets how far each file was read. With `upto`, the
        extents_read of an earlier pass, each file is read no further than that pass read it
        (records appended since are left out) and the files after it are numbered as then."""
        numbering = Numbering()
        for index, path in enumerate(self.files):
            records = read_records(path, fmt, on_bad, numbering)
            if upto is not None:
                records = islice(records, upto[index].records)
            extent = FileExtent()
            for record in records:
                record.file = index
                extent.records += 1
                yield record
            extent.lines = upto[index].lines if upto is not None else numbering.lines
            if extents_read is not None:
                extents_read.append(extent)
            numbering.before, numbering.lines = numbering.before + extent.lines, 0

    def would_read(self, path: Path) -> bool:
        """Whether a file written at `path` would be read by a rerun as one of the input's
        files: a file with a known extension in the input folder, or one the pattern matches.
        Folders are compared as files (os.path.samefile), so a symlink to one, or a path through
        one, is that folder. Call it once the folder of `path` exists."""
        if self.kind == "file":
            return False
        if self.kind == "folder":
            folders, named = [self.base], not path.name.startswith(".") and bool(_format_of(path))
        else:
            pattern = Path(self.given)
            folders = [Path(p) for p in glob.glob(str(pattern.parent)) if os.path.isdir(p)]
            # glob leaves out hidden names unless the pattern's name starts with a dot
            named = fnmatch.fnmatchcase(path.name, pattern.name) and (pattern.name.startswith(".") or not path.name.startswith("."))
        return named and any(os.path.samefile(folder, path.parent) for folder in folders)


def _encodable(text: str) -> bool:
    try:
        text.encode("utf8")
    except UnicodeEncodeError:
        return False
    return True


def pubtator_clean(text: str) -> str:
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


def format_record(
    record: Record, entities: List[Entity], fmt: str, *, include_text: bool = True, spans: Optional[Dict[str, List[Entity]]] = None,
) -> bytes:
    """One output record, as the bytes to append (ending with its terminator). Its id is a
    string, also a line number. `spans` (JSONL only): the span groups, by key, written as
    "spans"."""
    if fmt == "jsonl":
        obj: Dict[str, Any] = {"id": str(record.id)}
        if include_text:
            obj["text"] = record.text
        obj["entities"] = entities
        if spans is not None:
            obj["spans"] = spans
        return (json.dumps(obj, ensure_ascii=False) + "\n").encode("utf8")
    pmid = str(record.id)
    if record.title is not None:
        title, abstract = record.title, record.abstract or ""
    else:
        title, abstract = record.text, ""
    lines = [f"{pmid}|t|{pubtator_clean(title)}", f"{pmid}|a|{pubtator_clean(abstract)}"]
    for ent in entities:
        mention = pubtator_clean(ent["text"]).replace("\t", " ")
        lines.append(f"{pmid}\t{ent['start']}\t{ent['end']}\t{mention}\t{ent['label']}")
    return ("\n".join(lines) + "\n\n").encode("utf8")


# ----------------------------------------------------------------------------- annotate's own output


@dataclass
class DoneRecord:
    id: str
    text: Optional[str]  # None where the output does not hold the text
    line: int


def scan_output(path: Path, fmt: str) -> Iterator[Tuple[DoneRecord, int]]:
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
                except (ValueError, RecursionError) as err:
                    raise corrupt(number, f"invalid JSON: {_json_error(err)}") from None
                if not isinstance(obj, dict) or "id" not in obj or not isinstance(obj.get("entities"), list):
                    raise corrupt(number, "a record needs an \"id\" and \"entities\"")
                if not isinstance(obj["id"], str):
                    raise AnnotateError(
                        f"{path}:{number}: the id {obj['id']!r} is a number: an earlier annotate wrote this output (it wrote "
                        "line numbers as numbers); annotate writes every id as a string now, and cannot add to it: "
                        "pass --overwrite to annotate afresh"
                    )
                text = obj.get("text")
                yield DoneRecord(str(obj["id"]), text if isinstance(text, str) else None, number), offset
            return

        def lines() -> Iterator[Tuple[int, str]]:
            """The output's complete lines; `offset`: where the last one yielded ends."""
            nonlocal offset
            for number, raw in enumerate(f, 1):
                if not raw.endswith(b"\n"):
                    return  # the last line of a partial record
                offset += len(raw)
                try:
                    line = raw[:-1].decode("utf8")
                except UnicodeDecodeError:
                    raise corrupt(number, "not valid UTF-8") from None
                yield number, line

        def refuse(err: BadRecordError) -> None:
            raise corrupt(err.line, err.reason)

        # parse_pubtator yields a document on reading the blank line that ends it: `offset` is its end
        for record, ended in parse_pubtator(lines(), path, refuse, strict=True):
            if not ended:
                return  # a trailing partial record
            yield DoneRecord(str(record.id), record.text, record.line), offset
