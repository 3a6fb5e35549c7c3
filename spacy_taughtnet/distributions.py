"""On-disk teacher distributions: a folder of shards and a manifest, one format for every writer.

    ROOT/distributions/train/
        manifest.json             written last: the folder is complete when it is there
        shard-00000/probs.npy     float16, (tokens of the shard's docs, columns): rows in doc order,
                                  columns: unless normalize is "none", B-e1, I-e1, ..., B-ek,
                                  I-ek, O (the aggregated global distribution); then with
                                  type_columns (B, I, O) of each type e1..ek (its teachers
                                  merged, before any aggregation)
        shard-00000/lengths.npy   int64, (docs of the shard,): tokens per doc
        shard-00000/shard.json    the shard's entry of the manifest, plus the inputs digest
        shard-00001/...

A shard holds the docs [start, end) of the DocBin, `shard_docs` docs (the last one the rest).
manifest.json holds:

    format       "spacy-taughtnet.distributions.v1"
    labels       the entity types, in column order
    normalize    the aggregation's normaliser ("sum" or "softmax"), or "none": no aggregated
                 global columns (the per-type default student reads only type_columns)
    type_columns whether the per-type (B, I, O) columns follow the global ones (the student's
                 per-type heads learn from them); absent in folders of 0.1.x: false
    n_docs, n_tokens, shard_docs
    docbin       {"path", "size", "sha256"} of the DocBin the rows belong to
    teachers     [{"path", "label", "settings", "sha256"}], one per teacher and label it gives;
                 settings: how (teachers.Teacher.settings, and the merge of several teachers
                 of one type; empty for a lone taughtnet_ner teacher); sha256 by
                 digests.pipeline_digest (paths relative to the distributions folder)
    inputs       sha256 of the keys above: a shard made from other inputs is never reused
    shards       [{"name", "docs": [start, end], "n_tokens", "sha256": {"probs.npy", "lengths.npy"}}]

Writing (`write_distributions` locally; a distributed backend calls the same two steps):
every shard is written with `write_shard` into a staging folder beside the output,
`.NAME.partial`, each shard atomically (a temporary folder renamed when complete), with its rows
validated (finite, >= 0, the global row and each type's (B, I, O) summing to 1 within float16 rounding) and streamed to disk,
so memory stays bounded by one batch. `finalise_distributions` then checks every shard against
the inputs and the docs' lengths, writes manifest.json and swaps the staging folder onto the
output as a whole. A rerun after a failure or a kill writes only the shards that are missing.

Reading (`TeacherDistributions`): the manifest and every shard's shapes, file sizes and
lengths are checked when the folder is opened; `check_docbin` and `check_teachers` compare the
recorded digests with the DocBin and the teachers as they are now; a shard's probs.npy is
checked against its sha256 the first time a doc of it is read, and each doc's rows are checked
(count, values) when read.
"""
import json
import os
from bisect import bisect_right
from pathlib import Path
from typing import Callable, Dict, Iterable, List, Optional, Sequence, Tuple, Union

import numpy
from numpy.lib import format as npy_format

from .aggregate import NORMALIZERS
from .atomic import atomic_path, remove_path, remove_stale_temporaries, replace_dir
from .digests import file_digest, json_digest, pipeline_digest
from .errors import DistributionsError

FORMAT = "spacy-taughtnet.distributions.v1"
MANIFEST = "manifest.json"
PROBS = "probs.npy"
LENGTHS = "lengths.npy"
SHARD_META = "shard.json"
SHARD_DOCS = 10_000
# The normalize value of rows without the aggregated global columns.
NO_AGGREGATION = "none"
AGGREGATIONS = (NO_AGGREGATION, *NORMALIZERS)
# A stored row sums to 1 within this: float16 keeps ~3 decimal digits per value.
SUM_TOLERANCE = 1e-2

PathLike = Union[str, Path]


