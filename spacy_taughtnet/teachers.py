"""What a teacher is, and how any spaCy NER pipe yields teacher distributions.

A teachers specification is a YAML file (the safe loader; no aliases, at most 20 levels deep):

    merge: corpus          # teachers of one type: on a corpus's docs its own teachers, elsewhere their
                           # product (the default where corpus teachers are listed); product; or mean
    smoothing: 0.1         # label smoothing of one-hot teachers (default 0.1)
    labels: [Disease, Chemical, GENE]   # optional: the student's labels, in column order
                                        # (default: the mapped labels, in the order they appear)
    teachers:
      - corpus: NCBI-disease-IOB        # a taughtnet_ner trained on ROOT/corpus/NAME by train-teachers
        seeds: 2                        # optional: N teachers with seeds 0..N-1 (an ensemble)
      - pipeline: ggp_ner               # a folder (relative to this file) or an installed package
        labels: {GGP: GENE}             # its labels -> the student's
        component: ner                  # optional: the pipe to read (default: its one NER pipe)
        ignore_unmapped: true           # optional: its unmapped labels count as O (default: error)
        smoothing: 0.05                 # optional: a one-hot teacher's own smoothing

Without a file, the default specification has one corpus teacher (one seed) per corpus.

What a pipe gives, per token, over its mapped labels (B-T1, I-T1, ..., O):
- `taughtnet_ner`: its probabilities (`predict_proba`);
- spaCy's `beam_ner` (an `ner` with beam_width > 1): the beam's entity probabilities
  (`scored_ents`) as token marginals: B-T at a span's first token, I-T inside it;
- a greedy `ner`, an `entity_ruler` or any pipe named by `component` that sets `doc.ents`:
  one-hot rows smoothed as (1 - s) * one-hot + s / (2m + 1).
A teacher mapping onto one label is single-type (merged with that type's other teachers);
one mapping onto several is multi-type, one expert of the aggregation (aggregate.py).
"""
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple, Union

import numpy
import spacy
from spacy.language import Language
from spacy.pipeline import EntityRecognizer, EntityRuler
from spacy.tokens import Doc

from .aggregate import DEFAULT_MERGE, MERGES
from .component import TaughtNetNER
from .errors import ConfigError, TeacherError
from .layout import RunLayout, check_corpus_name

DEFAULT_SMOOTHING = 0.1
MAX_YAML_DEPTH = 20  # a specification needs 4 (teachers, a teacher, its labels)
DEFAULT_SPEC = "the default teachers (one per corpus)"
CORPUS_KEYS = {"corpus", "seeds"}
PIPELINE_KEYS = {"pipeline", "labels", "component", "ignore_unmapped", "smoothing"}
SPEC_KEYS = {"teachers", "merge", "smoothing", "labels"}
NER_PIPES = (TaughtNetNER, EntityRecognizer, EntityRuler)


@dataclass(frozen=True)
class TeacherSpec:
    """One entry of a specification: a corpus to train teachers on, or a pipeline."""

    where: str  # "SPEC: teacher N (...)", for messages
    corpus: Optional[str] = None
    seeds: int = 1
    pipeline: Optional[str] = None
    labels: Tuple[Tuple[str, str], ...] = ()  # (their label, the student's), in order
    component: Optional[str] = None
    ignore_unmapped: bool = False
    smoothing: Optional[float] = None


@dataclass(frozen=True)
class TeachersSpec:
    source: str  # the file, or DEFAULT_SPEC
    teachers: Tuple[TeacherSpec, ...]
    merge: str = DEFAULT_MERGE
    smoothing: float = DEFAULT_SMOOTHING
    labels: Optional[Tuple[str, ...]] = None
    base: Path = Path(".")  # the folder relative pipeline paths start from

    def corpus_teachers(self) -> List[Tuple[str, int]]:
        """(corpus, seed) of every teacher train-teachers trains."""
        return [(t.corpus, seed) for t in self.teachers if t.corpus for seed in range(t.seeds)]


def default_spec(corpora: Sequence[str]) -> TeachersSpec:
    """One corpus teacher per corpus, one seed: the workflow without a specification."""
    teachers = tuple(TeacherSpec(f"teacher {i + 1} (corpus {c})", corpus=c) for i, c in enumerate(corpora))
    return TeachersSpec(DEFAULT_SPEC, teachers, merge=default_merge(teachers))


