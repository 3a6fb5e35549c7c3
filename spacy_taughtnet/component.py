"""The `taughtnet_ner` pipe: a token-level IOB entity recogniser that learns from gold
entities, from teacher distributions, or both.

One component serves both roles of the method: trained on a single-type corpus without
distributions it is a teacher; trained on the global data whose examples carry teacher
distributions (see readers.py) it is the multi-type student.
"""
from collections import defaultdict
from itertools import islice
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy
import srsly
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.pipeline.tok2vec import Tok2VecListener
from spacy.scorer import PRFScore
from spacy.tokens import Doc, Span, SpanGroup
from spacy.training import Example, validate_examples, validate_get_examples
from spacy.util import registry
from spacy.vocab import Vocab
from thinc.api import Config, Model
from thinc.types import Floats2d

from . import model as _architectures  # noqa: F401  (registers spacy-taughtnet.TokenTagger.v1)
from .about import __version__
from .corpora import doc_entity_type
from .decoding import (
    biluo_tag_names,
    biluo_targets,
    bio_columns,
    constrained_viterbi,
    tag_names,
    tags_to_spans,
)
from .errors import ConfigError, ModelVersionError
from .loss import DistillationLoss

# Where a reader puts an example's teacher distributions: on the reference doc's user_data.
TEACHER_PROBS_KEY = "taughtnet_teacher_probs"
TEACHER_LABELS_KEY = "taughtnet_teacher_labels"
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


@registry.scorers("spacy-taughtnet.ner_scorer.v1")
def make_ner_scorer() -> Callable:
    return score_entities


def score_entities(examples: Iterable[Example], *, entity_types: Optional[Sequence[str]] = None, **kwargs) -> Dict:
    """Entity P/R/F, overall and per type, exact match on character offsets.

    A reference doc from a single-type corpus (its type recorded by corpora.read_iob) is
    scored on that type only: predictions of other types there are neither right nor
    wrong, since the corpus did not annotate them. A doc without that record is scored on
    `entity_types` when given (`nlp.evaluate(examples, scorer_cfg={"entity_types": [...]})`),
    else on every type, which assumes its gold annotates every type.
    """
    total = PRFScore()
    per_type: Dict[str, PRFScore] = defaultdict(PRFScore)
    for eg in examples:
        own_type = doc_entity_type(eg.reference)
        scored = {own_type} if own_type is not None else set(entity_types) if entity_types else None

        def spans(doc: Doc) -> set:
            return {
                (ent.start_char, ent.end_char, ent.label_)
                for ent in doc.ents
                if scored is None or ent.label_ in scored
            }

        pred, gold = spans(eg.predicted), spans(eg.reference)
        total.score_set(pred, gold)
        for label in {s[2] for s in pred | gold}:
            per_type[label].score_set(
                {s for s in pred if s[2] == label}, {s for s in gold if s[2] == label}
            )
    if len(total) == 0:
        return {"ents_p": None, "ents_r": None, "ents_f": None, "ents_per_type": None}
    return {
        "ents_p": total.precision,
        "ents_r": total.recall,
        "ents_f": total.fscore,
        "ents_per_type": {label: prf.to_dict() for label, prf in sorted(per_type.items())},
    }


