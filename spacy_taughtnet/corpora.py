"""Single-type IOB TSV corpora -> spaCy Docs and DocBin files, and their global union.

Each doc records in `doc.user_data` the corpus it came from (CORPUS_KEY) and the one
entity type that corpus annotates (TYPE_KEY). In the union, a doc's gold entities are
complete for its own type only; the other types are unknown there.
"""
import warnings
from contextlib import closing
from pathlib import Path
from typing import (  # duplicates check: an import block, alike wherever these names are imported
    Dict,
    Iterable,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Union,
)

from spacy.tokens import Doc, DocBin, Span
from spacy.vocab import Vocab

from .atomic import atomic_path
from .errors import CorpusError, TaughtNetWarning, UnknownEntityTypeError
from .formats import text_lines

CORPUS_KEY = "taughtnet_corpus"
TYPE_KEY = "taughtnet_type"
# A document boundary in CoNLL-style files, not a token of the text.
DOCSTART = "-DOCSTART-"


class TokenLine(NamedTuple):
    """A token's line of an IOB TSV file: its number and its tab-separated columns (the
    token first)."""

    lineno: int
    columns: List[str]


def iob_sentences(path: Union[str, Path]) -> Iterator[List[TokenLine]]:
    """The sentences (blocks between blank lines) of an IOB TSV file, as their token lines;
    `-DOCSTART-` lines are skipped. A line with an empty token is a CorpusError."""
    sentence: List[TokenLine] = []
    for lineno, line in text_lines(path, error=CorpusError):
        if not line.strip():
            if sentence:
                yield sentence
            sentence = []
            continue
        columns = line.split("\t")
        if not columns[0].strip():
            raise CorpusError(f"{path}:{lineno}: empty token (the first tab-separated column is blank)")
        if columns[0] != DOCSTART:
            sentence.append(TokenLine(lineno, columns))
    if sentence:
        yield sentence


def iob_words(path: Union[str, Path]) -> Iterator[List[str]]:
    """The token lists of an IOB TSV file's sentences (its labels unread)."""
    for sentence in iob_sentences(path):
        yield [line.columns[0] for line in sentence]


def _parse_label(label: str, path: Path, lineno: int) -> Tuple[str, Optional[str]]:
    if label == "O":
        return "O", None
    prefix, sep, ent_type = label.partition("-")
    if sep and prefix in ("B", "I") and ent_type:
        return prefix, ent_type
    raise CorpusError(
        f"{path}:{lineno}: unknown label {label!r}: expected 'O', 'B-<type>' or 'I-<type>'"
    )


