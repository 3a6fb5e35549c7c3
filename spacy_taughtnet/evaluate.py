"""Per-corpus evaluation: entity-level P/R/F1 with seqeval, each corpus on its own type."""
import time
from pathlib import Path
from typing import Dict, List, Sequence, Union

from seqeval.metrics import f1_score, precision_score, recall_score
from spacy.language import Language
from spacy.tokens import Doc

from .corpora import CorpusError, bio_tags, doc_entity_type, read_docbin


def evaluate_corpus(nlp: Language, docbin_path: Union[str, Path], *, batch_size: int = 256) -> Dict:
    """Score `nlp` on a single-type corpus: predictions of other types count as O.

    The model reads the corpus's own tokens, so tags align one to one with gold.
    """
    gold_docs = read_docbin(docbin_path, nlp.vocab)
    types = {doc_entity_type(doc) for doc in gold_docs}
    if len(types) != 1 or None in types:
        raise CorpusError(f"{docbin_path}: expected docs of one typed corpus, found types {sorted(map(str, types))}")
    (ent_type,) = types
    inputs = [
        Doc(nlp.vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc])
        for doc in gold_docs
    ]
    start = time.perf_counter()
    predicted = list(nlp.pipe(inputs, batch_size=batch_size))
    seconds = time.perf_counter() - start
    y_true = [bio_tags(doc, ent_type) for doc in gold_docs]
    y_pred = [bio_tags(doc, ent_type) for doc in predicted]
    n_words = sum(len(doc) for doc in gold_docs)
    return {
        "corpus": str(Path(docbin_path)),
        "entity_type": ent_type,
        "precision": precision_score(y_true, y_pred),
        "recall": recall_score(y_true, y_pred),
        "f1": f1_score(y_true, y_pred),
        "n_docs": len(gold_docs),
        "n_words": n_words,
        "words_per_second": n_words / seconds if seconds > 0 else None,
    }


SCORE_COLUMNS = ("precision", "recall", "f1")


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
