"""The two tag layers (`heads`) of the `taughtnet_ner` pipe, each a strategy that owns its tag
columns, gold and teacher targets, loss, decoding and probabilities. The pipe builds one from
its `heads` setting and delegates to it; the entity types are passed in (the pipe's labels).

- `JointHeads` ("joint"): one BILUO softmax over every type (B-e1, I-e1, L-e1, U-e1, ..., O),
  learning from the aggregated global distributions; the types exclude each other.
- `PerTypeHeads` ("per_type"): one BILUO softmax per type (B-t, I-t, L-t, U-t, O-t, where O-t
  is "not t"), each learning from its own type's teachers, decoded on its own: a span may
  carry two types (`types_overlap`).

Both give probabilities over the BIO columns (B-e1, I-e1, ..., B-ek, I-ek, O; `tag_names`) and
over each type's (B, I, O) (`type_tag_names`).
"""
from abc import ABC, abstractmethod
from typing import ClassVar, Dict, Iterator, List, Optional, Sequence, Tuple

import numpy
from spacy.tokens import Doc, Span
from spacy.training import Example
from thinc.api import Ops
from thinc.types import Floats2d

from .aggregate import aggregate_distributions
from .corpora import doc_entity_type
from .decoding import (  # duplicates check: an import block, alike wherever these names are imported
    BILUO_PREFIXES,
    biluo_tag_names,
    biluo_targets,
    bio_columns,
    constrained_viterbi,
    tag_names,
    tags_to_spans,
)
from .errors import ConfigError
from .loss import DistillationLoss

# Where a reader puts an example's teacher distributions: on the reference doc's user_data.
TEACHER_PROBS_KEY = "taughtnet_teacher_probs"
TEACHER_LABELS_KEY = "taughtnet_teacher_labels"
# ... and each type's own (B, I, O) columns, (n_tokens, 3k) in TEACHER_LABELS_KEY order
TEACHER_TYPE_PROBS_KEY = "taughtnet_teacher_type_probs"

Targets = Tuple[numpy.ndarray, Optional[numpy.ndarray]]
# Where per-type heads take their teacher targets: each type's own teachers' (B, I, O) ("own"),
# that type's marginals of the aggregated global distribution, in which a confident teacher of
# another type lowers this type's B/I on its tokens ("aggregated"), or the mean of both ("mix").
HEAD_TARGETS = ("own", "aggregated", "mix")
# A sequence to decode: (doc index, (n_tokens, 4m+1) BILUO log-probabilities, its m types)
Decoding = Tuple[int, numpy.ndarray, Tuple[str, ...]]


