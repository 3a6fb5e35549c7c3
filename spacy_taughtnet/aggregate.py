"""Aggregate k single-type teacher distributions into the global label space (pure numpy).

Teacher i gives p_i(B), p_i(I), p_i(O) per token. The global columns are
(B-e1, I-e1, ..., B-ek, I-ek, O) with the unnormalised scores

    s(B-ej) = p_j(B) * prod_{i != j} (p_i(I) + p_i(O))
    s(I-ej) = p_j(I) * prod_{i != j} (p_i(B) + p_i(O))
    s(O)    = prod_i p_i(O)

normalised per token by their sum ("sum") or by a softmax over the scores ("softmax",
the original TaughtNet code's choice, which is much flatter).
"""
from typing import Sequence

import numpy

from .errors import ConfigError, DistributionsError

NORMALIZERS = ("sum", "softmax")


def _check_teachers(teacher_probs: Sequence, atol: float) -> numpy.ndarray:
    if len(teacher_probs) == 0:
        raise DistributionsError("aggregate_distributions needs at least one teacher")
    arrays = [numpy.asarray(p) for p in teacher_probs]
    n_tokens = arrays[0].shape[0] if arrays[0].ndim == 2 else None
    for i, probs in enumerate(arrays):
        if probs.ndim != 2 or probs.shape[1] != 3:
            raise DistributionsError(
                f"teacher {i}: expected an array shaped (n_tokens, 3) with columns (B, I, O), "
                f"got shape {probs.shape}"
            )
        if probs.shape[0] != n_tokens:
            raise DistributionsError(
                f"teacher {i}: {probs.shape[0]} rows, but teacher 0 has {n_tokens}: "
                "all teachers must score the same tokens"
            )
    stacked = numpy.stack(arrays).astype(numpy.float64)
    sums = stacked.sum(axis=2)
    # NaN/inf make the sums fail the check; whole-array reductions keep the good case fast
    if stacked.size and (stacked.min() < 0 or not (numpy.abs(sums - 1.0) <= atol).all()):
        bad = (stacked < 0).any(axis=2) | ~(numpy.abs(sums - 1.0) <= atol)
        i, row = (int(x[0]) for x in numpy.nonzero(bad))
        raise DistributionsError(
            f"teacher {i}: row {row} is not a probability distribution over (B, I, O): "
            f"{stacked[i, row].tolist()} (needs finite values >= 0 summing to 1 within {atol})"
        )
    return stacked


def _product_of_others(x: numpy.ndarray) -> numpy.ndarray:
    """For x shaped (k, n): out[j] = prod over i != j of x[i], without dividing by x[j]."""
    ones = numpy.ones_like(x[:1])
    before = numpy.cumprod(numpy.concatenate([ones, x[:-1]]), axis=0)
    after = numpy.cumprod(numpy.concatenate([ones, x[:0:-1]]), axis=0)[::-1]
    return before * after


def aggregate_distributions(
    teacher_probs: Sequence, normalize: str = "sum", *, atol: float = 1e-3
) -> numpy.ndarray:
    """Combine k teachers' (n_tokens, 3) arrays into one (n_tokens, 2k+1) float32 array.

    teacher_probs: k arrays, columns (B, I, O) of teacher i, rows summing to 1.
    normalize: "sum" (divide by the scores' sum) or "softmax" (softmax over the scores).
    atol: tolerance on each teacher row's sum.
    Raises DistributionsError naming the teacher and row of any malformed input.
    """
    if normalize not in NORMALIZERS:
        raise ConfigError(f"normalize must be one of {NORMALIZERS}, got {normalize!r}")
    probs = _check_teachers(teacher_probs, atol)
    k, n_tokens, _ = probs.shape
    p_b, p_i, p_o = probs[:, :, 0], probs[:, :, 1], probs[:, :, 2]
    scores = numpy.empty((n_tokens, 2 * k + 1), dtype=numpy.float64)
    scores[:, 0 : 2 * k : 2] = (p_b * _product_of_others(p_i + p_o)).T
    scores[:, 1 : 2 * k : 2] = (p_i * _product_of_others(p_b + p_o)).T
    scores[:, -1] = p_o.prod(axis=0)
    if normalize == "softmax":
        scores = numpy.exp(scores - scores.max(axis=1, keepdims=True))
    totals = scores.sum(axis=1, keepdims=True)
    # Every teacher claiming B (or I) with certainty leaves no consistent label: uniform.
    empty = totals[:, 0] <= 0
    scores[empty] = 1.0
    totals[empty] = scores.shape[1]
    return (scores / totals).astype(numpy.float32)
