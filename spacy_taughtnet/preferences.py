"""Learning which type wins where a per-type student's spans overlap in doc.ents, on devel.

doc.ents cannot hold two overlapping spans, so where two heads claim overlapping spans one is
dropped, and each corpus, annotated for its own type only, counts the drop of its type as a
miss. The pipe's default keeps the more confident span. `fit_preferences` learns, from the
student's own predictions on the devel split of every corpus, [winner, loser, relation]
triples for the pipe's `overlap_preferences` (ents.choose_ents applies them): by coordinate
ascent over the pairs of types and the ways their spans overlap (ents.RELATIONS: where a
disease contains an anatomical site, "lung cancer", the corpora may settle it otherwise than
where both types claim the same tokens, "tumour"), each left to the confidence rule, or won by
one type or the other, keeping a change only if it raises the macro F1 over the corpora (each
corpus on its own type, entity level, exact match, as evaluate.py scores doc.ents).
train-student runs it on the student it selected (workflow.py), `fit-overlaps` on any saved
student.
"""
from itertools import combinations
from pathlib import Path
from typing import Dict, List, NamedTuple, Optional, Sequence, Set, Tuple

from spacy.language import Language
from spacy.tokens import Doc

from .atomic import atomic_path
from .corpora import doc_corpus, doc_entity_type, read_docbin
from .ents import RELATIONS, choose_ents

Prediction = Tuple[int, int, str, float]  # start, end, label, confidence
Preferences = Set[Tuple[str, ...]]  # (winner, loser) or (winner, loser, relation)
# span B's relation to span A where A's relation to B is the key (ents.RELATIONS)
CONVERSE = {"same": "same", "contains": "inside", "inside": "contains", "crossing": "crossing"}
SWEEPS = 3


class DevDoc(NamedTuple):
    corpus: str
    entity_type: str
    gold: Set[Tuple[int, int]]
    found: List[Prediction]


def dev_predictions(nlp: Language, pipe_name: str, docbin: Path, batch_size: int = 256) -> List[DevDoc]:
    """The pipe's predictions (its span group) on every doc of one type in `docbin`, with the
    doc's gold spans of that type."""
    pipe = nlp.get_pipe(pipe_name)
    key = pipe.cfg["spans_key"]
    gold_docs = [doc for doc in read_docbin(docbin, nlp.vocab) if doc_entity_type(doc) is not None]
    inputs = [Doc(nlp.vocab, words=[t.text for t in d], spaces=[bool(t.whitespace_) for t in d]) for d in gold_docs]
    out = []
    for gold, doc in zip(gold_docs, nlp.pipe(inputs, batch_size=batch_size)):
        own = doc_entity_type(gold)
        group = doc.spans[key]
        found = [(s.start, s.end, s.label_, float(c)) for s, c in zip(group, group.attrs["scores"])]
        out.append(DevDoc(doc_corpus(gold) or own, own, {(e.start, e.end) for e in gold.ents if e.label_ == own}, found))
    return out


def corpus_counts(docs: Sequence[DevDoc], preferences: Optional[Preferences]) -> Dict[str, List[int]]:
    """Each corpus's [true positives, false positives, false negatives] of doc.ents under
    `preferences` (None: of the span group itself)."""
    counts: Dict[str, List[int]] = {}
    for doc in docs:
        kept = doc.found if preferences is None else [doc.found[i] for i in choose_ents(doc.found, (), preferences)]
        predicted = {(start, end) for start, end, label, _ in kept if label == doc.entity_type}
        tp_fp_fn = counts.setdefault(doc.corpus, [0, 0, 0])
        tp_fp_fn[0] += len(predicted & doc.gold)
        tp_fp_fn[1] += len(predicted - doc.gold)
        tp_fp_fn[2] += len(doc.gold - predicted)
    return counts


def f1_of(counts: Dict[str, List[int]]) -> Dict[str, float]:
    return {c: 2 * tp / (2 * tp + fp + fn) if tp else 0.0 for c, (tp, fp, fn) in counts.items()}


def corpus_f1(docs: Sequence[DevDoc], preferences: Optional[Preferences]) -> Dict[str, float]:
    """Each corpus's F1 of doc.ents under `preferences` (None: the span group itself)."""
    return f1_of(corpus_counts(docs, preferences))