class Heads(ABC):
    """A tag layer: what the model's columns mean and how they learn and decode.

    pipe_name: the pipe's name, for error messages."""

    name: ClassVar[str]
    # Whether one span may get two types: doc.ents then keeps the more confident, and a type's
    # own predictions are those of the pipe's span group.
    types_overlap: ClassVar[bool]
    # The method, for the model card's README.
    method: ClassVar[str]

    def __init__(self, pipe_name: str) -> None:
        self.pipe_name = pipe_name
        self._teacher_columns: Dict[Tuple[Tuple[str, ...], Tuple[str, ...]], numpy.ndarray] = {}

    @abstractmethod
    def model_tag_names(self, labels: Sequence[str]) -> List[str]:
        """The columns the model scores."""

    @staticmethod
    def tag_names(labels: Sequence[str]) -> List[str]:
        """The BIO columns of `predict_proba` and of teacher distributions: B-e1, I-e1, ..., O."""
        return tag_names(labels)

    @staticmethod
    def type_tag_names(labels: Sequence[str]) -> List[str]:
        """The columns of `predict_type_proba` and of per-type teacher distributions:
        B-e1, I-e1, O-e1, ..., B-ek, I-ek, O-ek (O-t: not t)."""
        return [f"{prefix}-{t}" for t in labels for prefix in ("B", "I", "O")]

    @abstractmethod
    def targets(self, eg: Example, labels: Sequence[str]) -> Targets:
        """The example's gold tag ids (-1: missing) and teacher targets (None without teachers)."""

    @abstractmethod
    def _loss(self, loss: DistillationLoss, ops: Ops, scores: Floats2d, gold: numpy.ndarray, teacher: Optional[Floats2d]) -> Tuple[Floats2d, float]:
        """The gradient and loss of a batch's flattened scores against its targets."""

    @abstractmethod
    def _sequences(self, scores: List[numpy.ndarray], labels: Sequence[str]) -> List[Decoding]:
        """The sequences to decode, of every doc."""

    @abstractmethod
    def predict_proba(self, scores: List[numpy.ndarray], labels: Sequence[str]) -> List[numpy.ndarray]:
        """Per-token BIO probabilities, a float32 (n_tokens, 2k+1) array per doc (`tag_names`)."""

    @abstractmethod
    def predict_type_proba(self, scores: List[numpy.ndarray], labels: Sequence[str]) -> List[numpy.ndarray]:
        """Per-token (B, I, O) of each type, a float32 (n_tokens, 3k) array per doc (`type_tag_names`)."""

    def get_loss(
        self, examples: List[Example], scores: List[Floats2d], labels: Sequence[str], loss: DistillationLoss, ops: Ops
    ) -> Tuple[float, List[Floats2d]]:
        """Distillation loss when the examples carry teacher distributions, else cross-entropy
        on the gold tags (missing annotation is skipped)."""
        golds, teachers = zip(*(self.targets(eg, labels) for eg in examples))
        n_with_teacher = sum(t is not None for t in teachers)
        if 0 < n_with_teacher < len(teachers):
            raise ValueError(
                f"{self.pipe_name}: a training batch mixes {n_with_teacher} examples with teacher "
                f"distributions and {len(teachers) - n_with_teacher} without; give every "
                "example of the training corpus its distributions"
            )
        teacher = ops.asarray2f(numpy.concatenate(teachers)) if n_with_teacher else None
        d_scores, value = self._loss(loss, ops, ops.flatten(list(scores)), numpy.concatenate(golds), teacher)
        if not numpy.isfinite(value):
            raise ValueError(f"{self.pipe_name}: the loss is not finite ({value}); lower the learning rate")
        return value, ops.unflatten(d_scores, ops.asarray1i([len(eg.predicted) for eg in examples]))

    def decode(self, docs: List[Doc], scores: List[numpy.ndarray], labels: Sequence[str]) -> List[List[Tuple[Span, float]]]:
        """Each doc's predicted entities with their confidence (the geometric mean probability
        of their tokens' tags), ordered by start, end and type; constrained Viterbi, so every
        entity is well formed."""
        return self._spans(docs, self._sequences(scores, labels))

    def decode_ents(self, docs: List[Doc], scores: List[numpy.ndarray], labels: Sequence[str]) -> List[List[Tuple[Span, float]]]:
        """Each doc's entities as `decode` gives them, where they never overlap."""
        return self.decode(docs, scores, labels)

    def decode_all(
        self, docs: List[Doc], scores: List[numpy.ndarray], labels: Sequence[str], overlaps: Optional[str]
    ) -> List[Tuple[List[Tuple[Span, float]], Optional[List[Tuple[Span, float]]]]]:
        """Each doc's predictions (`decode`, for the span group) and its candidates for doc.ents
        given the pipe's `overlaps` setting (None: doc.ents is not set, no candidates): the
        predictions themselves with "confidence" (of overlapping ones doc.ents keeps the more
        confident), `decode_ents` with "viterbi"; heads whose types never overlap give their
        predictions either way."""
        found = self.decode(docs, scores, labels)
        return [(spans, None if overlaps is None else spans) for spans in found]

    def _spans(self, docs: List[Doc], sequences: List[Decoding]) -> List[List[Tuple[Span, float]]]:
        paths = constrained_viterbi([log_probs for _, log_probs, _ in sequences])
        found: List[List[Tuple[Span, float]]] = [[] for _ in docs]
        for (d, log_probs, types), path in zip(sequences, paths):
            doc = docs[d]
            for start, end, label in tags_to_spans(path, types):
                # an entity never starts or ends on a whitespace token
                while start < end and doc[start].is_space:
                    start += 1
                while end > start and doc[end - 1].is_space:
                    end -= 1
                if start == end:
                    continue
                token_log_probs = log_probs[numpy.arange(start, end), path[start:end]]
                found[d].append((Span(doc, start, end, label=label), float(numpy.exp(token_log_probs.mean()))))
        for spans in found:
            spans.sort(key=lambda sc: (sc[0].start, sc[0].end, sc[0].label_))
        return found

    def teacher_columns(self, teacher_labels: Sequence[str], labels: Sequence[str]) -> numpy.ndarray:
        """Where each of our BIO columns sits among the distributions' columns; refuses
        distributions of other types."""
        key = (tuple(teacher_labels), tuple(labels))
        if key not in self._teacher_columns:
            if sorted(teacher_labels) != sorted(labels):
                raise ValueError(
                    f"{self.pipe_name}: the component's labels {list(labels)} disagree with "
                    f"the teacher distributions' labels {list(teacher_labels)}"
                )
            theirs = tag_names(teacher_labels)
            self._teacher_columns[key] = numpy.array([theirs.index(tag) for tag in tag_names(labels)])
        return self._teacher_columns[key]

    def check_saved(self, saved_cfg: Dict, where: str) -> None:
        """Refuse a pipe saved with other heads (a cfg without the setting, of 0.1.x, had joint heads)."""
        saved = saved_cfg.get("heads", JointHeads.name)
        if saved != self.name:
            raise ConfigError(
                f"{where}: the pipe was trained with heads = {saved!r}, but its config says "
                f"{self.name!r}; load it with its own config (heads = {saved!r})"
            )

    def _gold_tags(self, eg: Example, labels: Sequence[str]) -> Iterator[Tuple[int, str, Optional[str]]]:
        """(token, BILUO prefix or "O", type) of each token with a gold tag; refuses unknown types."""
        for i, tag in enumerate(eg.get_aligned_ner()):
            if tag in (None, "", "-"):
                continue
            if tag == "O":
                yield i, "O", None
                continue
            prefix, label = tag.split("-", 1)
            if label not in labels:
                raise ValueError(
                    f"{self.pipe_name}: unknown entity label {label!r} in training doc "
                    f"{eg.reference.text[:60]!r}; the component's labels are {list(labels)}"
                )
            yield i, prefix, label

    def _teacher_rows(self, eg: Example, key: str, labels: Sequence[str]) -> Optional[Tuple[numpy.ndarray, Tuple[str, ...]]]:
        """The example's distributions stored under `key` and their labels, or None."""
        probs = eg.reference.user_data.get(key)
        if probs is None:
            return None
        if probs.shape[0] != len(eg.predicted):
            raise ValueError(
                f"{self.pipe_name}: the teacher distributions of doc {eg.reference.text[:60]!r} have "
                f"{probs.shape[0]} rows, but the doc has {len(eg.predicted)} tokens"
            )
        theirs = tuple(eg.reference.user_data[TEACHER_LABELS_KEY])
        self.teacher_columns(theirs, labels)  # checks the labels
        return probs, theirs

    def _aggregated_rows(self, eg: Example, labels: Sequence[str]) -> Optional[Tuple[numpy.ndarray, Tuple[str, ...]]]:
        """The example's aggregated global distributions and their labels; None for an example
        without teacher distributions. Refuses distributions stored without them."""
        found = self._teacher_rows(eg, TEACHER_PROBS_KEY, labels)
        if found is None and TEACHER_LABELS_KEY in eg.reference.user_data:
            raise ValueError(
                f"{self.pipe_name}: {self.needs_aggregation} learn from the aggregated global distributions, but "
                "the teacher distributions were stored without them (distill-teachers --normalize none, the "
                "default); rerun distill-teachers with --normalize sum (or softmax)"
            )
        return found


