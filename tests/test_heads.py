"""`taughtnet_ner` with per-type heads: gold and teacher targets, the loss, decoding with
overlaps, scoring by the span group, probabilities, save/load."""
import numpy
import pytest
import spacy
from helpers import SMALL_MODEL
from spacy.tokens import Doc, Span
from spacy.training import Example

from spacy_taughtnet.aggregate import aggregate_distributions
from spacy_taughtnet.component import (
    TEACHER_LABELS_KEY,
    TEACHER_PROBS_KEY,
    TEACHER_TYPE_PROBS_KEY,
)
from spacy_taughtnet.corpora import TYPE_KEY
from spacy_taughtnet.decoding import biluo_targets
from spacy_taughtnet.errors import ConfigError
from spacy_taughtnet.loss import DistillationLoss

LABELS = ["Disease", "Chemical", "GENE"]
WORDS = ["aspirin", "causes", "cancer", "via", "BRCA1", "gene", "."]
SPANS = {"Disease": (2, 3), "Chemical": (0, 1), "GENE": (4, 5)}


def per_type_pipe(nlp, **config):
    return nlp.add_pipe("taughtnet_ner", name="ner", config={"model": SMALL_MODEL, "heads": "per_type", **config})


def examples(nlp, n=30, teacher_labels=LABELS):
    """Docs of one type each, cycling over the types; every type's teacher finds its own
    entity in every doc, stored in `teacher_labels` order."""
    egs = []
    for i in range(n):
        ref = Doc(nlp.vocab, words=WORDS)
        own = LABELS[i % 3]
        ref.ents = [Span(ref, *SPANS[own], label=own)]
        ref.user_data[TYPE_KEY] = own
        per_type = numpy.zeros((len(WORDS), 3 * len(teacher_labels)), dtype=numpy.float32)
        per_type[:, 2::3] = 1.0
        for j, label in enumerate(teacher_labels):
            per_type[SPANS[label][0], 3 * j : 3 * j + 3] = [0.9, 0.0, 0.1]
        blocks = [per_type[:, 3 * j : 3 * j + 3].astype("float64") for j in range(len(teacher_labels))]
        ref.user_data.update({
            TEACHER_PROBS_KEY: aggregate_distributions(blocks),
            TEACHER_TYPE_PROBS_KEY: per_type,
            TEACHER_LABELS_KEY: list(teacher_labels),
        })
        egs.append(Example(Doc(nlp.vocab, words=WORDS), ref))
    return egs


def test_tag_columns():
    nlp = spacy.blank("en")
    ner = per_type_pipe(nlp)
    nlp.initialize(lambda: examples(nlp, 3))
    assert ner.labels == tuple(LABELS)
    assert ner.model_tag_names[:5] == ["B-Disease", "I-Disease", "L-Disease", "U-Disease", "O-Disease"]
    assert len(ner.model_tag_names) == 15
    assert ner.type_tag_names[3:6] == ["B-Chemical", "I-Chemical", "O-Chemical"]


def test_gold_blocks_annotate_the_docs_own_type_only():
    nlp = spacy.blank("en")
    ner = per_type_pipe(nlp)
    egs = examples(nlp, 3)
    nlp.initialize(lambda: egs)
    gold = ner._gold_blocks(egs[1])  # a Chemical doc: U-Chemical on "aspirin", O-Chemical elsewhere
    assert (gold[:, 0] == -1).all() and (gold[:, 2] == -1).all()
    assert gold[:, 1].tolist() == [3, 4, 4, 4, 4, 4, 4]
    untyped = Doc(nlp.vocab, words=WORDS)
    untyped.ents = [Span(untyped, 4, 6, label="GENE")]
    gold = ner._gold_blocks(Example(Doc(nlp.vocab, words=WORDS), untyped))  # annotates every type
    assert gold[:, 2].tolist() == [4, 4, 4, 4, 0, 2, 4]
    assert gold[:, 0].tolist() == [4] * 7 and gold[:, 1].tolist() == [4] * 7


