"""The `taughtnet_ner` pipe: a token-level IOB entity recogniser that learns from gold
entities, from teacher distributions, or both.

One component serves both roles of the method: trained on a single-type corpus without
distributions it is a teacher; trained on the global data whose examples carry teacher
distributions (see readers.py) it is the multi-type student. Its tag layer, one softmax over
all types or one per type, is the strategy of its `heads` setting (heads.py).
"""
from itertools import islice
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy
import srsly
from spacy.errors import Errors
from spacy.language import Language
from spacy.pipeline import TrainablePipe
from spacy.tokens import Doc
from spacy.training import Example, validate_examples
from spacy.vocab import Vocab
from thinc.api import Model
from thinc.types import Floats2d

from .about import __version__
from .ents import CONFIDENCE_ATTR, RELATIONS, write_ents, write_span_group  # noqa: F401 (CONFIDENCE_ATTR: public here too)
from .errors import ConfigError
from .heads import TEACHER_LABELS_KEY, example_labels, make_heads
from .listeners import ListeningPipe
from .loss import DistillationLoss
from .model import DEFAULT_MODEL, set_tag_count
from .scorer import score_entities
from .versions import check_saved_version

# Settings of the factory kept in `cfg`: a loaded pipe takes them from its (possibly
# overridden) config, not from the saved cfg.
FACTORY_SETTINGS = ("overwrite", "spans_key", "set_ents", "overlaps", "overlap_preferences", "head_targets")
OVERLAPS = ("confidence", "viterbi")