def relative_path(path: PathLike, folder: PathLike) -> str:
    """`path` relative to `folder`, as recorded in a manifest: independent of the working
    directory and unchanged when the run folder is moved as a whole."""
    try:
        return os.path.relpath(os.path.abspath(path), os.path.abspath(folder))
    except ValueError:  # another drive (Windows)
        return os.path.abspath(path)


# ---------------------------------------------------------------- writing


def shard_name(k: int) -> str:
    return f"shard-{k:05d}"


def shard_ranges(n_docs: int, shard_docs: int) -> List[Tuple[int, int]]:
    """The [start, end) doc range of each shard."""
    return [(a, min(a + shard_docs, n_docs)) for a in range(0, n_docs, shard_docs)] or [(0, 0)]


def staging_path(output: PathLike) -> Path:
    """Where the shards of `output` are written until they are complete."""
    output = Path(output)
    return output.parent / f".{output.name}.partial"


def has_global_columns(normalize: str) -> bool:
    """Whether rows aggregated with `normalize` carry the global distribution ("none": not)."""
    return normalize != NO_AGGREGATION


def n_columns(n_labels: int, type_columns: bool, global_columns: bool = True) -> int:
    """Columns of a stored row: the global distribution (2k+1), then (B, I, O) per type."""
    return (2 * n_labels + 1 if global_columns else 0) + (3 * n_labels if type_columns else 0)


def _blocks(n_labels: int, type_columns: bool, global_columns: bool = True) -> List[slice]:
    """The column ranges of a stored row that are each a distribution: the global one (if
    stored), then each type's."""
    joint = 2 * n_labels + 1 if global_columns else 0
    per_type = [slice(joint + 3 * j, joint + 3 * j + 3) for j in range(n_labels)] if type_columns else []
    return ([slice(0, joint)] if global_columns else []) + per_type


def _header_blocks(header: Dict) -> Tuple[int, List[slice]]:
    """A manifest's row width and column blocks (folders of 0.1.x: no type_columns key)."""
    args = (len(header["labels"]), header.get("type_columns", False), has_global_columns(header["normalize"]))
    return n_columns(*args), _blocks(*args)


def distributions_header(
    output: PathLike,
    docbin: PathLike,
    lengths: Sequence[int],
    *,
    labels: Sequence[str],
    normalize: str,
    teachers: Sequence[Tuple[PathLike, str, Dict]] = (),
    shard_docs: int = SHARD_DOCS,
    type_columns: bool = True,
) -> Dict:
    """The manifest without its shards: what the rows are made from. teachers: (path, label,
    settings) of the teacher pipelines, in column order. Paths are recorded relative to `output`,
    the distributions folder. type_columns: the rows carry each type's (B, I, O) after the
    global columns (what `distill.shard_rows` yields)."""
    if shard_docs < 1:
        raise DistributionsError(f"shard_docs must be at least 1, got {shard_docs}")
    if normalize not in AGGREGATIONS:
        raise DistributionsError(f"normalize must be one of {AGGREGATIONS}, got {normalize!r}")
    if not type_columns and not has_global_columns(normalize):
        raise DistributionsError('normalize "none" stores only the per-type columns: type_columns must be true')
    header = {
        "format": FORMAT,
        "labels": list(labels),
        "normalize": normalize,
        "type_columns": type_columns,
        "n_docs": len(lengths),
        "n_tokens": int(numpy.sum(lengths, dtype=numpy.int64)),
        "shard_docs": shard_docs,
        "docbin": {"path": relative_path(docbin, output), "size": Path(docbin).stat().st_size, "sha256": file_digest(docbin)},
        "teachers": [
            {"path": relative_path(p, output), "label": label, "settings": dict(settings), "sha256": pipeline_digest(p)}
            for p, label, settings in teachers
        ],
    }
    header["inputs"] = json_digest(header)
    return header


