"""Run every teacher over the global data, aggregate, and store the distributions (store.py)."""
from itertools import islice
from pathlib import Path
from typing import Iterator, List, Sequence, Tuple, Union

import numpy
import spacy
from spacy.language import Language
from spacy.tokens import Doc, DocBin
from spacy.util import minibatch
from tqdm import tqdm

from .aggregate import aggregate_distributions
from .component import TaughtNetNER
from .corpora import doc_corpus, doc_entity_type
from .errors import CorpusError, TeacherError
from .store import SHARD_DOCS, write_distributions


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
            "(spacy project run teachers)"
        )
    nlp = spacy.load(path)
    name, pipe = find_taughtnet_pipe(nlp, str(path))
    if len(pipe.labels) != 1:
        raise TeacherError(
            f"{path}: a teacher recognises one entity type, this one has {list(pipe.labels)}"
        )
    return nlp, name, pipe


def teacher_probabilities(nlp: Language, name: str, pipe: TaughtNetNER, docs: Sequence[Doc]) -> List[numpy.ndarray]:
    """Per-doc (n_tokens, 3) (B, I, O) arrays of one teacher, on the docs' own tokens."""
    copies = [
        Doc(nlp.vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc])
        for doc in docs
    ]
    copies = list(nlp.pipe(copies, disable=[name]))
    return pipe.predict_proba(copies)


def dump_distributions(
    docbin_path: Union[str, Path],
    teacher_paths: Sequence[Union[str, Path]],
    output: Union[str, Path],
    *,
    normalize: str = "sum",
    batch_size: int = 256,
    shard_docs: int = SHARD_DOCS,
) -> List[str]:
    """Write the aggregated teacher distributions of every doc of a DocBin to `output`
    (format: store.py), in shards of `shard_docs` docs; a rerun after a failure or a kill
    runs the teachers only over the shards not written yet.

    The global label order is the teachers' order. Every doc's entity type must have a
    teacher. Returns the labels.
    """
    teachers = [load_teacher(path) for path in teacher_paths]
    labels = [pipe.labels[0] for _, _, pipe in teachers]
    for i, label in enumerate(labels):
        if label in labels[:i]:
            raise TeacherError(
                f"{teacher_paths[i]}: type {label!r} already has a teacher ({teacher_paths[labels.index(label)]})"
            )
    docbin_path = Path(docbin_path)
    if not docbin_path.is_file():
        raise CorpusError(f"{docbin_path}: DocBin file not found")
    doc_bin = DocBin().from_disk(docbin_path)
    if len(doc_bin) == 0:
        raise CorpusError(f"{docbin_path}: the DocBin holds no docs")
    vocab = teachers[0][0].vocab
    lengths = [len(doc) for doc in doc_bin.get_docs(vocab)]
    for doc in doc_bin.get_docs(vocab):
        if doc_entity_type(doc) is not None and doc_entity_type(doc) not in labels:
            raise TeacherError(
                f"{docbin_path}: docs of corpus {doc_corpus(doc)!r} have type "
                f"{doc_entity_type(doc)!r}, but no teacher recognises it (teachers: {labels})"
            )

    docs = doc_bin.get_docs(vocab)
    position = 0

    def shard_rows(start: int, end: int) -> Iterator[numpy.ndarray]:
        # called with increasing ranges: one pass over the docs, skipping reused shards
        nonlocal position
        for _ in islice(docs, start - position):
            pass
        position = end
        for batch in minibatch(islice(docs, end - start), size=batch_size):
            per_teacher = [numpy.concatenate(teacher_probabilities(*t, batch)) for t in teachers]
            yield aggregate_distributions(per_teacher, normalize=normalize)
            progress.update(len(batch))

    def on_shard(start: int, end: int, reused: bool) -> None:
        if reused:
            progress.update(end - start)
            progress.write(f"docs [{start}, {end}): kept from an earlier run")

    progress = tqdm(total=len(lengths), desc=f"distill {docbin_path.name}", unit="doc")
    try:
        write_distributions(
            output, docbin_path, lengths, shard_rows, labels=labels, normalize=normalize,
            teachers=list(zip(teacher_paths, labels)), shard_docs=shard_docs, on_shard=on_shard,
        )
    finally:
        progress.close()
    return labels