def default_merge(teachers: Sequence[TeacherSpec]) -> str:
    """A specification's merge when it names none: "corpus" where it lists corpus teachers
    (corpora of one type annotated under different guidelines each keep their own teachers on
    their docs; chosen on devel, BENCHMARKS.md "Teachers of one type: how they merge"; for the
    seeds of one corpus it is their product), else DEFAULT_MERGE."""
    return "corpus" if any(t.corpus for t in teachers) else DEFAULT_MERGE


def _smoothing(value, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value < 1:
        raise ConfigError(f"{where}: smoothing must be a number in [0, 1), got {value!r}")
    return float(value)


def _name(value, where: str, field: str) -> str:
    """A field that names something: a non-empty string (YAML reads `corpus: 2010` as a number)."""
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where}: {field} must be a non-empty string, got {value!r}")
    return value


def _check_keys(mapping: dict, allowed: set, where: str, what: str = "") -> None:
    unknown = set(mapping) - allowed
    if unknown:  # keys of any YAML type: sorted by their text
        raise ConfigError(f"{where}: unknown keys {sorted(unknown, key=str)}{what} (allowed: {sorted(allowed)})")


def _teacher_spec(entry, where: str) -> TeacherSpec:
    if not isinstance(entry, dict) or ("corpus" in entry) == ("pipeline" in entry):
        raise ConfigError(f"{where}: expected a mapping with either `corpus: NAME` or `pipeline: NAME_OR_PATH`, got {entry!r}")
    if "corpus" in entry:
        _check_keys(entry, CORPUS_KEYS, where, " for a corpus teacher")
        corpus = _name(entry["corpus"], where, "corpus")
        try:
            check_corpus_name(corpus)
        except ConfigError as err:
            raise ConfigError(f"{where}: {err}") from None
        seeds = entry.get("seeds", 1)
        if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
            raise ConfigError(f"{where}: seeds must be a whole number >= 1, got {seeds!r}")
        return TeacherSpec(f"{where} (corpus {corpus})", corpus=corpus, seeds=seeds)
    _check_keys(entry, PIPELINE_KEYS, where, " for a pipeline teacher")
    pipeline = _name(entry["pipeline"], where, "pipeline")
    where = f"{where} (pipeline {pipeline})"
    labels = entry.get("labels")
    if not isinstance(labels, dict) or not labels or not all(isinstance(k, str) and isinstance(v, str) and v for k, v in labels.items()):
        raise ConfigError(f"{where}: `labels` must map each of its labels to one of the student's, e.g. {{GGP: GENE}}, got {labels!r}")
    ignore = entry.get("ignore_unmapped", False)
    if not isinstance(ignore, bool):
        raise ConfigError(f"{where}: ignore_unmapped must be true or false, got {ignore!r}")
    component = entry.get("component")
    smoothing = entry.get("smoothing")
    return TeacherSpec(
        where, pipeline=pipeline, labels=tuple(labels.items()), ignore_unmapped=ignore,
        component=None if component is None else _name(component, where, "component"),
        smoothing=None if smoothing is None else _smoothing(smoothing, where),
    )


def parse_spec(data, source: str, base: Union[str, Path] = ".") -> TeachersSpec:
    """A specification from its parsed YAML; `source` names it in errors."""
    if not isinstance(data, dict) or not isinstance(data.get("teachers"), list) or not data["teachers"]:
        raise ConfigError(f"{source}: expected a mapping with a non-empty list `teachers:`")
    _check_keys(data, SPEC_KEYS, source)
    labels = data.get("labels")
    if labels is not None and (
        not isinstance(labels, list) or not labels or not all(isinstance(label, str) and label for label in labels)
        or len(set(labels)) != len(labels)
    ):
        raise ConfigError(f"{source}: labels must be a list of distinct labels (non-empty strings), got {labels!r}")
    teachers = tuple(_teacher_spec(entry, f"{source}: teacher {i + 1}") for i, entry in enumerate(data["teachers"]))
    corpora = [t.corpus for t in teachers if t.corpus]
    if len(set(corpora)) != len(corpora):
        raise ConfigError(f"{source}: a corpus is listed twice ({corpora}); use `seeds` for several teachers of one corpus")
    merge = data.get("merge", default_merge(teachers))
    if merge not in MERGES:
        raise ConfigError(f"{source}: merge must be one of {MERGES}, got {merge!r}")
    return TeachersSpec(
        source, teachers, merge=merge,
        smoothing=_smoothing(data.get("smoothing", DEFAULT_SMOOTHING), source),
        labels=None if labels is None else tuple(labels), base=Path(base),
    )


