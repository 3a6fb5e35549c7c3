"""Teacher distributions on disk, and the `spacy-taughtnet.Corpus.v1` reader."""
import json

import numpy
import pytest
import spacy
from conftest import corpus_file, random_distributions
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import registry

from spacy_taughtnet.component import TEACHER_LABELS_KEY, TEACHER_PROBS_KEY
from spacy_taughtnet.corpora import CORPUS_KEY, TYPE_KEY, read_iob, write_docbin
from spacy_taughtnet.readers import TaughtNetCorpus
from spacy_taughtnet.store import (
    DistributionsError,
    TeacherDistributions,
    write_distributions,
)

LABELS = ["Disease", "Chemical"]


def in_batches(rows, sizes):
    start = 0
    for size in sizes:
        yield rows[start : start + size]
        start += size


def test_round_trip(tmp_path):
    rng = numpy.random.default_rng(0)
    lengths = [2, 3, 1, 4]
    rows = random_distributions(rng, 10, 5).astype(numpy.float32)
    out = tmp_path / "dist"
    # batches cut across doc boundaries
    write_distributions(out, lengths, in_batches(rows, [4, 5, 1]), {"labels": LABELS, "normalize": "sum"})
    assert sorted(f.name for f in out.iterdir()) == ["lengths.npy", "meta.json", "probs.npy"]
    assert [f.name for f in tmp_path.iterdir()] == ["dist"]
    meta = json.loads((out / "meta.json").read_text())
    assert meta == {"labels": LABELS, "normalize": "sum", "n_docs": 4, "n_tokens": 10}

    store = TeacherDistributions(out)
    assert len(store) == 4
    assert store.labels == LABELS
    assert store.probs.dtype == numpy.float16
    assert store.probs.shape == (10, 5)
    numpy.testing.assert_array_equal(store.lengths, lengths)
    offsets = numpy.cumsum([0] + lengths)
    for i in range(4):
        doc_rows = store.doc_probs(i)
        assert doc_rows.dtype == numpy.float32
        assert doc_rows.shape == (lengths[i], 5)
        numpy.testing.assert_allclose(doc_rows.sum(axis=1), 1.0, atol=1e-6)
        numpy.testing.assert_allclose(doc_rows, rows[offsets[i] : offsets[i + 1]], atol=2e-3)


def test_float16_rows_are_renormalised(tmp_path):
    # 1/3 is not representable in float16: the stored row sums differ from 1
    rows = numpy.full((3, 3), 1 / 3, dtype=numpy.float32)
    write_distributions(tmp_path / "d", [3], [rows], {"labels": ["GENE"]})
    store = TeacherDistributions(tmp_path / "d")
    assert float(numpy.asarray(store.probs, dtype=numpy.float32).sum(axis=1)[0]) != 1.0
    numpy.testing.assert_allclose(store.doc_probs(0).sum(axis=1), 1.0, atol=1e-7)
    numpy.testing.assert_allclose(store.doc_probs(0), 1 / 3, atol=1e-6)


def test_zero_length_docs(tmp_path):
    rows = numpy.full((2, 3), [0.2, 0.3, 0.5], dtype=numpy.float32)
    write_distributions(tmp_path / "d", [0, 2, 0], [rows], {"labels": ["GENE"]})
    store = TeacherDistributions(tmp_path / "d")
    assert [store.doc_probs(i).shape for i in range(3)] == [(0, 3), (2, 3), (0, 3)]


def _assert_nothing_written(tmp_path, out):
    assert not out.exists()
    assert [f.name for f in tmp_path.iterdir()] == []  # no leftover temporary folder


def test_generator_raising_leaves_nothing(tmp_path):
    rows = numpy.full((5, 5), 0.2, dtype=numpy.float32)

    def failing():
        yield rows[:3]
        raise RuntimeError("teacher crashed")

    out = tmp_path / "dist"
    with pytest.raises(RuntimeError, match="teacher crashed"):
        write_distributions(out, [2, 3], failing(), {"labels": LABELS})
    _assert_nothing_written(tmp_path, out)


