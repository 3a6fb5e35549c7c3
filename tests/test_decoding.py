"""Tag sets, constrained BILUO Viterbi decoding, tags_to_spans.

Model columns: B-e1, I-e1, L-e1, U-e1, ..., B-ek, I-ek, L-ek, U-ek, O (4k+1);
teacher columns: B-e1, I-e1, ..., B-ek, I-ek, O (2k+1).
"""
import itertools

import numpy
import pytest

from spacy_taughtnet import decoding
from spacy_taughtnet.decoding import (  # duplicates check: an import block, alike wherever these names are imported
    biluo_tag_names,
    biluo_targets,
    bio_columns,
    constrained_viterbi,
    tag_names,
    tags_to_spans,
)

B, I, L, U = 0, 1, 2, 3


def parts(tag, k):
    """(prefix, type index) of a BILUO tag id; ("O", None) for O."""
    if tag == 4 * k:
        return "O", None
    return "BILU"[tag % 4], tag // 4


def is_valid(path, k):
    """Inside an entity (after B-X / I-X) only I-X or L-X; outside (start, after O, L-*,
    U-*) only O, B-* or U-*; the doc ends outside an entity."""
    inside = None  # type index of the open entity
    for tag in path:
        prefix, j = parts(int(tag), k)
        if inside is not None:
            if prefix not in ("I", "L") or j != inside:
                return False
        elif prefix in ("I", "L"):
            return False
        inside = j if prefix in ("B", "I") else None
    return inside is None


def path_score(log_probs, path):
    return float(log_probs[numpy.arange(len(path)), path].sum())


def random_log_probs(rng, n, k, scale=3.0):
    x = rng.normal(scale=scale, size=(n, 4 * k + 1))
    return x - numpy.log(numpy.exp(x).sum(axis=1, keepdims=True))


def reference_viterbi(log_probs):
    """A plain Viterbi with explicit start / transition / end masks built from is_valid."""
    n, n_tags = log_probs.shape
    k = (n_tags - 1) // 4
    start = numpy.array([is_valid([a], k) or parts(a, k)[0] == "B" for a in range(n_tags)])
    end = numpy.array([parts(a, k)[0] in ("O", "L", "U") for a in range(n_tags)])
    allowed = numpy.zeros((n_tags, n_tags), dtype=bool)
    for a in range(n_tags):
        for b in range(n_tags):
            pa, ja = parts(a, k)
            pb, jb = parts(b, k)
            if pa in ("B", "I"):
                allowed[a, b] = pb in ("I", "L") and jb == ja
            else:
                allowed[a, b] = pb in ("O", "B", "U")
    trans = numpy.where(allowed, 0.0, -numpy.inf)
    score = numpy.where(start, log_probs[0], -numpy.inf)
    back = numpy.zeros((n, n_tags), dtype=int)
    for t in range(1, n):
        cand = score[:, None] + trans
        back[t] = cand.argmax(axis=0)
        score = cand.max(axis=0) + log_probs[t]
    score = numpy.where(end, score, -numpy.inf)
    path = [int(score.argmax())]
    for t in range(n - 1, 0, -1):
        path.append(int(back[t, path[-1]]))
    return numpy.array(path[::-1]), float(score.max())


def test_validity_checker():
    # k = 1: B=0 I=1 L=2 U=3 O=4
    assert is_valid([0, 1, 2, 4, 3], 1)
    assert is_valid([4], 1) and is_valid([3], 1) and is_valid([], 1)
    assert not is_valid([1], 1)  # I at the start
    assert not is_valid([4, 2], 1)  # L after O
    assert not is_valid([0], 1)  # ends inside
    assert not is_valid([0, 4], 1)  # B then O
    assert not is_valid([0, 1], 1)  # ends on I
    assert not is_valid([0, 5 + 1], 2)  # B-e1 then I-e2
    assert not is_valid([3, 1, 2], 1)  # I after U


