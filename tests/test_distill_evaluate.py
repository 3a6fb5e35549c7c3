"""Distillation of tiny in-process teachers over a union, and per-corpus evaluation."""
import hashlib
import json
import os
import warnings

import numpy
import pytest
import spacy
from helpers import CORPUS_TYPES, corpus_file
from seqeval.metrics import f1_score, precision_score, recall_score
from spacy.language import Language
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import minibatch

from spacy_taughtnet.aggregate import aggregate_distributions
from spacy_taughtnet.corpora import (
    CORPUS_KEY,
    TYPE_KEY,
    CorpusError,
    doc_corpus,
    doc_entity_type,
    read_docbin,
    read_iob,
    write_docbin,
)
from spacy_taughtnet.digests import pipeline_digest
from spacy_taughtnet.distill import dump_distributions
from spacy_taughtnet.distributions import TeacherDistributions
from spacy_taughtnet.errors import TeacherError
from spacy_taughtnet.evaluate import evaluate_corpus, format_table
from spacy_taughtnet.scorer import bio_tags
from spacy_taughtnet.teachers import load_teacher, trained_teacher


@pytest.fixture(scope="module")
def union_docbin(docbins, tmp_path_factory):
    """A small union: 6 Disease docs then 6 Chemical docs."""
    vocab = spacy.blank("en").vocab
    docs = read_docbin(docbins["Toy-disease-IOB"]["train"], vocab)[:6]
    docs += read_docbin(docbins["Toy-chem-IOB"]["train"], vocab)[:6]
    path = tmp_path_factory.mktemp("union") / "train.spacy"
    write_docbin(docs, path)
    return path


def expected_distributions(teacher_paths, docbin, batch_size, normalize):
    """What dump_distributions should store, from each teacher's predict_proba: the
    aggregated global columns, then each teacher's own (B, I, O)."""
    teachers = [load_teacher(p) for p in teacher_paths]
    vocab = spacy.blank("en").vocab
    docs = read_docbin(docbin, vocab)
    rows = []
    for batch in minibatch(docs, size=batch_size):
        per_teacher = []
        for nlp, _, pipe in teachers:
            copies = [Doc(nlp.vocab, words=[t.text for t in d]) for d in batch]
            per_teacher.append(numpy.concatenate(pipe.predict_proba(copies)))
        rows.append(numpy.concatenate([aggregate_distributions(per_teacher, normalize=normalize)] + per_teacher, axis=1))
    return numpy.concatenate(rows), docs


@pytest.mark.slow
@pytest.mark.parametrize("normalize", ["sum", "softmax"])
def test_dump_distributions(teachers, union_docbin, tmp_path, normalize):
    teacher_paths = [teachers["Chemical"], teachers["Disease"]]
    out = tmp_path / "dist"
    labels = dump_distributions(union_docbin, teacher_paths, out, normalize=normalize, batch_size=5, shard_docs=4)
    assert labels == ["Chemical", "Disease"]  # the teachers' order
    store = TeacherDistributions(out)
    store.check_docbin(union_docbin)
    store.check_teachers()
    expected, docs = expected_distributions(teacher_paths, union_docbin, 5, normalize)
    n_tokens = sum(len(d) for d in docs)
    assert store.labels == ["Chemical", "Disease"]
    assert len(store) == len(docs) == 12
    numpy.testing.assert_array_equal(store.lengths, [len(d) for d in docs])
    probs = numpy.concatenate([numpy.load(out / f"shard-0000{k}" / "probs.npy") for k in range(3)])
    # the global columns (2k+1), then (B, I, O) of each type
    assert probs.dtype == numpy.float16 and probs.shape == (n_tokens, 5 + 6)
    for block in (slice(0, 5), slice(5, 8), slice(8, 11)):
        numpy.testing.assert_allclose(probs[:, block].astype(numpy.float32).sum(axis=1), 1.0, atol=5e-3)
    numpy.testing.assert_allclose(probs, expected, atol=2e-3)
    assert store.type_columns
    offsets = numpy.cumsum([0] + [len(d) for d in docs])
    for i in range(len(store)):
        numpy.testing.assert_allclose(store.doc_distributions(i)[0].sum(axis=1), 1.0, atol=1e-6)
        numpy.testing.assert_allclose(store.doc_distributions(i)[1], expected[offsets[i] : offsets[i + 1], 5:], atol=2e-3)
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["normalize"] == normalize
    assert manifest["teachers"] == [
        {"path": os.path.relpath(p, out), "label": label, "settings": {}, "sha256": pipeline_digest(p)}
        for p, label in zip(teacher_paths, labels)
    ]
    assert manifest["docbin"]["path"] == os.path.relpath(union_docbin, out)
    assert manifest["docbin"]["sha256"] == hashlib.sha256(union_docbin.read_bytes()).hexdigest()
    assert (manifest["n_docs"], manifest["n_tokens"]) == (12, n_tokens)
    assert [s["docs"] for s in manifest["shards"]] == [[0, 4], [4, 8], [8, 12]]
    assert [f.name for f in tmp_path.iterdir()] == ["dist"]