def invalid_row(rows: numpy.ndarray, blocks: Sequence[slice] = (slice(None),)) -> Optional[Tuple[int, str]]:
    """(index, reason) of the first row that is not a distribution in each of its column
    `blocks`, or None."""
    finite = numpy.isfinite(rows).all(axis=1)
    positive = (rows >= 0).all(axis=1)
    sums = numpy.stack([rows[:, b].astype(numpy.float32).sum(axis=1) for b in blocks], axis=1)
    off = numpy.abs(sums - 1) > SUM_TOLERANCE
    bad = ~(finite & positive & ~off.any(axis=1))
    if not bad.any():
        return None
    i = int(bad.argmax())
    if not finite[i]:
        reason = "holds a value that is not finite"
    elif not positive[i]:
        reason = "holds a negative value"
    else:
        b = blocks[int(off[i].argmax())]
        where = "" if len(blocks) == 1 else f"columns [{b.start}, {b.stop}) "
        reason = f"{where}sums to {sums[i, int(off[i].argmax())]:.4f}, not 1"
    return i, f"{reason}: {numpy.array2string(rows[i].astype(numpy.float32), precision=4)}"


def _row_error(where: Path, doc: int, row: int, reason: str) -> DistributionsError:
    return DistributionsError(
        f"{where}: doc {doc}, token {row}: the teacher distribution {reason}; distributions must be "
        f"finite, >= 0 and sum to 1 (within {SUM_TOLERANCE:g})"
    )


def write_shard(
    folder: PathLike, header: Dict, k: int, lengths: Sequence[int], batches: Iterable[numpy.ndarray]
) -> Dict:
    """Write shard k of `header`'s distributions into `folder` (the staging folder), atomically.

    lengths: the token counts of the shard's docs, shard_ranges(...)[k]; batches: their rows in
    doc order, in arrays of any number of rows (a batch may end inside a doc). Each row is
    validated as stored (float16). Returns the shard's manifest entry.
    """
    folder = Path(folder)
    start, end = shard_ranges(header["n_docs"], header["shard_docs"])[k]
    lengths = numpy.asarray(lengths, dtype=numpy.int64)
    if len(lengths) != end - start:
        raise DistributionsError(f"{folder}: shard {k} holds docs [{start}, {end}), got lengths of {len(lengths)} docs")
    n_cols, blocks = _header_blocks(header)
    n_tokens = int(lengths.sum())
    offsets = numpy.concatenate([[0], numpy.cumsum(lengths)])
    target = folder / shard_name(k)
    with atomic_path(target, is_dir=True) as tmp:
        with open(tmp / PROBS, "wb") as out:
            npy_format.write_array_header_1_0(
                out, {"descr": npy_format.dtype_to_descr(numpy.dtype(numpy.float16)), "fortran_order": False, "shape": (n_tokens, n_cols)}
            )
            row = 0
            for batch in batches:
                batch = numpy.asarray(batch)
                if batch.ndim != 2 or batch.shape[1] != n_cols or row + batch.shape[0] > n_tokens:
                    raise DistributionsError(
                        f"{target / PROBS}: got a batch shaped {batch.shape} at row {row}, but the docs "
                        f"have {n_tokens} tokens and the labels need {n_cols} columns"
                    )
                stored = batch.astype(numpy.float16)
                bad = invalid_row(stored, blocks)
                if bad is not None:
                    at = row + bad[0]
                    doc = int(numpy.searchsorted(offsets, at, side="right")) - 1
                    raise _row_error(target / PROBS, start + doc, at - int(offsets[doc]), bad[1])
                out.write(numpy.ascontiguousarray(stored).tobytes())
                row += batch.shape[0]
        if row != n_tokens:
            raise DistributionsError(f"{target / PROBS}: got {row} rows for docs of {n_tokens} tokens")
        numpy.save(tmp / LENGTHS, lengths)
        entry = {
            "name": target.name,
            "docs": [start, end],
            "n_tokens": n_tokens,
            "sha256": {name: file_digest(tmp / name) for name in (PROBS, LENGTHS)},
        }
        _write_json(tmp / SHARD_META, {**entry, "inputs": header["inputs"]})
    return entry


