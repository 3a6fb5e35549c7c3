"""The heads of `taughtnet_ner` (heads.py): per-type heads in a pipe (gold and teacher targets,
the loss, decoding with overlaps, scoring by the span group, probabilities, save/load), then both
strategies side by side (columns, targets, decoding, loss gradients, round trips)."""
import numpy
import pytest
import spacy
import srsly
from helpers import SMALL_MODEL
from spacy.tokens import Doc, Span
from spacy.training import Example

from spacy_taughtnet.aggregate import aggregate_distributions
from spacy_taughtnet.corpora import TYPE_KEY
from spacy_taughtnet.decoding import biluo_targets, tags_to_spans
from spacy_taughtnet.errors import ConfigError
from spacy_taughtnet.heads import (
    TEACHER_LABELS_KEY,
    TEACHER_PROBS_KEY,
    TEACHER_TYPE_PROBS_KEY,
    JointHeads,
    PerTypeHeads,
    make_heads,
)
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
    gold = ner.strategy.targets(egs[1], ner.labels)[0]  # a Chemical doc: U-Chemical on "aspirin", O-Chemical elsewhere
    assert (gold[:, 0] == -1).all() and (gold[:, 2] == -1).all()
    assert gold[:, 1].tolist() == [3, 4, 4, 4, 4, 4, 4]
    untyped = Doc(nlp.vocab, words=WORDS)
    untyped.ents = [Span(untyped, 4, 6, label="GENE")]
    gold = ner.strategy.targets(Example(Doc(nlp.vocab, words=WORDS), untyped), ner.labels)[0]  # annotates every type
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
        gold = numpy.concatenate([ner.strategy.targets(eg, ner.labels)[0][:, j] for eg in egs])
        d, head_loss = reference(numpy.ascontiguousarray(flat[:, 5 * j : 5 * j + 5]), (gold, teacher))
        expected += head_loss
        expected_grad[:, 5 * j : 5 * j + 5] = d
    assert loss == pytest.approx(expected, rel=1e-6)
    numpy.testing.assert_allclose(numpy.concatenate([numpy.asarray(g) for g in grads]), expected_grad, rtol=1e-5, atol=1e-7)


def test_head_targets_from_the_aggregated_distribution_or_a_mix():
    """head_targets "aggregated": each head's targets spread from its type's marginals of the
    global distribution (read in the stored label order), where a confident Chemical teacher on
    "cancer" lowers B-Disease there; "mix": the mean with the own-teacher targets. Joint heads
    and unknown values are refused."""
    nlp = spacy.blank("en")
    stored_order = ["GENE", "Disease", "Chemical"]
    (eg,) = examples(nlp, 1, teacher_labels=stored_order)
    per_type = eg.reference.user_data[TEACHER_TYPE_PROBS_KEY]
    per_type[2, 6:9] = [0.95, 0.0, 0.05]  # the Chemical teacher claims "cancer" too
    blocks = [per_type[:, 3 * j : 3 * j + 3].astype("float64") for j in range(3)]
    eg.reference.user_data[TEACHER_PROBS_KEY] = aggregate_distributions(blocks)
    glob = eg.reference.user_data[TEACHER_PROBS_KEY]
    targets = {name: make_heads("per_type", "ner", name).targets(eg, LABELS)[1] for name in ("own", "aggregated", "mix")}
    for j, label in enumerate(LABELS):
        k = stored_order.index(label)
        b, i = glob[:, 2 * k], glob[:, 2 * k + 1]
        expected = biluo_targets(numpy.stack([b, i, 1.0 - b - i], axis=1))
        numpy.testing.assert_allclose(targets["aggregated"][:, 5 * j : 5 * j + 5], expected, atol=1e-6)
        numpy.testing.assert_allclose(targets["own"][:, 5 * j : 5 * j + 5], biluo_targets(per_type[:, 3 * k : 3 * k + 3]), atol=1e-6)
    numpy.testing.assert_allclose(targets["mix"], (targets["own"] + targets["aggregated"]) / 2, atol=1e-6)
    b_disease = {name: t[2, 0] + t[2, 3] for name, t in targets.items()}  # B + U of the Disease head on "cancer"
    assert b_disease["aggregated"] < b_disease["own"] - 0.2
    with pytest.raises(ConfigError, match="head_targets 'aggregated' is for per_type heads"):
        make_heads("joint", "ner", "aggregated")
    with pytest.raises(ConfigError, match="head_targets must be one of"):
        per_type_pipe(spacy.blank("en"), head_targets="both")


def test_global_only_distributions_are_refused():
    nlp = spacy.blank("en")
    ner = per_type_pipe(nlp)
    egs = examples(nlp, 3)
    nlp.initialize(lambda: egs)
    for eg in egs:
        del eg.reference.user_data[TEACHER_TYPE_PROBS_KEY]
    with pytest.raises(ValueError, match="rerun distill-teachers"):
        ner.get_loss(egs, ner.model.predict([eg.predicted for eg in egs]))


