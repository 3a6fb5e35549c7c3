"""The run folder's layout: every path under ROOT that a workflow step reads or writes.

For corpora C1..Ck (folder names of IOB TSV corpora, in global label order):

    ROOT/corpus/Ci/{train,dev,test}.spacy     converted corpora
    ROOT/corpus/global/{train,dev}.spacy      their union (student data)
    ROOT/teachers/Ci/model-best               one teacher per corpus (seed 0)
    ROOT/teachers/Ci-seedS/model-best         seed S > 0 of an ensemble (teachers.py)
    ROOT/distributions/train                  aggregated teacher distributions of the union's
                                              train split (format: distributions.py)
    ROOT/transfer/text/<source>.txt.gz        transfer text: unlabelled sentences (transfer.py)
    ROOT/transfer/train.spacy                 the transfer text as docs (no type, no gold)
    ROOT/distributions/transfer               the teachers' distributions of those docs
    ROOT/pretrain/tok2vec.bin                 pretrained tok2vec weights (init_tok2vec of the
                                              teachers and the student; pretrain.py)
    ROOT/pretrain/pretrain.json               their record: inputs_digest, seed, epochs, words, losses
    ROOT/student/model-best                   the student
    ROOT/metrics/{teachers,student}.json      per-corpus test scores
    ROOT/timings/<stage>.json                 wall time of each training/distillation stage
    ROOT/benchmark/<system>/model-best        the systems `benchmark cnn` and `transformers` train

`prepare` replaces ROOT/corpus as a whole. "global" and "transfer" are not corpus names.
"""
from pathlib import Path
from typing import List, Sequence, Union

from .errors import ConfigError

MODEL_BEST = "model-best"
UNION = "global"
TRANSFER = "transfer"
PRETRAIN_WEIGHTS = "tok2vec.bin"
PRETRAIN_RECORD = "pretrain.json"
RESERVED_CORPUS_NAMES = (UNION, TRANSFER)


def best_model(training_output: Union[str, Path]) -> Path:
    """The pipeline `spacy train` selected on devel, in its output folder."""
    return Path(training_output) / MODEL_BEST


def check_corpus_name(name: str) -> str:
    """A corpus name is one plain folder name: it maps to ROOT/corpus/NAME and ROOT/teachers/NAME,
    which the steps replace as a whole, so `..`, a path or a hidden name would write elsewhere."""
    if (
        not name
        or name.startswith(".")
        or "/" in name
        or "\\" in name
        or name in RESERVED_CORPUS_NAMES
    ):
        reserved = " or ".join(repr(n) for n in RESERVED_CORPUS_NAMES)
        raise ConfigError(
            f"corpus name {name!r}: expected a plain folder name under assets/ (no '/', no leading "
            f"'.', not {reserved})"
        )
    return name


class CorpusFolder:
    """ROOT/corpus, or the temporary folder `prepare` builds it in."""

    def __init__(self, path: Union[str, Path]):
        self.path = Path(path)

    def split(self, corpus: str, split: str) -> Path:
        """One corpus's split: train, dev or test."""
        return self.path / corpus / f"{split}.spacy"

    def union(self, split: str) -> Path:
        """The union of the corpora's split: train or dev."""
        return self.path / UNION / f"{split}.spacy"


class RunLayout:
    """The paths under one run folder (see the module docstring)."""

    def __init__(self, root: Union[str, Path]):
        self.root = Path(root)

    @property
    def corpus_folder(self) -> CorpusFolder:
        return CorpusFolder(self.root / "corpus")

    def corpus(self, name: str, split: str) -> Path:
        return self.corpus_folder.split(name, split)

    def global_split(self, split: str) -> Path:
        return self.corpus_folder.union(split)

    def teacher(self, name: str, seed: int = 0) -> Path:
        """The teacher's training output (`spacy train --output`); seed s > 0 of an ensemble
        (a teachers specification's `seeds`) in ROOT/teachers/NAME-seed<s>."""
        return self.root / "teachers" / (name if seed == 0 else f"{name}-seed{seed}")

    def teacher_model(self, name: str, seed: int = 0) -> Path:
        return best_model(self.teacher(name, seed))

    def teacher_models(self, corpora: Sequence[str]) -> List[Path]:
        return [self.teacher_model(name) for name in corpora]

    def distributions(self, split: str = "train") -> Path:
        return self.root / "distributions" / split

    @property
    def transfer_text(self) -> Path:
        return self.root / TRANSFER / "text"

    @property
    def transfer_docs(self) -> Path:
        return self.root / TRANSFER / "train.spacy"

    @property
    def pretrain(self) -> Path:
        """The pretraining output: PRETRAIN_WEIGHTS and PRETRAIN_RECORD."""
        return self.root / "pretrain"

    @property
    def pretrain_weights(self) -> Path:
        return self.pretrain / PRETRAIN_WEIGHTS

    @property
    def student(self) -> Path:
        """The student's training output (`spacy train --output`)."""
        return self.root / "student"

    @property
    def student_model(self) -> Path:
        return best_model(self.student)

    def metrics(self, group: str) -> Path:
        return self.root / "metrics" / f"{group}.json"

    def timings(self, stage: str) -> Path:
        return self.root / "timings" / f"{stage}.json"

    @property
    def benchmark_folder(self) -> Path:
        return self.root / "benchmark"

    def benchmark(self, system: str) -> Path:
        """A benchmark system's training output."""
        return self.benchmark_folder / system
