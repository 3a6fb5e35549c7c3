"""Entity scoring: one rule for which spans are scored and one for turning spans into BIO tags,
used by the training scorer (`spacy-taughtnet.ner_scorer.v1`), `evaluate` and the package check.

- A doc of one type (its corpus's, recorded by corpora.read_iob) is scored on that type only:
  its corpus did not annotate the others, so predictions of them are neither right nor wrong.
  A doc without the record is scored on the types given, else on every type.
- Scored on one type, a pipe whose heads may give one span two types (per-type heads) is scored
  by that type's predictions in its span group (`type_spans_key`): doc.ents may have given
  them up to an overlapping span of another type.
"""
from collections import defaultdict
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from spacy.scorer import PRFScore
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import registry

from .corpora import doc_entity_type


def scored_types(doc: Doc, entity_types: Optional[Sequence[str]] = None) -> Optional[Tuple[str, ...]]:
    """The types a gold doc is scored on: its corpus's, else `entity_types`, else None (every type)."""
    own = doc_entity_type(doc)
    if own is not None:
        return (own,)
    return tuple(entity_types) if entity_types else None


def prediction_group(types: Optional[Sequence[str]], type_spans_key: Optional[str]) -> Optional[str]:
    """The span group a predicted doc's entities of `types` are read from: `type_spans_key`
    (a pipe's group of each type's own predictions) when one type is scored, else None (doc.ents)."""
    return type_spans_key if types is not None and len(types) == 1 else None


def spans_of(doc: Doc, types: Optional[Sequence[str]], spans_key: Optional[str] = None) -> List[Span]:
    """The doc's entities of `types` (None: every type): those of the span group `spans_key`
    when given and on the doc, else those of doc.ents."""
    found = doc.spans[spans_key] if spans_key is not None and spans_key in doc.spans else doc.ents
    return [span for span in found if types is None or span.label_ in types]


def bio_tags(doc: Doc, *, spans: Optional[Iterable[Span]] = None, types: Optional[Sequence[str]] = None) -> List[str]:
    """The BIO tags of `spans` (default: doc.ents) of `types` (default: every type) over the
    doc's tokens; other tokens are O. The spans of the types kept must not overlap."""
    tags = ["O"] * len(doc)
    for span in doc.ents if spans is None else spans:
        if types is None or span.label_ in types:
            tags[span.start] = f"B-{span.label_}"
            tags[span.start + 1 : span.end] = [f"I-{span.label_}"] * (len(span) - 1)
    return tags


def seqeval_scores(y_true: List[List[str]], y_pred: List[List[str]]) -> Dict[str, float]:
    """Entity-level precision, recall and F1 of BIO tag sequences (seqeval, exact match)."""
    # imported here: the factory module imports this one, and seqeval is not for every spacy.load
    from seqeval.metrics import f1_score, precision_score, recall_score

    return {
        "precision": precision_score(y_true, y_pred),
        "recall": recall_score(y_true, y_pred),
        "f1": f1_score(y_true, y_pred),
    }


@registry.scorers("spacy-taughtnet.ner_scorer.v1")
def make_ner_scorer() -> Callable:
    return score_entities


def score_entities(
    examples: Iterable[Example],
    *,
    entity_types: Optional[Sequence[str]] = None,
    type_spans_key: Optional[str] = None,
    **kwargs,
) -> Dict:
    """Entity P/R/F, overall and per type, exact match on character offsets, each doc on the
    types it is scored on (module docstring).

    entity_types: the types of docs without a type record
        (`nlp.evaluate(examples, scorer_cfg={"entity_types": [...]})`); without them such a
        doc is scored on every type, which assumes its gold annotates every type.
    type_spans_key: the span group holding each type's own predictions (a pipe with per-type
        heads; TaughtNetNER.score passes its own).
    """
    total = PRFScore()
    per_type: Dict[str, PRFScore] = defaultdict(PRFScore)
    for eg in examples:
        types = scored_types(eg.reference, entity_types)
        predicted = spans_of(eg.predicted, types, prediction_group(types, type_spans_key))
        pred = {(s.start_char, s.end_char, s.label_) for s in predicted}
        gold = {(s.start_char, s.end_char, s.label_) for s in spans_of(eg.reference, types)}
        total.score_set(pred, gold)
        for label in {s[2] for s in pred | gold}:
            per_type[label].score_set({s for s in pred if s[2] == label}, {s for s in gold if s[2] == label})
    if len(total) == 0:
        return {"ents_p": None, "ents_r": None, "ents_f": None, "ents_per_type": None}
    return {
        "ents_p": total.precision,
        "ents_r": total.recall,
        "ents_f": total.fscore,
        "ents_per_type": {label: prf.to_dict() for label, prf in sorted(per_type.items())},
    }
