"""Writing predictions onto a doc (ents.py), and the candidates the strategies give the pipe for
its span group and doc.ents (heads.py's decode_all)."""
import numpy
import pytest
import spacy
from spacy.tokens import Doc, Span

from spacy_taughtnet import component
from spacy_taughtnet.ents import CONFIDENCE_ATTR, write_ents, write_span_group
from spacy_taughtnet.heads import JointHeads, PerTypeHeads

WORDS = ["a", "b", "c", "d", "e", "f"]


def make_doc():
    return Doc(spacy.blank("en").vocab, words=WORDS)


def spans_of(doc):
    return [(e.start, e.end, e.label_, e._.get(CONFIDENCE_ATTR)) for e in doc.ents]


def test_confidence_attr_is_the_components_too():
    assert component.CONFIDENCE_ATTR is CONFIDENCE_ATTR == "taughtnet_confidence"
    assert Span.has_extension(CONFIDENCE_ATTR)


def test_write_ents_most_confident_first_in_document_order():
    doc = make_doc()
    found = [
        (Span(doc, 0, 2, label="X"), 0.5),
        (Span(doc, 1, 3, label="Y"), 0.9),  # overlaps "a b", more confident: wins
        (Span(doc, 4, 5, label="X"), 0.3),
        (Span(doc, 4, 6, label="Y"), 0.3),  # as confident as "e", later: loses
    ]
    write_ents(doc, found, overwrite=False)
    assert spans_of(doc) == [(1, 3, "Y", 0.9), (4, 5, "X", 0.3)]
    assert [t.ent_iob_ for t in doc] == ["O", "B", "I", "O", "B", "O"]


def test_write_ents_keeps_or_replaces_existing_entities():
    doc = make_doc()
    doc.ents = [Span(doc, 1, 2, label="OLD"), Span(doc, 5, 6, label="OLD")]
    found = [(Span(doc, 0, 2, label="X"), 0.8), (Span(doc, 3, 4, label="Y"), 0.6)]
    write_ents(doc, found, overwrite=False)  # "a b" overlaps "b": left out
    assert spans_of(doc) == [(1, 2, "OLD", None), (3, 4, "Y", 0.6), (5, 6, "OLD", None)]
    doc = make_doc()
    doc.ents = [Span(doc, 1, 2, label="OLD"), Span(doc, 5, 6, label="OLD")]
    write_ents(doc, [(Span(doc, 0, 2, label="X"), 0.8)], overwrite=True)
    assert spans_of(doc) == [(0, 2, "X", 0.8)]
    assert [t.ent_iob_ for t in doc] == ["B", "I", "O", "O", "O", "O"]  # "f" set outside
    doc = make_doc()
    doc.ents = [Span(doc, 1, 2, label="OLD")]
    write_ents(doc, [], overwrite=True)
    assert doc.ents == () and doc[1].ent_iob_ == "O"


def test_write_span_group_holds_every_span_and_its_score():
    doc = make_doc()
    found = [(Span(doc, 0, 2, label="X"), 0.5), (Span(doc, 1, 3, label="Y"), 0.25)]
    write_span_group(doc, "key", found)
    group = doc.spans["key"]
    assert group.name == "key"
    assert [(s.start, s.end, s.label_) for s in group] == [(0, 2, "X"), (1, 3, "Y")]
    assert group.attrs["scores"].dtype == numpy.float32
    assert group.attrs["scores"].tolist() == [0.5, 0.25]
    write_span_group(doc, None, found)
    assert list(doc.spans) == ["key"]
    write_span_group(doc, "empty", [])
    assert len(doc.spans["empty"]) == 0 and doc.spans["empty"].attrs["scores"].shape == (0,)


def per_type_scores():
    """Two per-type heads (Disease, Chemical) both claiming "b": Disease alone, Chemical "b c"."""
    scores = numpy.full((4, 10), -5.0, dtype="float32")
    scores[:, 4::5] = 3.0
    scores[1, 3] = 8.0  # U-Disease on "b"
    scores[1, 5], scores[2, 7] = 6.0, 6.0  # B-Chemical, L-Chemical on "b c"
    return scores


def triples(found):
    return [(s.start, s.end, s.label_, c) for s, c in found]