def test_loss_is_the_sum_of_each_heads_distillation_loss():
    """Teacher columns stored in another label order reach the right head."""
    nlp = spacy.blank("en")
    loss_config = {"@losses": "spacy-taughtnet.DistillationLoss.v1", "lambda_": 0.7, "temperature": 2.0}
    ner = per_type_pipe(nlp, loss=loss_config)
    stored_order = ["GENE", "Disease", "Chemical"]
    egs = examples(nlp, 6, teacher_labels=stored_order)
    for label in LABELS:
        ner.add_label(label)
    nlp.initialize(lambda: egs)
    scores = ner.model.predict([eg.predicted for eg in egs])
    loss, grads = ner.get_loss(egs, scores)
    flat = numpy.concatenate([numpy.asarray(s) for s in scores])
    reference = DistillationLoss(lambda_=0.7, temperature=2.0)
    expected, expected_grad = 0.0, numpy.zeros_like(flat)
    for j, label in enumerate(LABELS):
        k = stored_order.index(label)
        teacher = numpy.concatenate([biluo_targets(eg.reference.user_data[TEACHER_TYPE_PROBS_KEY][:, 3 * k : 3 * k + 3]) for eg in egs])
        gold = numpy.concatenate([ner._gold_blocks(eg)[:, j] for eg in egs])
        d, head_loss = reference(numpy.ascontiguousarray(flat[:, 5 * j : 5 * j + 5]), (gold, teacher))
        expected += head_loss
        expected_grad[:, 5 * j : 5 * j + 5] = d
    assert loss == pytest.approx(expected, rel=1e-6)
    numpy.testing.assert_allclose(numpy.concatenate([numpy.asarray(g) for g in grads]), expected_grad, rtol=1e-5, atol=1e-7)


def test_global_only_distributions_are_refused():
    nlp = spacy.blank("en")
    ner = per_type_pipe(nlp)
    egs = examples(nlp, 3)
    nlp.initialize(lambda: egs)
    for eg in egs:
        del eg.reference.user_data[TEACHER_TYPE_PROBS_KEY]
    with pytest.raises(ValueError, match="rerun distill-teachers"):
        ner.get_loss(egs, ner.model.predict([eg.predicted for eg in egs]))


def test_learns_every_type_and_resolves_overlaps(tmp_path):
    nlp = spacy.blank("en")
    ner = per_type_pipe(nlp, loss={"@losses": "spacy-taughtnet.DistillationLoss.v1", "lambda_": 0.5})
    egs = examples(nlp)
    optimizer = nlp.initialize(lambda: egs)
    for _ in range(40):
        nlp.update(egs, sgd=optimizer)
    doc = nlp(Doc(nlp.vocab, words=WORDS))
    assert {(e.text, e.label_) for e in doc.ents} == {("aspirin", "Chemical"), ("cancer", "Disease"), ("BRCA1", "GENE")}
    assert nlp.evaluate(egs)["ents_f"] == 1.0
    probs = ner.predict_proba([doc])[0]
    type_probs = ner.predict_type_proba([doc])[0]
    assert probs.shape == (len(WORDS), 7) and type_probs.shape == (len(WORDS), 9)
    numpy.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    numpy.testing.assert_allclose(type_probs.reshape(len(WORDS), 3, 3).sum(axis=2), 1.0, atol=1e-5)
    assert ner.tag_names[int(probs[0].argmax())] == "B-Chemical"

    nlp.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model")
    assert loaded.get_pipe("ner").heads == "per_type"
    doc = Doc(loaded.vocab, words="a b c d".split())
    scores = numpy.full((4, 15), -5.0, dtype="float32")
    scores[:, 4::5] = 3.0  # O-t everywhere
    scores[1, 3] = 4.0  # U-Disease on "b"
    scores[1, 5], scores[2, 7] = 6.0, 6.0  # B-Chemical, L-Chemical on "b c": more confident
    loaded.get_pipe("ner").set_annotations([doc], [scores])
    assert [(e.text, e.label_) for e in doc.ents] == [("b c", "Chemical")]
    group = doc.spans["taughtnet"]
    assert [(s.text, s.label_) for s in group] == [("b", "Disease"), ("b c", "Chemical")]
    assert group.attrs["scores"][1] > group.attrs["scores"][0]


