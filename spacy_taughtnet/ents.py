"""Writing the `taughtnet_ner` pipe's predictions onto a doc: every one, with its confidence, to
a span group, and those that fit to doc.ents, which cannot overlap."""
from typing import Collection, Iterable, List, Optional, Sequence, Tuple

import numpy
from spacy.tokens import Doc, Span, SpanGroup

# A span of doc.ents set by the pipe carries its confidence here (kept for compatibility: the
# span group's attrs["scores"] has every prediction's).
CONFIDENCE_ATTR = "taughtnet_confidence"

if not Span.has_extension(CONFIDENCE_ATTR):
    Span.set_extension(CONFIDENCE_ATTR, default=None)


def write_span_group(doc: Doc, spans_key: Optional[str], found: Sequence[Tuple[Span, float]]) -> None:
    """doc.spans[spans_key]: the spans, their confidences in attrs["scores"] (aligned with the
    spans, as spancat does); spans_key None: nothing."""
    if spans_key is not None:
        doc.spans[spans_key] = SpanGroup(
            doc, name=spans_key, spans=[span for span, _ in found],
            attrs={"scores": numpy.array([confidence for _, confidence in found], dtype="float32")},
        )


# How a span's tokens relate to those of a span it overlaps: the same tokens, containing them,
# inside them, or crossing them (each holds tokens the other lacks).
RELATIONS = ("same", "contains", "inside", "crossing")


def overlap_relation(span: Sequence[int], other: Sequence[int]) -> str:
    """How the (start, end, ...) `span` overlaps the (start, end, ...) `other` (RELATIONS)."""
    if span[0] == other[0] and span[1] == other[1]:
        return "same"
    if span[0] <= other[0] and other[1] <= span[1]:
        return "contains"
    if other[0] <= span[0] and span[1] <= other[1]:
        return "inside"
    return "crossing"


def choose_ents(
    found: Sequence[Tuple[int, int, str, float]], taken: Iterable[int] = (), preferences: Collection[Tuple[str, ...]] = ()
) -> List[int]:
    """Which of the predictions (start, end, label, confidence) doc.ents keeps, as indices into
    `found`, in the order chosen: most confident first (equal ones in the order given), each
    only if it overlaps none chosen before it nor a token of `taken`; with `preferences`,
    (winner, loser) type pairs, or (winner, loser, relation) triples that hold only where the
    winner's span overlaps the loser's that way (RELATIONS), a prediction that overlaps only
    chosen ones it is preferred to replaces them. Without preferences: the more confident span
    wins."""
    taken = set(taken)
    chosen: List[int] = []

    def preferred(i: int, j: int) -> bool:
        winner, loser = found[i][2], found[j][2]
        return (winner, loser) in preferences or (winner, loser, overlap_relation(found[i], found[j])) in preferences

    for i in sorted(range(len(found)), key=lambda i: -found[i][3]):  # a stable sort
        start, end, label, _ = found[i]
        if taken.intersection(range(start, end)):
            continue
        clashes = [j for j in chosen if found[j][0] < end and start < found[j][1]]
        if clashes and not all(preferred(i, j) for j in clashes):
            continue
        chosen = [j for j in chosen if j not in clashes] + [i]
    return chosen


def write_ents(
    doc: Doc, found: Sequence[Tuple[Span, float]], overwrite: bool, preferences: Collection[Tuple[str, ...]] = ()
) -> None:
    """Add the spans that `choose_ents` keeps to doc.ents: never one overlapping another, nor,
    unless `overwrite`, an entity already on the doc; `overwrite` replaces those entities
    (their tokens become O). Each span added gets its confidence in
    `span._.taughtnet_confidence`."""
    taken = () if overwrite else [i for e in doc.ents for i in range(e.start, e.end)]
    keys = [(span.start, span.end, span.label_, confidence) for span, confidence in found]
    new_ents = []
    for i in choose_ents(keys, taken, preferences):
        span, confidence = found[i]
        span._.set(CONFIDENCE_ATTR, confidence)
        new_ents.append(span)
    new_ents.sort(key=lambda span: span.start)
    if overwrite:
        doc.set_ents(new_ents, default="outside")
    else:
        doc.ents = list(doc.ents) + new_ents