@pytest.mark.parametrize("k", [1, 2, 3, 5])
def test_random_paths_are_valid(k):
    rng = numpy.random.default_rng(k)
    log_probs = [random_log_probs(rng, int(n), k) for n in rng.integers(1, 40, size=30)]
    paths = constrained_viterbi(log_probs)
    assert len(paths) == len(log_probs)
    for lp, path in zip(log_probs, paths):
        assert path.shape == (lp.shape[0],)
        assert is_valid(path, k), path
        assert path.min() >= 0 and path.max() <= 4 * k


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("favourite", [I, L, B], ids=["I", "L", "B"])
def test_invalid_favourites_still_give_valid_paths(k, favourite):
    # Every token's best tag is I- (or L-, or B-) of some type: the unconstrained argmax
    # is invalid throughout.
    n = 12
    log_probs = numpy.full((n, 4 * k + 1), -10.0)
    for t in range(n):
        log_probs[t, 4 * (t % k) + favourite] = -0.01
    (path,) = constrained_viterbi([log_probs])
    assert is_valid(path, k)
    assert parts(int(path[0]), k)[0] in ("B", "U", "O")
    assert parts(int(path[-1]), k)[0] in ("L", "U", "O")
    _, best = reference_viterbi(log_probs)
    assert path_score(log_probs, path) == pytest.approx(best)


@pytest.mark.parametrize("k,n", [(1, 1), (1, 2), (1, 4), (1, 6), (2, 1), (2, 3), (2, 4), (3, 3)])
def test_equals_brute_force_best_valid_sequence(k, n):
    rng = numpy.random.default_rng(100 * k + n)
    n_tags = 4 * k + 1
    valid = [p for p in itertools.product(range(n_tags), repeat=n) if is_valid(p, k)]
    for _ in range(4):
        log_probs = random_log_probs(rng, n, k)
        scores = [path_score(log_probs, numpy.array(p)) for p in valid]
        best = valid[int(numpy.argmax(scores))]
        (path,) = constrained_viterbi([log_probs])
        assert tuple(path.tolist()) == best
        assert path_score(log_probs, path) == pytest.approx(max(scores))


def test_many_docs_of_different_lengths_in_one_call():
    rng = numpy.random.default_rng(7)
    k = 2
    lengths = [0, 1, 7, 3, 0, 50, 2, 1, 300, 0]
    log_probs = [random_log_probs(rng, n, k) for n in lengths]
    paths = constrained_viterbi(log_probs)
    assert [len(p) for p in paths] == lengths
    for lp, path in zip(log_probs, paths):
        if len(path) == 0:
            assert path.dtype.kind == "i"
            continue
        numpy.testing.assert_array_equal(path, constrained_viterbi([lp])[0])
        _, best = reference_viterbi(lp)
        assert path_score(lp, path) == pytest.approx(best)


def test_only_empty_docs_and_no_docs():
    paths = constrained_viterbi([numpy.zeros((0, 9)), numpy.zeros((0, 9))])
    assert [p.shape for p in paths] == [(0,), (0,)]
    assert constrained_viterbi([]) == []


def test_small_group_bound_gives_the_same_paths(monkeypatch):
    rng = numpy.random.default_rng(8)
    log_probs = [random_log_probs(rng, int(n), 3) for n in rng.integers(0, 30, size=40)]
    expected = constrained_viterbi(log_probs)
    monkeypatch.setattr(decoding, "_MAX_PADDED_TOKENS", 25)
    bounded = constrained_viterbi(log_probs)
    for a, b in zip(expected, bounded):
        numpy.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_one_long_doc():
    rng = numpy.random.default_rng(9)
    k = 2
    log_probs = random_log_probs(rng, 20000, k)
    (path,) = constrained_viterbi([log_probs])
    assert path.shape == (20000,)
    assert is_valid(path, k)
    _, best = reference_viterbi(log_probs)
    assert path_score(log_probs, path) == pytest.approx(best, rel=1e-9)


@pytest.mark.slow
def test_long_and_short_docs_together():
    rng = numpy.random.default_rng(10)
    log_probs = [random_log_probs(rng, 70000, 1), random_log_probs(rng, 3, 1), random_log_probs(rng, 0, 1)]
    paths = constrained_viterbi(log_probs)
    assert [len(p) for p in paths] == [70000, 3, 0]
    assert all(is_valid(p, 1) for p in paths)
    numpy.testing.assert_array_equal(paths[1], reference_viterbi(log_probs[1])[0])