@pytest.mark.slow
def test_distributions_do_not_depend_on_batch_or_shard_size(teachers, union_docbin, tmp_path):
    teacher_paths = [teachers["Disease"], teachers["Chemical"]]
    dump_distributions(union_docbin, teacher_paths, tmp_path / "one", batch_size=1, shard_docs=5)
    dump_distributions(union_docbin, teacher_paths, tmp_path / "all", batch_size=64)
    one, many = TeacherDistributions(tmp_path / "one"), TeacherDistributions(tmp_path / "all")
    for i in range(len(one)):
        numpy.testing.assert_allclose(one.doc_distributions(i)[1], many.doc_distributions(i)[1], atol=2e-3)


@pytest.mark.slow
def test_default_distributions_hold_only_each_types_own_columns(teachers, union_docbin, tmp_path):
    """The default (normalize "none") runs no aggregation: the rows are each type's (B, I, O),
    the same columns that a run with the aggregation stores after its global ones."""
    teacher_paths = [teachers["Chemical"], teachers["Disease"]]
    dump_distributions(union_docbin, teacher_paths, tmp_path / "own", batch_size=5)
    dump_distributions(union_docbin, teacher_paths, tmp_path / "sum", normalize="sum", batch_size=5)
    own, summed = TeacherDistributions(tmp_path / "own"), TeacherDistributions(tmp_path / "sum")
    assert own.normalize == "none" and not own.global_columns and own.type_columns
    assert numpy.load(tmp_path / "own" / "shard-00000" / "probs.npy").shape[1] == 6  # 3 per type, no 2k+1
    expected, _ = expected_distributions(teacher_paths, union_docbin, 5, "sum")
    for i in range(len(own)):
        global_rows, type_rows = own.doc_distributions(i)
        assert global_rows is None
        numpy.testing.assert_array_equal(type_rows, summed.doc_distributions(i)[1])
    numpy.testing.assert_allclose(
        numpy.concatenate([own.doc_distributions(i)[1] for i in range(len(own))]), expected[:, 5:], atol=2e-3
    )


