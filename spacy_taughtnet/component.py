"""The `taughtnet_ner` pipe: a token-level IOB entity recogniser that learns from gold
entities, from teacher distributions, or both.

One component serves both roles of the method: trained on a single-type corpus without
distributions it is a teacher; trained on the global data whose examples carry teacher
distributions (see readers.py) it is the multi-type student.

Its tag layer is one of two `heads`:
- "joint": one BILUO softmax over every type (B-e1, I-e1, L-e1, U-e1, ..., O), learning from
  the aggregated global distributions; the types exclude each other.
- "per_type": one BILUO softmax per type (B-t, I-t, L-t, U-t, O-t, where O-t is "not t"),
  each learning from its own type's teachers, decoded on its own: a span may carry two types
  in the span group, and doc.ents keeps the more confident one where they overlap.
"""
from itertools import islice
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy
import srsly
from spacy.errors import Errors
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.pipeline.tok2vec import Tok2VecListener
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Example, validate_examples
from spacy.vocab import Vocab
from thinc.api import Config, Model
from thinc.types import Floats2d

from . import model as _architectures  # noqa: F401  (registers spacy-taughtnet.TokenTagger.v1)
from .about import __version__
from .aggregate import aggregate_distributions
from .corpora import doc_entity_type
from .decoding import (
    BILUO_PREFIXES,
    biluo_tag_names,
    biluo_targets,
    bio_columns,
    constrained_viterbi,
    tag_names,
    tags_to_spans,
)
from .errors import ConfigError, ModelVersionError
from .loss import DistillationLoss
from .scorer import score_entities

# Where a reader puts an example's teacher distributions: on the reference doc's user_data.
TEACHER_PROBS_KEY = "taughtnet_teacher_probs"
TEACHER_LABELS_KEY = "taughtnet_teacher_labels"
# ... and each type's own (B, I, O) columns, (n_tokens, 3k) in TEACHER_LABELS_KEY order
TEACHER_TYPE_PROBS_KEY = "taughtnet_teacher_type_probs"
HEADS = ("joint", "per_type")
CONFIDENCE_ATTR = "taughtnet_confidence"
# Settings of the factory kept in `cfg`: a loaded pipe takes them from its (possibly
# overridden) config, not from the saved cfg.
FACTORY_SETTINGS = ("overwrite", "spans_key", "set_ents")

if not Span.has_extension(CONFIDENCE_ATTR):
    Span.set_extension(CONFIDENCE_ATTR, default=None)

DEFAULT_MODEL_CONFIG = """
[model]
@architectures = "spacy-taughtnet.TokenTagger.v1"
hidden_width = 128
window_size = 1
maxout_pieces = 2
dropout = 0.1

[model.tok2vec]
@architectures = "spacy.HashEmbedCNN.v2"
pretrained_vectors = null
width = 96
depth = 4
embed_size = 2000
window_size = 1
maxout_pieces = 3
subword_features = true
"""
DEFAULT_MODEL = Config().from_str(DEFAULT_MODEL_CONFIG)["model"]