def test_tags_to_spans():
    types = ["Disease", "Chemical"]
    # ids: 0 B-Disease, 1 I-Disease, 2 L-Disease, 3 U-Disease, 4..7 Chemical, 8 O
    tags = numpy.array([0, 1, 2, 8, 7, 4, 6, 3, 0, 2])
    assert tags_to_spans(tags, types) == [
        (0, 3, "Disease"),
        (4, 5, "Chemical"),
        (5, 7, "Chemical"),
        (7, 8, "Disease"),
        (8, 10, "Disease"),
    ]
    assert tags_to_spans(numpy.array([8, 8, 8]), types) == []
    assert tags_to_spans(numpy.array([], dtype=int), types) == []
    assert tags_to_spans(numpy.array([4, 5, 5, 6]), types) == [(0, 4, "Chemical")]
    assert tags_to_spans(numpy.array([8, 3]), types) == [(1, 2, "Disease")]


def test_tags_to_spans_of_decoded_paths_covers_every_entity_tag():
    rng = numpy.random.default_rng(11)
    types = ["a", "b", "c"]
    for lp in [random_log_probs(rng, 25, 3) for _ in range(10)]:
        (path,) = constrained_viterbi([lp])
        spans = tags_to_spans(path, types)
        covered = numpy.full(len(path), 12)
        for start, end, label in spans:
            j = types.index(label)
            if end - start == 1:
                assert path[start] == 4 * j + U
            else:
                assert path[start] == 4 * j + B and path[end - 1] == 4 * j + L
                assert (path[start + 1 : end - 1] == 4 * j + I).all()
            covered[start:end] = path[start:end]
        numpy.testing.assert_array_equal(covered, path)


def test_tag_names_order():
    assert tag_names(["e1", "e2", "e3"]) == ["B-e1", "I-e1", "B-e2", "I-e2", "B-e3", "I-e3", "O"]
    assert tag_names(["Disease"]) == ["B-Disease", "I-Disease", "O"]
    assert tag_names([]) == ["O"]
    assert biluo_tag_names(["e1", "e2"]) == ["B-e1", "I-e1", "L-e1", "U-e1", "B-e2", "I-e2", "L-e2", "U-e2", "O"]


def test_bio_columns_fold_biluo_onto_bio():
    types = ["e1", "e2", "e3"]
    fold = bio_columns(len(types))
    bio, biluo = tag_names(types), biluo_tag_names(types)
    assert len(fold) == len(biluo)
    expected = {"B": "B", "U": "B", "I": "I", "L": "I"}
    for column, target in enumerate(fold):
        name = biluo[column]
        if name == "O":
            assert bio[target] == "O"
        else:
            assert bio[target] == f"{expected[name[0]]}-{name[2:]}"
    assert bio_columns(1).tolist() == [0, 1, 1, 0, 2]


def test_biluo_targets_by_hand():
    # two tokens, types (X, Y); columns B-X I-X B-Y I-Y O
    bio = numpy.array([
        [0.6, 0.0, 0.1, 0.0, 0.3],
        [0.0, 0.5, 0.0, 0.2, 0.3],
    ])
    out = biluo_targets(bio)
    # token 0: next token is I-X with 0.5, I-Y with 0.2
    expected0 = [0.6 * 0.5, 0.0, 0.0, 0.6 * 0.5, 0.1 * 0.2, 0.0, 0.0, 0.1 * 0.8, 0.3]
    # token 1 is the last: every entity ends there (L or U)
    expected1 = [0.0, 0.0, 0.5, 0.0, 0.0, 0.0, 0.2, 0.0, 0.3]
    numpy.testing.assert_allclose(out, [expected0, expected1])
    numpy.testing.assert_allclose(out.sum(axis=1), 1.0)
    # folding back onto BIO gives the input
    folded = numpy.zeros_like(bio)
    for column, target in enumerate(bio_columns(2)):
        folded[:, target] += out[:, column]
    numpy.testing.assert_allclose(folded, bio)