@pytest.mark.slow
def test_rerun_runs_the_teachers_only_over_missing_shards(teachers, union_docbin, tmp_path, monkeypatch):
    from spacy_taughtnet.teachers import Teacher

    teacher_paths = [teachers["Disease"], teachers["Chemical"]]
    seen = []
    real = Teacher.predict

    def counting(self, docs):
        seen.append(len(docs))
        if len(seen) == 5:  # the first teacher on the third shard
            raise RuntimeError("killed")
        return real(self, docs)

    monkeypatch.setattr(Teacher, "predict", counting)
    with pytest.raises(RuntimeError, match="killed"):
        dump_distributions(union_docbin, teacher_paths, tmp_path / "dist", shard_docs=5)
    assert seen == [5, 5, 5, 5, 2]
    del seen[:]
    dump_distributions(union_docbin, teacher_paths, tmp_path / "dist", shard_docs=5)
    assert seen == [2, 2]  # only the last shard's 2 docs, once per teacher
    monkeypatch.setattr(Teacher, "predict", real)
    dump_distributions(union_docbin, teacher_paths, tmp_path / "fresh", shard_docs=5)
    resumed, fresh = TeacherDistributions(tmp_path / "dist"), TeacherDistributions(tmp_path / "fresh")
    for i in range(12):
        numpy.testing.assert_array_equal(resumed.doc_distributions(i)[1], fresh.doc_distributions(i)[1])


def test_teachers_recognise_their_type(teachers):
    """The tiny teachers learnt something: on a training sentence, the B- column of an
    entity token is more probable under its own teacher than elsewhere."""
    nlp, _, pipe = load_teacher(teachers["Disease"])
    assert pipe.labels == ("Disease",)
    doc = Doc(nlp.vocab, words="The risk of renal failure rose when interleukin 6 was mutated .".split())
    (probs,) = pipe.predict_proba([doc])
    assert probs.shape == (12, 3)
    assert probs[3].argmax() == 0  # renal: B-Disease
    assert probs[0].argmax() == 2  # The: O


def test_doc_type_without_teacher(teachers, docbins, tmp_path):
    vocab = spacy.blank("en").vocab
    docs = read_docbin(docbins["Toy-disease-IOB"]["devel"], vocab)[:2]
    docs += read_docbin(docbins["Toy-gene-IOB"]["devel"], vocab)[:2]
    union = tmp_path / "union.spacy"
    write_docbin(docs, union)
    with pytest.raises(TeacherError) as err:
        dump_distributions(union, [teachers["Disease"], teachers["Chemical"]], tmp_path / "dist")
    message = str(err.value)
    assert "'Toy-gene-IOB'" in message and "'GENE'" in message and str(union) in message
    assert not (tmp_path / "dist").exists()


def test_missing_teacher_path(teachers, union_docbin, tmp_path):
    missing = tmp_path / "teachers" / "nowhere"
    with pytest.raises(TeacherError) as err:
        dump_distributions(union_docbin, [teachers["Disease"], missing], tmp_path / "dist")
    assert str(missing) in str(err.value) and "config.cfg" in str(err.value)
    assert not (tmp_path / "dist").exists()


@pytest.mark.slow
def test_two_teachers_of_one_type_are_merged(teachers, union_docbin, tmp_path):
    """Twice the same Disease teacher: their mean is the teacher itself, so the rows equal
    the one-teacher-per-type rows; the manifest records both, and the merge."""
    paths = [teachers["Disease"], teachers["Chemical"]]
    dump_distributions(union_docbin, paths, tmp_path / "one", batch_size=4)
    labels = dump_distributions(union_docbin, paths + [teachers["Disease"]], tmp_path / "two", batch_size=4, merge="mean")
    assert labels == ["Disease", "Chemical"]
    one, two = TeacherDistributions(tmp_path / "one"), TeacherDistributions(tmp_path / "two")
    for i in range(len(one)):
        numpy.testing.assert_allclose(two.doc_distributions(i)[1], one.doc_distributions(i)[1], atol=1e-3)
    recorded = [(t["label"], t["settings"]) for t in json.loads((tmp_path / "two" / "manifest.json").read_text())["teachers"]]
    assert recorded == [("Disease", {"merge": "mean"}), ("Chemical", {}), ("Disease", {"merge": "mean"})]
    with pytest.raises(ValueError, match="'vote'"):
        dump_distributions(union_docbin, paths, tmp_path / "bad", merge="vote")


