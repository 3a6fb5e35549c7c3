"""Constrained Viterbi decoding over the tag columns (B-e1, I-e1, ..., B-ek, I-ek, O).

The only forbidden transitions are those that make invalid entities: I-X at the start
of a doc, and I-X after anything but B-X or I-X. Docs are decoded together, padded to
the longest doc of a group, with groups bounded so long docs do not blow up memory.
"""
from typing import List, Sequence, Tuple

import numpy

_MAX_PADDED_TOKENS = 65536


def tag_names(types: Sequence[str]) -> List[str]:
    """The tag columns for entity types e1..ek: B-e1, I-e1, ..., B-ek, I-ek, O."""
    return [f"{prefix}-{t}" for t in types for prefix in ("B", "I")] + ["O"]


def _viterbi_group(log_probs: List[numpy.ndarray]) -> List[numpy.ndarray]:
    n_tags = log_probs[0].shape[1]
    k = (n_tags - 1) // 2
    lengths = numpy.array([lp.shape[0] for lp in log_probs])
    n_docs, max_len = len(log_probs), int(lengths.max())
    emissions = numpy.zeros((n_docs, max_len, n_tags))
    for d, lp in enumerate(log_probs):
        emissions[d, : lp.shape[0]] = lp
    b_cols = numpy.arange(0, 2 * k, 2)
    i_cols = b_cols + 1
    backpointers = numpy.zeros((n_docs, max_len, n_tags), dtype=numpy.int32)
    score = emissions[:, 0].copy()
    score[:, i_cols] = -numpy.inf
    final = numpy.zeros((n_docs, n_tags))
    rows = numpy.arange(n_docs)
    done = lengths == 1
    final[done] = score[done]
    for t in range(1, max_len):
        best_prev = score.argmax(axis=1)
        best = score[rows, best_prev]
        new = numpy.empty_like(score)
        new[:, b_cols] = best[:, None]
        new[:, -1] = best
        backpointers[:, t, b_cols] = best_prev[:, None]
        backpointers[:, t, -1] = best_prev
        from_i = score[:, i_cols] >= score[:, b_cols]
        new[:, i_cols] = numpy.where(from_i, score[:, i_cols], score[:, b_cols])
        backpointers[:, t, i_cols] = numpy.where(from_i, i_cols, b_cols)
        score = new + emissions[:, t]
        ending = lengths == t + 1
        final[ending] = score[ending]
    paths = []
    for d, length in enumerate(lengths):
        path = numpy.empty(length, dtype=numpy.int32)
        path[-1] = final[d].argmax()
        for t in range(length - 1, 0, -1):
            path[t - 1] = backpointers[d, t, path[t]]
        paths.append(path)
    return paths


def constrained_viterbi(log_probs: Sequence[numpy.ndarray]) -> List[numpy.ndarray]:
    """Best valid tag id sequence of each doc, given its (n_tokens, 2k+1) log-probabilities."""
    paths: List = [None] * len(log_probs)
    order = sorted(range(len(log_probs)), key=lambda d: log_probs[d].shape[0])
    group: List[int] = []
    for d in order + [None]:
        if d is not None and log_probs[d].shape[0] == 0:
            paths[d] = numpy.zeros(0, dtype=numpy.int32)
            continue
        if group and (d is None or log_probs[d].shape[0] * (len(group) + 1) > _MAX_PADDED_TOKENS):
            for g, path in zip(group, _viterbi_group([log_probs[g] for g in group])):
                paths[g] = path
            group = []
        if d is not None:
            group.append(d)
    return paths


def tags_to_spans(tag_ids: numpy.ndarray, types: Sequence[str]) -> List[Tuple[int, int, str]]:
    """(start, end, type) token spans of a valid tag id sequence."""
    n_types = len(types)
    spans = []
    start = None
    for t, tag in enumerate(tag_ids.tolist() + [2 * n_types]):
        if start is not None and tag != 2 * span_type + 1:
            spans.append((start, t, types[span_type]))
            start = None
        if tag < 2 * n_types and tag % 2 == 0:
            start, span_type = t, tag // 2
    return spans
