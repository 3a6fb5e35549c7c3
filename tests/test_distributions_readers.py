"""Teacher distributions on disk, and the `spacy-taughtnet.Corpus.v1` reader."""
import hashlib
import json
import shutil
import sys

import numpy
import pytest
import spacy
from helpers import SMALL_MODEL, corpus_file, random_distributions
from spacy.tokens import Doc, Span
from spacy.training import Example
from spacy.util import registry

from spacy_taughtnet import distributions as distributions_module
from spacy_taughtnet.corpora import CORPUS_KEY, TYPE_KEY, read_iob, write_docbin
from spacy_taughtnet.digests import pipeline_digest
from spacy_taughtnet.distributions import (
    MANIFEST,
    PROBS,
    SHARD_DOCS,
    DistributionsError,
    TeacherDistributions,
    distributions_header,
    finalise_distributions,
    invalid_row,
    shard_ranges,
    staging_path,
    write_distributions,
    write_shard,
)
from spacy_taughtnet.heads import (
    TEACHER_LABELS_KEY,
    TEACHER_PROBS_KEY,
    TEACHER_TYPE_PROBS_KEY,
)
from spacy_taughtnet.readers import TaughtNetCorpus

LABELS = ["Disease", "Chemical"]


def in_batches(rows, sizes):
    start = 0
    for size in sizes:
        yield rows[start : start + size]
        start += size


def write(out, lengths, rows, *, docbin=None, labels=LABELS, normalize="sum", shard_docs=SHARD_DOCS, batch_rows=None, type_columns=False):
    """write_distributions of `rows` (all docs' rows, in order), each shard's rows in
    batches of `batch_rows` rows (cutting docs) or whole; the global columns only unless
    type_columns."""
    if docbin is None:
        docbin = out.parent / "docs.spacy"
        docbin.write_bytes(b"a DocBin")
    offsets = numpy.cumsum([0] + list(lengths))

    def shard_rows(start, end):
        mine = rows[offsets[start] : offsets[end]]
        if batch_rows is None:
            return [mine]
        return [mine[i : i + batch_rows] for i in range(0, len(mine), batch_rows)]

    return write_distributions(
        out, docbin, lengths, shard_rows, labels=labels, normalize=normalize, shard_docs=shard_docs, type_columns=type_columns
    )


def stored_rows(store):
    return numpy.concatenate([store.doc_distributions(i)[0] for i in range(len(store))])


def test_round_trip_in_shards(tmp_path):
    rng = numpy.random.default_rng(0)
    lengths = [2, 3, 1, 4, 0]
    rows = random_distributions(rng, 10, 5).astype(numpy.float32)
    out = tmp_path / "dist"
    docbin = tmp_path / "train.spacy"
    docbin.write_bytes(b"the docs")
    # shards of 2 docs, batches of 3 rows cutting across docs
    manifest = write(out, lengths, rows, docbin=docbin, shard_docs=2, batch_rows=3)
    assert sorted(f.name for f in tmp_path.iterdir()) == ["dist", "train.spacy"]  # no staging, no temporaries
    assert sorted(f.name for f in out.iterdir()) == ["manifest.json", "shard-00000", "shard-00001", "shard-00002"]
    assert json.loads((out / "manifest.json").read_text()) == manifest
    assert {k: manifest[k] for k in ("format", "labels", "normalize", "n_docs", "n_tokens", "shard_docs", "teachers")} == {
        "format": "spacy-taughtnet.distributions.v1", "labels": LABELS, "normalize": "sum",
        "n_docs": 5, "n_tokens": 10, "shard_docs": 2, "teachers": [],
    }
    # paths relative to the distributions folder
    assert manifest["docbin"] == {"path": "../train.spacy", "size": 8, "sha256": hashlib.sha256(b"the docs").hexdigest()}
    assert [(s["name"], s["docs"], s["n_tokens"]) for s in manifest["shards"]] == [
        ("shard-00000", [0, 2], 5), ("shard-00001", [2, 4], 5), ("shard-00002", [4, 5], 0)
    ]
    offsets = numpy.cumsum([0] + lengths)
    for shard in manifest["shards"]:
        folder = out / shard["name"]
        assert sorted(f.name for f in folder.iterdir()) == ["lengths.npy", "probs.npy", "shard.json"]
        for name, digest in shard["sha256"].items():
            assert hashlib.sha256((folder / name).read_bytes()).hexdigest() == digest
        start, end = shard["docs"]
        probs = numpy.load(folder / "probs.npy")
        assert probs.dtype == numpy.float16 and probs.shape == (shard["n_tokens"], 5)
        numpy.testing.assert_allclose(probs, rows[offsets[start] : offsets[end]], atol=2e-3)
        numpy.testing.assert_array_equal(numpy.load(folder / "lengths.npy"), lengths[start:end])

    store = TeacherDistributions(out)
    store.check_docbin(docbin)
    assert len(store) == 5
    assert store.labels == LABELS and store.normalize == "sum"
    numpy.testing.assert_array_equal(store.lengths, lengths)
    for i in range(5):
        doc_rows = store.doc_distributions(i)[0]
        assert doc_rows.dtype == numpy.float32
        assert doc_rows.shape == (lengths[i], 5)
        numpy.testing.assert_allclose(doc_rows.sum(axis=1), 1.0, atol=1e-6)
        numpy.testing.assert_allclose(doc_rows, rows[offsets[i] : offsets[i + 1]], atol=2e-3)