def read_spec_yaml(path: Path) -> Any:
    """A YAML file read with the safe loader, its events checked first. An alias (`*name`,
    the value of the anchor `&name` again) is refused: nested aliases let a few hundred bytes
    stand for gigabytes. So is nesting deeper than MAX_YAML_DEPTH: the parser's time grows
    with the square of the depth."""
    from srsly.ruamel_yaml import YAML
    from srsly.ruamel_yaml.error import MarkedYAMLError, MarkedYAMLFutureWarning
    from srsly.ruamel_yaml.events import (
        AliasEvent,
        CollectionEndEvent,
        CollectionStartEvent,
    )

    yaml = YAML(typ="safe", pure=True)
    try:
        text = path.read_text(encoding="utf8")
        depth = 0
        for event in yaml.parse(text):
            depth += isinstance(event, CollectionStartEvent) - isinstance(event, CollectionEndEvent)
            line = event.start_mark.line + 1
            if isinstance(event, AliasEvent):
                raise ConfigError(f"{path}:{line}: YAML aliases (*{event.anchor}) are not allowed here; write the value out")
            if depth > MAX_YAML_DEPTH:
                raise ConfigError(f"{path}:{line}: nested more than {MAX_YAML_DEPTH} levels deep")
        return yaml.load(text)
    except (MarkedYAMLError, MarkedYAMLFutureWarning) as err:  # a syntax error, a duplicate key, an unknown tag
        mark = err.problem_mark or err.context_mark
        raise ConfigError(f"{path}:{mark.line + 1}: not valid YAML: {err.problem or err.context}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 (byte 0x{err.object[err.start]:02x} at byte offset {err.start})") from None


