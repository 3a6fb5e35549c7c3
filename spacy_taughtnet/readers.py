"""A corpus reader for `spacy train` that attaches teacher distributions to examples."""
from pathlib import Path
from typing import Callable, Iterator, Optional

from spacy.language import Language
from spacy.tokens import Doc
from spacy.training import Example
from spacy.util import registry

from .component import TEACHER_LABELS_KEY, TEACHER_PROBS_KEY
from .corpora import read_docbin
from .store import DistributionsError, TeacherDistributions


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


class TaughtNetCorpus:
    def __init__(self, path: Path, *, distributions: Optional[Path] = None, limit: int = 0):
        self.path = Path(path)
        self.distributions = Path(distributions) if distributions else None
        self.limit = limit
        self._store: Optional[TeacherDistributions] = None

    def _open_store(self, n_docs: int) -> TeacherDistributions:
        """The distributions, checked once against this DocBin and their teachers."""
        if self._store is None:
            store = TeacherDistributions(self.distributions)
            if len(store) != n_docs:
                raise DistributionsError(
                    f"{self.distributions}: distributions for {len(store)} docs, but {self.path} "
                    f"holds {n_docs}; rerun `distill` on this DocBin"
                )
            store.check_docbin(self.path)
            store.check_teachers()
            self._store = store
        return self._store

    def __call__(self, nlp: Language) -> Iterator[Example]:
        docs = read_docbin(self.path, nlp.vocab)
        store = self._open_store(len(docs)) if self.distributions else None
        for i, reference in enumerate(docs[: self.limit or None]):
            if store is not None:
                if store.lengths[i] != len(reference):
                    raise DistributionsError(
                        f"{self.distributions}: doc {i} of {self.path} has {len(reference)} "
                        f"tokens, but its distributions have {store.lengths[i]} rows "
                        f"({reference.text[:60]!r}); rerun `distill` on this DocBin"
                    )
                reference.user_data[TEACHER_PROBS_KEY] = store.doc_probs(i)
                reference.user_data[TEACHER_LABELS_KEY] = store.labels
            words = [token.text for token in reference]
            spaces = [bool(token.whitespace_) for token in reference]
            yield Example(Doc(nlp.vocab, words=words, spaces=spaces), reference)