def test_a_doc_of_one_type_is_scored_by_its_heads_span_group():
    """doc.ents gave "b" up to the more confident Chemical span; the Disease head found it."""
    nlp = spacy.blank("en")
    ner = per_type_pipe(nlp)
    nlp.initialize(lambda: examples(nlp, 3))
    gold = Doc(nlp.vocab, words="a b c d".split())
    gold.ents = [Span(gold, 1, 2, label="Disease")]
    gold.user_data[TYPE_KEY] = "Disease"
    predicted = Doc(nlp.vocab, words="a b c d".split())
    scores = numpy.full((4, 15), -5.0, dtype="float32")
    scores[:, 4::5] = 3.0
    scores[1, 3] = 4.0
    scores[1, 5], scores[2, 7] = 6.0, 6.0
    ner.set_annotations([predicted], [scores])
    example = Example(predicted, gold)
    assert ner.score([example])["ents_f"] == 1.0
    assert ner.scorer([example])["ents_f"] == 0.0  # doc.ents alone


def test_heads_are_checked():
    nlp = spacy.blank("en")
    with pytest.raises(ConfigError, match="heads must be one of"):
        nlp.add_pipe("taughtnet_ner", config={"heads": "two"})


def test_loading_with_other_heads_is_refused(tmp_path):
    nlp = spacy.blank("en")
    per_type_pipe(nlp)
    nlp.initialize(lambda: examples(nlp, 3))
    nlp.to_disk(tmp_path / "model")
    with pytest.raises(ConfigError, match="trained with heads = 'per_type'"):
        spacy.load(tmp_path / "model", config={"components": {"ner": {"heads": "joint"}}})


def test_joint_heads_give_type_marginals():
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("taughtnet_ner", config={"model": SMALL_MODEL})
    nlp.initialize(lambda: examples(nlp, 3))
    doc = nlp.make_doc(" ".join(WORDS))
    probs, type_probs = ner.predict_proba([doc])[0], ner.predict_type_proba([doc])[0]
    numpy.testing.assert_allclose(type_probs[:, 0::3], probs[:, 0:-1:2], atol=1e-6)
    numpy.testing.assert_allclose(type_probs[:, 1::3], probs[:, 1:-1:2], atol=1e-6)
    numpy.testing.assert_allclose(type_probs.reshape(len(doc), 3, 3).sum(axis=2), 1.0, atol=1e-5)


def test_evaluate_corpus_scores_a_type_by_its_head(tmp_path):
    """seqeval on the Disease head's spans, and on doc.ents (where "b" lost to "b c")."""
    from spacy_taughtnet.corpora import write_docbin
    from spacy_taughtnet.evaluate import evaluate_corpus

    nlp = spacy.blank("en")
    ner = per_type_pipe(nlp)
    nlp.initialize(lambda: examples(nlp, 3))
    gold = []
    for _ in range(3):
        doc = Doc(nlp.vocab, words="a b c d".split())
        doc.ents = [Span(doc, 1, 2, label="Disease")]
        doc.user_data[TYPE_KEY] = "Disease"
        gold.append(doc)
    write_docbin(gold, tmp_path / "dev.spacy")
    scores = numpy.full((4, 15), -5.0, dtype="float32")
    scores[:, 4::5] = 3.0
    scores[1, 3] = 4.0
    scores[1, 5], scores[2, 7] = 6.0, 6.0
    ner.predict = lambda docs: [scores for _ in docs]
    row = evaluate_corpus(nlp, tmp_path / "dev.spacy")
    assert row["predictions"] == "doc.spans['taughtnet']"
    assert (row["precision"], row["recall"], row["f1"]) == (1.0, 1.0, 1.0)
    assert row["doc_ents"]["f1"] == 0.0