@Language.factory(
    "taughtnet_ner",
    assigns=["doc.ents", "doc.spans", "token.ent_iob", "token.ent_type"],
    default_config={
        "model": DEFAULT_MODEL,
        "loss": {"@losses": "spacy-taughtnet.DistillationLoss.v1", "lambda_": 0.99, "temperature": 1.0},
        "overwrite": False,
        "spans_key": "taughtnet",
        "set_ents": True,
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
    scorer: scoring method (spacy-taughtnet.ner_scorer.v1).

    overwrite, spans_key and set_ents are kept in the pipe's cfg and follow the config
    it is loaded with: `spacy.load(path, config={"components": {"ner": {"set_ents": False}}})`.
    """
    return TaughtNetNER(
        nlp.vocab, model, name, loss=loss, overwrite=overwrite, spans_key=spans_key,
        set_ents=set_ents, scorer=scorer,
    )


class TaughtNetNER(TrainablePipe):
    """Token-level BILUO tagger with constrained Viterbi decoding, so the entities it
    sets are always well formed. Its probabilities, and the teacher distributions it
    learns from, are over the BIO columns (B-e1, I-e1, ..., B-ek, I-ek, O).

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
        scorer: Optional[Callable] = score_entities,
    ) -> None:
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
    def model_tag_names(self) -> List[str]:
        """The BILUO columns the model scores: B-e1, I-e1, L-e1, U-e1, ..., O."""
        return biluo_tag_names(self.labels)

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
        columns as in `tag_names` (B = B + U, I = I + L of the BILUO model). The docs must
        have been through the pipes before this one (e.g. a shared tok2vec)."""
        fold = bio_columns(len(self.labels))
        probs = []
        for scores in self.predict(docs):
            biluo = _softmax(self.model.ops.to_numpy(scores))
            bio = numpy.zeros((biluo.shape[0], len(self.tag_names)), dtype=numpy.float32)
            for column, target in enumerate(fold):
                bio[:, target] += biluo[:, column]
            probs.append(bio)
        return probs

    def set_annotations(self, docs: Iterable[Doc], scores: List[Floats2d]) -> None:
        """Each predicted entity and its confidence go to doc.spans[spans_key] (unless
        None) and, with set_ents, to doc.ents (see `overwrite`)."""
        docs = list(docs)
        spans_key, set_ents, overwrite = self.cfg["spans_key"], self.cfg["set_ents"], self.cfg["overwrite"]
        log_probs = [_log_softmax(self.model.ops.to_numpy(s).astype("float64")) for s in scores]
        for doc, doc_log_probs, path in zip(docs, log_probs, constrained_viterbi(log_probs)):
            predicted, confidences = [], []
            for start, end, label in tags_to_spans(path, self.labels):
                # an entity never starts or ends on a whitespace token
                while start < end and doc[start].is_space:
                    start += 1
                while end > start and doc[end - 1].is_space:
                    end -= 1
                if start == end:
                    continue
                predicted.append(Span(doc, start, end, label=label))
                token_log_probs = doc_log_probs[numpy.arange(start, end), path[start:end]]
                confidences.append(float(numpy.exp(token_log_probs.mean())))
            if spans_key is not None:
                doc.spans[spans_key] = SpanGroup(
                    doc, name=spans_key, spans=predicted,
                    attrs={"scores": numpy.array(confidences, dtype="float32")},
                )
            if not set_ents:
                continue
            taken = set() if overwrite else {i for e in doc.ents for i in range(e.start, e.end)}
            new_ents = []
            for span, confidence in zip(predicted, confidences):
                if not taken.intersection(range(span.start, span.end)):
                    span._.set(CONFIDENCE_ATTR, confidence)  # kept for compatibility: use the span group
                    new_ents.append(span)
            if overwrite:
                doc.set_ents(new_ents, default="outside")
            else:
                doc.ents = list(doc.ents) + new_ents

    def get_loss(self, examples: Iterable[Example], scores: List[Floats2d]) -> Tuple[float, List[Floats2d]]:
        """Distillation loss when the examples carry teacher distributions, else
        cross-entropy on the gold tags (missing annotation is skipped)."""
        examples = list(examples)
        validate_examples(examples, "TaughtNetNER.get_loss")
        ops = self.model.ops
        golds, teachers = [], []
        for eg in examples:
            gold = self._gold_ids(eg)
            teacher = self._teacher_probs(eg)
            if teacher is not None:
                gold[gold == len(self.model_tag_names) - 1] = -1  # gold O only means "not this type"
            golds.append(gold)
            teachers.append(teacher)
        n_with_teacher = sum(t is not None for t in teachers)
        if 0 < n_with_teacher < len(teachers):
            raise ValueError(
                f"{self.name}: a training batch mixes {n_with_teacher} examples with teacher "
                f"distributions and {len(teachers) - n_with_teacher} without; give every "
                "example of the training corpus its distributions"
            )
        lengths = ops.asarray1i([len(eg.predicted) for eg in examples])
        flat_scores = ops.flatten(list(scores))
        truths = (
            ops.asarray1i(numpy.concatenate(golds)),
            ops.asarray2f(numpy.concatenate(teachers)) if n_with_teacher else None,
        )
        d_scores, loss = self.loss(flat_scores, truths)
        if not numpy.isfinite(loss):
            raise ValueError(f"{self.name}: the loss is not finite ({loss}); lower the learning rate")
        return loss, ops.unflatten(d_scores, lengths)

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
        sorted entity types of the examples) and initialize the model."""
        validate_get_examples(get_examples, "TaughtNetNER.initialize")
        if labels is None and not self.labels:
            labels = self._labels_from(get_examples())
        for label in labels or ():
            self.add_label(label)
        if not self.labels:
            raise ValueError(
                f"{self.name}: no entity labels: the examples hold no entities and no labels "
                "were given ([initialize.components.<name>.labels])"
            )
        for eg in get_examples():
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
        doc_sample = [eg.predicted for eg in islice(get_examples(), 10)]
        if not doc_sample:
            raise ValueError(f"{self.name}: initialize got no examples")
        self.model.initialize(X=doc_sample)

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> "TaughtNetNER":
        """Load labels and weights; the factory settings stay those of the config."""
        exclude = list(exclude)
        saved = Path(path) / "cfg"
        if "cfg" not in exclude and saved.is_file():
            _check_plugin_version(srsly.read_json(saved), str(Path(path)))
        settings = {key: self.cfg[key] for key in FACTORY_SETTINGS}
        super().from_disk(path, exclude=exclude)
        self.cfg.update(settings, plugin_version=__version__)
        return self

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "TaughtNetNER":
        """Load labels and weights; the factory settings stay those of the config."""
        exclude = list(exclude)
        saved = srsly.msgpack_loads(bytes_data).get("cfg")
        if "cfg" not in exclude and saved is not None:
            _check_plugin_version(srsly.json_loads(saved), f"pipe {self.name!r}")
        settings = {key: self.cfg[key] for key in FACTORY_SETTINGS}
        super().from_bytes(bytes_data, exclude=exclude)
        self.cfg.update(settings, plugin_version=__version__)
        return self

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


def _minor(version: str) -> str:
    return ".".join(version.split(".")[:2])


def _log_softmax(scores: numpy.ndarray) -> numpy.ndarray:
    shifted = scores - scores.max(axis=1, keepdims=True)
    return shifted - numpy.log(numpy.exp(shifted).sum(axis=1, keepdims=True))


def _softmax(scores: numpy.ndarray) -> numpy.ndarray:
    return numpy.exp(_log_softmax(scores.astype("float64"))).astype("float32")