@Language.factory(
    "taughtnet_ner",
    assigns=["doc.ents", "doc.spans", "token.ent_iob", "token.ent_type"],
    default_config={
        "model": DEFAULT_MODEL,
        "loss": {"@losses": "spacy-taughtnet.DistillationLoss.v1", "lambda_": 0.99, "temperature": 1.0},
        "overwrite": False,
        "spans_key": "taughtnet",
        "set_ents": True,
        "heads": "joint",
        "scorer": {"@scorers": "spacy-taughtnet.ner_scorer.v1"},
    },
    default_score_weights={"ents_f": 1.0, "ents_p": 0.0, "ents_r": 0.0, "ents_per_type": None},
)
def make_taughtnet_ner(
    nlp: Language,
    name: str,
    model: Model[List[Doc], List[Floats2d]],
    loss: DistillationLoss,
    overwrite: bool,
    spans_key: Optional[str],
    set_ents: bool,
    heads: str,
    scorer: Optional[Callable],
) -> "TaughtNetNER":
    """Create a `taughtnet_ner` pipe.

    model: per-token tag logits (spacy-taughtnet.TokenTagger.v1 by default).
    loss: the loss used when examples carry teacher distributions; its lambda_ and
        temperature set the soft/hard balance. Without distributions the pipe trains
        with plain cross-entropy.
    overwrite: with set_ents, replace the entities already on the doc; when False (the
        default) they are kept and only predicted entities that overlap none of them are
        added to doc.ents.
    spans_key: every predicted entity goes to doc.spans[spans_key], overlapping
        existing entities or not, with its confidence in
        doc.spans[spans_key].attrs["scores"] (aligned with the spans, as spancat does);
        None: no span group.
    set_ents: write the predictions to doc.ents (as `overwrite` says); False leaves
        doc.ents alone (read the span group instead).
    heads: "joint" (one softmax over all types) or "per_type" (one per type; module
        docstring). A per-type student learns from the per-type columns of the teacher
        distributions and is scored, on a doc of one type, by its span group.
    scorer: scoring method (spacy-taughtnet.ner_scorer.v1).

    overwrite, spans_key and set_ents are kept in the pipe's cfg and follow the config
    it is loaded with: `spacy.load(path, config={"components": {"ner": {"set_ents": False}}})`.
    """
    return TaughtNetNER(
        nlp.vocab, model, name, loss=loss, overwrite=overwrite, spans_key=spans_key,
        set_ents=set_ents, heads=heads, scorer=scorer,
    )