def written_shard(folder: PathLike, header: Dict, k: int) -> Optional[Dict]:
    """Shard k's entry if `folder` holds it complete and made from `header`'s inputs."""
    meta = Path(folder) / shard_name(k) / SHARD_META
    try:
        entry = json.loads(meta.read_text(encoding="utf8"))
    except (OSError, ValueError):
        return None
    if entry.get("inputs") != header["inputs"]:
        return None
    return {key: value for key, value in entry.items() if key != "inputs"}


def finalise_distributions(folder: PathLike, output: PathLike, header: Dict, lengths: Sequence[int]) -> Dict:
    """Check every shard of the staging `folder` (present, made from header's inputs, its
    lengths those of its docs, its files as hashed when written), write manifest.json and
    move the folder onto `output` as a whole. Returns the manifest."""
    folder, output = Path(folder), Path(output)
    lengths = numpy.asarray(lengths, dtype=numpy.int64)
    n_cols, _ = _header_blocks(header)
    shards = []
    for k, (start, end) in enumerate(shard_ranges(header["n_docs"], header["shard_docs"])):
        entry = written_shard(folder, header, k)
        where = folder / shard_name(k)
        if entry is None:
            raise DistributionsError(f"{where}: shard missing or made from other inputs; write it before finalising")
        for name, expected in entry["sha256"].items():
            if file_digest(where / name) != expected:
                raise DistributionsError(f"{where / name}: changed since it was written (sha256); write the shard again")
        if not numpy.array_equal(numpy.load(where / LENGTHS), lengths[start:end]):
            raise DistributionsError(f"{where / LENGTHS}: the token counts differ from those of docs [{start}, {end})")
        _check_npy(where / PROBS, (entry["n_tokens"], n_cols), numpy.float16)
        shards.append(entry)
    expected = {shard_name(k) for k in range(len(shards))} | {MANIFEST}
    for extra in folder.iterdir():
        if extra.name not in expected:  # shards of a larger earlier run, stale temporaries
            remove_path(extra)
    manifest = {**header, "shards": shards}
    _write_json(folder / MANIFEST, manifest)
    output.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(output)
    replace_dir(folder, output)
    return manifest


def write_distributions(
    output: PathLike,
    docbin: PathLike,
    lengths: Sequence[int],
    shard_rows: Callable[[int, int], Iterable[numpy.ndarray]],
    *,
    labels: Sequence[str],
    normalize: str,
    teachers: Sequence[Tuple[PathLike, str, Dict]] = (),
    shard_docs: int = SHARD_DOCS,
    type_columns: bool = True,
    on_shard: Optional[Callable[[int, int, bool], None]] = None,
) -> Dict:
    """Write the distributions of the docs of `docbin` (of `lengths` tokens) to `output`.

    shard_rows(start, end) yields the rows of docs [start, end) in doc order (with
    type_columns, each type's (B, I, O) after the global columns); it is called
    for the shards that a killed or failed earlier run did not complete, in increasing order.
    on_shard(start, end, reused) is told about every shard (for progress). Returns the manifest.
    """
    header = distributions_header(
        output, docbin, lengths, labels=labels, normalize=normalize, teachers=teachers, shard_docs=shard_docs,
        type_columns=type_columns,
    )
    folder = staging_path(output)
    folder.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(output)
    try:
        for k, (start, end) in enumerate(shard_ranges(header["n_docs"], shard_docs)):
            reused = written_shard(folder, header, k) is not None
            if not reused:
                write_shard(folder, header, k, lengths[start:end], shard_rows(start, end))
            if on_shard is not None:
                on_shard(start, end, reused)
    except BaseException:
        if not any(folder.iterdir()):  # keep completed shards for the rerun
            folder.rmdir()
        raise
    return finalise_distributions(folder, output, header, lengths)


def _write_json(path: Path, data: Dict) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2) + "\n", encoding="utf8")