@pytest.mark.parametrize("heads", [JointHeads("ner"), PerTypeHeads("ner")])
def test_decode_all_gives_the_predictions_and_the_candidates_for_doc_ents(heads):
    labels = ("Disease", "Chemical")
    doc = Doc(spacy.blank("en").vocab, words="a b c d".split())
    if heads.types_overlap:
        scores = [per_type_scores(), per_type_scores()[:2]]
    else:
        scores = [numpy.full((4, 9), -5.0, dtype="float32"), numpy.full((2, 9), -5.0, dtype="float32")]
        scores[0][:, 8] = scores[1][:, 8] = 3.0
        scores[0][1, 3], scores[1][0, 7] = 6.0, 6.0  # U-Disease on "b", U-Chemical on "a"
    docs = [doc, Doc(doc.vocab, words=["a", "b"])]
    found = heads.decode(docs, scores, labels)
    viterbi = heads.decode_ents(docs, scores, labels)
    for overlaps, ents in ((None, [None, None]), ("confidence", found), ("viterbi", viterbi)):
        result = heads.decode_all(docs, scores, labels, overlaps)
        assert [triples(f) for f, _ in result] == [triples(f) for f in found]
        assert [e if e is None else triples(e) for _, e in result] == [e if e is None else triples(e) for e in ents]
    if heads.types_overlap:  # the two rules differ where the heads overlap
        assert [(s, e, lab) for s, e, lab, _ in triples(found[0])] == [(1, 2, "Disease"), (1, 3, "Chemical")]
        assert [(s, e, lab) for s, e, lab, _ in triples(viterbi[0])] == [(1, 3, "Chemical")]
    else:
        assert triples(viterbi[0]) == triples(found[0]) and len(found[0]) == 1


def test_per_type_viterbi_computes_the_log_probabilities_once(monkeypatch):
    heads = PerTypeHeads("ner")
    calls = []
    original = heads._log_probs
    monkeypatch.setattr(heads, "_log_probs", lambda scores, labels: calls.append(1) or original(scores, labels))
    doc = Doc(spacy.blank("en").vocab, words="a b c d".split())
    heads.decode_all([doc], [per_type_scores()], ("Disease", "Chemical"), "viterbi")
    assert len(calls) == 1
    heads.decode_all([doc], [per_type_scores()], ("Disease", "Chemical"), "confidence")
    assert len(calls) == 2


@pytest.mark.parametrize("overlaps", [None, "confidence", "viterbi"])
def test_decode_all_of_docs_without_tokens(overlaps):
    """A doc of no tokens has no predictions (overlaps "viterbi" failed on one, reshaping its
    0 rows with -1)."""
    vocab = spacy.blank("en").vocab
    docs = [Doc(vocab, words=[]), Doc(vocab, words="a b c d".split()), Doc(vocab, words=[])]
    scores = [numpy.zeros((0, 10), dtype="float32"), per_type_scores(), numpy.zeros((0, 10), dtype="float32")]
    result = PerTypeHeads("ner").decode_all(docs, scores, ("Disease", "Chemical"), overlaps)
    assert [triples(found) for found, _ in result][0::2] == [[], []]
    assert [ents for _, ents in result][0::2] == ([None, None] if overlaps is None else [[], []])
    expected = {None: None, "confidence": ["Disease", "Chemical"], "viterbi": ["Chemical"]}[overlaps]
    assert (None if result[1][1] is None else [s.label_ for s, _ in result[1][1]]) == expected
    (only,) = PerTypeHeads("ner").decode_all(docs[:1], scores[:1], ("Disease", "Chemical"), overlaps)
    assert only == ([], None if overlaps is None else [])


def test_preferences_let_a_type_win_over_a_more_confident_one():
    """A (winner, loser) pair lets the winner replace overlapping spans of the loser, all of
    them; a span overlapping one it is not preferred to is left out; entities already on the
    doc are never replaced."""
    def found(doc):
        return [
            (Span(doc, 0, 3, label="Disease"), 0.6),
            (Span(doc, 0, 1, label="Anatomy"), 0.9),  # more confident, inside "a b c"
            (Span(doc, 2, 3, label="Chemical"), 0.8),
            (Span(doc, 4, 6, label="Disease"), 0.5),
            (Span(doc, 5, 6, label="Anatomy"), 0.7),
        ]

    doc = make_doc()
    write_ents(doc, found(doc), overwrite=False)
    assert [(e.start, e.end, e.label_) for e in doc.ents] == [(0, 1, "Anatomy"), (2, 3, "Chemical"), (5, 6, "Anatomy")]
    doc = make_doc()
    write_ents(doc, found(doc), overwrite=False, preferences={("Disease", "Anatomy")})
    # "a b c" also overlaps "c" (Chemical), which it is not preferred to: it stays out
    assert [(e.start, e.end, e.label_) for e in doc.ents] == [(0, 1, "Anatomy"), (2, 3, "Chemical"), (4, 6, "Disease")]
    doc = make_doc()
    write_ents(doc, found(doc), overwrite=False, preferences={("Disease", "Anatomy"), ("Disease", "Chemical")})
    assert [(e.start, e.end, e.label_, e._.get(CONFIDENCE_ATTR)) for e in doc.ents] == [(0, 3, "Disease", 0.6), (4, 6, "Disease", 0.5)]
    doc = make_doc()
    doc.ents = [Span(doc, 5, 6, label="OLD")]
    write_ents(doc, [(Span(doc, 4, 6, label="Disease"), 0.5)], overwrite=False, preferences={("Disease", "OLD")})
    assert [(e.start, e.end, e.label_) for e in doc.ents] == [(5, 6, "OLD")]