def test_shard_size_does_not_change_the_rows(tmp_path):
    rng = numpy.random.default_rng(3)
    lengths = list(rng.integers(0, 6, size=23))
    rows = random_distributions(rng, sum(lengths), 3).astype(numpy.float32)
    one = write(tmp_path / "one", lengths, rows, labels=["GENE"])
    many = write(tmp_path / "many", lengths, rows, labels=["GENE"], shard_docs=4, batch_rows=5)
    assert len(one["shards"]) == 1 and len(many["shards"]) == 6
    numpy.testing.assert_array_equal(stored_rows(TeacherDistributions(tmp_path / "one")), stored_rows(TeacherDistributions(tmp_path / "many")))


def test_float16_rows_are_renormalised(tmp_path):
    # 1/3 is not representable in float16: the stored row sums differ from 1
    rows = numpy.full((3, 3), 1 / 3, dtype=numpy.float32)
    write(tmp_path / "d", [3], rows, labels=["GENE"])
    stored = numpy.load(tmp_path / "d" / "shard-00000" / "probs.npy").astype(numpy.float32)
    assert float(stored.sum(axis=1)[0]) != 1.0
    store = TeacherDistributions(tmp_path / "d")
    numpy.testing.assert_allclose(store.doc_distributions(0)[0].sum(axis=1), 1.0, atol=1e-7)
    numpy.testing.assert_allclose(store.doc_distributions(0)[0], 1 / 3, atol=1e-6)


def test_zero_length_docs(tmp_path):
    rows = numpy.full((2, 3), [0.2, 0.3, 0.5], dtype=numpy.float32)
    write(tmp_path / "d", [0, 2, 0], rows, labels=["GENE"], shard_docs=2)
    store = TeacherDistributions(tmp_path / "d")
    assert [store.doc_distributions(i)[0].shape for i in range(3)] == [(0, 3), (2, 3), (0, 3)]


@pytest.mark.parametrize(
    "bad_value,reason",
    [(numpy.nan, "not finite"), (numpy.inf, "not finite"), (-0.25, "negative"), (None, "sums to 0.5000")],
    ids=["nan", "inf", "negative", "sum"],
)
def test_invalid_rows_are_refused_with_file_and_doc(tmp_path, bad_value, reason):
    lengths = [2, 3, 1, 4]
    rows = numpy.full((10, 5), 0.2, dtype=numpy.float32)
    if bad_value is None:
        rows[7] = [0.5, 0, 0, 0, 0]
    else:
        rows[7, 1] = bad_value
    out = tmp_path / "dist"
    with pytest.raises(DistributionsError) as err:
        write(out, lengths, rows, shard_docs=2, batch_rows=4)
    message = str(err.value)
    # row 7 is token 1 of doc 3, in the second shard (written in the staging folder)
    assert str(tmp_path / ".dist.partial" / "shard-00001" / "probs.npy") in message
    assert "doc 3, token 1" in message and reason in message
    assert not out.exists()
    assert sorted(f.name for f in tmp_path.iterdir()) == [".dist.partial", "docs.spacy"]
    assert [f.name for f in (tmp_path / ".dist.partial").iterdir()] == ["shard-00000"]  # kept for a rerun


