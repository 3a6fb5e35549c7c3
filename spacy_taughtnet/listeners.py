"""A `taughtnet_ner` pipe whose model listens to a tok2vec component (the training form,
configs/*.cfg): what it checks so that it never reads another tok2vec's vectors, and how
it is made self-contained for packaging.

A listener reads doc.tensor. In a pipeline other than its own (`nlp.add_pipe(..., source=)`)
spaCy links it to whatever tok2vec precedes it there, and a foreign tok2vec of the same
width gives vectors the pipe never learnt from: silently wrong entities. So the pipe
remembers the tok2vec component it was built beside (`ListeningPipe.remember_upstream`),
and, on its first docs after each (re)linking, checks that doc.tensor is that tok2vec's
output; the weights' digest of that tok2vec goes into the saved cfg, so that a saved
pipeline whose tok2vec is another one is refused when it is loaded.
"""
import warnings
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Union

import numpy
from spacy.language import Language
from spacy.pipeline.pipe import Pipe
from spacy.pipeline.tok2vec import Tok2Vec, Tok2VecListener
from spacy.tokens import Doc
from spacy.ty import ListenedToComponent
from thinc.api import Model

from .digests import weights_digest
from .errors import ConfigError

# The saved cfg's record of the upstream tok2vec: {"name": ..., "weights": sha256 of its params}.
UPSTREAM_KEY = "upstream"
# A tensor recomputed by the tok2vec may differ from doc.tensor by float rounding (batching).
RTOL, ATOL = 1e-3, 1e-4


def listeners(model: Model) -> List[Tok2VecListener]:
    return [node for node in model.walk() if isinstance(node, Tok2VecListener)]


def fix_hint(upstream: str) -> str:
    return (
        "source the packaged model instead, whose pipe carries its own tok2vec "
        "(spacy.load('en_taughtnet_bio'), `spacy project run package`), or give the pipe its own "
        f"copy of its tok2vec before sourcing it: source_nlp.replace_listeners({upstream!r}, "
        "'<its name there>', ['model.tok2vec'])"
    )


