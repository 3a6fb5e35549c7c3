"""The scoring rule (scorer.py): which spans are scored, spans as BIO tags, P/R/F per type."""
import pytest
import spacy
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Example
from spacy.util import registry

from spacy_taughtnet.corpora import TYPE_KEY
from spacy_taughtnet.scorer import (
    bio_tags,
    prediction_group,
    score_entities,
    scored_types,
    seqeval_scores,
    spans_of,
)


@pytest.fixture
def doc(vocab):
    doc = Doc(vocab, words=["aspirin", "caused", "renal", "failure", "in", "mice"])
    doc.ents = [Span(doc, 0, 1, "Chemical"), Span(doc, 2, 4, "Disease"), Span(doc, 5, 6, "Species")]
    return doc


def test_bio_tags(doc, vocab):
    assert bio_tags(doc) == ["B-Chemical", "O", "B-Disease", "I-Disease", "O", "B-Species"]
    assert bio_tags(doc, types=["Disease"]) == ["O", "O", "B-Disease", "I-Disease", "O", "O"]
    assert bio_tags(doc, types=["Disease", "Species"]) == ["O", "O", "B-Disease", "I-Disease", "O", "B-Species"]
    assert bio_tags(doc, types=["GENE"]) == ["O"] * 6
    assert bio_tags(Doc(vocab, words=[])) == []
    # any spans, e.g. a span group's, instead of doc.ents
    spans = [Span(doc, 1, 4, "Disease"), Span(doc, 0, 1, "GENE")]
    assert bio_tags(doc, spans=spans) == ["B-GENE", "B-Disease", "I-Disease", "I-Disease", "O", "O"]
    assert bio_tags(doc, spans=spans, types=["Disease"]) == ["O", "B-Disease", "I-Disease", "I-Disease", "O", "O"]
    assert bio_tags(doc, spans=[]) == ["O"] * 6


def test_scored_types(doc):
    assert scored_types(doc) is None  # no record, no types given: every type
    assert scored_types(doc, ["Disease", "Chemical"]) == ("Disease", "Chemical")
    doc.user_data[TYPE_KEY] = "Disease"
    assert scored_types(doc, ["Chemical"]) == ("Disease",)  # the recorded type wins


def test_spans_of_reads_the_span_group_for_one_type(doc):
    doc.spans["heads"] = SpanGroup(doc, name="heads", spans=[Span(doc, 2, 3, "Disease"), Span(doc, 2, 4, "Chemical")])
    assert prediction_group(("Disease",), "heads") == "heads"
    assert prediction_group(("Disease", "Chemical"), "heads") is None and prediction_group(None, "heads") is None
    assert prediction_group(("Disease",), None) is None
    assert [(s.start, s.end) for s in spans_of(doc, ("Disease",), "heads")] == [(2, 3)]
    assert [(s.start, s.end) for s in spans_of(doc, ("Disease",))] == [(2, 4)]
    assert [s.label_ for s in spans_of(doc, None)] == ["Chemical", "Disease", "Species"]
    assert [s.label_ for s in spans_of(doc, ("Disease",), "other")] == ["Disease"]  # no such group: doc.ents


def test_seqeval_scores():
    y_true = [["B-Disease", "I-Disease", "O", "B-Disease"]]
    y_pred = [["B-Disease", "I-Disease", "O", "O"]]
    assert seqeval_scores(y_true, y_pred) == {"precision": 1.0, "recall": 0.5, "f1": pytest.approx(2 / 3)}


def make_scored_example(vocab, words, gold, pred, own_type=None):
    reference = Doc(vocab, words=words)
    reference.ents = [Span(reference, s, e, label=l) for s, e, l in gold]
    if own_type:
        reference.user_data[TYPE_KEY] = own_type
    predicted = Doc(vocab, words=words)
    predicted.ents = [Span(predicted, s, e, label=l) for s, e, l in pred]
    return Example(predicted, reference)


def test_scorer_ignores_other_types_on_typed_docs():
    scorer = registry.resolve({"s": {"@scorers": "spacy-taughtnet.ner_scorer.v1"}})["s"]
    assert scorer is score_entities
    vocab = spacy.blank("en").vocab
    words = "a b c d e f g h i j".split()
    # Disease corpus: gold Disease (0,2) (5,6); predicted Disease (0,2) (3,4), Chemical (7,8)
    eg1 = make_scored_example(
        vocab, words, [(0, 2, "Disease"), (5, 6, "Disease")],
        [(0, 2, "Disease"), (3, 4, "Disease"), (7, 8, "Chemical")], own_type="Disease",
    )
    # untyped doc: every type counts. gold Chemical (0,1); predicted Chemical (0,1), Disease (2,3)
    eg2 = make_scored_example(vocab, words, [(0, 1, "Chemical")], [(0, 1, "Chemical"), (2, 3, "Disease")])
    scores = scorer([eg1, eg2])
    # tp = 2, fp = 2 (Disease (3,4) in eg1, Disease (2,3) in eg2), fn = 1 (Disease (5,6))
    assert scores["ents_p"] == pytest.approx(2 / 4)
    assert scores["ents_r"] == pytest.approx(2 / 3)
    assert scores["ents_f"] == pytest.approx(2 * (1 / 2) * (2 / 3) / (1 / 2 + 2 / 3))
    per_type = scores["ents_per_type"]
    assert sorted(per_type) == ["Chemical", "Disease"]
    assert per_type["Chemical"] == {"p": 1.0, "r": 1.0, "f": 1.0}  # (7,8) in eg1 ignored
    assert per_type["Disease"]["p"] == pytest.approx(1 / 3)
    assert per_type["Disease"]["r"] == pytest.approx(1 / 2)


def test_scorer_typed_doc_only_other_types_predicted():
    vocab = spacy.blank("en").vocab
    words = "a b c d".split()
    eg = make_scored_example(vocab, words, [(1, 2, "Disease")], [(1, 2, "Disease"), (2, 4, "Chemical")], "Disease")
    scores = score_entities([eg])
    assert (scores["ents_p"], scores["ents_r"], scores["ents_f"]) == (1.0, 1.0, 1.0)
    assert list(scores["ents_per_type"]) == ["Disease"]
    eg = make_scored_example(vocab, words, [], [(2, 4, "Chemical")], "Disease")
    assert score_entities([eg])["ents_f"] is None


def test_one_scored_type_is_read_from_the_span_group():
    """A doc of one type, or an untyped doc scored on one given type, is scored by that type's
    predictions in the span group; a doc scored on several types by doc.ents."""
    vocab = spacy.blank("en").vocab
    words = "a b c d".split()
    eg = make_scored_example(vocab, words, [(1, 2, "Disease")], [(1, 3, "Chemical")], "Disease")
    eg.predicted.spans["heads"] = SpanGroup(eg.predicted, spans=[Span(eg.predicted, 1, 2, "Disease"), Span(eg.predicted, 1, 3, "Chemical")])
    assert score_entities([eg])["ents_f"] == 0.0
    assert score_entities([eg], type_spans_key="heads")["ents_f"] == 1.0
    del eg.reference.user_data[TYPE_KEY]
    assert score_entities([eg], entity_types=["Disease"], type_spans_key="heads")["ents_f"] == 1.0
    assert score_entities([eg], entity_types=["Disease", "Chemical"], type_spans_key="heads")["ents_r"] == 0.0