@Language.factory(
    "taughtnet_ner",
    assigns=["doc.ents", "doc.spans", "token.ent_iob", "token.ent_type"],
    default_config={
        "model": DEFAULT_MODEL,
        "loss": {"@losses": "spacy-taughtnet.DistillationLoss.v1", "lambda_": 0.99, "temperature": 1.0},
        "overwrite": False,
        "spans_key": "taughtnet",
        "set_ents": True,
        "overlaps": "confidence",
        "overlap_preferences": [],
        "heads": "joint",
        "head_targets": "own",
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
    overlaps: str,
    overlap_preferences: List[List[str]],
    heads: str,
    head_targets: str,
    scorer: Optional[Callable],
) -> "TaughtNetNER":
    """Create a `taughtnet_ner` pipe (its settings in full: docs/pipelines.md).

    model: per-token tag logits (spacy-taughtnet.TokenTagger.v1 by default).
    loss: the loss with teacher distributions (lambda_, temperature: the soft/hard balance);
        without them the pipe trains with plain cross-entropy.
    overwrite: with set_ents, replace the entities already on the doc; False: keep them and
        add to doc.ents only the predictions that overlap none of them.
    spans_key: doc.spans[spans_key] gets every prediction, overlapping existing entities or not,
        its confidence in attrs["scores"] (aligned with the spans, as spancat does); None: none.
    set_ents: write the predictions to doc.ents (see overwrite); False leaves doc.ents alone
        (read the span group instead).
    overlaps: doc.ents where per-type heads predict overlapping spans (joint heads never do):
        "confidence" keeps the more confident, "viterbi" decodes it with one constrained Viterbi
        over every type's tags (the heads' product; heads.py). The span group keeps them all.
    overlap_preferences: with "confidence", [winner, loser] type pairs, or [winner, loser,
        relation] triples that hold only where the winner's span is the "same" as, "contains",
        is "inside" or is "crossing" the loser's: a span overlapping only spans it is preferred
        to wins whatever their confidence (ents.choose_ents; train-student learns them on
        devel: preferences.py).
    heads: "joint" (one softmax over all types) or "per_type" (one per type, learning from each
        type's teacher columns, scored on a doc of one type by its span group); heads.py.
    head_targets: per-type heads' teacher targets (heads.HEAD_TARGETS): "own" (each type's own
        teachers), "aggregated" (the type's marginals of the aggregated global distribution) or
        "mix" (their mean). Joint heads take "own" only.
    scorer: scoring method (spacy-taughtnet.ner_scorer.v1).

    overwrite, spans_key, set_ents, overlaps, overlap_preferences and head_targets (FACTORY_SETTINGS) are kept in the
    pipe's cfg and follow the config it is loaded with:
    `spacy.load(path, config={"components": {"ner": {"set_ents": False}}})`.
    """
    pipe = TaughtNetNER(
        nlp.vocab, model, name, loss=loss, overwrite=overwrite, spans_key=spans_key,
        set_ents=set_ents, overlaps=overlaps, overlap_preferences=overlap_preferences, heads=heads,
        head_targets=head_targets, scorer=scorer,
    )
    pipe.remember_upstream(nlp)
    return pipe


class TaughtNetNER(ListeningPipe, TrainablePipe):
    """Token-level BILUO tagger with constrained Viterbi decoding, so the entities it
    sets are always well formed. Its probabilities, and the teacher distributions it
    learns from, are over the BIO columns (B-e1, I-e1, ..., B-ek, I-ek, O), or over each
    type's (B, I, O). What its model's columns mean, how they learn and how they are decoded
    is its `strategy` (heads.py).

    It reads nothing from the doc but its tokens, and doc.tensor when its model listens
    to a tok2vec component; it never writes doc.tensor."""

    def __init__(
        self, vocab: Vocab, model: Model, name: str = "taughtnet_ner", *, loss: Optional[DistillationLoss] = None,
        overwrite: bool = False, spans_key: Optional[str] = "taughtnet", set_ents: bool = True,
        overlaps: str = "confidence", overlap_preferences: Sequence[Sequence[str]] = (), heads: str = "joint",
        head_targets: str = "own", scorer: Optional[Callable] = score_entities,
    ) -> None:
        self.strategy = make_heads(heads, name, head_targets)
        if overlaps not in OVERLAPS:
            raise ConfigError(f"{name}: overlaps must be one of {OVERLAPS}, got {overlaps!r}")
        if any(isinstance(p, str) or len(p) not in (2, 3) or p[0] == p[1] or p[2:] and p[2] not in RELATIONS
               for p in overlap_preferences):
            raise ConfigError(
                f"{name}: overlap_preferences are [winner, loser] pairs of two types, or [winner, loser, relation] "
                f"with a relation of {RELATIONS}, got {overlap_preferences!r}"
            )
        self.vocab = vocab
        self.model = model
        self.name = name
        self.loss = loss if loss is not None else DistillationLoss()
        self.scorer = scorer
        self.cfg = {
            "labels": [], "overwrite": overwrite, "spans_key": spans_key, "set_ents": set_ents, "overlaps": overlaps,
            "overlap_preferences": [list(p) for p in overlap_preferences], "heads": heads, "head_targets": head_targets, "plugin_version": __version__,
        }

    @property
    def labels(self) -> Tuple[str, ...]:
        """The entity types, in the order of the tag columns."""
        return tuple(self.cfg["labels"])

    @property
    def label_data(self) -> List[str]:
        return list(self.labels)

    @property
    def heads(self) -> str:
        return self.strategy.name

    @property
    def tag_names(self) -> List[str]:
        """The BIO columns of `predict_proba` and of teacher distributions:
        B-e1, I-e1, ..., B-ek, I-ek, O."""
        return self.strategy.tag_names(self.labels)

    @property
    def type_tag_names(self) -> List[str]:
        """The columns of `predict_type_proba` and of per-type teacher distributions:
        B-e1, I-e1, O-e1, ..., B-ek, I-ek, O-ek (O-t: not t)."""
        return self.strategy.type_tag_names(self.labels)

    @property
    def model_tag_names(self) -> List[str]:
        """The BILUO columns the model scores (heads.py)."""
        return self.strategy.model_tag_names(self.labels)

    @property
    def type_spans_key(self) -> Optional[str]:
        """The span group holding each type's own predictions, where doc.ents may lack some
        (heads whose types overlap); None when doc.ents has them all."""
        return self.cfg["spans_key"] if self.strategy.types_overlap else None

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
        """Tag logits per doc, each shaped (n_tokens, len(model_tag_names))."""
        docs = list(docs)
        if not any(len(doc) for doc in docs):
            return [self.model.ops.alloc2f(len(doc), len(self.model_tag_names)) for doc in docs]
        self.check_listening(docs)
        return self.model.predict(docs)

    def predict_proba(self, docs: Iterable[Doc]) -> List[numpy.ndarray]:
        """Per-token BIO probabilities, one float32 numpy array (n_tokens, 2k+1) per doc,
        columns as in `tag_names` (B = B + U, I = I + L of the BILUO model; per-type heads
        combined as teachers are, aggregate.py). The docs must have been through the pipes
        before this one (e.g. a shared tok2vec)."""
        return self.strategy.predict_proba(self._numpy(self.predict(docs)), self.labels)

    def predict_type_proba(self, docs: Iterable[Doc]) -> List[numpy.ndarray]:
        """Per-token (B, I, O) of each type, one float32 array (n_tokens, 3k) per doc,
        columns as in `type_tag_names`: each type's head (per-type heads), or the
        marginals of the joint softmax (B-t, I-t, and the rest)."""
        return self.strategy.predict_type_proba(self._numpy(self.predict(docs)), self.labels)

    def _numpy(self, scores: List[Floats2d]) -> List[numpy.ndarray]:
        return [self.model.ops.to_numpy(s) for s in scores]

    def set_annotations(self, docs: Iterable[Doc], scores: List[Floats2d]) -> None:
        """Each predicted entity and its confidence go to doc.spans[spans_key] (unless
        None) and, with set_ents, to doc.ents (see `overwrite`; of predictions that overlap
        each other, which only heads with `types_overlap` make, the more confident is kept unless
        overlap_preferences say which type wins, or with overlaps "viterbi" those of one Viterbi
        over every type; ents.py)."""
        docs = list(docs)
        overlaps = self.cfg["overlaps"] if self.cfg["set_ents"] else None
        for doc, (found, ents) in zip(docs, self.strategy.decode_all(docs, self._numpy(scores), self.labels, overlaps)):
            write_span_group(doc, self.cfg["spans_key"], found)
            if ents is not None:
                write_ents(doc, ents, self.cfg["overwrite"], {tuple(p) for p in self.cfg["overlap_preferences"]})

    def score(self, examples: Iterable[Example], **kwargs) -> Dict:
        """The scorer's figures; a doc of one type is scored by the predictions of that type
        in `type_spans_key`, if any (scorer.py)."""
        validate_examples(examples, "TaughtNetNER.score")
        kwargs.setdefault("type_spans_key", self.type_spans_key)
        return self.scorer(examples, **kwargs)

    def get_loss(self, examples: Iterable[Example], scores: List[Floats2d]) -> Tuple[float, List[Floats2d]]:
        """Distillation loss when the examples carry teacher distributions, else
        cross-entropy on the gold tags (missing annotation is skipped); per-type heads sum
        each type's (heads.py)."""
        examples = list(examples)
        validate_examples(examples, "TaughtNetNER.get_loss")
        return self.strategy.get_loss(examples, scores, self.labels, self.loss, self.model.ops)

    def initialize(
        self, get_examples: Callable[[], Iterable[Example]], *, nlp: Optional[Language] = None, labels: Optional[Sequence[str]] = None
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
        self.warn_if_trained()
        if nlp is not None:
            self.remember_upstream(nlp)
        sample = list(islice(get_examples(), 10))
        if not sample:
            raise ValueError(f"{self.name}: initialize got no examples")
        validate_examples(sample, "TaughtNetNER.initialize")
        if labels is None and not self.labels:
            labels = example_labels(get_examples())
        for label in labels or ():
            self.add_label(label)
        if not self.labels:
            raise ValueError(
                f"{self.name}: no entity labels: the examples hold no entities and no labels "
                "were given ([initialize.components.<name>.labels])"
            )
        for eg in sample:
            if TEACHER_LABELS_KEY in eg.reference.user_data:
                self.strategy.teacher_columns(eg.reference.user_data[TEACHER_LABELS_KEY], self.labels)
        set_tag_count(self.model, len(self.model_tag_names), self.labels, self.name)
        self.model.initialize(X=[eg.predicted for eg in sample])

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> "TaughtNetNER":
        """Load labels and weights; the factory settings stay those of the config."""
        saved = Path(path) / "cfg"
        return self._load(super().from_disk, path, exclude, lambda: srsly.read_json(saved) if saved.is_file() else None, str(path))

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()) -> "TaughtNetNER":
        """Load labels and weights; the factory settings stay those of the config."""
        saved = srsly.msgpack_loads(bytes_data).get("cfg")
        return self._load(super().from_bytes, bytes_data, exclude, lambda: None if saved is None else srsly.json_loads(saved), f"pipe {self.name!r}")

    def _load(self, load: Callable, data, exclude: Iterable[str], read_cfg: Callable[[], Optional[Dict]], where: str) -> "TaughtNetNER":
        """load(data) after checking the saved cfg (read_cfg(), unless excluded; None: none): the
        plugin version that wrote it (versions.py) and its heads. The factory settings stay the config's."""
        exclude = list(exclude)
        saved_cfg = None if "cfg" in exclude else read_cfg()
        if saved_cfg is not None:
            check_saved_version(saved_cfg.get("plugin_version"), where)
            self.strategy.check_saved(saved_cfg, where)
        settings = {key: self.cfg[key] for key in FACTORY_SETTINGS}
        load(data, exclude=exclude)
        self.cfg.update(settings, plugin_version=__version__)
        return self

