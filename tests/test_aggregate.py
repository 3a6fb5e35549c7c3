"""aggregate_distributions against scores computed by hand from the TaughtNet formulas
(teachers per type, merged first; p_j the merged (B, I, O) of type j):

    s(B-ej) = p_j(B) * prod_{i != j} (p_i(I) + p_i(O))
    s(I-ej) = p_j(I) * prod_{i != j} (p_i(B) + p_i(O))
    s(O)    = prod_i p_i(O)

times one factor per multi-type teacher (aggregate.py's docstring).
"""
import math

import numpy
import pytest

from spacy_taughtnet.aggregate import (
    aggregate_distributions,
    merge_by_corpus,
    merge_teachers,
)


def by_sum(scores):
    total = sum(scores)
    return [s / total for s in scores]


def by_softmax(scores):
    exps = [math.exp(s) for s in scores]
    total = sum(exps)
    return [e / total for e in exps]


# Columns (B, I, O) per teacher, two tokens each.
T1 = [[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]
T2 = [[0.1, 0.3, 0.6], [0.5, 0.4, 0.1]]
T3 = [[0.1, 0.6, 0.3], [0.2, 0.2, 0.6]]

# k = 1: no other teacher, the scores are the teacher's own probabilities.
K1_SCORES = [[0.7, 0.2, 0.1], [0.1, 0.1, 0.8]]
# k = 2, columns (B-e1, I-e1, B-e2, I-e2, O)
K2_SCORES = [
    [
        0.7 * (0.3 + 0.6),  # 0.63
        0.2 * (0.1 + 0.6),  # 0.14
        0.1 * (0.2 + 0.1),  # 0.03
        0.3 * (0.7 + 0.1),  # 0.24
        0.1 * 0.6,  # 0.06
    ],
    [
        0.1 * (0.4 + 0.1),  # 0.05
        0.1 * (0.5 + 0.1),  # 0.06
        0.5 * (0.1 + 0.8),  # 0.45
        0.4 * (0.1 + 0.8),  # 0.36
        0.8 * 0.1,  # 0.08
    ],
]
# k = 3, columns (B-e1, I-e1, B-e2, I-e2, B-e3, I-e3, O); each row's products written out
# by hand (the duplicates check pairs the two rows by shape: they are the expected values)
K3_SCORES = [
    [
        0.7 * (0.3 + 0.6) * (0.6 + 0.3),
        0.2 * (0.1 + 0.6) * (0.1 + 0.3),
        0.1 * (0.2 + 0.1) * (0.6 + 0.3),
        0.3 * (0.7 + 0.1) * (0.1 + 0.3),
        0.1 * (0.2 + 0.1) * (0.3 + 0.6),
        0.6 * (0.7 + 0.1) * (0.1 + 0.6),
        0.1 * 0.6 * 0.3,
    ],
    [
        0.1 * (0.4 + 0.1) * (0.2 + 0.6),
        0.1 * (0.5 + 0.1) * (0.2 + 0.6),
        0.5 * (0.1 + 0.8) * (0.2 + 0.6),
        0.4 * (0.1 + 0.8) * (0.2 + 0.6),
        0.2 * (0.1 + 0.8) * (0.4 + 0.1),
        0.2 * (0.1 + 0.8) * (0.5 + 0.1),
        0.8 * 0.1 * 0.6,
    ],
]
CASES = [([T1], K1_SCORES), ([T1, T2], K2_SCORES), ([T1, T2, T3], K3_SCORES)]


@pytest.mark.parametrize("teachers,scores", CASES, ids=["k1", "k2", "k3"])
@pytest.mark.parametrize("normalize,norm_fn", [("sum", by_sum), ("softmax", by_softmax)])
def test_hand_computed_values(teachers, scores, normalize, norm_fn):
    k = len(teachers)
    out = aggregate_distributions([numpy.array(t) for t in teachers], normalize=normalize)
    assert out.shape == (2, 2 * k + 1)
    assert out.dtype == numpy.float32
    expected = numpy.array([norm_fn(row) for row in scores])
    numpy.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-7)
    numpy.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-6)


