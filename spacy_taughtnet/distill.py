"""Run every teacher over the global data, merge and aggregate, and store the distributions
(distributions.py). What a teacher is and how a pipe yields distributions: teachers.py."""
from itertools import islice
from pathlib import Path
from typing import (  # duplicates check: an import block, alike wherever these names are imported
    Any,
    Callable,
    Dict,
    Iterable,
    Iterator,
    List,
    NamedTuple,
    Optional,
    Sequence,
    Tuple,
    Union,
)

import numpy
from spacy.tokens import Doc, DocBin
from spacy.util import minibatch
from spacy.vocab import Vocab
from tqdm import tqdm

from .aggregate import (
    DEFAULT_MERGE,
    MERGES,
    aggregate_distributions,
    merge_by_corpus,
    merge_teachers,
)
from .corpora import doc_corpus, doc_entity_type
from .distributions import (
    NO_AGGREGATION,
    SHARD_DOCS,
    has_global_columns,
    write_distributions,
)
from .errors import ConfigError, CorpusError, TeacherError
from .teachers import Teacher, trained_teacher

# Docs per batch of the teachers' pass.
DEFAULT_BATCH_SIZE = 256
# What distill stores unless told: each type's own columns only, all the default (per-type)
# student reads; "sum" or "softmax" add TaughtNet's aggregated global columns, which joint
# heads and head_targets "aggregated"/"mix" learn from.
DEFAULT_NORMALIZE = NO_AGGREGATION


def combine(
    teachers: Sequence[Teacher], per_teacher: Sequence[numpy.ndarray], labels: Sequence[str], *,
    merge: str = DEFAULT_MERGE, normalize: str = DEFAULT_NORMALIZE, row_corpora: Optional[numpy.ndarray] = None,
) -> numpy.ndarray:
    """One batch's stored rows (distributions.py): the global distribution aggregated with
    `normalize` (none with "none"), then each type's (B, I, O). row_corpora: each row's corpus
    name ("" for none), which merge "corpus" needs.

    per_teacher: each teacher's (n_tokens, 2m+1) rows. Single-type teachers of one type are
    merged (a lone one as it is), then aggregated with the multi-type ones into the global
    columns. A type's own columns merge every teacher that covers it: the single-type ones
    as they are, a multi-type one by its marginal (B-t, I-t, everything else)."""
    if merge == "corpus" and row_corpora is None:
        raise ConfigError("merge 'corpus' needs each row's corpus (row_corpora)")
    single: List[List[numpy.ndarray]] = [[] for _ in labels]
    owners: List[List[Optional[str]]] = [[] for _ in labels]  # the corpus of each, for "corpus"
    joint = []
    for teacher, probs in zip(teachers, per_teacher):
        types = [labels.index(label) for label in teacher.types]
        if len(types) == 1:
            single[types[0]].append(probs)
            owners[types[0]].append(teacher.corpus)
        else:
            joint.append((types, probs))
    by_type, by_owner = [list(ps) for ps in single], [list(cs) for cs in owners]
    for types, probs in joint:
        for m, j in enumerate(types):
            b, i = probs[:, 2 * m], probs[:, 2 * m + 1]
            by_type[j].append(numpy.stack([b, i, (1.0 - b - i).clip(0.0, 1.0)], axis=1))
            by_owner[j].append(None)
    missing = [label for label, ps in zip(labels, by_type) if not ps]
    if missing:
        raise TeacherError(f"no teacher gives the types {missing} (labels {list(labels)})")

    def merged_of(ps: List[numpy.ndarray], corpora: List[Optional[str]]) -> numpy.ndarray:
        if len(ps) == 1:
            return ps[0]
        return merge_by_corpus(ps, corpora, row_corpora) if merge == "corpus" else merge_teachers(ps, merge)

    # a type's single-type teachers merged once: its own columns where no multi-type teacher
    # covers it, and its input to the aggregation
    merged = [merged_of(ps, cs) if ps else None for ps, cs in zip(single, owners)]
    per_type = [numpy.asarray(own if len(ps) == len(singles) else merged_of(ps, cs), dtype=numpy.float32)
                for own, singles, ps, cs in zip(merged, single, by_type, by_owner)]
    if not has_global_columns(normalize):
        return numpy.concatenate(per_type, axis=1)
    return numpy.concatenate([aggregate_distributions(merged, normalize=normalize, joint=joint)] + per_type, axis=1)


class DistillInputs(NamedTuple):
    """What both backends check and record before any teacher runs."""

    docbin_path: Path
    doc_bin: DocBin
    vocab: Vocab
    lengths: List[int]
    labels: List[str]
    recorded: List[Tuple[Path, str, Dict[str, Any]]]  # the manifest's teachers