class JointHeads(Heads):
    name = "joint"
    types_overlap = False
    needs_aggregation = "joint heads"
    method = (
        "Their token distributions are combined into the global label space (B-/I- of every type, and O); "
        "one student learns all types from those soft labels (KL divergence) and from each corpus's gold "
        "entities (cross-entropy on entity tokens only, as a gold O only means \"not this corpus's type\")."
    )

    def model_tag_names(self, labels: Sequence[str]) -> List[str]:
        """B-e1, I-e1, L-e1, U-e1, ..., O."""
        return biluo_tag_names(labels)

    def targets(self, eg: Example, labels: Sequence[str]) -> Targets:
        """(n_tokens,) BILUO tag ids and (n_tokens, 4k+1) BILUO targets spread from the global
        distributions; with teachers a gold O is missing (it only means "not this corpus's type")."""
        outside = 4 * len(labels)
        gold = numpy.full(len(eg.predicted), -1, dtype=numpy.int32)
        for i, prefix, label in self._gold_tags(eg, labels):
            gold[i] = outside if label is None else 4 * labels.index(label) + BILUO_PREFIXES.index(prefix)
        found = self._aggregated_rows(eg, labels)
        if found is None:
            return gold, None
        probs, theirs = found
        gold[gold == outside] = -1
        return gold, biluo_targets(probs[:, self.teacher_columns(theirs, labels)])

    def _loss(self, loss: DistillationLoss, ops: Ops, scores: Floats2d, gold: numpy.ndarray, teacher: Optional[Floats2d]) -> Tuple[Floats2d, float]:
        return loss(scores, (ops.asarray1i(gold), teacher))

    def _sequences(self, scores: List[numpy.ndarray], labels: Sequence[str]) -> List[Decoding]:
        return [(d, _log_softmax(s.astype("float64")), tuple(labels)) for d, s in enumerate(scores)]

    def predict_proba(self, scores: List[numpy.ndarray], labels: Sequence[str]) -> List[numpy.ndarray]:
        """The BILUO softmax folded onto BIO: B = B + U, I = I + L."""
        fold = bio_columns(len(labels))
        probs = []
        for doc_scores in scores:
            biluo = numpy.exp(_log_softmax(doc_scores.astype("float64"))).astype("float32")
            bio = numpy.zeros((biluo.shape[0], 2 * len(labels) + 1), dtype=numpy.float32)
            for column, target in enumerate(fold):
                bio[:, target] += biluo[:, column]
            probs.append(bio)
        return probs

    def predict_type_proba(self, scores: List[numpy.ndarray], labels: Sequence[str]) -> List[numpy.ndarray]:
        """The marginals of the joint softmax: B-t, I-t, and the rest."""
        out = []
        for bio in self.predict_proba(scores, labels):
            b, i = bio[:, 0:-1:2], bio[:, 1:-1:2]
            out.append(numpy.stack([b, i, (1.0 - b - i).clip(0.0, 1.0)], axis=2).reshape(len(bio), 3 * len(labels)))
        return out