def test_rows_within_float16_rounding_are_accepted(tmp_path):
    rows = numpy.full((2, 3), [0.2, 0.3, 0.505], dtype=numpy.float32)  # sums to 1.005
    write(tmp_path / "d", [2], rows, labels=["GENE"])
    numpy.testing.assert_allclose(TeacherDistributions(tmp_path / "d").doc_distributions(0)[0].sum(axis=1), 1.0, atol=1e-6)


def test_generator_raising_leaves_nothing(tmp_path):
    rows = numpy.full((5, 5), 0.2, dtype=numpy.float32)

    def failing(start, end):
        yield rows[:3]
        raise RuntimeError("teacher crashed")

    out = tmp_path / "dist"
    (tmp_path / "docs.spacy").write_bytes(b"x")
    with pytest.raises(RuntimeError, match="teacher crashed"):
        write_distributions(out, tmp_path / "docs.spacy", [2, 3], failing, labels=LABELS, normalize="sum", type_columns=False)
    assert [f.name for f in tmp_path.iterdir()] == ["docs.spacy"]  # no output, staging or temporary


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
    (tmp_path / "docs.spacy").write_bytes(b"x")

    def shard_rows(start, end):
        return (numpy.full(shape(n), 0.2, dtype=numpy.float32) for n in batch_rows)

    with pytest.raises(DistributionsError, match=match) as err:
        write_distributions(out, tmp_path / "docs.spacy", [2, 3], shard_rows, labels=LABELS, normalize="sum", type_columns=False)
    assert str(staging_path(out) / "shard-00000" / "probs.npy") in str(err.value)
    assert [f.name for f in tmp_path.iterdir()] == ["docs.spacy"]


def test_failed_rewrite_keeps_the_previous_folder(tmp_path):
    out = tmp_path / "dist"
    good = numpy.full((5, 5), 0.2, dtype=numpy.float32)
    write(out, [2, 3], good)
    before = stored_rows(TeacherDistributions(out))
    with pytest.raises(DistributionsError):
        write(out, [2, 3], good[:4])
    assert sorted(f.name for f in tmp_path.iterdir()) == ["dist", "docs.spacy"]
    numpy.testing.assert_array_equal(stored_rows(TeacherDistributions(out)), before)


def test_rerun_writes_only_the_missing_shards(tmp_path):
    rng = numpy.random.default_rng(5)
    lengths = [3, 1, 2, 2, 4, 1, 2]
    rows = random_distributions(rng, sum(lengths), 5).astype(numpy.float32)
    offsets = numpy.cumsum([0] + lengths)
    docbin, out = tmp_path / "docs.spacy", tmp_path / "dist"
    docbin.write_bytes(b"docs")
    calls, fail_at = [], [4]

    def shard_rows(start, end):
        calls.append((start, end))
        if start in fail_at:
            fail_at.remove(start)
            raise RuntimeError("killed")
        return [rows[offsets[start] : offsets[end]]]

    def run(normalize="sum"):
        return write_distributions(out, docbin, lengths, shard_rows, labels=LABELS, normalize=normalize, shard_docs=2, type_columns=False)

    with pytest.raises(RuntimeError, match="killed"):
        run()
    assert calls == [(0, 2), (2, 4), (4, 6)]
    assert not out.exists()
    assert sorted(f.name for f in (tmp_path / ".dist.partial").iterdir()) == ["shard-00000", "shard-00001"]
    manifest = run()
    assert calls[3:] == [(4, 6), (6, 7)]  # shards 0 and 1 kept
    assert len(manifest["shards"]) == 4 and not (tmp_path / ".dist.partial").exists()
    numpy.testing.assert_allclose(stored_rows(TeacherDistributions(out)), rows, atol=2e-3)
    # other inputs (here the normaliser): no shard is reused
    del calls[:]
    run(normalize="softmax")
    assert calls == [(0, 2), (2, 4), (4, 6), (6, 7)]
    assert TeacherDistributions(out).normalize == "softmax"


