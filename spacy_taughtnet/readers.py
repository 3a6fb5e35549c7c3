"""Corpus readers for `spacy train` that attach teacher distributions to examples."""
from pathlib import Path
from typing import Callable, Dict, Iterator, Optional, Set

from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry

from .corpora import read_docbin
from .distributions import DistributionsError, TeacherDistributions
from .errors import ConfigError
from .heads import TEACHER_LABELS_KEY, TEACHER_PROBS_KEY, TEACHER_TYPE_PROBS_KEY


@registry.readers("spacy-taughtnet.Corpus.v1")
def create_corpus_reader(
    path: Path, distributions: Optional[Path] = None, limit: int = 0
) -> Callable[[Language], Iterator[Example]]:
    """Examples from a DocBin, tokenised as in the corpus (gold tokenisation).

    path: the DocBin (written by `python -m spacy_taughtnet convert` or `union`).
    distributions: the teacher distributions folder of that DocBin (`distill`); each
        example then carries its doc's rows and the student trains by distillation. The
        folder is refused if the DocBin or a teacher changed since it was written.
    limit: read only the first `limit` docs (0 reads all).
    """
    return TaughtNetCorpus(path, distributions=distributions, limit=limit)


# duplicates check: the reader declares TaughtNetCorpus's settings again, for spaCy's config
# validation (a registered function's signature is its schema).
@registry.readers("spacy-taughtnet.Corpus.v2")
def create_corpus_reader_v2(
    path: Path,
    distributions: Optional[Path] = None,
    limit: int = 0,
    transfer: Optional[Path] = None,
    transfer_distributions: Optional[Path] = None,
    labelled_repeats: int = 1,
) -> Callable[[Language], Iterator[Example]]:
    """Corpus.v1 plus transfer text read beside the DocBin (not appended to it).

    transfer: a DocBin of transfer text (`prepare-transfer`: docs with no gold entities);
        null reads none. Its examples carry only teacher distributions, so only the soft
        (KL) term of the loss applies to them.
    transfer_distributions: the teacher distributions of `transfer` (`distill-teachers
        --transfer`), required with it.
    labelled_repeats: each pass yields the labelled docs this many times for each time it
        yields the transfer docs (the mix of labelled and transfer docs in the batches).
    """
    return TaughtNetCorpus(
        path, distributions=distributions, limit=limit, transfer=transfer,
        transfer_distributions=transfer_distributions, labelled_repeats=labelled_repeats,
    )


class TaughtNetCorpus:
    def __init__(
        self,
        path: Path,
        *,
        distributions: Optional[Path] = None,
        limit: int = 0,
        transfer: Optional[Path] = None,
        transfer_distributions: Optional[Path] = None,
        labelled_repeats: int = 1,
    ):
        self.path = Path(path)
        self.distributions = Path(distributions) if distributions else None
        self.limit = limit
        self.transfer = Path(transfer) if transfer else None
        self.transfer_distributions = Path(transfer_distributions) if transfer_distributions else None
        if self.transfer is not None and self.transfer_distributions is None:
            raise ConfigError(
                f"{self.transfer}: transfer text needs its teacher distributions "
                "(transfer_distributions; `distill-teachers --transfer`)"
            )
        if self.transfer is not None and self.distributions is None:
            raise ConfigError(f"{self.transfer}: transfer text is only read beside distributions of {self.path}")
        if labelled_repeats < 1:
            raise ConfigError(f"labelled_repeats must be at least 1, got {labelled_repeats}")
        self.labelled_repeats = labelled_repeats
        self._stores: Dict[Path, TeacherDistributions] = {}
        self._checked: Set[Path] = set()

    def _store(self, distributions: Path) -> TeacherDistributions:
        """The distributions folder, opened once."""
        if distributions not in self._stores:
            self._stores[distributions] = TeacherDistributions(distributions)
        return self._stores[distributions]

    def _checked_store(self, distributions: Path, docbin: Path, n_docs: int) -> TeacherDistributions:
        """The distributions, checked once against their DocBin and their teachers."""
        store = self._store(distributions)
        if distributions not in self._checked:
            if len(store) != n_docs:
                raise DistributionsError(
                    f"{distributions}: distributions for {len(store)} docs, but {docbin} "
                    f"holds {n_docs}; rerun `distill` on this DocBin"
                )
            store.check_docbin(docbin)
            store.check_teachers()
            self._checked.add(distributions)
        return store

    def _check_transfer_agrees(self) -> None:
        """The transfer distributions have the labelled ones' label order and columns (as
        their manifests record), so that every example carries one label order:
        TaughtNetNER.initialize, which checks only the first examples, relies on it."""
        labelled, transfer = self._store(self.distributions), self._store(self.transfer_distributions)
        if transfer.labels != labelled.labels:
            raise DistributionsError(
                f"{self.transfer_distributions}: labels {transfer.labels}, but {self.distributions} has "
                f"{labelled.labels}; distill both with the same teachers"
            )
        if transfer.type_columns != labelled.type_columns:
            raise DistributionsError(
                f"{self.transfer_distributions} and {self.distributions}: one has per-type columns and the other "
                "not (written by different versions); rerun distill-teachers for both"
            )
        if transfer.global_columns != labelled.global_columns:
            raise DistributionsError(
                f"{self.transfer_distributions} (normalize {transfer.normalize}) and {self.distributions} "
                f"(normalize {labelled.normalize}): one has the aggregated global columns and the other not; "
                "distill both with the same --normalize"
            )

    def _examples(self, nlp: Language, docbin: Path, distributions: Optional[Path], limit: int) -> Iterator[Example]:
        docs = read_docbin(docbin, nlp.vocab)
        store = self._checked_store(distributions, docbin, len(docs)) if distributions else None
        for i, reference in enumerate(docs[: limit or None]):
            if store is not None:
                if store.lengths[i] != len(reference):
                    raise DistributionsError(
                        f"{distributions}: doc {i} of {docbin} has {len(reference)} "
                        f"tokens, but its distributions have {store.lengths[i]} rows "
                        f"({reference.text[:60]!r}); rerun `distill` on this DocBin"
                    )
                probs, type_probs = store.doc_distributions(i)
                reference.user_data[TEACHER_LABELS_KEY] = store.labels
                if probs is not None:
                    reference.user_data[TEACHER_PROBS_KEY] = probs
                if type_probs is not None:
                    reference.user_data[TEACHER_TYPE_PROBS_KEY] = type_probs
            words = [token.text for token in reference]
            spaces = [bool(token.whitespace_) for token in reference]
            yield Example(Doc(nlp.vocab, words=words, spaces=spaces), reference)

    def __call__(self, nlp: Language) -> Iterator[Example]:
        if self.transfer is not None:
            self._check_transfer_agrees()  # before the first example
        for _ in range(self.labelled_repeats if self.transfer else 1):
            yield from self._examples(nlp, self.path, self.distributions, self.limit)
        if self.transfer is not None:
            yield from self._examples(nlp, self.transfer, self.transfer_distributions, 0)