# ---------------------------------------------------------------- reading


def _check_npy(path: Path, shape: Tuple[int, ...], dtype) -> None:
    """The .npy file at `path` has this shape and dtype and is not truncated (header only)."""
    try:
        with open(path, "rb") as f:
            version = npy_format.read_magic(f)
            read_header = npy_format.read_array_header_1_0 if version == (1, 0) else npy_format.read_array_header_2_0
            found_shape, fortran, found_dtype = read_header(f)
            data_start = f.tell()
    except FileNotFoundError:
        raise DistributionsError(f"{path}: missing; rerun distill") from None
    except (OSError, ValueError) as err:
        raise DistributionsError(f"{path}: not a readable .npy file ({err}); rerun distill") from None
    if tuple(found_shape) != tuple(shape) or found_dtype != numpy.dtype(dtype) or fortran:
        raise DistributionsError(
            f"{path}: holds a {found_dtype} array shaped {tuple(found_shape)}, the manifest says "
            f"{numpy.dtype(dtype)} {tuple(shape)}; rerun distill"
        )
    expected = data_start + int(numpy.prod(shape)) * numpy.dtype(dtype).itemsize
    size = path.stat().st_size
    if size != expected:
        raise DistributionsError(f"{path}: {size} bytes, but its shape {tuple(shape)} needs {expected} (truncated?); rerun distill")