@pytest.mark.slow
def test_corpus_merge_gives_each_corpus_its_own_teacher(teachers, union_docbin, tmp_path):
    """merge "corpus": one Disease teacher loaded as the teacher of the union's Disease corpus
    and again as another corpus's. On the Disease corpus's docs its rows are its own (a product
    with itself would sharpen them); on the Chemical docs, the two teachers' product."""
    union = read_docbin(union_docbin, spacy.blank("en").vocab)
    own_corpus = doc_corpus(union[0])
    chem = trained_teacher(teachers["Chemical"], corpus=doc_corpus(union[-1]))
    pair = [trained_teacher(teachers["Disease"], corpus=own_corpus), chem, trained_teacher(teachers["Disease"], corpus="Other-disease")]
    dump_distributions(union_docbin, pair[:2], tmp_path / "one", batch_size=5)
    dump_distributions(union_docbin, pair, tmp_path / "corpus", batch_size=5, merge="corpus")
    dump_distributions(union_docbin, pair, tmp_path / "product", batch_size=5, merge="product")
    one, by_corpus, product = (TeacherDistributions(tmp_path / name) for name in ("one", "corpus", "product"))
    for i, doc in enumerate(union):
        expected = (one if doc_corpus(doc) == own_corpus else product).doc_distributions(i)[1]
        numpy.testing.assert_allclose(by_corpus.doc_distributions(i)[1], expected, atol=1e-6)
    assert not numpy.allclose(one.doc_distributions(0)[1], product.doc_distributions(0)[1], atol=1e-3)
    recorded = [t["settings"] for t in json.loads((tmp_path / "corpus" / "manifest.json").read_text())["teachers"]]
    assert recorded == [{"merge": "corpus"}, {}, {"merge": "corpus"}]
    # teachers given as folders name no corpus: refused rather than silently the product
    with pytest.raises(ValueError, match="none of these teachers names its corpus"):
        dump_distributions(union_docbin, [teachers["Disease"], teachers["Chemical"]], tmp_path / "bad", merge="corpus")
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_corpus_merge_keeps_a_shared_sentence_to_each_docs_own_corpus(teachers, tmp_path):
    """The fixture pair (Toy-pair-chem-IOB, Toy-pair-disease-IOB) annotates the same sentences,
    one type each, as BC5CDR-chem and BC5CDR-disease do. Under merge "corpus" a doc is its own
    corpus's alone: a chem copy's Disease rows are the product of the Disease teachers, a
    disease copy's its own teacher's. (Giving the sentence to both corpora lost 0.13 devel
    macro F1 over 3 seeds: BENCHMARKS.md, "sentences that two corpora hold".)"""
    vocab = spacy.blank("en").vocab
    pair = [read_iob(corpus_file(corpus), vocab)[:5] for corpus in ("Toy-pair-chem-IOB", "Toy-pair-disease-IOB")]
    assert [[t.text for t in d] for d in pair[0]] == [[t.text for t in d] for d in pair[1]]
    write_docbin(pair[0] + pair[1], tmp_path / "union.spacy")
    disease = [trained_teacher(teachers["Disease"], corpus="Toy-pair-disease-IOB"),
               trained_teacher(teachers["Disease"], corpus="Other-disease")]
    chem = trained_teacher(teachers["Chemical"], corpus="Toy-pair-chem-IOB")
    dump_distributions(tmp_path / "union.spacy", [disease[0], chem], tmp_path / "one", batch_size=4)
    dump_distributions(tmp_path / "union.spacy", disease + [chem], tmp_path / "corpus", batch_size=4, merge="corpus")
    dump_distributions(tmp_path / "union.spacy", disease + [chem], tmp_path / "product", batch_size=4, merge="product")
    one, by_corpus, product = (TeacherDistributions(tmp_path / name) for name in ("one", "corpus", "product"))
    for i in range(10):
        expected = (product if i < 5 else one).doc_distributions(i)[1][:, :3]
        numpy.testing.assert_allclose(by_corpus.doc_distributions(i)[1][:, :3], expected, atol=1e-6)
    assert not numpy.allclose(one.doc_distributions(0)[1][:, :3], product.doc_distributions(0)[1][:, :3], atol=1e-3)