def test_distributions_without_the_aggregation_train_own_targets_and_refuse_the_rest():
    """Distributions distilled with normalize "none" (the default) hold each type's columns
    only: per-type heads with head_targets "own" learn from them, and give the same targets as
    with the global columns present; "aggregated", "mix" and joint heads are refused by name."""
    nlp = spacy.blank("en")
    (eg,) = examples(nlp, 1)
    with_global = make_heads("per_type", "ner", "own").targets(eg, LABELS)
    del eg.reference.user_data[TEACHER_PROBS_KEY]
    without = make_heads("per_type", "ner", "own").targets(eg, LABELS)
    for a, b in zip(with_global, without):
        numpy.testing.assert_array_equal(a, b)
    for heads, targets in (("per_type", "aggregated"), ("per_type", "mix"), ("joint", "own")):
        with pytest.raises(ValueError, match=r"stored without them \(distill-teachers --normalize none"):
            make_heads(heads, "ner", targets).targets(eg, LABELS)


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


def test_overlaps_viterbi_sets_the_ents_of_one_global_path(tmp_path):
    """With overlaps "viterbi" doc.ents is decode_ents's path, a setting of the config the pipe
    is loaded with; the span group keeps every type's spans, and where the rules differ, the
    default ("confidence") keeps the more confident span. A bad value is refused."""
    nlp = spacy.blank("en")
    per_type_pipe(nlp)
    nlp.initialize(lambda: examples(nlp, 3))
    nlp.to_disk(tmp_path / "model")
    loaded = spacy.load(tmp_path / "model", config={"components": {"ner": {"overlaps": "viterbi"}}})
    ner = loaded.get_pipe("ner")
    assert ner.cfg["overlaps"] == "viterbi"
    doc = Doc(loaded.vocab, words="a b c d".split())
    scores = numpy.full((4, 15), -5.0, dtype="float32")
    scores[:, 4::5] = 3.0
    scores[1, 3] = 8.0  # U-Disease on "b": sure
    scores[1, 5], scores[2, 7] = 6.0, 6.0  # B-Chemical, L-Chemical on "b c"
    (expected,) = ner.strategy.decode_ents([doc], [scores], ner.labels)
    ner.set_annotations([doc], [scores])
    assert [(e.start, e.end, e.label_) for e in doc.ents] == [(s.start, s.end, s.label_) for s, _ in expected]
    # "b" as Disease is the more confident span, but "b c" as Chemical costs the Disease head
    # less on "b" than "b" as Disease costs the Chemical head on "b" and "c"
    assert [(e.text, e.label_) for e in doc.ents] == [("b c", "Chemical")]
    assert [(s.text, s.label_) for s in doc.spans["taughtnet"]] == [("b", "Disease"), ("b c", "Chemical")]
    ner.cfg["overlaps"] = "confidence"
    doc = Doc(loaded.vocab, words="a b c d".split())
    ner.set_annotations([doc], [scores])
    assert [(e.text, e.label_) for e in doc.ents] == [("b", "Disease")]
    with pytest.raises(ConfigError, match="overlaps must be one of"):
        per_type_pipe(spacy.blank("en"), overlaps="vote")


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


# ---------------------------------------------------------------- both strategies


def test_make_heads_and_the_columns_of_each():
    joint, per_type = make_heads("joint", "ner"), make_heads("per_type", "ner")
    assert (type(joint), type(per_type)) == (JointHeads, PerTypeHeads)
    assert (joint.types_overlap, per_type.types_overlap) == (False, True)
    labels = ("Chemical", "Disease")
    assert joint.model_tag_names(labels) == [
        "B-Chemical", "I-Chemical", "L-Chemical", "U-Chemical", "B-Disease", "I-Disease", "L-Disease", "U-Disease", "O"]
    assert per_type.model_tag_names(labels) == [
        "B-Chemical", "I-Chemical", "L-Chemical", "U-Chemical", "O-Chemical",
        "B-Disease", "I-Disease", "L-Disease", "U-Disease", "O-Disease"]
    for heads in (joint, per_type):  # the columns of the probabilities are the same for both
        assert heads.tag_names(labels) == ["B-Chemical", "I-Chemical", "B-Disease", "I-Disease", "O"]
        assert heads.type_tag_names(labels) == ["B-Chemical", "I-Chemical", "O-Chemical", "B-Disease", "I-Disease", "O-Disease"]
    with pytest.raises(ConfigError, match=r"ner: heads must be one of \('joint', 'per_type'\), got 'two'"):
        make_heads("two", "ner")