class TaughtNetNER(TrainablePipe):
    """Token-level BILUO tagger with constrained Viterbi decoding, so the entities it
    sets are always well formed. Its probabilities, and the teacher distributions it
    learns from, are over the BIO columns (B-e1, I-e1, ..., B-ek, I-ek, O); with per-type
    heads, over each type's (B, I, O).

    It reads nothing from the doc but its tokens, and doc.tensor when its model listens
    to a tok2vec component; it never writes doc.tensor."""

    def __init__(
        self,
        vocab: Vocab,
        model: Model,
        name: str = "taughtnet_ner",
        *,
        loss: Optional[DistillationLoss] = None,
        overwrite: bool = False,
        spans_key: Optional[str] = "taughtnet",
        set_ents: bool = True,
        heads: str = "joint",
        scorer: Optional[Callable] = score_entities,
    ) -> None:
        if heads not in HEADS:
            raise ConfigError(f"{name}: heads must be one of {HEADS}, got {heads!r}")
        self.vocab = vocab
        self.model = model
        self.name = name
        self.loss = loss if loss is not None else DistillationLoss()
        self.scorer = scorer
        self.cfg = {
            "labels": [],
            "overwrite": overwrite,
            "spans_key": spans_key,
            "set_ents": set_ents,
            "heads": heads,
            "plugin_version": __version__,
        }
        self._teacher_columns: Dict[Tuple[str, ...], numpy.ndarray] = {}

    @property
    def labels(self) -> Tuple[str, ...]:
        """The entity types, in the order of the tag columns."""
        return tuple(self.cfg["labels"])

    @property
    def label_data(self) -> List[str]:
        return list(self.labels)

    @property
    def tag_names(self) -> List[str]:
        """The BIO columns of `predict_proba` and of teacher distributions:
        B-e1, I-e1, ..., B-ek, I-ek, O."""
        return tag_names(self.labels)

    @property
    def heads(self) -> str:
        return self.cfg["heads"]

    @property
    def type_tag_names(self) -> List[str]:
        """The columns of `predict_type_proba` and of per-type teacher distributions:
        B-e1, I-e1, O-e1, ..., B-ek, I-ek, O-ek (O-t: not t)."""
        return [f"{prefix}-{t}" for t in self.labels for prefix in ("B", "I", "O")]

    @property
    def model_tag_names(self) -> List[str]:
        """The BILUO columns the model scores: B-e1, I-e1, L-e1, U-e1, ..., O (joint
        heads), or B-t, I-t, L-t, U-t, O-t for each type t (per-type heads)."""
        if self.heads == "per_type":
            return [f"{prefix}-{t}" for t in self.labels for prefix in (*BILUO_PREFIXES, "O")]
        return biluo_tag_names(self.labels)

    def _head_log_probs(self, scores: List[Floats2d]) -> List[numpy.ndarray]:
        """Each doc's log-probabilities under every type's head, (n_tokens, k, 5) per doc
        (computed for the whole batch at once)."""
        arrays = [self.model.ops.to_numpy(s) for s in scores]
        if not arrays:
            return []
        flat = numpy.concatenate(arrays).astype("float64").reshape(-1, len(self.labels), 5)
        flat -= flat.max(axis=2, keepdims=True)
        flat -= numpy.log(numpy.exp(flat).sum(axis=2, keepdims=True))
        return numpy.split(flat, numpy.cumsum([len(a) for a in arrays])[:-1])

    def add_label(self, label: str) -> int:
        if not isinstance(label, str) or not label or label.startswith(("B-", "I-")) or label == "O":
            raise ValueError(f"{self.name}: a label is an entity type such as 'Disease', got {label!r}")
        if label in self.labels:
            return 0
        if self.model.get_ref("output_layer").has_dim("nO"):
            raise ValueError(
                f"{self.name}: cannot add label {label!r} to an initialized component; "
                "its tags are fixed (train a new one with all labels)"
            )
        self.cfg["labels"].append(label)
        self.vocab.strings.add(label)
        return 1

    def predict(self, docs: Iterable[Doc]) -> List[Floats2d]:
        """BILUO tag logits per doc, each shaped (n_tokens, 4k+1)."""
        docs = list(docs)
        if not any(len(doc) for doc in docs):
            return [self.model.ops.alloc2f(len(doc), len(self.model_tag_names)) for doc in docs]
        self._check_listener_input(docs)
        return self.model.predict(docs)

    def _check_listener_input(self, docs: List[Doc]) -> None:
        """At inference a Tok2VecListener reads doc.tensor, and silently gives zeros when
        no tok2vec ran; refuse instead, and a tensor of the wrong width."""
        for node in self.model.walk():
            if not isinstance(node, Tok2VecListener):
                continue
            width = node.get_dim("nO")
            for doc in docs:
                if len(doc) and doc.tensor.size == 0:
                    raise ConfigError(
                        f"{self.name}: its model listens to a tok2vec component "
                        f"({node.upstream_name!r}) that has not run on the doc (doc.tensor is "
                        "empty); to add the pipe to another pipeline, give it its own copy of the "
                        "tok2vec first: source_nlp.replace_listeners('tok2vec', '<pipe>', ['model.tok2vec'])"
                    )
                if len(doc) and doc.tensor.shape[1] != width:
                    raise ConfigError(
                        f"{self.name}: its model listens to a tok2vec component of width {width}, "
                        f"but doc.tensor has width {doc.tensor.shape[1]} (another pipe's tok2vec?); "
                        "give the pipe its own copy of its tok2vec with replace_listeners"
                    )

    def predict_proba(self, docs: Iterable[Doc]) -> List[numpy.ndarray]:
        """Per-token BIO probabilities, one float32 numpy array (n_tokens, 2k+1) per doc,
        columns as in `tag_names` (B = B + U, I = I + L of the BILUO model). Per-type heads
        are combined as teachers are (aggregate.py, normalised by the sum). The docs must
        have been through the pipes before this one (e.g. a shared tok2vec)."""
        if self.heads == "per_type":
            return [
                aggregate_distributions([t.astype("float64") for t in _split_types(type_probs)])
                for type_probs in self.predict_type_proba(docs)
            ]
        fold = bio_columns(len(self.labels))
        probs = []
        for scores in self.predict(docs):
            biluo = _softmax(self.model.ops.to_numpy(scores))
            bio = numpy.zeros((biluo.shape[0], len(self.tag_names)), dtype=numpy.float32)
            for column, target in enumerate(fold):
                bio[:, target] += biluo[:, column]
            probs.append(bio)
        return probs

    def predict_type_proba(self, docs: Iterable[Doc]) -> List[numpy.ndarray]:
        """Per-token (B, I, O) of each type, one float32 array (n_tokens, 3k) per doc,
        columns as in `type_tag_names`: each type's head (per-type heads), or the
        marginals of the joint softmax (B-t, I-t, and the rest)."""
        if self.heads == "joint":
            out = []
            for bio in self.predict_proba(docs):
                b, i = bio[:, 0:-1:2], bio[:, 1:-1:2]
                out.append(numpy.stack([b, i, (1.0 - b - i).clip(0.0, 1.0)], axis=2).reshape(len(bio), -1))
            return out
        out = []
        for log_probs in self._head_log_probs(self.predict(docs)):
            p = numpy.exp(log_probs)  # (n_tokens, k, 5): B, I, L, U, O-t
            bio = numpy.stack([p[..., 0] + p[..., 3], p[..., 1] + p[..., 2], p[..., 4]], axis=2)
            out.append(bio.reshape(len(p), -1).astype(numpy.float32))
        return out

    def _decode(self, docs: List[Doc], scores: List[Floats2d]) -> List[List[Tuple[Span, float]]]:
        """Each doc's predicted entities with their confidence (the mean probability of
        their tokens' tags), in order; per-type heads are decoded type by type."""
        if self.heads == "per_type":
            # every (doc, type) pair is one sequence to decode: one Viterbi call for the batch
            per_doc = self._head_log_probs(scores)
            jobs = [(d, lps[:, j], (label,)) for j, label in enumerate(self.labels) for d, lps in enumerate(per_doc)]
        else:
            jobs = [(d, _log_softmax(self.model.ops.to_numpy(s).astype("float64")), self.labels) for d, s in enumerate(scores)]
        paths = constrained_viterbi([log_probs for _, log_probs, _ in jobs])
        found: List[List[Tuple[Span, float]]] = [[] for _ in docs]
        for (d, log_probs, labels), path in zip(jobs, paths):
            doc = docs[d]
            for start, end, label in tags_to_spans(path, labels):
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

    def set_annotations(self, docs: Iterable[Doc], scores: List[Floats2d]) -> None:
        """Each predicted entity and its confidence go to doc.spans[spans_key] (unless
        None) and, with set_ents, to doc.ents (see `overwrite`; of predictions that overlap
        each other, which only per-type heads make, the more confident is kept)."""
        docs = list(docs)
        spans_key, set_ents, overwrite = self.cfg["spans_key"], self.cfg["set_ents"], self.cfg["overwrite"]
        for doc, found in zip(docs, self._decode(docs, scores)):
            predicted = [span for span, _ in found]
            confidences = [confidence for _, confidence in found]
            if spans_key is not None:
                doc.spans[spans_key] = SpanGroup(
                    doc, name=spans_key, spans=predicted,
                    attrs={"scores": numpy.array(confidences, dtype="float32")},
                )
            if not set_ents:
                continue
            taken = set() if overwrite else {i for e in doc.ents for i in range(e.start, e.end)}
            new_ents = []
            # most confident first (a stable sort: equal ones stay in document order)
            for span, confidence in sorted(found, key=lambda sc: -sc[1]):
                if not taken.intersection(range(span.start, span.end)):
                    taken.update(range(span.start, span.end))
                    span._.set(CONFIDENCE_ATTR, confidence)  # kept for compatibility: use the span group
                    new_ents.append(span)
            new_ents.sort(key=lambda span: span.start)
            if overwrite:
                doc.set_ents(new_ents, default="outside")
            else:
                doc.ents = list(doc.ents) + new_ents

    def score(self, examples: Iterable[Example], **kwargs) -> Dict:
        """The scorer's figures; with per-type heads, a doc of one type is scored by the
        predictions of that type's head (the span group)."""
        validate_examples(examples, "TaughtNetNER.score")
        if self.heads == "per_type" and self.cfg["spans_key"] is not None:
            kwargs.setdefault("type_spans_key", self.cfg["spans_key"])
        return self.scorer(examples, **kwargs)

    def get_loss(self, examples: Iterable[Example], scores: List[Floats2d]) -> Tuple[float, List[Floats2d]]:
        """Distillation loss when the examples carry teacher distributions, else
        cross-entropy on the gold tags (missing annotation is skipped). Per-type heads:
        the sum over types t of the loss of t's head, against t's teachers (KL) and the
        gold of the docs that annotate t, O included (CE)."""
        examples = list(examples)
        validate_examples(examples, "TaughtNetNER.get_loss")
        if self.heads == "per_type":
            return self._per_type_loss(examples, scores)
        ops = self.model.ops
        golds, teachers = [], []
        for eg in examples:
            gold = self._gold_ids(eg)
            teacher = self._teacher_probs(eg)
            if teacher is not None:
                gold[gold == len(self.model_tag_names) - 1] = -1  # gold O only means "not this type"
            golds.append(gold)
            teachers.append(teacher)
        n_with_teacher = self._count_teachers(teachers)
        lengths = ops.asarray1i([len(eg.predicted) for eg in examples])
        flat_scores = ops.flatten(list(scores))
        truths = (
            ops.asarray1i(numpy.concatenate(golds)),
            ops.asarray2f(numpy.concatenate(teachers)) if n_with_teacher else None,
        )
        d_scores, loss = self.loss(flat_scores, truths)
        self._check_finite(loss)
        return loss, ops.unflatten(d_scores, lengths)

    def _count_teachers(self, teachers: List[Optional[numpy.ndarray]]) -> int:
        """How many examples of a batch carry distributions: all or none of them."""
        n_with_teacher = sum(t is not None for t in teachers)
        if 0 < n_with_teacher < len(teachers):
            raise ValueError(
                f"{self.name}: a training batch mixes {n_with_teacher} examples with teacher "
                f"distributions and {len(teachers) - n_with_teacher} without; give every "
                "example of the training corpus its distributions"
            )
        return n_with_teacher

    def _check_finite(self, loss: float) -> None:
        if not numpy.isfinite(loss):
            raise ValueError(f"{self.name}: the loss is not finite ({loss}); lower the learning rate")

    def _per_type_loss(self, examples: List[Example], scores: List[Floats2d]) -> Tuple[float, List[Floats2d]]:
        ops = self.model.ops
        golds = [self._gold_blocks(eg) for eg in examples]
        teachers = [self._type_teacher_targets(eg) for eg in examples]
        n_with_teacher = self._count_teachers(teachers)
        lengths = ops.asarray1i([len(eg.predicted) for eg in examples])
        flat_scores = ops.flatten(list(scores))
        gold = numpy.concatenate(golds)
        teacher = ops.asarray2f(numpy.concatenate(teachers)) if n_with_teacher else None
        d_scores = ops.alloc2f(*flat_scores.shape)
        loss = 0.0
        for j in range(len(self.labels)):
            head = slice(5 * j, 5 * j + 5)
            truths = (ops.asarray1i(gold[:, j]), teacher[:, head] if teacher is not None else None)
            d_head, head_loss = self.loss(ops.xp.ascontiguousarray(flat_scores[:, head]), truths)
            d_scores[:, head] = d_head
            loss += head_loss
        self._check_finite(loss)
        return loss, ops.unflatten(d_scores, lengths)

    def _gold_blocks(self, eg: Example) -> numpy.ndarray:
        """(n_tokens, k) gold tag ids within each type's head (B, I, L, U, O-t); -1 where
        the doc does not annotate that type (a doc of one type annotates only it; a doc
        without a type record, every type)."""
        labels = self.labels
        own = doc_entity_type(eg.reference)
        if own is not None and own not in labels:
            raise ValueError(
                f"{self.name}: training doc {eg.reference.text[:60]!r} is of type {own!r}, "
                f"not among the component's labels {list(labels)}"
            )
        annotated = [labels.index(own)] if own is not None else list(range(len(labels)))
        gold = numpy.full((len(eg.predicted), len(labels)), -1, dtype=numpy.int32)
        for i, tag in enumerate(eg.get_aligned_ner()):
            if tag in (None, "", "-"):
                continue
            gold[i, annotated] = 4  # O, and an entity of one type is "not t" for the others
            if tag == "O":
                continue
            prefix, label = tag.split("-", 1)
            if label not in labels:
                raise ValueError(
                    f"{self.name}: unknown entity label {label!r} in training doc "
                    f"{eg.reference.text[:60]!r}; the component's labels are {list(labels)}"
                )
            gold[i, labels.index(label)] = BILUO_PREFIXES.index(prefix)
        return gold

    def _type_teacher_targets(self, eg: Example) -> Optional[numpy.ndarray]:
        """The per-type teacher columns as (n_tokens, 5k) BILUO targets, heads in our order."""
        probs = eg.reference.user_data.get(TEACHER_TYPE_PROBS_KEY)
        if probs is None:
            if TEACHER_PROBS_KEY in eg.reference.user_data:
                raise ValueError(
                    f"{self.name}: per-type heads learn from each type's own teacher columns, but the "
                    "distributions of this corpus have only the global ones (written by "
                    "spacy-taughtnet 0.1.0); rerun distill-teachers"
                )
            return None
        if probs.shape[0] != len(eg.predicted):
            raise ValueError(
                f"{self.name}: the teacher distributions of doc {eg.reference.text[:60]!r} have "
                f"{probs.shape[0]} rows, but the doc has {len(eg.predicted)} tokens"
            )
        theirs = tuple(eg.reference.user_data[TEACHER_LABELS_KEY])
        self._columns_for(theirs)  # checks the labels
        return numpy.concatenate(
            [biluo_targets(probs[:, 3 * j : 3 * j + 3]) for j in (theirs.index(label) for label in self.labels)],
            axis=1,
        )

    def _gold_ids(self, eg: Example) -> numpy.ndarray:
        index = {tag: i for i, tag in enumerate(self.model_tag_names)}
        gold = numpy.full(len(eg.predicted), -1, dtype=numpy.int32)
        for i, tag in enumerate(eg.get_aligned_ner()):
            if tag in (None, "", "-"):
                continue
            if tag not in index:
                label = tag.split("-", 1)[-1]
                raise ValueError(
                    f"{self.name}: unknown entity label {label!r} in training doc "
                    f"{eg.reference.text[:60]!r}; the component's labels are {list(self.labels)}"
                )
            gold[i] = index[tag]
        return gold

    def _teacher_probs(self, eg: Example) -> Optional[numpy.ndarray]:
        probs = eg.reference.user_data.get(TEACHER_PROBS_KEY)
        if probs is None:
            return None
        if probs.shape[0] != len(eg.predicted):
            raise ValueError(
                f"{self.name}: the teacher distributions of doc {eg.reference.text[:60]!r} have "
                f"{probs.shape[0]} rows, but the doc has {len(eg.predicted)} tokens"
            )
        columns = self._columns_for(tuple(eg.reference.user_data[TEACHER_LABELS_KEY]))
        return biluo_targets(probs[:, columns])

    def _columns_for(self, teacher_labels: Tuple[str, ...]) -> numpy.ndarray:
        """Where each of our tag columns sits among the distributions' columns."""
        if teacher_labels not in self._teacher_columns:
            if sorted(teacher_labels) != sorted(self.labels):
                raise ValueError(
                    f"{self.name}: the component's labels {list(self.labels)} disagree with "
                    f"the teacher distributions' labels {list(teacher_labels)}"
                )
            theirs = tag_names(teacher_labels)
            self._teacher_columns[teacher_labels] = numpy.array(
                [theirs.index(tag) for tag in self.tag_names]
            )
        return self._teacher_columns[teacher_labels]

    def initialize(
        self,
        get_examples: Callable[[], Iterable[Example]],
        *,
        nlp: Optional[Language] = None,
        labels: Optional[Sequence[str]] = None,
    ) -> None:
        """Set the labels (given, else those of the teacher distributions, else the
        sorted entity types of the examples) and initialize the model on the first examples.

        Only those first examples are checked (their type, the label order of their teacher
        distributions): each example of a corpus with distributions reads its doc's rows, so
        a walk over them all (spaCy's validate_get_examples) would read every doc's. get_loss
        checks each example's label order as it trains, and a TaughtNetCorpus gives all its
        examples one order (the manifests of its distributions folders, checked to agree
        before its first example)."""
        if not callable(get_examples):
            raise TypeError(Errors.E930.format(method="TaughtNetNER.initialize", obj=type(get_examples)))
        sample = list(islice(get_examples(), 10))
        if not sample:
            raise ValueError(f"{self.name}: initialize got no examples")
        validate_examples(sample, "TaughtNetNER.initialize")
        if labels is None and not self.labels:
            labels = self._labels_from(get_examples())
        for label in labels or ():
            self.add_label(label)
        if not self.labels:
            raise ValueError(
                f"{self.name}: no entity labels: the examples hold no entities and no labels "
                "were given ([initialize.components.<name>.labels])"
            )
        for eg in sample:
            if TEACHER_LABELS_KEY in eg.reference.user_data:
                self._columns_for(tuple(eg.reference.user_data[TEACHER_LABELS_KEY]))
        output_layer = self.model.get_ref("output_layer")
        n_tags = len(self.model_tag_names)
        if output_layer.has_dim("nO") and output_layer.get_dim("nO") != n_tags:
            raise ValueError(
                f"{self.name}: the model has {output_layer.get_dim('nO')} outputs, but the "
                f"labels {list(self.labels)} need {n_tags}"
            )
        output_layer.set_dim("nO", n_tags)
        self.model.initialize(X=[eg.predicted for eg in sample])

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> "TaughtNetNER":
        """Load labels and weights; the factory settings stay those of the config."""
        exclude = list(exclude)
        saved = Path(path) / "cfg"
        if "cfg" not in exclude and saved.is_file():
            self._check_saved_cfg(srsly.read_json(saved), str(Path(path)))
        settings = {key: self.cfg[key] for key in FACTORY_SETTINGS}
        super().from_disk(path, exclude=exclude)
        self.cfg.update(settings, plugin_version=__version__)
        return self

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "TaughtNetNER":
        """Load labels and weights; the factory settings stay those of the config."""
        exclude = list(exclude)
        saved = srsly.msgpack_loads(bytes_data).get("cfg")
        if "cfg" not in exclude and saved is not None:
            self._check_saved_cfg(srsly.json_loads(saved), f"pipe {self.name!r}")
        settings = {key: self.cfg[key] for key in FACTORY_SETTINGS}
        super().from_bytes(bytes_data, exclude=exclude)
        self.cfg.update(settings, plugin_version=__version__)
        return self

    def _check_saved_cfg(self, saved_cfg: Dict, where: str) -> None:
        _check_plugin_version(saved_cfg, where)
        saved_heads = saved_cfg.get("heads", "joint")  # 0.1.0 saved no heads: joint
        if saved_heads != self.heads:
            raise ConfigError(
                f"{where}: the pipe was trained with heads = {saved_heads!r}, but its config says "
                f"{self.heads!r}; load it with its own config (heads = {saved_heads!r})"
            )

    @staticmethod
    def _labels_from(examples: Iterable[Example]) -> List[str]:
        types = set()
        for eg in examples:
            if TEACHER_LABELS_KEY in eg.reference.user_data:
                return list(eg.reference.user_data[TEACHER_LABELS_KEY])
            types.update(ent.label_ for ent in eg.reference.ents)
            if doc_entity_type(eg.reference):
                types.add(doc_entity_type(eg.reference))
        return sorted(types)