def test_hand_computed_k2_sum_literals():
    # The same k=2 first row, written out as numbers: scores sum to 1.10.
    out = aggregate_distributions([numpy.array(T1[:1]), numpy.array(T2[:1])], normalize="sum")
    numpy.testing.assert_allclose(
        out[0], [0.63 / 1.1, 0.14 / 1.1, 0.03 / 1.1, 0.24 / 1.1, 0.06 / 1.1], rtol=1e-5
    )
    assert out[0].argmax() == 0  # B-e1


def test_softmax_is_flatter_than_sum():
    out_sum = aggregate_distributions([numpy.array(T1), numpy.array(T2)], normalize="sum")
    out_soft = aggregate_distributions([numpy.array(T1), numpy.array(T2)], normalize="softmax")
    assert (out_soft.max(axis=1) < out_sum.max(axis=1)).all()
    # same ranking of the columns
    assert (out_soft.argmax(axis=1) == out_sum.argmax(axis=1)).all()


def naive(teachers, normalize):
    """Loop implementation of the formulas, one token and column at a time."""
    k, n = len(teachers), len(teachers[0])
    out = []
    for t in range(n):
        row = []
        for j in range(k):
            b, i = teachers[j][t][0], teachers[j][t][1]
            others_not_b = math.prod(teachers[m][t][1] + teachers[m][t][2] for m in range(k) if m != j)
            others_not_i = math.prod(teachers[m][t][0] + teachers[m][t][2] for m in range(k) if m != j)
            row += [b * others_not_b, i * others_not_i]
        row.append(math.prod(teachers[m][t][2] for m in range(k)))
        out.append(by_sum(row) if normalize == "sum" else by_softmax(row))
    return numpy.array(out)


@pytest.mark.parametrize("k", [1, 2, 4, 5])
@pytest.mark.parametrize("normalize", ["sum", "softmax"])
def test_random_matches_loop_implementation(k, normalize):
    rng = numpy.random.default_rng(k)
    teachers = []
    for _ in range(k):
        x = rng.random((7, 3)) ** 3 + 1e-4
        teachers.append(x / x.sum(axis=1, keepdims=True))
    out = aggregate_distributions(teachers, normalize=normalize)
    assert out.shape == (7, 2 * k + 1)
    assert out.dtype == numpy.float32
    numpy.testing.assert_allclose(out, naive([t.tolist() for t in teachers], normalize), rtol=1e-5, atol=1e-7)
    numpy.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-6)


@pytest.mark.parametrize("normalize", ["sum", "softmax"])
@pytest.mark.parametrize("certain", [[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]], ids=["all-B", "all-I"])
def test_all_teachers_certain_of_an_entity_gives_uniform(normalize, certain):
    # Teacher 0 and 1 both say B (or I) with certainty: every score is 0.
    normal_row = [0.2, 0.3, 0.5]
    t0 = numpy.array([certain, normal_row])
    t1 = numpy.array([certain, normal_row])
    out = aggregate_distributions([t0, t1], normalize=normalize)
    assert numpy.isfinite(out).all()
    numpy.testing.assert_allclose(out[0], [0.2] * 5, atol=1e-7)
    # the other row is untouched by the special case
    assert not numpy.allclose(out[1], 0.2)
    numpy.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-6)


def test_single_teacher_certain_b_is_not_uniform():
    out = aggregate_distributions([numpy.array([[1.0, 0.0, 0.0]])], normalize="sum")
    numpy.testing.assert_allclose(out[0], [1.0, 0.0, 0.0])


def test_accepts_lists_and_float32_and_rounding():
    t = numpy.array([[0.5, 0.25, 0.2505]], dtype=numpy.float32)  # sums to 1.0005 (< atol 1e-3)
    out = aggregate_distributions([t.tolist(), t], normalize="sum")
    assert out.shape == (1, 5)
    numpy.testing.assert_allclose(out.sum(axis=1), 1.0, atol=1e-6)


def test_zero_tokens():
    out = aggregate_distributions([numpy.zeros((0, 3)), numpy.zeros((0, 3))])
    assert out.shape == (0, 5)
    assert out.dtype == numpy.float32


def _ok(n=3):
    return numpy.full((n, 3), 1 / 3)


def test_error_no_teachers():
    with pytest.raises(ValueError, match="at least one teacher"):
        aggregate_distributions([])