@pytest.mark.parametrize(
    "batch_rows,n_cols,match",
    [
        ([2, 2], 5, "got 4 rows for docs of 5 tokens"),
        ([3, 3], 5, "at row 3"),
        ([5], 3, r"shaped \(5, 3\)"),
        ([5], None, r"shaped \(5,\)"),
    ],
    ids=["too-few-rows", "too-many-rows", "wrong-columns", "one-dimensional"],
)
def test_wrong_rows_leave_nothing(tmp_path, batch_rows, n_cols, match):
    out = tmp_path / "dist"
    shape = (lambda n: (n, n_cols)) if n_cols else (lambda n: (n,))
    batches = (numpy.full(shape(n), 0.2, dtype=numpy.float32) for n in batch_rows)
    with pytest.raises(DistributionsError, match=match) as err:
        write_distributions(out, [2, 3], batches, {"labels": LABELS})
    assert str(out) in str(err.value)
    _assert_nothing_written(tmp_path, out)


def test_failed_rewrite_keeps_the_previous_folder(tmp_path):
    out = tmp_path / "dist"
    good = numpy.full((5, 5), 0.2, dtype=numpy.float32)
    write_distributions(out, [2, 3], [good], {"labels": LABELS})
    with pytest.raises(DistributionsError):
        write_distributions(out, [2, 3], [good[:4]], {"labels": LABELS})
    assert [f.name for f in tmp_path.iterdir()] == ["dist"]
    assert TeacherDistributions(out).probs.shape == (5, 5)


def test_missing_or_broken_folder(tmp_path):
    with pytest.raises(DistributionsError, match="not a teacher distributions folder") as err:
        TeacherDistributions(tmp_path / "nowhere")
    assert "nowhere" in str(err.value)
    write_distributions(tmp_path / "d", [2], [numpy.full((2, 3), 1 / 3)], {"labels": ["GENE"]})
    (tmp_path / "d" / "lengths.npy").unlink()
    with pytest.raises(DistributionsError, match="lengths.npy"):
        TeacherDistributions(tmp_path / "d")


def test_probs_inconsistent_with_lengths(tmp_path):
    write_distributions(tmp_path / "d", [2], [numpy.full((2, 3), 1 / 3)], {"labels": ["GENE"]})
    numpy.save(tmp_path / "d" / "lengths.npy", numpy.array([3], dtype=numpy.int64))
    with pytest.raises(DistributionsError, match=r"shaped \(2, 3\)"):
        TeacherDistributions(tmp_path / "d")


# ---------------------------------------------------------------- the reader


@pytest.fixture
def corpus_with_distributions(tmp_path):
    """A DocBin of 6 docs (one with a non-spaCy tokenisation) and their distributions."""
    nlp = spacy.blank("en")
    docs = read_iob(corpus_file("Toy-disease-IOB"), nlp.vocab, limit=5)
    odd = Doc(nlp.vocab, words=["TNF-alpha", "(", "don't", ")", "fever."], spaces=[True, False, False, True, False])
    odd.ents = [Span(odd, 4, 5, "Disease")]
    odd.user_data[CORPUS_KEY], odd.user_data[TYPE_KEY] = "Toy-disease-IOB", "Disease"
    docs.append(odd)
    docbin = tmp_path / "train.spacy"
    write_docbin(docs, docbin)
    lengths = [len(d) for d in docs]
    rows = random_distributions(numpy.random.default_rng(1), sum(lengths), 5).astype(numpy.float32)
    dist = tmp_path / "dist"
    write_distributions(dist, lengths, [rows], {"labels": LABELS})
    return nlp, docs, docbin, dist