def test_shards_written_independently_then_finalised(tmp_path):
    """What a distributed backend does: each worker writes one shard, in any order; the
    driver finalises once all are there."""
    rng = numpy.random.default_rng(6)
    lengths = [2, 2, 3, 1, 5]
    rows = random_distributions(rng, sum(lengths), 3).astype(numpy.float32)
    offsets = numpy.cumsum([0] + lengths)
    docbin = tmp_path / "docs.spacy"
    docbin.write_bytes(b"docs")
    header = distributions_header(tmp_path / "dist", docbin, lengths, labels=["GENE"], normalize="sum", shard_docs=2, type_columns=False)
    staging = staging_path(tmp_path / "dist")
    ranges = shard_ranges(len(lengths), 2)
    assert ranges == [(0, 2), (2, 4), (4, 5)]
    for k in (2, 0):
        start, end = ranges[k]
        write_shard(staging, header, k, lengths[start:end], [rows[offsets[start] : offsets[end]]])
    with pytest.raises(DistributionsError, match="shard-00001: shard missing"):
        finalise_distributions(staging, tmp_path / "dist", header, lengths)
    write_shard(staging, header, 1, lengths[2:4], [rows[offsets[2] : offsets[4]]])
    with open(staging / "shard-00001" / "probs.npy", "r+b") as f:  # corrupted after it was written
        f.seek(-2, 2)
        f.write(b"\x00\x00")
    with pytest.raises(DistributionsError, match=r"shard-00001/probs.npy: changed since it was written"):
        finalise_distributions(staging, tmp_path / "dist", header, lengths)
    write_shard(staging, header, 1, lengths[2:4], [rows[offsets[2] : offsets[4]]])
    with pytest.raises(DistributionsError, match="shard 1 holds docs"):
        write_shard(staging, header, 1, lengths[2:5], [rows[offsets[2] : offsets[5]]])
    finalise_distributions(staging, tmp_path / "dist", header, lengths)
    numpy.testing.assert_allclose(stored_rows(TeacherDistributions(tmp_path / "dist")), rows, atol=2e-3)


def test_missing_folder_and_older_layout(tmp_path):
    with pytest.raises(DistributionsError, match="not a teacher distributions folder") as err:
        TeacherDistributions(tmp_path / "nowhere")
    assert "nowhere" in str(err.value)
    old = tmp_path / "old"
    old.mkdir()
    numpy.save(old / "probs.npy", numpy.full((2, 3), 1 / 3, dtype=numpy.float16))
    with pytest.raises(DistributionsError, match="single-file layout of an earlier version"):
        TeacherDistributions(old)


def type_column_rows(rng, n_rows, n_labels):
    """Rows of the global columns (2k+1) followed by (B, I, O) per type."""
    blocks = [random_distributions(rng, n_rows, 2 * n_labels + 1)] + [random_distributions(rng, n_rows, 3) for _ in range(n_labels)]
    return numpy.concatenate(blocks, axis=1).astype(numpy.float32)


def test_type_columns_round_trip(tmp_path):
    lengths = [2, 3, 0, 4]
    rows = type_column_rows(numpy.random.default_rng(3), 9, 2)
    manifest = write(tmp_path / "d", lengths, rows, shard_docs=2, batch_rows=4, type_columns=True)
    assert manifest["type_columns"] is True
    store = TeacherDistributions(tmp_path / "d")
    assert store.type_columns
    offsets = numpy.cumsum([0] + lengths)
    for i in range(len(lengths)):
        mine = rows[offsets[i] : offsets[i + 1]]
        probs, type_probs = store.doc_distributions(i)
        numpy.testing.assert_allclose(probs, mine[:, :5], atol=2e-3)
        numpy.testing.assert_allclose(type_probs, mine[:, 5:], atol=2e-3)
        numpy.testing.assert_allclose(type_probs.reshape(-1, 2, 3).sum(axis=2), 1.0, atol=1e-6)
    # a folder of the global columns only (spacy-taughtnet 0.1.x) has no per-type rows
    write(tmp_path / "old", lengths, rows[:, :5])
    old = TeacherDistributions(tmp_path / "old")
    for i in range(len(lengths)):
        probs, type_probs = old.doc_distributions(i)
        assert type_probs is None
        numpy.testing.assert_array_equal(probs, store.doc_distributions(i)[0])