def _check_plugin_version(saved_cfg: Dict, where: str) -> None:
    """Refuse a pipe saved by a spacy-taughtnet of another major.minor version. A cfg
    without a version predates the record (0.1.x) and is read as is."""
    saved = saved_cfg.get("plugin_version")
    if saved is None or _minor(saved) == _minor(__version__):
        return
    raise ModelVersionError(
        f"{where}: this model was saved by spacy-taughtnet {saved}, but spacy-taughtnet "
        f"{__version__} is installed; it loads with spacy-taughtnet {_minor(saved)}.x: "
        f"pip install 'spacy-taughtnet=={_minor(saved)}.*' (or retrain the model)"
    )


def _split_types(type_probs: numpy.ndarray) -> List[numpy.ndarray]:
    """(n_tokens, 3k) per-type columns as k (n_tokens, 3) arrays."""
    return [type_probs[:, 3 * j : 3 * j + 3] for j in range(type_probs.shape[1] // 3)]


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def _log_softmax(scores: numpy.ndarray) -> numpy.ndarray:
    shifted = scores - scores.max(axis=1, keepdims=True)
    return shifted - numpy.log(numpy.exp(shifted).sum(axis=1, keepdims=True))


def _softmax(scores: numpy.ndarray) -> numpy.ndarray:
    return numpy.exp(_log_softmax(scores.astype("float64"))).astype("float32")