class PerTypeHeads(Heads):
    name = "per_type"
    types_overlap = True
    method = (
        "The student has one head per type on a shared encoder: each learns its type's (B, I, O) from that "
        "type's teachers on every sentence (KL divergence) and from the gold of its own corpus (cross-entropy, "
        "O included). Each type is decoded on its own, as its teacher would: `doc.spans[\"taughtnet\"]` holds "
        "every type's predictions with their scores, and may hold one span as two types; `doc.ents`, which "
        "cannot overlap, keeps the more confident, unless what was learnt on devel (`overlap_preferences`, per pair "
        "of types and way their spans overlap) says which type wins. The scores per corpus are those of the corpus's type "
        "(its spans in the span group)."
    )

    def model_tag_names(self, labels: Sequence[str]) -> List[str]:
        """B-t, I-t, L-t, U-t, O-t for each type t."""
        return [f"{prefix}-{t}" for t in labels for prefix in (*BILUO_PREFIXES, "O")]

    def targets(self, eg: Example, labels: Sequence[str]) -> Targets:
        """(n_tokens, k) tag ids within each type's head (B, I, L, U, O-t), -1 where the doc does
        not annotate that type (a doc of one type annotates only it; a doc without a type record,
        every type), and (n_tokens, 5k) BILUO targets from each type's own teacher columns."""
        own = doc_entity_type(eg.reference)
        if own is not None and own not in labels:
            raise ValueError(
                f"{self.pipe_name}: training doc {eg.reference.text[:60]!r} is of type {own!r}, "
                f"not among the component's labels {list(labels)}"
            )
        annotated = [labels.index(own)] if own is not None else list(range(len(labels)))
        gold = numpy.full((len(eg.predicted), len(labels)), -1, dtype=numpy.int32)
        for i, prefix, label in self._gold_tags(eg, labels):
            gold[i, annotated] = 4  # O, and an entity of one type is "not t" for the others
            if label is not None:
                gold[i, labels.index(label)] = BILUO_PREFIXES.index(prefix)
        return gold, self._teacher_targets(eg, labels)

    def __init__(self, pipe_name: str, targets: str = "own") -> None:
        super().__init__(pipe_name)
        if targets not in HEAD_TARGETS:
            raise ConfigError(f"{pipe_name}: head_targets must be one of {HEAD_TARGETS}, got {targets!r}")
        self.targets_from = targets
        self.needs_aggregation = f"per-type heads with head_targets {targets!r}"

    def _teacher_targets(self, eg: Example, labels: Sequence[str]) -> Optional[numpy.ndarray]:
        """Each head's (B, I, L, U, O-t) targets, from `targets_from` (HEAD_TARGETS)."""
        own = self._own_targets(eg, labels) if self.targets_from != "aggregated" else None
        if self.targets_from == "own":
            return own
        found = self._aggregated_rows(eg, labels)
        if found is None:
            return None
        probs, theirs = found
        bio = probs[:, self.teacher_columns(theirs, labels)]
        b, i = bio[:, 0:-1:2], bio[:, 1:-1:2]
        marginals = numpy.stack([b, i, (1.0 - b - i).clip(0.0, 1.0)], axis=2)  # (n_tokens, k, 3)
        aggregated = numpy.concatenate([biluo_targets(marginals[:, j]) for j in range(len(labels))], axis=1)
        return aggregated if own is None else (own + aggregated) / 2

    def _own_targets(self, eg: Example, labels: Sequence[str]) -> Optional[numpy.ndarray]:
        found = self._teacher_rows(eg, TEACHER_TYPE_PROBS_KEY, labels)
        if found is None:
            if TEACHER_PROBS_KEY in eg.reference.user_data:
                raise ValueError(
                    f"{self.pipe_name}: per-type heads learn from each type's own teacher columns, but the "
                    "distributions of this corpus have only the global ones (written by "
                    "spacy-taughtnet 0.1.x); rerun distill-teachers"
                )
            return None
        probs, theirs = found
        return numpy.concatenate(
            [biluo_targets(probs[:, 3 * j : 3 * j + 3]) for j in (theirs.index(label) for label in labels)],
            axis=1,
        )

    def _loss(self, loss: DistillationLoss, ops: Ops, scores: Floats2d, gold: numpy.ndarray, teacher: Optional[Floats2d]) -> Tuple[Floats2d, float]:
        """The sum over types t of the loss of t's head."""
        d_scores = ops.alloc2f(*scores.shape)
        value = 0.0
        for j in range(gold.shape[1]):
            head = slice(5 * j, 5 * j + 5)
            truths = (ops.asarray1i(gold[:, j]), teacher[:, head] if teacher is not None else None)
            d_head, head_loss = loss(ops.xp.ascontiguousarray(scores[:, head]), truths)
            d_scores[:, head] = d_head
            value += head_loss
        return d_scores, value

    def _log_probs(self, scores: List[numpy.ndarray], labels: Sequence[str]) -> List[numpy.ndarray]:
        """Each doc's log-probabilities under every type's head, (n_tokens, k, 5) per doc
        (computed for the whole batch at once)."""
        if not scores:
            return []
        flat = numpy.concatenate(scores).astype("float64").reshape(-1, len(labels), 5)
        flat -= flat.max(axis=2, keepdims=True)
        flat -= numpy.log(numpy.exp(flat).sum(axis=2, keepdims=True))
        return numpy.split(flat, numpy.cumsum([len(s) for s in scores])[:-1])

    def _sequences(self, scores: List[numpy.ndarray], labels: Sequence[str]) -> List[Decoding]:
        return self._type_sequences(self._log_probs(scores, labels), labels)

    @staticmethod
    def _type_sequences(per_doc: List[numpy.ndarray], labels: Sequence[str]) -> List[Decoding]:
        # every (doc, type) pair is one sequence: one Viterbi call for the batch
        return [(d, lps[:, j], (label,)) for j, label in enumerate(labels) for d, lps in enumerate(per_doc)]

    def decode_ents(self, docs: List[Doc], scores: List[numpy.ndarray], labels: Sequence[str]) -> List[List[Tuple[Span, float]]]:
        """Non-overlapping entities from one constrained Viterbi over the global BILUO tags.

        The heads are taken as independent experts: a token's global tag X-t scores
        log p_t(X) + sum over the other types s of log p_s(O-s), and O scores the sum of every
        log p_s(O-s) (their product, renormalised per token), so two types claiming one span
        are weighed against each other inside one best path instead of span by span."""
        return self._spans(docs, self._product_sequences(self._log_probs(scores, labels), labels))

    @staticmethod
    def _product_sequences(per_doc: List[numpy.ndarray], labels: Sequence[str]) -> List[Decoding]:
        """Each doc's global BILUO log-probabilities under the heads' product (`decode_ents`)."""
        sequences = []
        for d, log_probs in enumerate(per_doc):
            outside = log_probs[:, :, 4]  # (n_tokens, k)
            others = outside.sum(axis=1, keepdims=True) - outside
            tagged = log_probs[:, :, :4] + others[:, :, None]  # (n_tokens, k, 4): B, I, L, U of each type
            flat = tagged.reshape(len(log_probs), 4 * len(labels))  # not -1: a doc may have no tokens
            joint = numpy.concatenate([flat, outside.sum(axis=1, keepdims=True)], axis=1)
            sequences.append((d, _log_softmax(joint), tuple(labels)))
        return sequences

    def decode_all(
        self, docs: List[Doc], scores: List[numpy.ndarray], labels: Sequence[str], overlaps: Optional[str]
    ) -> List[Tuple[List[Tuple[Span, float]], Optional[List[Tuple[Span, float]]]]]:
        """As Heads.decode_all; with "viterbi" the batch's log-probabilities are computed once
        for both decodings."""
        if overlaps != "viterbi":
            return super().decode_all(docs, scores, labels, overlaps)
        per_doc = self._log_probs(scores, labels)
        found = self._spans(docs, self._type_sequences(per_doc, labels))
        return list(zip(found, self._spans(docs, self._product_sequences(per_doc, labels))))

    def predict_proba(self, scores: List[numpy.ndarray], labels: Sequence[str]) -> List[numpy.ndarray]:
        """The heads combined as teachers are (aggregate.py, normalised by the sum)."""
        return [
            aggregate_distributions([t.astype("float64") for t in numpy.split(type_probs, len(labels), axis=1)])
            for type_probs in self.predict_type_proba(scores, labels)
        ]

    def predict_type_proba(self, scores: List[numpy.ndarray], labels: Sequence[str]) -> List[numpy.ndarray]:
        """Each type's head folded onto (B, I, O): B = B + U, I = I + L, O = O-t."""
        out = []
        for log_probs in self._log_probs(scores, labels):
            p = numpy.exp(log_probs)  # (n_tokens, k, 5): B, I, L, U, O-t
            bio = numpy.stack([p[..., 0] + p[..., 3], p[..., 1] + p[..., 2], p[..., 4]], axis=2)
            out.append(bio.reshape(len(p), 3 * len(labels)).astype(numpy.float32))
        return out