def test_multi_type_pipeline_is_not_a_teacher(tmp_path):
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("taughtnet_ner")
    ner.add_label("Disease")
    ner.add_label("Chemical")
    nlp.initialize(lambda: [Example(nlp.make_doc("aspirin"), nlp.make_doc("aspirin"))])
    nlp.to_disk(tmp_path / "student")
    with pytest.raises(TeacherError, match="one entity type"):
        load_teacher(tmp_path / "student")
    spacy.blank("en").to_disk(tmp_path / "empty")
    with pytest.raises(TeacherError, match="found 0"):
        load_teacher(tmp_path / "empty")


def test_missing_or_empty_docbin(teachers, tmp_path):
    with pytest.raises(CorpusError, match="not found"):
        dump_distributions(tmp_path / "none.spacy", [teachers["Disease"]], tmp_path / "dist")
    write_docbin([], tmp_path / "empty.spacy")
    with pytest.raises(CorpusError, match="no docs"):
        dump_distributions(tmp_path / "empty.spacy", [teachers["Disease"]], tmp_path / "dist")
    assert not (tmp_path / "dist").exists()


# ---------------------------------------------------------------- evaluation

ORACLE = {}


@Language.component("taughtnet_test_oracle")
def oracle_component(doc):
    """Sets the entities listed in ORACLE for the doc's text (a model with known output)."""
    doc.ents = [Span(doc, s, e, label=l) for s, e, l in ORACLE.get(doc.text, [])]
    return doc


def oracle_nlp():
    nlp = spacy.blank("en")
    nlp.add_pipe("taughtnet_test_oracle")
    return nlp


def gold_docs(docbins, corpus, split="test"):
    return read_docbin(docbins[corpus][split], spacy.blank("en").vocab)


def free_token(doc):
    """A token outside every gold entity."""
    return next(t.i for t in doc if t.ent_iob_ == "O")


@pytest.fixture(autouse=True)
def clear_oracle():
    ORACLE.clear()
    yield
    ORACLE.clear()


def test_evaluate_perfect_and_other_types_ignored(docbins):
    docs = gold_docs(docbins, "Toy-disease-IOB")
    path = docbins["Toy-disease-IOB"]["test"]
    for doc in docs:
        ORACLE[doc.text] = [(e.start, e.end, e.label_) for e in doc.ents]
    alone = evaluate_corpus(oracle_nlp(), path)
    assert (alone["precision"], alone["recall"], alone["f1"]) == (1.0, 1.0, 1.0)
    # the same model also predicting Chemical entities elsewhere: the Disease scores are unaffected
    for doc in docs:
        ORACLE[doc.text] = [(e.start, e.end, e.label_) for e in doc.ents] + [
            (free_token(doc), free_token(doc) + 1, "Chemical")
        ]
    mixed = evaluate_corpus(oracle_nlp(), path)
    for key in ("precision", "recall", "f1", "n_docs", "n_words", "entity_type"):
        assert mixed[key] == alone[key]
    assert mixed["entity_type"] == "Disease"
    assert mixed["n_docs"] == 12 == len(docs)
    assert mixed["n_words"] == sum(len(d) for d in docs)
    assert mixed["corpus"] == str(path)
    assert mixed["words_per_second"] is None or mixed["words_per_second"] > 0
    # a model predicting only the other type at the gold positions finds nothing
    for doc in docs:
        ORACLE[doc.text] = [(e.start, e.end, "Chemical") for e in doc.ents]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        other = evaluate_corpus(oracle_nlp(), path)
    assert (other["precision"], other["recall"], other["f1"]) == (0.0, 0.0, 0.0)