def distill_inputs(
    docbin_path: Union[str, Path], teachers: Sequence[Teacher], labels: Optional[Sequence[str]], merge: str
) -> DistillInputs:
    """Read the DocBin, check that every doc's entity type has a teacher, and name what the
    manifest records: one (path, label, settings) per teacher and label, the merge among the
    settings of the types that have several single-type teachers."""
    if merge not in MERGES:
        raise ConfigError(f"merge must be one of {MERGES}, got {merge!r}")
    if merge == "corpus" and all(t.corpus is None for t in teachers):
        raise ConfigError(
            "merge 'corpus' gives each corpus's docs to its own teachers, but none of these teachers "
            "names its corpus: use distill-teachers (its teachers are the run's corpus teachers)"
        )
    labels = list(labels or dict.fromkeys(label for t in teachers for label in t.types))
    docbin_path = Path(docbin_path)
    if not docbin_path.is_file():
        raise CorpusError(f"{docbin_path}: DocBin file not found")
    doc_bin = DocBin().from_disk(docbin_path)
    if len(doc_bin) == 0:
        raise CorpusError(f"{docbin_path}: the DocBin holds no docs")
    vocab = teachers[0].nlp.vocab
    lengths = [len(doc) for doc in doc_bin.get_docs(vocab)]
    for doc in doc_bin.get_docs(vocab):
        if doc_entity_type(doc) is not None and doc_entity_type(doc) not in labels:
            raise TeacherError(
                f"{docbin_path}: docs of corpus {doc_corpus(doc)!r} have type "
                f"{doc_entity_type(doc)!r}, but no teacher recognises it (teachers: {labels})"
            )
    shared = {label for label in labels if sum(t.types == [label] for t in teachers) > 1}
    recorded = [
        (t.path, label, {**t.settings(label), **({"merge": merge} if label in shared and len(t.types) == 1 else {})})
        for t in teachers for label in t.types
    ]
    return DistillInputs(docbin_path, doc_bin, vocab, lengths, labels, recorded)


def shard_rows(
    teachers: Sequence[Teacher], docs: Iterable[Doc], labels: Sequence[str], *, merge: str, normalize: str,
    batch_size: int, on_batch: Optional[Callable[[int], None]] = None,
) -> Iterator[numpy.ndarray]:
    """The global rows of `docs` (one shard's), one array per batch of `batch_size` docs;
    on_batch(n_docs) is told after each. Every backend computes a shard's rows with this."""
    for batch in minibatch(docs, size=batch_size):
        per_teacher = [numpy.concatenate(t.predict(batch)) for t in teachers]
        row_corpora = None
        if merge == "corpus":
            row_corpora = numpy.repeat(numpy.array([doc_corpus(doc) or "" for doc in batch], dtype=object), [len(doc) for doc in batch])
        yield combine(teachers, per_teacher, labels, merge=merge, normalize=normalize, row_corpora=row_corpora)
        if on_batch is not None:
            on_batch(len(batch))


def dump_distributions(
    docbin_path: Union[str, Path],
    teachers: Sequence[Union[Teacher, str, Path]],
    output: Union[str, Path],
    *,
    labels: Optional[Sequence[str]] = None,
    merge: str = DEFAULT_MERGE,
    normalize: str = DEFAULT_NORMALIZE,
    batch_size: int = DEFAULT_BATCH_SIZE,
    shard_docs: int = SHARD_DOCS,
) -> List[str]:
    """Write the aggregated teacher distributions of every doc of a DocBin to `output`
    (format: distributions.py), in shards of `shard_docs` docs; a rerun after a failure or a kill
    runs the teachers only over the shards not written yet.

    teachers: loaded teachers (teachers.load_teachers) or folders of trained single-type
    teachers. labels: the global label order (default: the teachers' labels in their order).
    Teachers of one type are merged by `merge` ("mean", "product" or "corpus"; module
    aggregate, 1). Every doc's entity type
    must have a teacher. Returns the labels. The same on Ray actors: distill_ray.py.
    """
    teachers = [t if isinstance(t, Teacher) else trained_teacher(t) for t in teachers]
    inputs = distill_inputs(docbin_path, teachers, labels, merge)
    docs = inputs.doc_bin.get_docs(inputs.vocab)
    position = 0

    def rows_of(start: int, end: int) -> Iterator[numpy.ndarray]:
        # called with increasing ranges: one pass over the docs, skipping reused shards
        nonlocal position
        for _ in islice(docs, start - position):
            pass
        position = end
        yield from shard_rows(
            teachers, islice(docs, end - start), inputs.labels, merge=merge, normalize=normalize,
            batch_size=batch_size, on_batch=progress.update,
        )

    def on_shard(start: int, end: int, reused: bool) -> None:
        if reused:
            progress.update(end - start)
            progress.write(f"docs [{start}, {end}): kept from an earlier run")

    progress = tqdm(total=len(inputs.lengths), desc=f"distill {inputs.docbin_path.name}", unit="doc")
    try:
        write_distributions(
            output, inputs.docbin_path, inputs.lengths, rows_of, labels=inputs.labels, normalize=normalize,
            teachers=inputs.recorded, shard_docs=shard_docs, on_shard=on_shard,
        )
    finally:
        progress.close()
    return inputs.labels