def read_spec(path: Union[str, Path]) -> TeachersSpec:
    """Read a specification file (YAML, without aliases)."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: teachers specification not found")
    return parse_spec(read_spec_yaml(path), str(path), path.parent)


def find_taughtnet_pipe(nlp: Language, where: str) -> Tuple[str, TaughtNetNER]:
    """The (name, pipe) of the one `taughtnet_ner` pipe of a pipeline."""
    pipes = [(name, pipe) for name, pipe in nlp.pipeline if isinstance(pipe, TaughtNetNER)]
    if len(pipes) != 1:
        raise TeacherError(f"{where}: expected one taughtnet_ner pipe, found {len(pipes)}")
    return pipes[0]


def load_teacher(path: Union[str, Path]) -> Tuple[Language, str, TaughtNetNER]:
    """Load a trained single-type teacher pipeline: (nlp, pipe name, pipe)."""
    path = Path(path)
    if not (path / "config.cfg").is_file():
        raise TeacherError(
            f"{path}: no trained pipeline here (no config.cfg); train the teacher first "
            "(spacy project run train-teachers)"
        )
    nlp = spacy.load(path)
    name, pipe = find_taughtnet_pipe(nlp, str(path))
    if len(pipe.labels) != 1:
        raise TeacherError(
            f"{path}: a teacher recognises one entity type, this one has {list(pipe.labels)}"
        )
    return nlp, name, pipe


class Teacher:
    """A loaded teacher: a pipeline, the NER pipe it reads, and the map of its labels onto
    the student's. `types`: the student's labels it gives, in its map's order."""

    def __init__(self, where: str, path: Path, nlp: Language, pipe_name: str, mapping: Dict[str, str], *,
                 ignore_unmapped: bool = False, smoothing: float = DEFAULT_SMOOTHING, corpus: Optional[str] = None):
        self.where, self.path, self.nlp, self.pipe_name = where, path, nlp, pipe_name
        self.corpus = corpus  # the corpus it was trained on (a corpus teacher), else None
        self.pipe = nlp.get_pipe(pipe_name)
        self.mapping, self.ignore_unmapped, self.smoothing = mapping, ignore_unmapped, smoothing
        self.types = list(dict.fromkeys(mapping.values()))
        if isinstance(self.pipe, TaughtNetNER):
            self.kind = "probabilities"
        elif isinstance(self.pipe, EntityRecognizer) and self.pipe.cfg.get("beam_width", 1) > 1:
            self.kind = "beam"
        else:
            self.kind = "one-hot"
        known = list(getattr(self.pipe, "labels", None) or ())
        if known:
            unmapped = [label for label in known if label not in mapping]
            if unmapped and not ignore_unmapped:
                raise TeacherError(
                    f"{where}: pipe {pipe_name!r} predicts {unmapped}, which `labels` does not map; "
                    "map them or set `ignore_unmapped: true` (they then count as O)"
                )
            absent = [label for label in mapping if label not in known]
            if absent:
                raise TeacherError(f"{where}: `labels` maps {absent}, but pipe {pipe_name!r} has no such label (its labels: {known})")
        elif self.kind == "probabilities":
            raise TeacherError(f"{where}: pipe {pipe_name!r} has no labels")

    def settings(self, label: str) -> Dict[str, Any]:
        """How the teacher gives `label`, for the distributions manifest (so that other
        settings never reuse stale shards): nothing for a single-type taughtnet_ner teacher
        of that label, else its source labels, kind, smoothing, types and unmapped rule."""
        sources = [theirs for theirs, ours in self.mapping.items() if ours == label]
        if self.kind == "probabilities" and sources == [label] and len(self.types) == 1:
            return {}
        settings: Dict[str, Any] = {"from": sources, "kind": self.kind}
        if self.kind == "one-hot":
            settings["smoothing"] = self.smoothing
        if len(self.types) > 1:
            settings["multi_type"] = list(self.types)
        if self.ignore_unmapped:
            settings["unmapped"] = "O"
        return settings

    def _columns(self, label: str) -> Optional[int]:
        """The B column of a label of the pipe (I is the next), None for an ignored one."""
        if label in self.mapping:
            return 2 * self.types.index(self.mapping[label])
        if not self.ignore_unmapped:
            raise TeacherError(f"{self.where}: pipe {self.pipe_name!r} predicted {label!r}, which `labels` does not map")
        return None

    def predict(self, docs: Sequence[Doc]) -> List[numpy.ndarray]:
        """Per-doc (n_tokens, 2m+1) arrays, columns B-T1, I-T1, ..., B-Tm, I-Tm, O over
        `types`, on the docs' own tokens."""
        copies = [
            Doc(self.nlp.vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc])
            for doc in docs
        ]
        n_cols = 2 * len(self.types) + 1
        if self.kind == "probabilities":
            copies = list(self.nlp.pipe(copies, disable=[self.pipe_name]))
            fold = numpy.zeros((2 * len(self.pipe.labels) + 1, n_cols), dtype=numpy.float32)
            fold[-1, -1] = 1.0
            for j, label in enumerate(self.pipe.labels):
                column = self._columns(label)
                fold[2 * j, -1 if column is None else column] = 1.0
                fold[2 * j + 1, -1 if column is None else column + 1] = 1.0
            probs = self.pipe.predict_proba(copies)
            # a single-type teacher of its own label: its rows as they are (bit for bit)
            return probs if numpy.array_equal(fold, numpy.eye(n_cols)) else [p @ fold for p in probs]
        position = self.nlp.pipe_names.index(self.pipe_name)
        after = self.nlp.pipe_names[position + 1:]
        if self.kind == "beam":
            copies = list(self.nlp.pipe(copies, disable=[self.pipe_name, *after]))
            out = [numpy.zeros((len(doc), n_cols), dtype=numpy.float32) for doc in copies]
            if any(len(doc) for doc in copies):
                for rows, scored in zip(out, self.pipe.scored_ents(self.pipe.predict(copies))):
                    for (start, end, label), prob in scored.items():
                        column = self._columns(label)
                        if column is not None:
                            rows[start, column] += prob
                            rows[start + 1:end, column + 1] += prob
            for rows in out:  # O: the mass of the parses with no (mapped) entity here
                rows[:, -1] = (1.0 - rows[:, :-1].sum(axis=1)).clip(0.0, 1.0)
                rows /= rows.sum(axis=1, keepdims=True)
            return out
        out = []
        for doc in self.nlp.pipe(copies, disable=after):
            rows = numpy.zeros((len(doc), n_cols), dtype=numpy.float32)
            rows[:, -1] = 1.0
            for ent in doc.ents:
                column = self._columns(ent.label_)
                if column is not None:
                    rows[ent.start:ent.end, -1] = 0.0
                    rows[ent.start, column] = 1.0
                    rows[ent.start + 1:ent.end, column + 1] = 1.0
            out.append((1.0 - self.smoothing) * rows + self.smoothing / n_cols)
        return out


