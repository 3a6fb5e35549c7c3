"""Writing the `taughtnet_ner` pipe's predictions onto a doc: every one, with its confidence, to
a span group, and those that fit to doc.ents, which cannot overlap."""
from typing import Iterable, Optional, Sequence, Tuple

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


def write_ents(doc: Doc, found: Iterable[Tuple[Span, float]], overwrite: bool) -> None:
    """Add the spans to doc.ents, most confident first (equal ones in the order given), each
    only if it overlaps none added before it nor, unless `overwrite`, any entity already on the
    doc; `overwrite` replaces those entities (their tokens become O). Each span added gets its
    confidence in `span._.taughtnet_confidence`."""
    taken = set() if overwrite else {i for e in doc.ents for i in range(e.start, e.end)}
    new_ents = []
    # most confident first (a stable sort: equal ones stay in document order)
    for span, confidence in sorted(found, key=lambda sc: -sc[1]):
        if not taken.intersection(range(span.start, span.end)):
            taken.update(range(span.start, span.end))
            span._.set(CONFIDENCE_ATTR, confidence)
            new_ents.append(span)
    new_ents.sort(key=lambda span: span.start)
    if overwrite:
        doc.set_ents(new_ents, default="outside")
    else:
        doc.ents = list(doc.ents) + new_ents
