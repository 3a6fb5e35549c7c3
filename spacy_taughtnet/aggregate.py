"""Aggregate teacher distributions into the global label space (pure numpy).

The global columns are (B-e1, I-e1, ..., B-ek, I-ek, O). Each type e_j may have several
single-type teachers, and any number of multi-type teachers may cover several types at once.

1. Teachers of one type are merged first (`merge_teachers`): the mean of their (B, I, O)
   rows, or their product of experts (per-column product, renormalised); or, by corpus
   (`merge_by_corpus`), on a doc of one of the type's corpora that corpus's teachers alone,
   so that they agree with the doc's gold, and elsewhere the product of all.
2. With p_j the merged (B, I, O) of type j, the single-type scores are TaughtNet's

       s(B-ej) = p_j(B) * prod_{i != j} (p_i(I) + p_i(O))
       s(I-ej) = p_j(I) * prod_{i != j} (p_i(B) + p_i(O))
       s(O)    = prod_i p_i(O)

   (a type with no single-type teacher has no p_j: its B/I scores are the product of the
   others' factors alone).
3. The scores are a product of experts, one factor per teacher: teacher i gives B-ei its
   p_i(B), B-ej (j != i) its "not B" p_i(I) + p_i(O), and so on. A multi-type teacher m,
   whose labels are mutually exclusive, is ONE more expert, never one per type (splitting it
   into independent per-type factors counts its "O" once per type: for p_m = 0.5 B-X,
   0.5 B-Y the split gives O a third of the mass although m gives it none). Its factors are
   p_m(B-X), p_m(I-X) for the types X it covers, p_m(O) for O, and for a type Y it does not
   cover, "m claims no B here" (1 - sum_X p_m(B-X)) for B-Y and (1 - sum_X p_m(I-X)) for I-Y:
   with one covered type this is exactly a single-type teacher's factor.
4. The scores are normalised per token by their sum ("sum") or a softmax ("softmax", the
   original TaughtNet code's choice, which is much flatter).
"""
from typing import Optional, Sequence, Tuple

import numpy

from .errors import ConfigError, DistributionsError

NORMALIZERS = ("sum", "softmax")
DEFAULT_NORMALIZE = "sum"
MERGES = ("mean", "product", "corpus")
# Chosen on devel: the product's decoded soft labels beat the mean's F1 (BENCHMARKS.md, "Teachers beyond taughtnet_ner", arm iv)
DEFAULT_MERGE = "product"


def _check_rows(name: str, probs: numpy.ndarray, atol: float) -> None:
    """Refuse rows that are not distributions (NaN/inf fail the sum check)."""
    sums = probs.sum(axis=-1)
    # whole-array reductions keep the good case fast
    if probs.size and (probs.min() < 0 or not (numpy.abs(sums - 1.0) <= atol).all()):
        bad = (probs < 0).any(axis=-1) | ~(numpy.abs(sums - 1.0) <= atol)
        index = tuple(int(x[0]) for x in numpy.nonzero(bad))
        row = probs[index].tolist()
        where = f"{name}: row {index[-1]}" if len(index) == 1 else f"{name} {index[0]}: row {index[1]}"
        raise DistributionsError(
            f"{where} is not a probability distribution: {row} "
            f"(needs finite values >= 0 summing to 1 within {atol})"
        )


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
    _check_rows("teacher", stacked, atol)
    return stacked


def _product_of_others(x: numpy.ndarray) -> numpy.ndarray:
    """For x shaped (k, n): out[j] = prod over i != j of x[i], without dividing by x[j]."""
    ones = numpy.ones_like(x[:1])
    before = numpy.cumprod(numpy.concatenate([ones, x[:-1]]), axis=0)
    after = numpy.cumprod(numpy.concatenate([ones, x[:0:-1]]), axis=0)[::-1]
    return before * after


def merge_teachers(teacher_probs: Sequence, merge: str = DEFAULT_MERGE, *, atol: float = 1e-3) -> numpy.ndarray:
    """Merge several teachers of ONE type, (n_tokens, 3) (B, I, O) arrays each, into one
    float64 (n_tokens, 3) array: their mean ("mean"), or their product of experts
    ("product": per-column product, renormalised; a row they all rule out is uniform)."""
    if merge not in ("mean", "product"):
        raise ConfigError(f"merge_teachers: merge must be 'mean' or 'product', got {merge!r} ('corpus': merge_by_corpus)")
    probs = _check_teachers(teacher_probs, atol)
    if merge == "mean":
        return probs.mean(axis=0)
    product = probs.prod(axis=0)
    totals = product.sum(axis=1, keepdims=True)
    empty = totals[:, 0] <= 0
    product[empty], totals[empty] = 1.0, 3.0
    return product / totals


def merge_by_corpus(
    teacher_probs: Sequence, teacher_corpora: Sequence[Optional[str]], row_corpora: numpy.ndarray, *, atol: float = 1e-3
) -> numpy.ndarray:
    """Merge the teachers of ONE type by corpus ("corpus"): on the rows of a doc from the
    corpus a teacher was trained on (row_corpora: each row's corpus name, "" for none), the
    product of that corpus's teachers (its seeds) alone; on every other row (other corpora,
    unlabelled text) the product of all. teacher_corpora: each teacher's corpus, None for a
    pipeline teacher, which owns no rows. A float64 (n_tokens, 3) array."""
    merged = merge_teachers(teacher_probs, "product", atol=atol)
    for corpus in dict.fromkeys(c for c in teacher_corpora if c is not None):
        rows = row_corpora == corpus
        if rows.any():
            own = [probs[rows] for probs, c in zip(teacher_probs, teacher_corpora) if c == corpus]
            merged[rows] = own[0] if len(own) == 1 else merge_teachers(own, "product", atol=atol)
    return merged