def test_doc_distributions_are_the_stored_blocks_renormalised(tmp_path):
    """Each of a doc's blocks (the global columns, each type's (B, I, O)) divided by its own
    sum, bit for bit, from the float16 rows as stored."""
    lengths = [2, 3, 0, 4]
    rows = type_column_rows(numpy.random.default_rng(7), 9, 2)
    write(tmp_path / "d", lengths, rows, shard_docs=2, type_columns=True)
    stored = numpy.concatenate([numpy.load(tmp_path / "d" / name / PROBS) for name in ("shard-00000", "shard-00001")])
    stored = stored.astype(numpy.float32)
    offsets = numpy.cumsum([0] + lengths)
    store = TeacherDistributions(tmp_path / "d")
    for i in range(len(lengths)):
        mine = stored[offsets[i] : offsets[i + 1]]
        blocks = [mine[:, :5], mine[:, 5:8], mine[:, 8:11]]
        expected = [block / block.sum(axis=1, keepdims=True) for block in blocks]
        probs, type_probs = store.doc_distributions(i)
        assert probs.dtype == type_probs.dtype == numpy.float32
        numpy.testing.assert_array_equal(probs, expected[0])
        numpy.testing.assert_array_equal(type_probs, numpy.concatenate(expected[1:], axis=1))


def test_a_doc_is_checked_once_when_read(tmp_path, monkeypatch):
    """One check of a doc's rows serves both its global and per-type rows; a row that is not
    a distribution (here stored after the write, its sha256 recorded) is refused by name."""
    rows = type_column_rows(numpy.random.default_rng(8), 5, 2)
    write(tmp_path / "d", [2, 3], rows, type_columns=True)
    path = tmp_path / "d" / "shard-00000" / PROBS
    stored = numpy.load(path)
    stored[4, 8:11] = [0.5, 0.5, 0.5]  # doc 1, token 2: the second type's (B, I, O) sums to 1.5
    numpy.save(path, stored)
    manifest = json.loads((tmp_path / "d" / MANIFEST).read_text())
    manifest["shards"][0]["sha256"][PROBS] = hashlib.sha256(path.read_bytes()).hexdigest()
    (tmp_path / "d" / MANIFEST).write_text(json.dumps(manifest))
    store = TeacherDistributions(tmp_path / "d")
    checked = []

    def counted(rows, blocks):
        checked.append(len(rows))
        return invalid_row(rows, blocks)

    monkeypatch.setattr(distributions_module, "invalid_row", counted)
    probs, type_probs = store.doc_distributions(0)
    assert (probs.shape, type_probs.shape, checked) == ((2, 5), (2, 6), [2])
    with pytest.raises(DistributionsError) as err:
        store.doc_distributions(1)
    assert checked == [2, 3]
    message = str(err.value)
    assert message.startswith(f"{path}: doc 1, token 2: the teacher distribution columns [8, 11) sums to 1.5000, not 1: [")
    assert message.endswith("; distributions must be finite, >= 0 and sum to 1 (within 0.01)")


def test_a_type_block_that_is_not_a_distribution_is_refused(tmp_path):
    rows = type_column_rows(numpy.random.default_rng(4), 3, 2)
    rows[1, 8:11] = [0.5, 0.5, 0.5]  # the second type's (B, I, O) sums to 1.5; the row to 2.5
    with pytest.raises(DistributionsError, match=r"doc 0, token 1: the teacher distribution columns \[8, 11\) sums to 1.5"):
        write(tmp_path / "d", [3], rows, type_columns=True)
    assert not (tmp_path / "d").exists()


def test_pipeline_digest(tmp_path, teachers):
    copy = tmp_path / "teacher"
    shutil.copytree(teachers["Disease"], copy)
    digest = pipeline_digest(teachers["Disease"])
    assert pipeline_digest(copy) == digest
    meta = json.loads((copy / "meta.json").read_text())
    (copy / "meta.json").write_text(json.dumps({**meta, "version": "9.9.9"}))
    assert pipeline_digest(copy) == digest  # not a change of the model
    assert pipeline_digest(teachers["Chemical"]) != digest
    weights = copy / "ner" / "model"
    weights.write_bytes(weights.read_bytes()[:-1] + b"\x01")
    assert pipeline_digest(copy) != digest