def resolve_reader(**args):
    config = {"corpus": {"@readers": "spacy-taughtnet.Corpus.v1", **args}}
    return registry.resolve(config)["corpus"]


def test_reader_resolves_and_attaches_distributions(corpus_with_distributions):
    nlp, docs, docbin, dist = corpus_with_distributions
    reader = resolve_reader(path=str(docbin), distributions=str(dist), limit=0)
    assert isinstance(reader, TaughtNetCorpus)
    examples = list(reader(nlp))
    assert len(examples) == 6
    assert all(isinstance(eg, Example) for eg in examples)
    store = TeacherDistributions(dist)
    for i, (eg, doc) in enumerate(zip(examples, docs)):
        # gold tokenisation: the predicted doc has exactly the corpus tokens, no entities
        assert [t.text for t in eg.predicted] == [t.text for t in doc]
        assert eg.predicted.text == doc.text
        assert len(eg.predicted.ents) == 0
        assert [(e.start, e.end, e.label_) for e in eg.reference.ents] == [
            (e.start, e.end, e.label_) for e in doc.ents
        ]
        probs = eg.reference.user_data[TEACHER_PROBS_KEY]
        assert probs.shape == (len(doc), 5)
        numpy.testing.assert_array_equal(probs, store.doc_probs(i))
        assert list(eg.reference.user_data[TEACHER_LABELS_KEY]) == LABELS
        assert eg.reference.user_data[TYPE_KEY] == "Disease"
    assert [t.text for t in examples[5].predicted] == ["TNF-alpha", "(", "don't", ")", "fever."]


def test_reader_without_distributions_and_with_limit(corpus_with_distributions):
    nlp, docs, docbin, _ = corpus_with_distributions
    examples = list(resolve_reader(path=str(docbin), limit=2)(nlp))
    assert len(examples) == 2
    assert [eg.reference.text for eg in examples] == [d.text for d in docs[:2]]
    for eg in examples:
        assert TEACHER_PROBS_KEY not in eg.reference.user_data
        assert TEACHER_LABELS_KEY not in eg.reference.user_data
    assert len(list(resolve_reader(path=str(docbin), distributions=None)(nlp))) == 6


def test_reader_doc_count_mismatch(corpus_with_distributions, tmp_path):
    nlp, docs, docbin, _ = corpus_with_distributions
    lengths = [len(d) for d in docs[:5]]
    short = tmp_path / "short"
    write_distributions(short, lengths, [numpy.full((sum(lengths), 5), 0.2)], {"labels": LABELS})
    with pytest.raises(DistributionsError) as err:
        list(resolve_reader(path=str(docbin), distributions=str(short))(nlp))
    message = str(err.value)
    assert str(short) in message and str(docbin) in message
    assert "5 docs" in message and "holds 6" in message


def test_reader_token_count_mismatch(corpus_with_distributions, tmp_path):
    nlp, docs, docbin, _ = corpus_with_distributions
    lengths = [len(d) for d in docs]
    lengths[2] += 1
    bad = tmp_path / "bad"
    write_distributions(bad, lengths, [numpy.full((sum(lengths), 5), 0.2)], {"labels": LABELS})
    with pytest.raises(DistributionsError) as err:
        list(resolve_reader(path=str(docbin), distributions=str(bad))(nlp))
    message = str(err.value)
    assert str(bad) in message and "doc 2" in message and str(docbin) in message
    assert f"has {len(docs[2])} tokens" in message and f"{len(docs[2]) + 1} rows" in message
    assert repr(docs[2].text[:60]) in message


def test_reader_missing_distributions_folder(corpus_with_distributions, tmp_path):
    nlp, _, docbin, _ = corpus_with_distributions
    missing = tmp_path / "not-distilled"
    with pytest.raises(DistributionsError) as err:
        list(resolve_reader(path=str(docbin), distributions=str(missing))(nlp))
    assert str(missing) in str(err.value)
    assert "not a teacher distributions folder" in str(err.value)