HEADS = {heads.name: heads for heads in (JointHeads, PerTypeHeads)}


def make_heads(name: str, pipe_name: str, targets: str = "own") -> Heads:
    """The strategy of the `heads` setting `name`; `targets`: where per-type heads take their
    teacher targets (HEAD_TARGETS); joint heads learn the aggregated distribution itself."""
    if name not in HEADS:
        raise ConfigError(f"{pipe_name}: heads must be one of {tuple(HEADS)}, got {name!r}")
    if name == PerTypeHeads.name:
        return PerTypeHeads(pipe_name, targets)
    if targets != "own":
        raise ConfigError(f"{pipe_name}: head_targets {targets!r} is for per_type heads; joint heads learn the aggregated distribution")
    return HEADS[name](pipe_name)


def example_labels(examples: Iterator[Example]) -> List[str]:
    """The labels examples imply: the label order of the first one's teacher distributions,
    else the sorted entity types of them all (their entities and their docs' types)."""
    types = set()
    for eg in examples:
        if TEACHER_LABELS_KEY in eg.reference.user_data:
            return list(eg.reference.user_data[TEACHER_LABELS_KEY])
        types.update(ent.label_ for ent in eg.reference.ents)
        if doc_entity_type(eg.reference):
            types.add(doc_entity_type(eg.reference))
    return sorted(types)


def _log_softmax(scores: numpy.ndarray) -> numpy.ndarray:
    shifted = scores - scores.max(axis=1, keepdims=True)
    return shifted - numpy.log(numpy.exp(shifted).sum(axis=1, keepdims=True))
