"""Transfer text: unlabelled sentences that the teachers annotate for the student.

Built from IOB TSV source corpora by one fixed rule, so a rebuild gives the same text:
- a sentence is a blank-line-separated block of a source file; its tokens are the first
  column; `-DOCSTART-` lines are skipped (corpora.iob_words); sentences of fewer than
  `min_tokens` tokens are dropped;
- a sentence (tokens joined by single spaces) equal to a sentence of any split of the
  evaluation corpora is dropped;
- duplicates are dropped, keeping the first occurrence in source order.

Output: one `<name>.txt.gz` per source corpus (one sentence a line, tokens separated by single
spaces, gzip without a timestamp so the bytes are reproducible) and `counts.json`.
"""
import gzip
import json
from pathlib import Path
from typing import Dict, Iterable, Iterator, List, Sequence, Set, Tuple, Union

from spacy.tokens import Doc
from spacy.vocab import Vocab

from .atomic import atomic_path
from .corpora import CORPUS_KEY, iob_words
from .errors import CorpusError
from .formats import read_records, text_lines

# The corpus name recorded on transfer docs is "transfer:<source>" (they have no entity type).
TRANSFER_PREFIX = "transfer:"

Sentences = Iterable[List[str]]


def text_sentences(path: Union[str, Path]) -> Iterator[List[str]]:
    """The token lists of pre-tokenised transfer text (one sentence a line, tokens separated
    by single spaces; `.gz` or plain)."""
    for lineno, line in text_lines(path, error=CorpusError):
        if not line.strip():
            continue
        words = line.split(" ")
        if "" in words:
            raise CorpusError(f"{path}:{lineno}: tokens must be separated by single spaces")
        yield words


def document_sentences(path: Union[str, Path], fmt: str, tokenizer) -> Iterator[List[str]]:
    """A user's own documents (text: one a line; JSONL: {"id", "text"}; PubTator), each
    tokenised by `tokenizer` into one token list (whitespace tokens dropped)."""
    for record in read_records(path, fmt):
        words = [token.text for token in tokenizer(record.text) if not token.is_space]
        if words:
            yield words


def build_transfer_text(
    sources: Sequence[Tuple[str, Sentences]],
    exclude: Iterable[Path],
    output_dir: Union[str, Path],
    *,
    min_tokens: int = 3,
) -> Dict[str, Dict[str, int]]:
    """Write `<name>.txt.gz` for each source name (in order of first appearance) from the
    (name, sentences) pairs, dropping sentences of the `exclude` IOB TSV files, short sentences
    and duplicates. The folder is written as a whole (temporary folder, then rename).
    Returns {name: {"sentences": n, "tokens": n}} (also written to counts.json)."""
    held_out: Set[str] = {" ".join(s) for path in exclude for s in iob_words(path)}
    seen: Set[str] = set()
    kept: Dict[str, List[str]] = {}
    for name, sentences in sources:
        lines = kept.setdefault(name, [])
        for tokens in sentences:
            sentence = " ".join(tokens)
            if len(tokens) < min_tokens or sentence in held_out or sentence in seen:
                continue
            seen.add(sentence)
            lines.append(sentence)
    counts = {
        name: {"sentences": len(lines), "tokens": sum(len(s.split(" ")) for s in lines)}
        for name, lines in kept.items()
    }
    if not any(c["sentences"] for c in counts.values()):
        raise CorpusError(f"no transfer sentences left from the sources {[name for name, _ in sources]}")
    with atomic_path(output_dir, is_dir=True) as tmp:
        for name, lines in kept.items():
            with (tmp / f"{name}.txt.gz").open("wb") as raw:
                with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as out:
                    out.write("".join(f"{s}\n" for s in lines).encode("utf8"))
        (tmp / "counts.json").write_text(json.dumps(counts, indent=1) + "\n", encoding="utf8")
    return counts


def source_name(path: Path) -> str:
    """A transfer source's name: its file name without `.txt.gz` (or its folder name without
    `-IOB`, for an IOB corpus folder)."""
    if path.name.endswith(".txt.gz"):
        return path.name[: -len(".txt.gz")]
    return path.name[: -len("-IOB")] if path.name.endswith("-IOB") else path.stem


def transfer_files(path: Union[str, Path]) -> List[Path]:
    """The `*.txt.gz` files of a transfer-text folder (or the one file given), sorted."""
    path = Path(path)
    files = sorted(path.glob("*.txt.gz")) if path.is_dir() else [path]
    if not files or not all(f.is_file() for f in files):
        raise CorpusError(f"{path}: no transfer text here (expected a folder of *.txt.gz files)")
    return files


def read_transfer_docs(
    files: Sequence[Path], vocab: Vocab, *, limit: int = 0, sources: Sequence[str] = ()
) -> Iterator[Doc]:
    """Docs of pre-tokenised transfer text, each recording its source as corpus
    "transfer:<name>" and no entity type. sources: keep only these names (empty: all);
    limit: at most N docs per file."""
    for path in files:
        name = source_name(path)
        if sources and name not in sources:
            continue
        for n_docs, words in enumerate(text_sentences(path), start=1):
            doc = Doc(vocab, words=words)
            doc.user_data[CORPUS_KEY] = TRANSFER_PREFIX + name
            yield doc
            if limit and n_docs >= limit:
                break
