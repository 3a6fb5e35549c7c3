"""On-disk teacher distributions: one folder next to the DocBin they belong to.

    probs.npy    float16, (n_tokens_total, 2k+1): every doc's rows, in DocBin order
    lengths.npy  int64, (n_docs,): tokens per doc
    meta.json    labels (entity types in column order), normalize, teachers, docbin

The folder is written through a temporary one and renamed when complete, and rows are
streamed into a memory map, so neither writing nor reading holds it all in memory.
"""
import json
from pathlib import Path
from typing import Dict, Iterable, List, Sequence, Union

import numpy
from numpy.lib.format import open_memmap

from ._atomic import atomic_path
from .decoding import tag_names
from .errors import DistributionsError


def write_distributions(
    path: Union[str, Path],
    lengths: Sequence[int],
    batches: Iterable[numpy.ndarray],
    meta: Dict,
) -> None:
    """Write the rows yielded by `batches` (in doc order) for docs of `lengths` tokens.

    meta must hold "labels"; it is stored with n_docs and n_tokens added.
    """
    lengths = numpy.asarray(lengths, dtype=numpy.int64)
    n_tokens, n_cols = int(lengths.sum()), len(tag_names(meta["labels"]))
    with atomic_path(path, is_dir=True) as tmp:
        probs = open_memmap(tmp / "probs.npy", mode="w+", dtype=numpy.float16, shape=(n_tokens, n_cols))
        row = 0
        for batch in batches:
            batch = numpy.asarray(batch)
            if batch.ndim != 2 or batch.shape[1] != n_cols or row + batch.shape[0] > n_tokens:
                raise DistributionsError(
                    f"{path}: got a batch shaped {batch.shape} at row {row}, but the docs "
                    f"have {n_tokens} tokens and the labels need {n_cols} columns"
                )
            probs[row : row + batch.shape[0]] = batch
            row += batch.shape[0]
        if row != n_tokens:
            raise DistributionsError(f"{path}: got {row} rows for docs of {n_tokens} tokens")
        probs.flush()
        del probs
        numpy.save(tmp / "lengths.npy", lengths)
        meta = {**meta, "n_docs": len(lengths), "n_tokens": n_tokens}
        (tmp / "meta.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf8")


class TeacherDistributions:
    """Read access to a folder written by `write_distributions` (memory-mapped)."""

    def __init__(self, path: Union[str, Path]):
        self.path = Path(path)
        files = [self.path / name for name in ("probs.npy", "lengths.npy", "meta.json")]
        missing = [str(f) for f in files if not f.is_file()]
        if missing:
            raise DistributionsError(
                f"{self.path}: not a teacher distributions folder (missing {', '.join(missing)}); "
                "create it with `python -m spacy_taughtnet distill`"
            )
        self.meta = json.loads(files[2].read_text(encoding="utf8"))
        self.labels: List[str] = list(self.meta["labels"])
        self.lengths = numpy.load(files[1])
        self.probs = numpy.load(files[0], mmap_mode="r")
        self.offsets = numpy.concatenate([[0], numpy.cumsum(self.lengths)])
        if self.probs.shape != (self.offsets[-1], len(tag_names(self.labels))):
            raise DistributionsError(
                f"{self.path}: probs.npy is shaped {self.probs.shape}, but lengths.npy and the "
                f"labels {self.labels} give ({self.offsets[-1]}, {len(tag_names(self.labels))})"
            )

    def __len__(self) -> int:
        return len(self.lengths)

    def doc_probs(self, i: int) -> numpy.ndarray:
        """Doc i's rows as float32, renormalised (float16 rounding moves sums by ~1e-3)."""
        rows = numpy.asarray(self.probs[self.offsets[i] : self.offsets[i + 1]], dtype=numpy.float32)
        return rows / rows.sum(axis=1, keepdims=True)
