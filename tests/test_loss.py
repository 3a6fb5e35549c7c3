"""DistillationLoss: values against hand-written CE/KL, gradient against finite differences."""
import math

import numpy
import pytest
from thinc.api import registry

from spacy_taughtnet.loss import DistillationLoss, configure_distillation_loss


def softmax_row(z, temperature=1.0):
    exps = [math.exp(v / temperature) for v in z]
    total = sum(exps)
    return [e / total for e in exps]


def ce_by_hand(z, gold):
    """Mean over rows with gold >= 0 of -log softmax(z)[gold]."""
    terms = [-math.log(softmax_row(row)[g]) for row, g in zip(z.tolist(), gold.tolist()) if g >= 0]
    return sum(terms) / len(terms) if terms else 0.0


def kl_by_hand(z, q, temperature):
    """Mean over all rows of KL(q || softmax(z / T))."""
    total = 0.0
    for row, q_row in zip(z.tolist(), q.tolist()):
        p = softmax_row(row, temperature)
        total += sum(qc * math.log(qc / pc) for qc, pc in zip(q_row, p) if qc > 0)
    return total / len(z)


def make_inputs(seed, n=6, n_tags=5, dtype="float64", zero_teacher_entries=True):
    rng = numpy.random.default_rng(seed)
    z = rng.normal(scale=2.0, size=(n, n_tags)).astype(dtype)
    gold = rng.integers(0, n_tags, size=n).astype("int32")
    gold[[1, n - 2]] = -1
    q = rng.random((n, n_tags)) ** 2
    if zero_teacher_entries:
        q[0, 2] = 0.0
    q /= q.sum(axis=1, keepdims=True)
    return z, gold, q.astype(dtype)


def numeric_grad(loss_fn, z, truths, eps=1e-6):
    grad = numpy.zeros_like(z)
    for idx in numpy.ndindex(*z.shape):
        up, down = z.copy(), z.copy()
        up[idx] += eps
        down[idx] -= eps
        grad[idx] = (loss_fn.get_loss(up, truths) - loss_fn.get_loss(down, truths)) / (2 * eps)
    return grad


@pytest.mark.parametrize(
    "lambda_,temperature",
    [(0.99, 1.0), (0.5, 1.0), (0.5, 2.0), (1.0, 2.0), (0.0, 1.0), (0.3, 0.5), (0.9, 3.0)],
)
def test_gradient_matches_finite_differences(lambda_, temperature):
    z, gold, q = make_inputs(int(lambda_ * 100 + temperature * 10))
    loss_fn = DistillationLoss(lambda_=lambda_, temperature=temperature)
    grad, loss = loss_fn(z, (gold, q))
    numpy.testing.assert_allclose(grad, numeric_grad(loss_fn, z, (gold, q)), rtol=1e-5, atol=1e-8)
    expected = (1 - lambda_) * ce_by_hand(z, gold) + lambda_ * temperature**2 * kl_by_hand(z, q, temperature)
    assert loss == pytest.approx(expected, rel=1e-9, abs=1e-12)


def test_gradient_without_teacher_matches_finite_differences():
    z, gold, _ = make_inputs(3)
    loss_fn = DistillationLoss(lambda_=0.99, temperature=2.0)
    grad, loss = loss_fn(z, (gold, None))
    numpy.testing.assert_allclose(grad, numeric_grad(loss_fn, z, (gold, None)), rtol=1e-5, atol=1e-8)
    assert loss == pytest.approx(ce_by_hand(z, gold), rel=1e-9)


@pytest.mark.parametrize("temperature", [1.0, 2.0, 0.7])
def test_zero_kl_gradient_when_student_equals_teacher(temperature):
    z, gold, _ = make_inputs(5)
    shifted = z / temperature
    q = numpy.exp(shifted - shifted.max(axis=1, keepdims=True))
    q /= q.sum(axis=1, keepdims=True)
    grad, loss = DistillationLoss(lambda_=1.0, temperature=temperature)(z, (gold, q))
    numpy.testing.assert_allclose(grad, 0.0, atol=1e-12)
    assert loss == pytest.approx(0.0, abs=1e-12)
    # and a different teacher gives a non-zero gradient and a positive loss
    grad2, loss2 = DistillationLoss(lambda_=1.0, temperature=temperature)(z, (gold, q[::-1].copy()))
    assert numpy.abs(grad2).max() > 1e-3
    assert loss2 > 1e-3