class TeacherDistributions:
    """Read access to a folder written by `write_distributions` (shards memory-mapped)."""

    def __init__(self, path: PathLike):
        self.path = Path(path)
        manifest_path = self.path / MANIFEST
        if not manifest_path.is_file():
            older = " (it holds the single-file layout of an earlier version)" if (self.path / PROBS).is_file() else ""
            raise DistributionsError(
                f"{self.path}: not a teacher distributions folder (no {MANIFEST}){older}; "
                "create it with `python -m spacy_taughtnet distill`"
            )
        try:
            self.manifest: Dict = json.loads(manifest_path.read_text(encoding="utf8"))
        except ValueError as err:
            raise DistributionsError(f"{manifest_path}: not valid JSON ({err}); rerun distill") from None
        if not isinstance(self.manifest, dict) or self.manifest.get("format") != FORMAT:
            found = self.manifest.get("format") if isinstance(self.manifest, dict) else None
            raise DistributionsError(f"{manifest_path}: format {found!r}, expected {FORMAT!r}; rerun distill")
        try:
            self.lengths = self._check_shards()
        except (KeyError, TypeError, IndexError) as err:
            raise DistributionsError(f"{manifest_path}: malformed ({type(err).__name__}: {err}); rerun distill") from None
        self.offsets = numpy.concatenate([[0], numpy.cumsum(self.lengths)])
        self._starts = [entry["docs"][0] for entry in self.manifest["shards"]]
        self._probs: Dict[int, numpy.ndarray] = {}

    def _check_shards(self) -> numpy.ndarray:
        """Check each shard's files against the manifest (shapes, sizes, lengths.npy's
        sha256) and return every doc's token count."""
        self.labels: List[str] = list(self.manifest["labels"])
        self.normalize: str = self.manifest["normalize"]
        self.type_columns: bool = bool(self.manifest.get("type_columns", False))
        self.global_columns: bool = has_global_columns(self.normalize)
        self._n_columns, self._blocks = _header_blocks(self.manifest)
        n_cols = self._n_columns
        shards = self.manifest["shards"]
        ranges = shard_ranges(self.manifest["n_docs"], self.manifest["shard_docs"])
        if [tuple(s["docs"]) for s in shards] != ranges:
            raise DistributionsError(
                f"{self.path / MANIFEST}: the shards' doc ranges do not cover the {self.manifest['n_docs']} docs; rerun distill"
            )
        lengths = []
        for entry in shards:
            where = self.path / entry["name"]
            start, end = entry["docs"]
            _check_npy(where / LENGTHS, (end - start,), numpy.int64)
            _check_npy(where / PROBS, (entry["n_tokens"], n_cols), numpy.float16)
            if file_digest(where / LENGTHS) != entry["sha256"][LENGTHS]:
                raise DistributionsError(f"{where / LENGTHS}: changed since it was written (sha256 differs from {MANIFEST}); rerun distill")
            shard_lengths = numpy.load(where / LENGTHS)
            if int(shard_lengths.sum()) != entry["n_tokens"]:
                raise DistributionsError(f"{where / LENGTHS}: {int(shard_lengths.sum())} tokens, {MANIFEST} says {entry['n_tokens']}; rerun distill")
            lengths.append(shard_lengths)
        return numpy.concatenate(lengths)

    def __len__(self) -> int:
        return len(self.lengths)

    def check_docbin(self, docbin: PathLike) -> None:
        """Refuse a DocBin other than the one the rows were made from (size, then sha256)."""
        docbin, recorded = Path(docbin), self.manifest["docbin"]
        size = docbin.stat().st_size
        if size != recorded["size"] or file_digest(docbin) != recorded["sha256"]:
            raise DistributionsError(
                f"{self.path}: made from {os.path.normpath(self.path / recorded['path'])} ({recorded['size']} bytes, sha256 "
                f"{recorded['sha256'][:12]}...), but {docbin} differs ({size} bytes): the corpus "
                "changed after distill; rerun distill on it"
            )

    def check_teachers(self) -> None:
        """Refuse the rows if a recorded teacher that is still there has changed since."""
        for teacher in self.manifest["teachers"]:
            path = Path(os.path.normpath(self.path / teacher["path"]))
            if not (path / "config.cfg").is_file():
                continue
            now = pipeline_digest(path)
            if now != teacher["sha256"]:
                raise DistributionsError(
                    f"{self.path}: teacher {path} ({teacher['label']}) changed since these "
                    f"distributions were made (sha256 {teacher['sha256'][:12]}... now {now[:12]}...); "
                    "rerun distill"
                )

    def _shard_probs(self, k: int) -> numpy.ndarray:
        if k not in self._probs:
            entry = self.manifest["shards"][k]
            path = self.path / entry["name"] / PROBS
            if file_digest(path) != entry["sha256"][PROBS]:
                raise DistributionsError(
                    f"{path}: changed since it was written (sha256 differs from {MANIFEST}), so its "
                    "rows may not match their docs; rerun distill"
                )
            if entry["n_tokens"] == 0:
                self._probs[k] = numpy.zeros((0, self._n_columns), dtype=numpy.float16)
            else:
                self._probs[k] = numpy.load(path, mmap_mode="r")
        return self._probs[k]

    def doc_distributions(self, i: int) -> Tuple[Optional[numpy.ndarray], Optional[numpy.ndarray]]:
        """Doc i's rows as float32, checked and renormalised (float16 rounding moves the sums
        by ~1e-3): the global distributions (n_tokens, 2k+1), or None for a folder distilled
        with normalize "none"; and the per-type ones (n_tokens, 3k: (B, I, O) of each type in
        `labels` order, each renormalised), or None for a folder without type_columns."""
        k = bisect_right(self._starts, i) - 1
        shard_offset = self.offsets[self._starts[k]]
        start, end = self.offsets[i] - shard_offset, self.offsets[i + 1] - shard_offset
        rows = numpy.asarray(self._shard_probs(k)[start:end], dtype=numpy.float32)
        bad = invalid_row(rows, self._blocks)
        if bad is not None:
            raise _row_error(self.path / self.manifest["shards"][k]["name"] / PROBS, i, bad[0], bad[1])
        blocks = [rows[:, b] / rows[:, b].sum(axis=1, keepdims=True) for b in self._blocks]
        probs = blocks.pop(0) if self.global_columns else None
        return probs, numpy.concatenate(blocks, axis=1) if self.type_columns else None