def read_iob(
    path: Union[str, Path],
    vocab: Vocab,
    *,
    corpus: Optional[str] = None,
    entity_type: Optional[str] = None,
    repair: bool = False,
    limit: int = 0,
) -> List[Doc]:
    """Read a two-column IOB TSV file (token TAB label, blank line between sentences).

    corpus: name recorded on each doc; defaults to the name of the file's folder.
    entity_type: the corpus's entity type; read from its labels when not given. A file
        whose labels name two types is refused: each corpus annotates one type.
    repair: turn an I- label that follows O or another type into B- with a warning,
        instead of refusing the file.
    limit: keep only the first `limit` sentences (0 keeps all).
    """
    path = Path(path)
    corpus = corpus or path.parent.name
    sentences: List[Tuple[List[str], List[Tuple[int, int, str]]]] = []
    type_line = 0
    truncated = False
    with closing(iob_sentences(path)) as blocks:
        for block in blocks:
            if limit and len(sentences) >= limit:
                truncated = True
                break
            words: List[str] = []
            spans: List[Tuple[int, int, str]] = []
            open_span: Optional[List] = None  # [start, end, type]
            for lineno, columns in block:
                if len(columns) != 2:
                    line = "\t".join(columns)
                    raise CorpusError(
                        f"{path}:{lineno}: expected 'token<TAB>label', got {len(columns)} "
                        f"tab-separated column(s): {line[:80]!r}"
                    )
                token, label = columns[0], columns[1].strip()
                prefix, ent_type = _parse_label(label, path, lineno)
                if ent_type is not None:
                    if entity_type is None:
                        entity_type, type_line = ent_type, lineno
                    elif ent_type != entity_type:
                        where = f"line {type_line}" if type_line else "the entity_type argument"
                        raise CorpusError(
                            f"{path}:{lineno}: label {label!r} has type {ent_type!r}, but this corpus's "
                            f"type is {entity_type!r} ({where}); each corpus must annotate one type"
                        )
                if prefix == "I" and (open_span is None or open_span[2] != ent_type):
                    problem = f"{label!r} follows " + (
                        "O" if open_span is None else f"an entity of type {open_span[2]!r}"
                    )
                    if not repair:
                        raise CorpusError(
                            f"{path}:{lineno}: {problem}; fix the file or convert with repair=True "
                            "(--repair) to read it as B-"
                        )
                    warnings.warn(f"{path}:{lineno}: {problem}; read as B-{ent_type}", TaughtNetWarning)
                    prefix = "B"
                if prefix == "I":
                    open_span[1] = len(words) + 1
                else:
                    if open_span is not None:
                        spans.append(tuple(open_span))
                    open_span = [len(words), len(words) + 1, ent_type] if prefix == "B" else None
                words.append(token)
            if open_span is not None:
                spans.append(tuple(open_span))
            sentences.append((words, spans))

    if not sentences:
        raise CorpusError(f"{path}: the corpus is empty (no sentences)")
    if entity_type is None:
        read = f"the first {limit} sentences" if truncated else "the file"
        more = "read more sentences (limit, --limit) or " if truncated else ""
        raise UnknownEntityTypeError(
            f"{path}: no B-/I- label in {read}, so its entity type is unknown; "
            f"{more}pass entity_type (--entity-type)"
        )
    docs = []
    for sent_words, sent_spans in sentences:
        doc = Doc(vocab, words=sent_words, spaces=[True] * (len(sent_words) - 1) + [False])
        doc.set_ents([Span(doc, s, e, label=t) for s, e, t in sent_spans], default="outside")
        doc.user_data[CORPUS_KEY] = corpus
        doc.user_data[TYPE_KEY] = entity_type
        docs.append(doc)
    return docs


def write_docbin(docs: Iterable[Doc], path: Union[str, Path]) -> int:
    """Write docs (with their corpus metadata) to a DocBin file atomically; return the count."""
    doc_bin = DocBin(store_user_data=True)
    n_docs = 0
    for doc in docs:
        doc_bin.add(doc)
        n_docs += 1
    with atomic_path(path) as tmp:
        doc_bin.to_disk(tmp)
    return n_docs


def read_docbin(path: Union[str, Path], vocab: Vocab) -> List[Doc]:
    """Read a DocBin file written by `write_docbin`, checking that it holds docs."""
    path = Path(path)
    if not path.is_file():
        raise CorpusError(f"{path}: DocBin file not found")
    docs = list(DocBin().from_disk(path).get_docs(vocab))
    if not docs:
        raise CorpusError(f"{path}: the DocBin holds no docs")
    return docs


def doc_entity_type(doc: Doc) -> Optional[str]:
    """The entity type a doc's corpus annotates, or None for a doc from elsewhere."""
    return doc.user_data.get(TYPE_KEY)


def doc_corpus(doc: Doc) -> Optional[str]:
    """The name of the corpus a doc came from, or None for a doc from elsewhere."""
    return doc.user_data.get(CORPUS_KEY)


def build_union(paths: Sequence[Union[str, Path]], vocab: Vocab) -> Tuple[List[Doc], List[str]]:
    """Concatenate the docs of k single-type DocBins into the global data.

    Returns the docs and the global entity types in the order of their first corpus (the
    order of the global label columns). Several corpora may annotate one type (each doc keeps
    its corpus: its own gold, scored on its own); one corpus given twice is refused.
    """
    docs: List[Doc] = []
    types: List[str] = []
    corpora: Dict[str, Path] = {}
    for path in paths:
        corpus_docs = read_docbin(path, vocab)
        corpus_types = {doc_entity_type(doc) for doc in corpus_docs}
        if None in corpus_types or len(corpus_types) != 1:
            raise CorpusError(
                f"{path}: expected docs of one corpus with its entity type recorded "
                f"(found types {sorted(map(str, corpus_types))}); convert it with read_iob"
            )
        for name in {doc_corpus(doc) for doc in corpus_docs}:
            if name in corpora:
                raise CorpusError(f"{path}: corpus {name!r} is already in the union (from {corpora[name]})")
            corpora[name] = Path(path)
        (ent_type,) = corpus_types
        if ent_type not in types:
            types.append(ent_type)
        docs.extend(corpus_docs)
    return docs, types