def test_joint_targets():
    """BILUO ids over all types; with teachers a gold O is missing, and the global teacher
    columns, stored in another label order, are spread over BILUO in ours."""
    nlp = spacy.blank("en")
    labels = ("Chemical", "Disease", "GENE")
    (eg,) = examples(nlp, 1)  # a Disease doc: "cancer" (token 2)
    gold, teacher = JointHeads("ner").targets(eg, labels)
    assert gold.tolist() == [-1, -1, 7, -1, -1, -1, -1]  # U-Disease; O missing
    stored = eg.reference.user_data[TEACHER_PROBS_KEY]  # columns of Disease, Chemical, GENE
    numpy.testing.assert_array_equal(teacher, biluo_targets(stored[:, [2, 3, 0, 1, 4, 5, 6]]))
    for key in (TEACHER_PROBS_KEY, TEACHER_TYPE_PROBS_KEY, TEACHER_LABELS_KEY):  # a doc without teachers
        del eg.reference.user_data[key]
    gold, teacher = JointHeads("ner").targets(eg, labels)
    assert gold.tolist() == [12, 12, 7, 12, 12, 12, 12] and teacher is None


def scores_for(heads, rng, n_tokens, labels):
    return rng.normal(scale=3.0, size=(n_tokens, len(heads.model_tag_names(labels)))).astype("float32")


def test_decoding_one_softmax_or_one_per_type():
    """Two types both likely on "b": the joint softmax picks one, per-type heads give both, each
    with its head's probability. An entity never ends on a whitespace token ("c \\n" is "c")."""
    nlp = spacy.blank("en")
    doc = Doc(nlp.vocab, words=["a", "b", "c", "\n"])
    labels = ("Chemical", "Disease")
    joint = numpy.full((4, 9), -5.0, dtype="float32")
    joint[:, 8] = 3.0
    joint[1, 3], joint[1, 7] = 6.0, 5.0  # U-Chemical, U-Disease
    joint[2, 4], joint[3, 6] = 7.0, 7.0  # B-Disease, L-Disease on "c \n"
    (found,) = JointHeads("ner").decode([doc], [joint], labels)
    assert [(s.start, s.end, s.label_) for s, _ in found] == [(1, 2, "Chemical"), (2, 3, "Disease")]
    p = numpy.exp(joint[1] - numpy.log(numpy.exp(joint[1].astype("float64")).sum()))
    assert found[0][1] == pytest.approx(p[3], rel=1e-6)
    per_type = numpy.full((4, 10), -5.0, dtype="float32")
    per_type[:, 4::5] = 3.0
    per_type[1, 3], per_type[1, 8] = 6.0, 5.0  # U-Chemical, U-Disease
    (found,) = PerTypeHeads("ner").decode([doc], [per_type], labels)
    assert [(s.start, s.end, s.label_) for s, _ in found] == [(1, 2, "Chemical"), (1, 2, "Disease")]
    for (span, confidence), column in zip(found, (3, 8)):
        head = per_type[1, column - 3 : column + 2].astype("float64")
        assert confidence == pytest.approx(numpy.exp(per_type[1, column] - numpy.log(numpy.exp(head).sum())), rel=1e-6)