def _joint_factors(types: Sequence[int], probs: numpy.ndarray, n_types: int) -> numpy.ndarray:
    """A multi-type teacher's factor for every global column (module docstring, 3)."""
    covered = numpy.asarray(types, dtype=numpy.int64)
    p_b, p_i = probs[:, 0:-1:2], probs[:, 1:-1:2]
    factors = numpy.empty((probs.shape[0], 2 * n_types + 1), dtype=numpy.float64)
    factors[:, 0 : 2 * n_types : 2] = (1.0 - p_b.sum(axis=1, keepdims=True)).clip(0.0, 1.0)
    factors[:, 1 : 2 * n_types : 2] = (1.0 - p_i.sum(axis=1, keepdims=True)).clip(0.0, 1.0)
    factors[:, 2 * covered] = p_b
    factors[:, 2 * covered + 1] = p_i
    factors[:, -1] = probs[:, -1]
    return factors


def _check_joint(joint: Sequence[Tuple[Sequence[int], object]], n_types: int, n_tokens: int, atol: float):
    checked = []
    for m, (types, probs) in enumerate(joint):
        types = [int(t) for t in types]
        probs = numpy.asarray(probs, dtype=numpy.float64)
        if not types or len(set(types)) != len(types) or min(types) < 0 or max(types) >= n_types:
            raise DistributionsError(
                f"multi-type teacher {m}: types {types} must be distinct column indices below {n_types}"
            )
        if probs.shape != (n_tokens, 2 * len(types) + 1):
            raise DistributionsError(
                f"multi-type teacher {m}: expected shape ({n_tokens}, {2 * len(types) + 1}) "
                f"(B, I per covered type, then O), got {probs.shape}"
            )
        _check_rows(f"multi-type teacher {m}", probs, atol)
        checked.append((types, probs))
    return checked


def aggregate_distributions(
    teacher_probs: Sequence[Optional[numpy.ndarray]],
    normalize: str = DEFAULT_NORMALIZE,
    *,
    joint: Sequence[Tuple[Sequence[int], numpy.ndarray]] = (),
    atol: float = 1e-3,
) -> numpy.ndarray:
    """Combine the teachers into one (n_tokens, 2k+1) float32 array (module docstring).

    teacher_probs: one entry per global type, in column order: the (n_tokens, 3) (B, I, O)
        array of that type's single-type teachers (merged with `merge_teachers` if several),
        or None for a type only multi-type teachers cover.
    joint: the multi-type teachers, (types, probs) each: `types` the global type indices
        it covers, `probs` its (n_tokens, 2m+1) distribution with columns B-t1, I-t1, ...,
        B-tm, I-tm, O in the order of `types` (labels it does not map count as O).
    normalize: "sum" (divide by the scores' sum) or "softmax" (softmax over the scores).
    atol: tolerance on each teacher row's sum.
    Raises DistributionsError naming the teacher and row of any malformed input.
    """
    if normalize not in NORMALIZERS:
        raise ConfigError(f"normalize must be one of {NORMALIZERS}, got {normalize!r}")
    k = len(teacher_probs)
    single = [j for j, p in enumerate(teacher_probs) if p is not None]
    if k == 0 or not single and not joint:
        raise DistributionsError("aggregate_distributions needs at least one teacher")
    n_tokens = None
    if single:
        probs = _check_teachers([teacher_probs[j] for j in single], atol)
        n_tokens = probs.shape[1]
    else:
        n_tokens = numpy.asarray(joint[0][1]).shape[0]
    joint = _check_joint(joint, k, n_tokens, atol)
    covered = {t for types, _ in joint for t in types}
    missing = [j for j in range(k) if j not in single and j not in covered]
    if missing:
        raise DistributionsError(f"types {missing} have no teacher")
    scores = numpy.ones((n_tokens, 2 * k + 1), dtype=numpy.float64)
    if single:
        p_b, p_i, p_o = probs[:, :, 0], probs[:, :, 1], probs[:, :, 2]
        owned = numpy.asarray(single, dtype=numpy.int64)
        scores[:, 2 * owned] = (p_b * _product_of_others(p_i + p_o)).T
        scores[:, 2 * owned + 1] = (p_i * _product_of_others(p_b + p_o)).T
        scores[:, -1] = p_o.prod(axis=0)
        if len(single) < k:  # types without a single-type teacher: only the others' factors
            unowned = numpy.asarray([j for j in range(k) if j not in single], dtype=numpy.int64)
            scores[:, 2 * unowned] = (p_i + p_o).prod(axis=0)[:, None]
            scores[:, 2 * unowned + 1] = (p_b + p_o).prod(axis=0)[:, None]
    for types, joint_probs in joint:
        scores *= _joint_factors(types, joint_probs, k)
    if normalize == "softmax":
        scores = numpy.exp(scores - scores.max(axis=1, keepdims=True))
    totals = scores.sum(axis=1, keepdims=True)
    # Every teacher claiming B (or I) with certainty leaves no consistent label: uniform.
    empty = totals[:, 0] <= 0
    scores[empty] = 1.0
    totals[empty] = scores.shape[1]
    return (scores / totals).astype(numpy.float32)
