"""Tag sets and constrained Viterbi decoding.

Two tag sets per list of entity types e1..ek:
- the BIO columns (B-e1, I-e1, ..., B-ek, I-ek, O) of teacher distributions (aggregate.py);
- the BILUO columns (B-e1, I-e1, L-e1, U-e1, ..., O) the `taughtnet_ner` model predicts:
  marking the last token of an entity (L) and single-token entities (U) helps a token
  tagger find entity boundaries. `bio_columns` folds BILUO onto BIO (B, U -> B; I, L -> I);
  `biluo_targets` spreads a doc's BIO distributions over BILUO using the next token.

Decoding only emits valid BILUO sequences: after B-X or I-X comes I-X or L-X; after O,
L-* or U-* (and at the start) comes O, B-* or U-*; a doc ends on O, L-* or U-*. Docs are
decoded together, padded to the longest of a group, groups bounded in padded size.
"""
from typing import List, Sequence, Tuple

import numpy

_MAX_PADDED_TOKENS = 65536
BILUO_PREFIXES = ("B", "I", "L", "U")


def tag_names(types: Sequence[str]) -> List[str]:
    """The BIO columns: B-e1, I-e1, ..., B-ek, I-ek, O."""
    return [f"{prefix}-{t}" for t in types for prefix in ("B", "I")] + ["O"]


def biluo_tag_names(types: Sequence[str]) -> List[str]:
    """The BILUO columns: B-e1, I-e1, L-e1, U-e1, ..., O."""
    return [f"{prefix}-{t}" for t in types for prefix in BILUO_PREFIXES] + ["O"]


def bio_columns(n_types: int) -> numpy.ndarray:
    """For each BILUO column, the BIO column it folds onto."""
    per_type = [[2 * j, 2 * j + 1, 2 * j + 1, 2 * j] for j in range(n_types)]
    return numpy.array(sum(per_type, []) + [2 * n_types], dtype=numpy.int64)


def biluo_targets(bio: numpy.ndarray) -> numpy.ndarray:
    """A doc's (n_tokens, 2k+1) BIO distributions as (n_tokens, 4k+1) BILUO ones.

    An entity of type X goes on after token t with the probability c that token t+1 is
    I-X (0 after the last token), so B-X splits into B-X (c) and U-X (1 - c), and I-X into
    I-X (c) and L-X (1 - c). Rows keep summing to 1.
    """
    n_tokens, n_cols = bio.shape
    k = (n_cols - 1) // 2
    begin, inside = bio[:, 0 : 2 * k : 2], bio[:, 1 : 2 * k : 2]
    goes_on = numpy.zeros_like(inside)
    goes_on[:-1] = inside[1:]
    out = numpy.empty((n_tokens, 4 * k + 1), dtype=bio.dtype)
    out[:, 0 : 4 * k : 4] = begin * goes_on
    out[:, 1 : 4 * k : 4] = inside * goes_on
    out[:, 2 : 4 * k : 4] = inside * (1 - goes_on)
    out[:, 3 : 4 * k : 4] = begin * (1 - goes_on)
    out[:, -1] = bio[:, -1]
    return out


def _viterbi_group(log_probs: List[numpy.ndarray]) -> List[numpy.ndarray]:
    n_tags = log_probs[0].shape[1]
    k = (n_tags - 1) // 4
    b_cols, i_cols, l_cols, u_cols = (numpy.arange(j, 4 * k, 4) for j in range(4))
    closed = numpy.concatenate([l_cols, u_cols, [n_tags - 1]])  # tags an entity can't go on from
    opening = numpy.concatenate([b_cols, u_cols, [n_tags - 1]])  # tags allowed after a closed one
    lengths = numpy.array([lp.shape[0] for lp in log_probs])
    n_docs, max_len = len(log_probs), int(lengths.max())
    emissions = numpy.zeros((n_docs, max_len, n_tags))
    for d, lp in enumerate(log_probs):
        emissions[d, : lp.shape[0]] = lp
    backpointers = numpy.zeros((n_docs, max_len, n_tags), dtype=numpy.int32)
    score = numpy.full((n_docs, n_tags), -numpy.inf)
    score[:, opening] = emissions[:, 0, opening]
    final = numpy.zeros((n_docs, n_tags))
    rows = numpy.arange(n_docs)
    final[lengths == 1] = score[lengths == 1]
    for t in range(1, max_len):
        best_closed = closed[score[:, closed].argmax(axis=1)]
        inside = numpy.where(score[:, i_cols] >= score[:, b_cols], i_cols, b_cols)
        new = numpy.empty_like(score)
        new[:, opening] = score[rows, best_closed][:, None]
        backpointers[:, t, opening] = best_closed[:, None]
        for cols in (i_cols, l_cols):
            new[:, cols] = numpy.take_along_axis(score, inside, axis=1)
            backpointers[:, t, cols] = inside
        score = new + emissions[:, t]
        ending = lengths == t + 1
        final[ending] = score[ending]
    # follow the backpointers of every doc at once, from its last token back
    paths = numpy.zeros((n_docs, max_len), dtype=numpy.int32)
    paths[rows, lengths - 1] = closed[final[:, closed].argmax(axis=1)]
    for t in range(max_len - 1, 0, -1):
        inside_doc = lengths > t
        paths[inside_doc, t - 1] = backpointers[rows, t, paths[:, t]][inside_doc]
    return [paths[d, :length] for d, length in enumerate(lengths)]


def constrained_viterbi(log_probs: Sequence[numpy.ndarray]) -> List[numpy.ndarray]:
    """Best valid BILUO tag id sequence of each doc, given its (n_tokens, 4k+1) log-probabilities."""
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
    """(start, end, type) token spans of a valid BILUO tag id sequence."""
    spans = []
    start = None
    for t, tag in enumerate(tag_ids.tolist()):
        if tag == 4 * len(types):
            continue
        prefix, type_index = BILUO_PREFIXES[tag % 4], tag // 4
        if prefix == "U":
            spans.append((t, t + 1, types[type_index]))
        elif prefix == "B":
            start = t
        elif prefix == "L":
            spans.append((start, t + 1, types[type_index]))
    return spans