def test_pipeline_digest_keeps_the_rule_of_written_manifests(tmp_path):
    """Manifests record their teachers' pipeline_digest: its value on a fixed folder is the one
    distributions.py computed before digests.py, so folders written then still read."""
    folder = tmp_path / "pipeline"
    (folder / "ner").mkdir(parents=True)
    (folder / "config.cfg").write_text('[nlp]\nlang = "en"\npipeline = ["ner"]\n')
    (folder / "ner" / "model").write_bytes(b"weights")
    (folder / "ner" / "cfg").write_text("{}")
    (folder / "meta.json").write_text("{}")  # not digested
    assert pipeline_digest(folder) == "04d5bf050507206664cd675dd297f778cd6e81d4e0d2f69116eacbab9c6f3512"


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
    write(dist, lengths, rows, docbin=docbin, shard_docs=4)
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
        numpy.testing.assert_array_equal(probs, store.doc_distributions(i)[0])
        assert TEACHER_TYPE_PROBS_KEY not in eg.reference.user_data  # the folder has the global columns only
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
    write(short, lengths, numpy.full((sum(lengths), 5), 0.2), docbin=docbin)
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
    write(bad, lengths, numpy.full((sum(lengths), 5), 0.2), docbin=docbin)
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


def test_reader_attaches_type_columns(corpus_with_distributions, tmp_path):
    nlp, docs, docbin, _ = corpus_with_distributions
    lengths = [len(d) for d in docs]
    rows = type_column_rows(numpy.random.default_rng(5), sum(lengths), 2)
    write(tmp_path / "typed", lengths, rows, docbin=docbin, type_columns=True)
    store = TeacherDistributions(tmp_path / "typed")
    examples = list(resolve_reader(path=str(docbin), distributions=str(tmp_path / "typed"))(nlp))
    assert len(examples) == len(docs)
    for i, eg in enumerate(examples):
        probs, type_probs = store.doc_distributions(i)
        numpy.testing.assert_array_equal(eg.reference.user_data[TEACHER_PROBS_KEY], probs)
        numpy.testing.assert_array_equal(eg.reference.user_data[TEACHER_TYPE_PROBS_KEY], type_probs)



def test_type_columns_only_round_trip_and_reader(corpus_with_distributions, tmp_path):
    """normalize "none" (distill's default): rows of each type's (B, I, O) only, no global
    distribution; the reader attaches them and the labels, and no global rows."""
    nlp, docs, docbin, _ = corpus_with_distributions
    lengths = [len(d) for d in docs]
    rows = type_column_rows(numpy.random.default_rng(11), sum(lengths), 2)[:, 5:]
    manifest = write(tmp_path / "own", lengths, rows, docbin=docbin, normalize="none", type_columns=True)
    assert manifest["normalize"] == "none"
    store = TeacherDistributions(tmp_path / "own")
    assert store.type_columns and not store.global_columns
    offsets = numpy.cumsum([0] + lengths)
    examples = list(resolve_reader(path=str(docbin), distributions=str(tmp_path / "own"))(nlp))
    for i, eg in enumerate(examples):
        probs, type_probs = store.doc_distributions(i)
        assert probs is None
        numpy.testing.assert_allclose(type_probs, rows[offsets[i] : offsets[i + 1]], atol=2e-3)
        numpy.testing.assert_array_equal(eg.reference.user_data[TEACHER_TYPE_PROBS_KEY], type_probs)
        assert TEACHER_PROBS_KEY not in eg.reference.user_data
        assert eg.reference.user_data[TEACHER_LABELS_KEY] == LABELS
    with pytest.raises(DistributionsError, match="normalize \"none\" stores only the per-type columns"):
        write(tmp_path / "nothing", lengths, rows, docbin=docbin, normalize="none", type_columns=False)
    with pytest.raises(DistributionsError, match="normalize must be one of"):
        write(tmp_path / "bad", lengths, rows, docbin=docbin, normalize="max", type_columns=True)
    assert not (tmp_path / "nothing").exists() and not (tmp_path / "bad").exists()
    # a transfer folder must have the labelled one's columns: here it has the global ones too
    write(tmp_path / "summed", lengths, type_column_rows(numpy.random.default_rng(12), sum(lengths), 2), docbin=docbin, type_columns=True)
    reader = registry.resolve({"corpus": {
        "@readers": "spacy-taughtnet.Corpus.v2", "path": str(docbin), "distributions": str(tmp_path / "own"),
        "transfer": str(docbin), "transfer_distributions": str(tmp_path / "summed"),
    }})["corpus"]
    with pytest.raises(DistributionsError, match="one has the aggregated global columns and the other not"):
        next(iter(reader(nlp)))