class ListeningPipe:
    """The upstream checks of a pipe whose model may listen to a tok2vec component; a mixin
    of TaughtNetNER (before TrainablePipe)."""

    _upstream: Optional[Tok2Vec] = None
    _upstream_checked = False

    @property
    def name(self) -> str:
        return Pipe.name.__get__(self)

    @name.setter
    def name(self, name: str) -> None:
        # spaCy names every pipe of a pipeline again whenever it links the pipeline's
        # listeners (add_pipe, source=, remove_pipe, replace_pipe): check the upstream again.
        Pipe.name.__set__(self, name)
        self._upstream_checked = False

    def remember_upstream(self, nlp: Language) -> None:
        """Remember the tok2vec component of `nlp` that the model's listener links to: the
        last one before this pipe named as its upstream (or any, upstream "*")."""
        nodes = listeners(self.model)
        if not nodes:
            return
        found = None
        for name, pipe in nlp.pipeline:
            if pipe is self:
                break
            if isinstance(pipe, Tok2Vec) and any(n.upstream_name in ("*", name) for n in nodes):
                found = pipe
        if found is not None:
            self._upstream = found
            self._upstream_checked = False

    def check_listening(self, docs: List[Doc]) -> None:
        """Refuse docs whose doc.tensor the model's listener must not read: empty (the tok2vec
        did not run: disabled, or not in this pipeline), of another width, or, on the first
        docs after each linking, not the output of the tok2vec the pipe was built beside."""
        nodes = listeners(self.model)
        if not nodes:
            return
        upstream = self._upstream.name if self._upstream is not None else nodes[0].upstream_name
        width = nodes[0].get_dim("nO")
        for doc in docs:
            if len(doc) and doc.tensor.size == 0:
                raise ConfigError(
                    f"pipe {self.name!r}: its model listens to the tok2vec component {upstream!r}, "
                    "which has not run on this doc (doc.tensor is empty): it is disabled or "
                    "excluded (nlp.select_pipes(disable=...), spacy.load(..., disable=/exclude=...)), "
                    f"or not in this pipeline; enable {upstream!r}, or, in another pipeline, "
                    + fix_hint(upstream)
                )
            if len(doc) and doc.tensor.shape[1] != width:
                raise ConfigError(
                    f"pipe {self.name!r}: its model listens to a tok2vec component of width {width}, "
                    f"but doc.tensor has width {doc.tensor.shape[1]} (another pipeline's tok2vec); "
                    + fix_hint(upstream)
                )
        if self._upstream_checked or self._upstream is None:
            return
        doc = next((doc for doc in docs if len(doc)), None)
        if doc is None:
            return
        ops = self._upstream.model.ops
        (expected,) = self._upstream.model.predict([doc])
        if not numpy.allclose(ops.to_numpy(expected), ops.to_numpy(doc.tensor), rtol=RTOL, atol=ATOL):
            raise ConfigError(
                f"pipe {self.name!r}: its model listens to a tok2vec component, and doc.tensor "
                f"is not the output of the tok2vec it was trained with ({upstream!r}): this "
                "pipeline's tok2vec is another one (the pipe was sourced into a pipeline with "
                "its own tok2vec?), and the entities would be wrong; " + fix_hint(upstream)
            )
        self._upstream_checked = True

    def record_upstream(self) -> None:
        """Record the upstream's name and weights digest in the cfg (before saving it); a
        pipe whose upstream is unknown records none."""
        self.cfg.pop(UPSTREAM_KEY, None)
        if self._upstream is not None and listeners(self.model):
            self.cfg[UPSTREAM_KEY] = {"name": self._upstream.name, "weights": weights_digest(self._upstream.model)}

    def check_loaded_upstream(self, saved: Optional[Dict], where: str) -> None:
        """After loading: the upstream this pipeline links the pipe to must have the weights
        the saved cfg recorded (those of the tok2vec it was saved beside)."""
        if not saved or self._upstream is None or not listeners(self.model):
            return
        if weights_digest(self._upstream.model) != saved["weights"]:
            raise ConfigError(
                f"{where}: pipe {self.name!r} listens to the tok2vec component {self._upstream.name!r}, "
                f"whose weights are not those of the tok2vec it was saved with ({saved['name']!r}): "
                "it was sourced into a pipeline with another tok2vec, and its entities would be "
                "wrong; " + fix_hint(saved["name"])
            )
        self._upstream_checked = True

    def to_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()) -> None:
        self.record_upstream()
        super().to_disk(path, exclude=exclude)

    def to_bytes(self, *, exclude: Iterable[str] = tuple()) -> bytes:
        self.record_upstream()
        return super().to_bytes(exclude=exclude)

    def from_disk(self, path: Union[str, Path], *, exclude: Iterable[str] = tuple()):
        super().from_disk(path, exclude=exclude)
        self.check_loaded_upstream(self.cfg.get(UPSTREAM_KEY), str(path))
        return self

    def from_bytes(self, bytes_data: bytes, *, exclude: Iterable[str] = tuple()):
        super().from_bytes(bytes_data, exclude=exclude)
        self.check_loaded_upstream(self.cfg.get(UPSTREAM_KEY), f"pipe {self.name!r}")
        return self

    def warn_if_trained(self) -> None:
        """initialize() is about to reset weights that exist already (a sourced or loaded pipe)."""
        if self.model.get_ref("output_layer").has_param("W"):
            warnings.warn(
                f"pipe {self.name!r}: initialize() re-initialises the weights it has (a sourced or "
                "loaded pipe: trained ones), and it predicts nothing useful until trained again. To keep them, initialize the pipeline without it: `with "
                f"nlp.select_pipes(disable=[{self.name!r}]): nlp.initialize()`, or list it in "
                "[training] frozen_components (or source it) in a training config.",
                UserWarning,
                stacklevel=3,
            )


def make_self_contained(nlp: Language) -> List[str]:
    """Give every listening pipe of `nlp` its own copy of the tok2vec (or transformer) it
    listens to (spaCy's replace_listeners, path `model.tok2vec`), then remove the tok2vec
    components no pipe listens to any more. Returns the names of the removed components."""
    for name, pipe in nlp.pipeline:
        if isinstance(pipe, ListenedToComponent):
            for listener_pipe in list(pipe.listening_components):
                nlp.replace_listeners(name, listener_pipe, ["model.tok2vec"])
    removed = [name for name, pipe in nlp.pipeline if isinstance(pipe, ListenedToComponent) and not pipe.listening_components]
    if removed:
        # the copies' settings may refer to the removed tok2vec's (${components.tok2vec...})
        components = nlp.config.interpolate()["components"]
        for name in nlp.component_names:
            nlp._pipe_configs[name] = components[name]
    for name in removed:
        nlp.remove_pipe(name)
    return removed

