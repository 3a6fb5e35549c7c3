"""Per-corpus evaluation: entity-level P/R/F1 with seqeval, each corpus on its own type."""
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple, Union

from spacy.language import Language
from spacy.tokens import Doc

from .corpora import CorpusError, doc_entity_type, read_docbin
from .scorer import bio_tags, prediction_group, seqeval_scores, spans_of


def evaluate_corpus(
    nlp: Language,
    docbin_path: Union[str, Path],
    *,
    entity_types: Optional[Sequence[str]] = None,
    batch_size: int = 256,
) -> Dict:
    """Score `nlp` on a corpus on the entity types its gold annotates: predictions of
    other types count as O.

    A DocBin written by this package records its corpus's type on each doc, and is scored
    on it. One without the record (e.g. made by `spacy convert`) needs `entity_types`,
    the types its gold annotates: guessing them would count correct predictions of
    unannotated types as errors. The model reads the corpus's own tokens, so tags align
    one to one with gold.

    A corpus of one type is scored by that type's predictions in the pipe's span group when
    the pipe keeps them there (per-type heads; the rule of scorer.py), named in `predictions`;
    the figures on doc.ents, where an overlapping span of another type may have won, are
    added as `doc_ents`.
    """
    gold_docs = read_docbin(docbin_path, nlp.vocab)
    scored = _scored_types(gold_docs, docbin_path, entity_types)
    inputs = [
        Doc(nlp.vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc])
        for doc in gold_docs
    ]
    start = time.perf_counter()
    predicted = list(nlp.pipe(inputs, batch_size=batch_size))
    seconds = time.perf_counter() - start
    y_true = [bio_tags(doc, types=scored) for doc in gold_docs]
    y_ents = [bio_tags(doc, types=scored) for doc in predicted]
    key = prediction_group(scored, type_spans_key(nlp))
    y_pred = [bio_tags(doc, spans=spans_of(doc, scored, key)) for doc in predicted] if key else y_ents
    n_words = sum(len(doc) for doc in gold_docs)
    row = {
        "corpus": str(Path(docbin_path)),
        "entity_type": ",".join(scored),
        "predictions": f"doc.spans[{key!r}]" if key else "doc.ents",
        **seqeval_scores(y_true, y_pred),
        "n_docs": len(gold_docs),
        "n_words": n_words,
        "words_per_second": n_words / seconds if seconds > 0 else None,
    }
    if key:
        row["doc_ents"] = seqeval_scores(y_true, y_ents)
    return row


def type_spans_key(nlp: Language) -> Optional[str]:
    """The span group of each type's own predictions of the pipeline's `taughtnet_ner` pipe,
    if it has one (TaughtNetNER.type_spans_key)."""
    from .component import TaughtNetNER

    for _, pipe in nlp.pipeline:
        if isinstance(pipe, TaughtNetNER) and pipe.type_spans_key:
            return pipe.type_spans_key
    return None


def _scored_types(docs: List[Doc], path: Union[str, Path], entity_types: Optional[Sequence[str]]) -> Tuple[str, ...]:
    """The recorded type of a single-type corpus, or the given types of an unrecorded one."""
    recorded = {doc_entity_type(doc) for doc in docs}
    gold_types = sorted({ent.label_ for doc in docs for ent in doc.ents})
    if recorded == {None}:
        if not entity_types:
            raise CorpusError(
                f"{path}: the docs have no entity type record (a DocBin not written by "
                "spacy-taughtnet, e.g. by spacy convert); give the types its gold annotates "
                f"with --entity-type (entity_types=...); gold entity labels found: {gold_types}"
            )
        missing = sorted(set(gold_types) - set(entity_types))
        if missing:
            raise CorpusError(
                f"{path}: gold entities of type(s) {missing} are not among the entity types "
                f"given {list(entity_types)}; give every type the corpus annotates"
            )
        return tuple(entity_types)
    if len(recorded) != 1 or None in recorded:
        raise CorpusError(f"{path}: expected docs of one typed corpus, found types {sorted(map(str, recorded))}")
    (ent_type,) = recorded
    if entity_types and list(entity_types) != [ent_type]:
        raise CorpusError(
            f"{path}: the DocBin records the entity type {ent_type!r}, but {list(entity_types)} "
            "was given; leave out --entity-type for a corpus written by spacy-taughtnet"
        )
    return (ent_type,)


SCORE_COLUMNS = ("precision", "recall", "f1")
EVALUATE_COLUMNS = ("model", "corpus", "entity_type", "predictions", "precision", "recall", "f1")


def format_table(rows: Sequence[Dict], columns: Sequence[str] = ("model", "corpus", "entity_type", "precision", "recall", "f1")) -> str:
    """A plain-text table of result rows; scores as percentages."""

    def cell(column: str, value) -> str:
        if column in SCORE_COLUMNS and isinstance(value, float):
            return f"{value * 100:.2f}"
        return f"{value:.1f}" if isinstance(value, float) else str(value)

    cells: List[List[str]] = [list(columns)] + [[cell(c, row[c]) for c in columns] for row in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(columns))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)