def test_evaluate_values_by_hand(tmp_path):
    vocab = spacy.blank("en").vocab
    corpus = [
        # words, gold Disease spans, predicted spans
        ("renal failure in mice", [(0, 2)], [(0, 2, "Disease"), (3, 4, "Chemical")]),  # tp
        ("asthma and diabetes", [(0, 1), (2, 3)], [(0, 1, "Disease"), (1, 2, "Chemical")]),  # tp, fn
        ("aspirin caused fever", [(2, 3)], [(1, 3, "Disease"), (0, 1, "Chemical")]),  # fp, fn
        ("nothing here", [], [(0, 1, "Chemical")]),
        ("cancer", [(0, 1)], [(0, 1, "Disease")]),  # tp
    ]
    docs = []
    for text, gold, pred in corpus:
        doc = Doc(vocab, words=text.split())
        doc.ents = [Span(doc, s, e, label="Disease") for s, e in gold]
        doc.user_data[TYPE_KEY], doc.user_data[CORPUS_KEY] = "Disease", "hand"
        docs.append(doc)
        ORACLE[doc.text] = pred
    path = tmp_path / "hand.spacy"
    write_docbin(docs, path)
    scores = evaluate_corpus(oracle_nlp(), path)
    tp, fp, fn = 3, 1, 2
    precision, recall = tp / (tp + fp), tp / (tp + fn)  # 0.75, 0.6
    assert scores["precision"] == pytest.approx(0.75) == pytest.approx(precision)
    assert scores["recall"] == pytest.approx(0.6) == pytest.approx(recall)
    assert scores["f1"] == pytest.approx(2 * 0.75 * 0.6 / (0.75 + 0.6))
    assert (scores["n_docs"], scores["n_words"]) == (5, 13)


def test_model_of_another_type_scores_zero(teachers, docbins):
    nlp = spacy.load(teachers["Chemical"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval: precision undefined without predictions
        scores = evaluate_corpus(nlp, docbins["Toy-disease-IOB"]["test"])
    assert scores["entity_type"] == "Disease"
    assert (scores["precision"], scores["recall"], scores["f1"]) == (0.0, 0.0, 0.0)


def test_evaluate_trained_teacher_in_range(teachers, docbins):
    nlp = spacy.load(teachers["Chemical"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        scores = evaluate_corpus(nlp, docbins["Toy-chem-IOB"]["test"], batch_size=4)
    assert scores["entity_type"] == "Chemical"
    for key in ("precision", "recall", "f1"):
        assert 0.0 <= scores[key] <= 1.0
    # the scores are seqeval's on the model's own predictions (same batches)
    gold = gold_docs(docbins, "Toy-chem-IOB")
    predicted = list(nlp.pipe([Doc(nlp.vocab, words=[t.text for t in d]) for d in gold], batch_size=4))
    y_true = [bio_tags(d, types=["Chemical"]) for d in gold]
    y_pred = [bio_tags(d, types=["Chemical"]) for d in predicted]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert scores["precision"] == precision_score(y_true, y_pred)
        assert scores["recall"] == recall_score(y_true, y_pred)
        assert scores["f1"] == f1_score(y_true, y_pred)


def test_evaluate_refuses_a_union(union_docbin):
    with pytest.raises(CorpusError, match="one typed corpus"):
        evaluate_corpus(oracle_nlp(), union_docbin)


def test_format_table():
    rows = [{"model": "m", "corpus": "c.spacy", "entity_type": "Disease", "precision": 0.5, "recall": 1.0, "f1": 2 / 3}]
    lines = format_table(rows).splitlines()
    assert lines[0].split() == ["model", "corpus", "entity_type", "precision", "recall", "f1"]
    assert set(lines[1].replace(" ", "")) == {"-"}
    assert lines[2].split() == ["m", "c.spacy", "Disease", "50.00", "100.00", "66.67"]


def test_fixture_corpus_types(docbins):
    vocab = spacy.blank("en").vocab
    for corpus, ent_type in CORPUS_TYPES.items():
        assert {doc_entity_type(d) for d in read_docbin(docbins[corpus]["test"], vocab)} == {ent_type}