def test_error_shapes_disagree():
    with pytest.raises(ValueError, match=r"teacher 1\b") as err:
        aggregate_distributions([_ok(3), _ok(4)])
    assert "4 rows" in str(err.value) and "teacher 0 has 3" in str(err.value)


@pytest.mark.parametrize("bad_shape", [(3, 2), (3, 4), (3,)])
def test_error_wrong_column_count(bad_shape):
    bad = numpy.full(bad_shape, 0.5)
    with pytest.raises(ValueError, match=r"teacher 2\b") as err:
        aggregate_distributions([_ok(), _ok(), bad])
    assert str(bad_shape) in str(err.value)


@pytest.mark.parametrize(
    "teacher,row,values",
    [
        (1, 2, [1.2, -0.2, 0.0]),  # negative
        (0, 1, [numpy.nan, 0.5, 0.5]),  # NaN
        (0, 0, [numpy.inf, 0.0, 0.0]),  # infinite
        (2, 0, [0.5, 0.5, 0.5]),  # sums to 1.5
        (1, 1, [0.1, 0.1, 0.1]),  # sums to 0.3
    ],
    ids=["negative", "nan", "inf", "sum-above", "sum-below"],
)
def test_error_names_teacher_and_row(teacher, row, values):
    arrays = [_ok(), _ok(), _ok()]
    arrays[teacher][row] = values
    with pytest.raises(ValueError) as err:
        aggregate_distributions(arrays)
    message = str(err.value)
    assert f"teacher {teacher}:" in message
    assert f"row {row} " in message


def test_error_bad_normalize():
    with pytest.raises(ValueError, match="'max'"):
        aggregate_distributions([_ok()], normalize="max")


# ---------------------------------------------------------------- teachers per type


def test_merge_mean_and_product_by_hand():
    a = [[0.6, 0.2, 0.2], [0.0, 0.0, 1.0]]
    b = [[0.2, 0.2, 0.6], [1.0, 0.0, 0.0]]
    numpy.testing.assert_allclose(merge_teachers([a, b], "mean"), [[0.4, 0.2, 0.4], [0.5, 0.0, 0.5]])
    product = merge_teachers([a, b], "product")
    numpy.testing.assert_allclose(product[0], by_sum([0.12, 0.04, 0.12]))
    numpy.testing.assert_allclose(product[1], [1 / 3] * 3)  # ruled out by both: uniform
    numpy.testing.assert_array_equal(merge_teachers([a], "mean"), a)
    with pytest.raises(ValueError, match="'vote'"):
        merge_teachers([a], "vote")
    with pytest.raises(ValueError, match=r"teacher 1: row 0 "):
        merge_teachers([a, [[0.5, 0.5, 0.5], [0, 0, 1]]])


def test_merge_by_corpus_gives_each_corpus_its_own_teachers():
    """Rows of a corpus's doc: the product of that corpus's teachers (its two seeds) alone, or
    the one teacher as it is; other rows (another corpus, unlabelled text): the product of all.
    A pipeline teacher (no corpus) owns no rows."""
    rng = numpy.random.default_rng(0)
    a, a_seed1, b, pipe = (rng.dirichlet([1.0, 1.0, 1.0], size=4) for _ in range(4))
    rows = numpy.array(["X", "Y", "", "Z"], dtype=object)
    merged = merge_by_corpus([a, b, a_seed1, pipe], ["X", "Y", "X", None], rows)
    everyone = merge_teachers([a, b, a_seed1, pipe], "product")
    numpy.testing.assert_allclose(merged[0], merge_teachers([a[:1], a_seed1[:1]], "product")[0])
    numpy.testing.assert_array_equal(merged[1], b[1])
    numpy.testing.assert_allclose(merged[2:], everyone[2:])
    assert not numpy.allclose(merged[:2], everyone[:2])
    with pytest.raises(ValueError, match="'corpus': merge_by_corpus"):
        merge_teachers([a, b], "corpus")