def cross_validated_f1(docs: Sequence[DevDoc], folds: int = 2) -> Dict[str, float]:
    """Each corpus's F1 of doc.ents where the preferences of each doc were learnt on the other
    folds (doc i in fold i mod `folds`), the counts of all folds pooled: how learnt
    preferences do on docs they were not learnt on."""
    pooled: Dict[str, List[int]] = {}
    for k in range(folds):
        held_out = [doc for i, doc in enumerate(docs) if i % folds == k]
        learnt = fit_preferences([doc for i, doc in enumerate(docs) if i % folds != k])
        for corpus, counts in corpus_counts(held_out, {tuple(p) for p in learnt}).items():
            pooled[corpus] = [a + b for a, b in zip(pooled.get(corpus, [0, 0, 0]), counts)]
    return f1_of(pooled)


def macro(f1: Dict[str, float]) -> float:
    return sum(f1.values()) / len(f1) if f1 else 0.0


def has_overlaps(doc: DevDoc) -> bool:
    """Whether two of the doc's predictions overlap (sorted by start, some span then overlaps
    the one after it)."""
    spans = sorted(doc.found)
    return any(b[0] < a[1] for a, b in zip(spans, spans[1:]))


def fit_preferences(docs: Sequence[DevDoc]) -> List[List[str]]:
    """[winner, loser, relation] triples raising the macro F1 of doc.ents on `docs` (module
    docstring), sorted; none where the confidence rule does as well."""
    labels = sorted({label for doc in docs for _, _, label, _ in doc.found})
    overlapping = [has_overlaps(doc) for doc in docs]
    clashing = [doc for doc, clash in zip(docs, overlapping) if clash]
    fixed = corpus_counts([doc for doc, clash in zip(docs, overlapping) if not clash], set())  # no rule changes these
    chosen: Dict[Tuple[str, str, str], Optional[str]] = {}

    def preferences(choice: Dict[Tuple[str, str, str], Optional[str]]) -> Preferences:
        return {(a, b, rel) if w == a else (b, a, CONVERSE[rel]) for (a, b, rel), w in choice.items() if w is not None}

    def score(prefs: Preferences) -> float:
        counts = corpus_counts(clashing, prefs)
        return macro(f1_of({c: [x + y for x, y in zip(fixed.get(c, [0, 0, 0]), counts.get(c, [0, 0, 0]))]
                            for c in {*fixed, *counts}}))

    best = score(set())
    for _ in range(SWEEPS):
        improved = False
        for a, b in combinations(labels, 2):
            for rel in RELATIONS:
                for winner in (None, a, b):
                    trial = {**chosen, (a, b, rel): winner}
                    trial_score = score(preferences(trial))
                    if trial_score > best + 1e-12:
                        best, chosen, improved = trial_score, trial, True
        if not improved:
            break
    return sorted([list(p) for p in preferences(chosen)])


def fit_saved_pipeline(model: Path, dev: Sequence[Path]) -> Optional[Dict]:
    """Learn the overlap preferences of the saved pipeline `model` on the DocBins `dev` and
    write them into its config.cfg; None (nothing written) unless its taughtnet_ner pipe has
    heads whose types overlap and the confidence rule. Returns what was learnt and each
    corpus's devel F1: of doc.ents by confidence alone and with the preferences, and of the
    span group."""
    import spacy
    from spacy.util import load_config

    nlp = spacy.load(model)
    names = [name for name, pipe in nlp.pipeline if getattr(pipe, "strategy", None) is not None]
    if len(names) != 1:
        return None
    pipe = nlp.get_pipe(names[0])
    if not pipe.strategy.types_overlap or pipe.cfg["overlaps"] != "confidence" or not pipe.cfg["set_ents"]:
        return None
    docs = [doc for path in dev for doc in dev_predictions(nlp, names[0], path)]
    learnt = fit_preferences(docs)
    config = load_config(model / "config.cfg", interpolate=False)
    config["components"][names[0]]["overlap_preferences"] = learnt
    with atomic_path(model / "config.cfg") as tmp:
        config.to_disk(tmp)
    rounded = lambda f1: {c: round(v, 6) for c, v in f1.items()}  # noqa: E731
    return {
        "pipe": names[0], "overlap_preferences": learnt, "dev": [str(path) for path in dev],
        "dev_f1": {
            "confidence": rounded(corpus_f1(docs, set())),
            "preferences": rounded(corpus_f1(docs, {tuple(p) for p in learnt})),
            "spans": rounded(corpus_f1(docs, None)),
        },
    }