def _valid_biluo(path, k):
    """Whether a global BILUO tag id sequence (4k+1 tags, O last) is well formed."""
    open_type = None
    for tag in path:
        prefix, t = ("O", None) if tag == 4 * k else ("BILU"[tag % 4], tag // 4)
        if (prefix in "IL") != (open_type is not None) or (prefix in "IL" and t != open_type):
            return False
        open_type = t if prefix in "BI" else None
    return open_type is None


def test_per_type_ents_are_the_best_global_path_of_the_heads_product():
    """decode_ents is the best well-formed global BILUO path (over every path of a 3-token doc)
    when each global tag scores its head's log-probability plus the others' O; its entities never
    overlap, and where per-type decoding gives one token two types, the path weighs them."""
    nlp = spacy.blank("en")
    doc = Doc(nlp.vocab, words=["a", "b", "c"])
    labels = ("Chemical", "Disease")
    rng = numpy.random.default_rng(0)
    heads = PerTypeHeads("ner")
    for trial in range(20):
        scores = rng.normal(0, 2, (3, 10)).astype("float32")
        if trial == 0:  # both heads sure of "b"
            scores[:, 4::5] = 3.0
            scores[1, 3], scores[1, 8] = 6.0, 5.0
        log_probs = scores.astype("float64").reshape(3, 2, 5)
        log_probs -= numpy.log(numpy.exp(log_probs).sum(axis=2, keepdims=True))
        best, best_score = None, -numpy.inf
        for path in numpy.ndindex(9, 9, 9):
            if not _valid_biluo(path, 2):
                continue
            total = 0.0
            for i, tag in enumerate(path):
                total += sum(
                    log_probs[i, t, tag % 4] if tag < 8 and tag // 4 == t else log_probs[i, t, 4] for t in range(2)
                )
            if total > best_score:
                best, best_score = path, total
        expected = [(s, e, lab) for s, e, lab in tags_to_spans(numpy.array(best), labels)]
        (found,) = heads.decode_ents([doc], [scores], labels)
        assert [(s.start, s.end, s.label_) for s, _ in found] == expected
        assert all(0.0 < confidence <= 1.0 for _, confidence in found)
        if trial == 0:
            (both,) = heads.decode([doc], [scores], labels)
            assert [(s.start, s.end, s.label_) for s, _ in both] == [(1, 2, "Chemical"), (1, 2, "Disease")]
            assert expected == [(1, 2, "Chemical")]


@pytest.mark.parametrize("heads", ["joint", "per_type"])
def test_probabilities_of_empty_and_whitespace_docs(heads):
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("taughtnet_ner", name="ner", config={"model": SMALL_MODEL, "heads": heads})
    nlp.initialize(lambda: examples(nlp, 3))
    docs = [nlp.make_doc(""), nlp.make_doc("aspirin causes cancer"), nlp.make_doc("\n")]
    assert [p.shape for p in ner.predict_proba(docs)] == [(0, 7), (3, 7), (1, 7)]
    assert [p.shape for p in ner.predict_type_proba(docs)] == [(0, 9), (3, 9), (1, 9)]
    assert [p.shape for p in ner.predict_proba(docs[:1])] == [(0, 7)]
    assert [p.shape for p in ner.predict_type_proba(docs[:1])] == [(0, 9)]


@pytest.mark.parametrize("heads", ["joint", "per_type"])
def test_each_heads_loss_gradient_matches_finite_differences(heads):
    """get_loss with teachers and gold (a doc of each of two types), against a central
    difference of its loss value."""
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("taughtnet_ner", name="ner", config={
        "model": SMALL_MODEL, "heads": heads,
        "loss": {"@losses": "spacy-taughtnet.DistillationLoss.v1", "lambda_": 0.6, "temperature": 2.0}})
    egs = examples(nlp, 2)
    nlp.initialize(lambda: egs)
    rng = numpy.random.default_rng(0)
    scores = [scores_for(ner.strategy, rng, len(WORDS), ner.labels).astype("float64") for _ in egs]
    _, grads = ner.get_loss(egs, scores)
    eps = 1e-6
    for d, doc_scores in enumerate(scores):
        numeric = numpy.zeros_like(doc_scores)
        for idx in numpy.ndindex(*doc_scores.shape):
            values = []
            for step in (eps, -eps):
                moved = [s.copy() for s in scores]
                moved[d][idx] += step
                values.append(ner.get_loss(egs, moved)[0])
            numeric[idx] = (values[0] - values[1]) / (2 * eps)
        numpy.testing.assert_allclose(grads[d], numeric, rtol=1e-4, atol=1e-6)


@pytest.mark.slow
@pytest.mark.parametrize("heads", ["joint", "per_type"])
def test_round_trip_keeps_the_outputs(heads, tmp_path):
    """to_bytes/from_bytes and to_disk/spacy.load: the same probabilities, spans and confidences;
    a cfg saved without heads and version (by 0.1.x) loads as joint heads."""
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("taughtnet_ner", name="ner", config={"model": SMALL_MODEL, "heads": heads})
    egs = examples(nlp, 6)
    optimizer = nlp.initialize(lambda: egs)
    for _ in range(3):
        nlp.update(egs, sgd=optimizer)
    text = "aspirin causes cancer via BRCA1 gene ."

    def outputs(pipeline):
        doc, pipe = pipeline(text), pipeline.get_pipe("ner")
        return (pipe.predict_proba([doc])[0], pipe.predict_type_proba([doc])[0],
                [(s.start, s.end, s.label_) for s in doc.spans["taughtnet"]], doc.spans["taughtnet"].attrs["scores"])

    expected = outputs(nlp)
    copy = spacy.blank("en")
    copy.add_pipe("taughtnet_ner", name="ner", config={"model": SMALL_MODEL, "heads": heads})
    copy.from_bytes(nlp.to_bytes())
    nlp.to_disk(tmp_path / "model")
    for loaded in (copy, spacy.load(tmp_path / "model")):
        assert loaded.get_pipe("ner").heads == heads
        for got, want in zip(outputs(loaded), expected):
            numpy.testing.assert_array_equal(got, want)
    cfg_path = tmp_path / "model" / "ner" / "cfg"
    srsly.write_json(cfg_path, {k: v for k, v in srsly.read_json(cfg_path).items() if k not in ("heads", "plugin_version")})
    if heads == "joint":
        assert spacy.load(tmp_path / "model").get_pipe("ner").labels == ner.labels
    else:
        with pytest.raises(ConfigError, match="trained with heads = 'joint'"):
            spacy.load(tmp_path / "model")