def test_merged_type_enters_the_formula_once():
    merged = merge_teachers([T1, T3], "mean")
    out = aggregate_distributions([merged, numpy.array(T2)])
    t13 = [[(x + y) / 2 for x, y in zip(r1, r3)] for r1, r3 in zip(T1, T3)]
    b, i, o = t13[0]
    b2, i2, o2 = T2[0]
    expected = by_sum([b * (i2 + o2), i * (b2 + o2), b2 * (i + o), i2 * (b + o), o * o2])
    numpy.testing.assert_allclose(out[0], expected, rtol=1e-6)


def _joint(rows):
    return numpy.array(rows, dtype=numpy.float64)


def test_multi_type_teacher_alone_is_its_own_distribution():
    # one teacher over (Disease, Chemical): its distribution, untouched
    m = _joint([[0.5, 0.0, 0.5, 0.0, 0.0], [0.1, 0.2, 0.3, 0.1, 0.3]])
    out = aggregate_distributions([None, None], joint=[([0, 1], m)])
    numpy.testing.assert_allclose(out, m, rtol=1e-6)


def test_multi_type_teacher_is_not_split_into_independent_types():
    """The double count the rule avoids: split into per-type (B, I, O) factors, a teacher
    sure that the token is B-Disease or B-Chemical (half each) would give O a third."""
    m = _joint([[0.5, 0.0, 0.5, 0.0, 0.0]])
    split = aggregate_distributions([numpy.array([[0.5, 0.0, 0.5]]), numpy.array([[0.5, 0.0, 0.5]])])
    assert split[0, -1] == pytest.approx(1 / 3)
    joint = aggregate_distributions([None, None], joint=[([0, 1], m)])
    assert joint[0, -1] == 0.0
    numpy.testing.assert_allclose(joint[0], [0.5, 0.0, 0.5, 0.0, 0.0])


def test_multi_type_teacher_with_one_type_equals_a_single_type_teacher():
    for normalize in ("sum", "softmax"):
        classic = aggregate_distributions([numpy.array(T1), numpy.array(T2)], normalize=normalize)
        as_joint = aggregate_distributions([numpy.array(T1), None], normalize=normalize, joint=[([1], numpy.array(T2))])
        numpy.testing.assert_allclose(as_joint, classic, rtol=1e-6)


def test_multi_type_teacher_times_single_type_teachers_by_hand():
    # types (Disease, Chemical, GENE): Disease from T1, GENE from T2, a joint teacher over
    # (Chemical, GENE); Chemical has no single-type teacher
    m = _joint([[0.2, 0.1, 0.3, 0.0, 0.4]])  # B-Chem, I-Chem, B-GENE, I-GENE, O
    out = aggregate_distributions([numpy.array(T1[:1]), None, numpy.array(T2[:1])], joint=[([1, 2], m)])
    (b1, i1, o1), (b3, i3, o3) = T1[0], T2[0]
    not_b, not_i = 1 - (0.2 + 0.3), 1 - (0.1 + 0.0)
    scores = [
        b1 * (i3 + o3) * not_b,  # B-Disease
        i1 * (b3 + o3) * not_i,  # I-Disease
        (i1 + o1) * (i3 + o3) * 0.2,  # B-Chemical: no single-type teacher, the joint's own
        (b1 + o1) * (b3 + o3) * 0.1,  # I-Chemical
        b3 * (i1 + o1) * 0.3,  # B-GENE
        i3 * (b1 + o1) * 0.0,  # I-GENE
        o1 * o3 * 0.4,  # O
    ]
    numpy.testing.assert_allclose(out[0], by_sum(scores), rtol=1e-6)


def test_multi_type_teacher_errors():
    m = _joint([[0.5, 0.0, 0.5, 0.0, 0.0]])
    with pytest.raises(ValueError, match="have no teacher"):
        aggregate_distributions([None, None, None], joint=[([0, 1], m)])
    with pytest.raises(ValueError, match="distinct column indices below 2"):
        aggregate_distributions([None, None], joint=[([0, 2], m)])
    with pytest.raises(ValueError, match=r"expected shape \(1, 3\)"):
        aggregate_distributions([None, None], joint=[([0], m)])
    with pytest.raises(ValueError, match="multi-type teacher 0: row 0 "):
        aggregate_distributions([None, None], joint=[([0, 1], _joint([[0.5, 0.5, 0.5, 0.0, 0.0]]))])
    with pytest.raises(ValueError, match="at least one teacher"):
        aggregate_distributions([None])