def trained_teacher(path: Union[str, Path], where: Optional[str] = None, corpus: Optional[str] = None) -> Teacher:
    """A teacher trained by train-teachers (a single-type taughtnet_ner), giving its own label;
    `corpus`: the corpus it was trained on."""
    nlp, name, pipe = load_teacher(path)
    return Teacher(where or str(path), Path(path), nlp, name, {pipe.labels[0]: pipe.labels[0]}, corpus=corpus)


def _find_ner_pipe(nlp: Language, spec: TeacherSpec) -> str:
    if spec.component is not None:
        if spec.component not in nlp.pipe_names:
            raise TeacherError(f"{spec.where}: no pipe {spec.component!r} (its pipes: {nlp.pipe_names})")
        return spec.component
    names = [name for name, pipe in nlp.pipeline if isinstance(pipe, NER_PIPES)]
    if not names:
        raise TeacherError(
            f"{spec.where}: no NER pipe (taughtnet_ner, ner, beam_ner or entity_ruler) among its pipes "
            f"{nlp.pipe_names}; name the pipe that sets doc.ents with `component:`"
        )
    if len(names) > 1:
        raise TeacherError(f"{spec.where}: several NER pipes {names}; choose one with `component:`")
    return names[0]


def pipeline_teacher(spec: TeacherSpec, base: Path, smoothing: float) -> Teacher:
    """Load a `pipeline:` teacher: a folder (relative to `base`) or an installed package."""
    folder = base / spec.pipeline
    target = str(folder) if folder.exists() else spec.pipeline
    try:
        nlp = spacy.load(target)
    except Exception as err:  # spacy.load's errors vary by cause: missing, broken, bad config
        raise TeacherError(f"{spec.where}: cannot load {target!r}: {err}") from None
    name = _find_ner_pipe(nlp, spec)
    if nlp.path is None:
        raise TeacherError(f"{spec.where}: {target!r} loaded without a folder, so it cannot be recorded")
    return Teacher(
        spec.where, Path(nlp.path), nlp, name, dict(spec.labels), ignore_unmapped=spec.ignore_unmapped,
        smoothing=smoothing if spec.smoothing is None else spec.smoothing,
    )


def load_teachers(spec: TeachersSpec, root: Union[str, Path]) -> Tuple[List[Teacher], List[str]]:
    """Every teacher of a specification (a corpus teacher once per seed, from ROOT/teachers)
    and the student's labels: the spec's `labels`, else the mapped labels in spec order."""
    layout = RunLayout(root)
    teachers: List[Teacher] = []
    for entry in spec.teachers:
        if entry.corpus:
            for seed in range(entry.seeds):
                where = entry.where + (f", seed {seed}" if entry.seeds > 1 else "")
                path = layout.teacher_model(entry.corpus, seed)
                if not (path / "config.cfg").is_file():
                    raise TeacherError(f"{where}: no trained teacher at {path}; train it first (train-teachers --teachers {spec.source})")
                teachers.append(trained_teacher(path, where, corpus=entry.corpus))
        else:
            teachers.append(pipeline_teacher(entry, spec.base, spec.smoothing))
    mapped = list(dict.fromkeys(label for teacher in teachers for label in teacher.types))
    if spec.labels is None:
        return teachers, mapped
    for teacher in teachers:
        outside = [label for label in teacher.types if label not in spec.labels]
        if outside:
            raise TeacherError(f"{teacher.where}: maps onto {outside}, which are not student labels ({list(spec.labels)})")
    untaught = [label for label in spec.labels if label not in mapped]
    if untaught:
        raise TeacherError(f"{spec.source}: student labels {untaught} have no teacher")
    return teachers, list(spec.labels)