# ---------------------------------------------------------------- initialize


@pytest.fixture
def forty_docs(tmp_path):
    """A DocBin of 40 docs and their distributions (labels Disease, Chemical)."""
    nlp = spacy.blank("en")
    docs = read_iob(corpus_file("Toy-disease-IOB"), nlp.vocab)
    assert len(docs) == 40
    docbin = tmp_path / "train.spacy"
    write_docbin(docs, docbin)
    lengths = [len(d) for d in docs]
    write(tmp_path / "dist", lengths, random_distributions(numpy.random.default_rng(9), sum(lengths), 5), docbin=docbin)
    return nlp, docs, docbin, tmp_path / "dist"


@pytest.fixture
def rows_read(monkeypatch):
    """The docs whose distributions are read, in order."""
    read = []
    doc_distributions = TeacherDistributions.doc_distributions
    monkeypatch.setattr(TeacherDistributions, "doc_distributions", lambda store, i: read.append(i) or doc_distributions(store, i))
    return read


def test_initialize_reads_the_distributions_of_its_sample_only(forty_docs, rows_read):
    """initialize takes the labels, their order and its sample from the first examples:
    it reads the rows of the first 10 docs of 40, not every doc's."""
    nlp, _, docbin, dist = forty_docs
    ner = nlp.add_pipe("taughtnet_ner", config={"model": SMALL_MODEL})
    reader = TaughtNetCorpus(docbin, distributions=dist)
    nlp.initialize(lambda: reader(nlp))
    assert ner.labels == ("Disease", "Chemical")
    assert rows_read == list(range(10)) + [0]  # the sample, then the example giving the labels


def test_initialize_refuses_another_label_order(forty_docs, rows_read, tmp_path):
    """Teacher labels that are not the component's, and transfer rows whose label order is
    not the labelled rows', are refused at initialize, from the sample and the manifests."""
    nlp, docs, docbin, dist = forty_docs
    ner = nlp.add_pipe("taughtnet_ner", config={"model": SMALL_MODEL})
    ner.add_label("Disease")
    ner.add_label("GENE")
    with pytest.raises(ValueError, match=r"labels \['Disease', 'GENE'\] disagree with the teacher distributions' labels \['Disease', 'Chemical'\]"):
        nlp.initialize(lambda: TaughtNetCorpus(docbin, distributions=dist)(nlp))
    assert rows_read == list(range(10))  # the sample
    del rows_read[:]
    nlp = spacy.blank("en")
    nlp.add_pipe("taughtnet_ner", config={"model": SMALL_MODEL})
    transfer = tmp_path / "transfer.spacy"
    write_docbin(docs[:3], transfer)
    lengths = [len(d) for d in docs[:3]]
    write(tmp_path / "transfer", lengths, numpy.full((sum(lengths), 5), 0.2), docbin=transfer, labels=["Chemical", "Disease"])
    reader = TaughtNetCorpus(docbin, distributions=dist, transfer=transfer, transfer_distributions=tmp_path / "transfer")
    with pytest.raises(DistributionsError) as err:
        nlp.initialize(lambda: reader(nlp))
    assert str(err.value) == (
        f"{tmp_path / 'transfer'}: labels ['Chemical', 'Disease'], but {dist} has ['Disease', 'Chemical']; "
        "distill both with the same teachers"
    )
    assert rows_read == []  # refused before the first example


def test_store_is_a_deprecated_alias_of_distributions(monkeypatch):
    """store.py was renamed distributions.py in 0.2; the old name works, with a warning, until 0.3."""
    import importlib

    monkeypatch.delitem(sys.modules, "spacy_taughtnet.store", raising=False)
    with pytest.warns(DeprecationWarning, match="spacy_taughtnet.distributions"):
        store = importlib.import_module("spacy_taughtnet.store")
    from spacy_taughtnet.store import TeacherDistributions as Aliased

    assert Aliased is TeacherDistributions
    assert store.write_distributions is write_distributions and store.SHARD_DOCS == SHARD_DOCS