def test_lambda_zero_is_masked_cross_entropy():
    z = numpy.array(
        [[2.0, 0.5, -1.0], [0.0, 0.0, 0.0], [1.0, 3.0, 0.5], [-2.0, 1.0, 1.0]], dtype="float64"
    )
    gold = numpy.array([0, -1, 1, 2], dtype="int32")
    q = numpy.full((4, 3), 1 / 3)
    grad, loss = DistillationLoss(lambda_=0.0)(z, (gold, q))
    # by hand: mean of -log softmax over rows 0, 2, 3 (row 1 has no gold)
    ce0 = -math.log(math.exp(2.0) / (math.exp(2.0) + math.exp(0.5) + math.exp(-1.0)))
    ce2 = -math.log(math.exp(3.0) / (math.exp(1.0) + math.exp(3.0) + math.exp(0.5)))
    ce3 = -math.log(math.exp(1.0) / (math.exp(-2.0) + math.exp(1.0) + math.exp(1.0)))
    assert loss == pytest.approx((ce0 + ce2 + ce3) / 3, rel=1e-12)
    # gradient: (softmax - onehot) / 3 on rows with gold, zero on the row without
    numpy.testing.assert_array_equal(grad[1], 0.0)
    expected_row0 = (numpy.array(softmax_row([2.0, 0.5, -1.0])) - [1, 0, 0]) / 3
    numpy.testing.assert_allclose(grad[0], expected_row0, rtol=1e-12)


def test_without_teacher_is_plain_ce_over_gold_rows():
    z, gold, _ = make_inputs(11)
    for lambda_ in (0.0, 0.5, 0.99, 1.0):
        grad, loss = DistillationLoss(lambda_=lambda_, temperature=2.0)(z, (gold, None))
        assert loss == pytest.approx(ce_by_hand(z, gold), rel=1e-12)
        numpy.testing.assert_array_equal(grad[gold < 0], 0.0)
        # each gold row's gradient sums to zero (softmax - onehot)
        numpy.testing.assert_allclose(grad.sum(axis=1), 0.0, atol=1e-12)


def test_no_gold_and_no_teacher_is_zero():
    z = numpy.ones((3, 5))
    grad, loss = DistillationLoss()(z, (numpy.full(3, -1, dtype="int32"), None))
    assert loss == 0.0
    numpy.testing.assert_array_equal(grad, 0.0)


def test_reported_loss_is_the_real_value_not_squared_gradients():
    z, gold, q = make_inputs(21)
    loss_fn = DistillationLoss(lambda_=0.5, temperature=2.0)
    grad, loss = loss_fn(z, (gold, q))
    ce, kl = ce_by_hand(z, gold), kl_by_hand(z, q, 2.0)
    assert loss == pytest.approx(0.5 * ce + 0.5 * 4.0 * kl, rel=1e-9)
    assert loss != pytest.approx(float((grad**2).sum()), rel=1e-3)
    assert loss_fn.get_loss(z, (gold, q)) == loss
    numpy.testing.assert_array_equal(loss_fn.get_grad(z, (gold, q)), grad)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_gradient_shape_and_dtype(dtype):
    z, gold, q = make_inputs(2, n=4, n_tags=7, dtype=dtype)
    for teacher in (q, None):
        grad, loss = DistillationLoss(temperature=2.0)(z, (gold, teacher))
        assert grad.shape == z.shape
        assert grad.dtype == z.dtype
        assert isinstance(loss, float)


def test_empty_input():
    grad, loss = DistillationLoss()(numpy.zeros((0, 5), dtype="float32"), (numpy.zeros(0, dtype="int32"), numpy.zeros((0, 5), dtype="float32")))
    assert grad.shape == (0, 5)
    assert loss == 0.0


@pytest.mark.parametrize(
    "kwargs,match",
    [
        ({"lambda_": -0.1}, "lambda_"),
        ({"lambda_": 1.5}, "lambda_"),
        ({"temperature": 0.0}, "temperature"),
        ({"temperature": -2.0}, "temperature"),
    ],
)
def test_invalid_arguments_raise(kwargs, match):
    with pytest.raises(ValueError, match=match):
        DistillationLoss(**kwargs)
    with pytest.raises(ValueError, match=match):
        configure_distillation_loss(**kwargs)


def test_mismatched_truths_raise():
    z, gold, q = make_inputs(1)
    with pytest.raises(ValueError, match="gold"):
        DistillationLoss()(z, (gold[:-1], q))
    with pytest.raises(ValueError, match="teacher"):
        DistillationLoss()(z, (gold, q[:, :-1]))
    with pytest.raises(ValueError, match="teacher"):
        DistillationLoss()(z, (gold, q[:-1]))
    # a teacher with one column too many
    wide = numpy.concatenate([q, numpy.zeros((len(q), 1))], axis=1)
    wide[:, -1], wide[:, 0] = wide[:, 0], 0.0
    with pytest.raises(ValueError, match="teacher"):
        DistillationLoss()(z, (gold, wide))


def test_registered_name_resolves_with_arguments():
    config = {"loss": {"@losses": "spacy-taughtnet.DistillationLoss.v1", "lambda_": 0.25, "temperature": 2.0}}
    loss_fn = registry.resolve(config)["loss"]
    assert isinstance(loss_fn, DistillationLoss)
    assert loss_fn.lambda_ == 0.25
    assert loss_fn.temperature == 2.0
    defaults = registry.resolve({"loss": {"@losses": "spacy-taughtnet.DistillationLoss.v1"}})["loss"]
    assert (defaults.lambda_, defaults.temperature) == (0.99, 1.0)
    with pytest.raises(ValueError, match="temperature"):
        registry.resolve({"loss": {"@losses": "spacy-taughtnet.DistillationLoss.v1", "temperature": 0}})
