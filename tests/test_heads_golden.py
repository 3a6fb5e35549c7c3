"""Golden values of both heads: probabilities, decoded spans with their confidences, and the
loss with its gradient (gold only, then with teacher distributions), at fixed scores. Recorded
with spacy-taughtnet 0.1.0, so any change of what a trained pipe outputs shows here.

After a deliberate change of output only, rewrite the file: python tests/test_heads_golden.py
"""
import json
from pathlib import Path

import numpy
import pytest
import spacy
from spacy.tokens import Doc, Span
from spacy.training import Example

from spacy_taughtnet.aggregate import aggregate_distributions
from spacy_taughtnet.corpora import TYPE_KEY
from spacy_taughtnet.heads import (
    TEACHER_LABELS_KEY,
    TEACHER_PROBS_KEY,
    TEACHER_TYPE_PROBS_KEY,
)

GOLDEN = Path(__file__).parent / "fixtures" / "heads_golden.json"
LABELS = ("Chemical", "Disease")
TEACHER_ORDER = ("Disease", "Chemical")  # the distributions' columns, not the pipe's order
WORDS = [["aspirin", "caused", "renal", "failure", "."], ["Breast", "cancer", "and", "cisplatin"], ["\n", "lithium"]]
# each doc's own type (None: it annotates every type) and gold entities
GOLD = [("Disease", [(2, 4, "Disease")]), (None, [(0, 2, "Disease"), (3, 4, "Chemical")]), ("Chemical", [(1, 2, "Chemical")])]


def examples(vocab, rng, with_teachers):
    out = []
    for words, (own, ents) in zip(WORDS, GOLD):
        reference = Doc(vocab, words=words)
        reference.ents = [Span(reference, s, e, label=label) for s, e, label in ents]
        if own:
            reference.user_data[TYPE_KEY] = own
        if with_teachers:
            blocks = [rng.dirichlet([1.0, 1.0, 1.0], size=len(words)) for _ in TEACHER_ORDER]
            reference.user_data[TEACHER_PROBS_KEY] = aggregate_distributions(blocks).astype("float32")
            reference.user_data[TEACHER_TYPE_PROBS_KEY] = numpy.concatenate(blocks, axis=1).astype("float32")
            reference.user_data[TEACHER_LABELS_KEY] = list(TEACHER_ORDER)
        out.append(Example(Doc(vocab, words=words), reference))
    return out


def golden_outputs(heads: str) -> dict:
    """What a pipe with these heads outputs when its model scores the docs with fixed random logits."""
    rng = numpy.random.default_rng(0)
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("taughtnet_ner", name="ner", config={"heads": heads})
    for label in LABELS:
        ner.add_label(label)
    nlp.initialize(lambda: examples(nlp.vocab, rng, False))
    scores = [rng.normal(scale=3.0, size=(len(w), len(ner.model_tag_names))).astype("float32") for w in WORDS]
    ner.predict = lambda docs: scores
    docs = [Doc(nlp.vocab, words=w) for w in WORDS]
    ner.set_annotations(docs, scores)
    out = {
        "proba": [p.tolist() for p in ner.predict_proba(docs)],
        "type_proba": [p.tolist() for p in ner.predict_type_proba(docs)],
        "spans": [[[s.start, s.end, s.label_] for s in d.spans["taughtnet"]] for d in docs],
        "confidences": [d.spans["taughtnet"].attrs["scores"].tolist() for d in docs],
        "ents": [[[e.start, e.end, e.label_] for e in d.ents] for d in docs],
    }
    for name, with_teachers in (("gold", False), ("teachers", True)):
        loss, grads = ner.get_loss(examples(nlp.vocab, rng, with_teachers), scores)
        out[f"loss_{name}"] = float(loss)
        out[f"grad_{name}"] = [numpy.asarray(g).tolist() for g in grads]
    return out


@pytest.mark.parametrize("heads", ["joint", "per_type"])
def test_outputs_match_the_recorded_ones(heads):
    expected, got = json.loads(GOLDEN.read_text())[heads], golden_outputs(heads)
    assert sorted(got) == sorted(expected)
    for key in ("spans", "ents"):
        assert got[key] == expected[key], key
    for key in ("proba", "type_proba", "confidences", "grad_gold", "grad_teachers"):
        for a, b in zip(got[key], expected[key]):
            numpy.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7, err_msg=key)
    for key in ("loss_gold", "loss_teachers"):
        assert got[key] == pytest.approx(expected[key], rel=1e-6), key


if __name__ == "__main__":
    GOLDEN.write_text(json.dumps({heads: golden_outputs(heads) for heads in ("joint", "per_type")}) + "\n")
