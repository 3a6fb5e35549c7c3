"""`annotate --backend ray`: the same records as the local backend, annotated by Ray actors
on one machine or a cluster. Imported only when that backend is asked for.

Shards are the project's, not Ray's: an input file's records [j*S, (j+1)*S) make one shard
(S: shard_records; the records the local backend writes, in its order), numbered on from one
file to the next, so they are the same in every run. The driver reads the input (twice, as
the local backend does: a first pass checks and digests it, see resume.py), sends the
records of each shard not yet written to an actor,
and each actor, which loads the model once, writes its shard as `part-NNNNN.<format>`
atomically (a temporary name, fsync, rename). A part is therefore whole or absent: a task
retried after an actor died, or a rerun after the driver died, rewrites only parts that are
absent, and a part written twice holds the same bytes. Actors write the parts themselves,
so on a cluster the output must be on a filesystem that every node mounts at the same path.

OUTPUT is a folder of parts (OUTPUT.manifest.json and OUTPUT.lock beside it), or a
`.jsonl`/`.pubtator` file: then the parts go to the hidden folder `.OUTPUT.parts` and are
concatenated into OUTPUT at the end, which is moved into place as the local backend's
--overwrite output is (resume.swap_in), with the manifest the local backend writes. A folder
of parts that holds anything but parts (an input file above all) is refused, so --overwrite,
and the end of a run, remove parts only.

The cluster, the actors' options and the pool that feeds them are ray_cluster.py's, shared
with the teachers' pass on Ray (distill_ray.py).
"""
import os
import re
import sys
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple

from ..atomic import atomic_path
from ..errors import AnnotateError
from ..formats import InputFiles, Record, format_record
from ..ray_cluster import (
    DEFAULT_SHARD_RECORDS,
    PoolActor,
    RayOptions,
    check_reachable,
    require_ray,
    run_pool,
)
from .resume import (  # duplicates check: an import block, alike wherever these names are imported
    InputDigest,
    OutputFiles,
    OutputLock,
    check_resumable,
    finish_interrupted_swap,
    load_manifest,
    resume_output,
    swap_in,
    write_manifest,
    writing,
)
from .runner import (
    DEFAULT_CHUNK_CHARS,
    AnnotateRun,
    AnnotateSummary,
    _some,
    _stderr,
    annotate_records,
    check_input_files,
    check_spans,
    check_threshold,
    load_pipeline,
    write_whole,
)

_OUTPUT_SUFFIXES = {".jsonl", ".pubtator"}


def part_name(index: int, fmt: str) -> str:
    return f"part-{index:05d}.{fmt}"


class ShardAnnotator(PoolActor):
    """A Ray actor: loads the pipeline once, then writes shards."""

    def __init__(self, use_gpu: bool, model: str, out_fmt: str, include_text: bool, pipe_options: Dict[str, Any]) -> None:
        super().__init__(use_gpu)
        self.nlp = load_pipeline(model)
        self.out_fmt, self.include_text, self.pipe_options = out_fmt, include_text, pipe_options

    def write_shard(self, path: str, records: List[Record]) -> int:
        """Annotate the records into `path`, atomically; the number written."""
        with atomic_path(path) as tmp:
            with tmp.open("wb", buffering=0) as out:
                for record, entities, groups in annotate_records(self.nlp, records, **self.pipe_options):
                    write_whole(out, format_record(record, entities, self.out_fmt, include_text=self.include_text, spans=groups), Path(path))
                with writing(path):
                    os.fsync(out.fileno())
        return len(records)


def shard_sizes(counts: List[int], shard_records: int) -> List[int]:
    """The records of each shard, in order, for input files of `counts` records: each file's
    records in shards of shard_records, its last shard shorter."""
    return [min(shard_records, n - start) for n in counts for start in range(0, n, shard_records)]


def _shards(records: Iterator[Record], shard_records: int) -> Iterator[Tuple[int, List[Record]]]:
    """(index, records) of each shard: runs of shard_records records of one file."""
    shard: List[Record] = []
    index = 0
    for record in records:
        if shard and (len(shard) == shard_records or record.file != shard[0].file):
            yield index, shard
            shard, index = [], index + 1
        shard.append(record)
    if shard:
        yield index, shard


# What annotate writes in a folder of parts: the parts, and the temporary of a part being
# written (atomic_path) that a killed run leaves.
_OWN_FILE = re.compile(r"part-\d{5,}\.(?:jsonl|pubtator)|\.part-\d{5,}\.(?:jsonl|pubtator)\.[a-z0-9_]{8}\.tmp")


def _own_files(parts: Path, inputs: InputFiles) -> List[Path]:
    """The files that annotate wrote in the folder `parts` (_OWN_FILE), all that --overwrite
    and the end of a run remove there; AnnotateError if it holds anything else, or a file of
    the input (compared by inode: under any name)."""
    if not parts.exists():
        return []
    if not parts.is_dir():
        raise AnnotateError(f"{parts}: is a file; give a folder, or an output file ending in .jsonl or .pubtator")

    def inode(path: Path) -> Tuple[int, int]:
        stat = path.stat()
        return stat.st_dev, stat.st_ino

    input_inodes = set(map(inode, inputs.files))
    entries = sorted(parts.iterdir())
    for entry in entries:
        if entry.exists() and inode(entry) in input_inodes:
            raise AnnotateError(f"{parts}: holds the input file {entry.name}; write the parts to another folder")
    others = [entry.name for entry in entries if not (_OWN_FILE.fullmatch(entry.name) and entry.is_file() and not entry.is_symlink())]
    if others:
        raise AnnotateError(
            f"{parts}: holds files that annotate did not write ({_some(others)}); write the parts to a new or empty "
            "folder, or to one that holds parts only"
        )
    return entries


def _start_parts(parts: Path, inputs: InputFiles, manifest: Dict[str, Any], digest: InputDigest, overwrite: bool) -> None:
    """Make `parts` the folder of this run's shards: check that the parts already there were
    written by this model, options and input (their manifest), or with overwrite remove
    them; a folder that holds anything else is refused (_own_files)."""
    files = OutputFiles(parts)
    own = _own_files(parts, inputs)
    if own and not overwrite:
        old = load_manifest(files)
        check_input_files(old, manifest, files)
        check_resumable(old, manifest, digest, files)
        return
    for path in own:
        path.unlink()
    parts.mkdir(parents=True, exist_ok=True)
    write_manifest(files.manifest, manifest)


# duplicates check: its options are annotate_file's, declared again, as each backend's
# entry point is called with them by name (cli.annotate).
def annotate_ray(
    model: str,
    input_path: Path,
    output_path: Path,
    *,
    input_format: Optional[str] = None,
    output_format: Optional[str] = None,
    batch_size: int = 64,
    chunk_chars: int = DEFAULT_CHUNK_CHARS,
    include_text: bool = True,
    spans: bool = False,
    threshold: Optional[float] = None,
    skip_bad: bool = False,
    overwrite: bool = False,
    progress: bool = True,
    ray_options: RayOptions = RayOptions(),
    shard_records: int = DEFAULT_SHARD_RECORDS,
    log: Callable[[str], None] = _stderr,
) -> AnnotateSummary:
    """Annotate an input (a file, a folder or a glob pattern, see InputFiles) with Ray actors
    into a folder of parts or an output file (see the module docstring); rerun the same call
    to write only the shards still missing. spans, threshold: as for annotate_file."""
    from tqdm import tqdm

    require_ray("annotate")
    check_threshold(threshold)
    output_path = Path(output_path).resolve()
    if Path(model).exists():
        model = str(Path(model).resolve())  # the actors' working folder may be another
    if shard_records < 1:
        raise AnnotateError(f"--shard-records must be positive, got {shard_records}")
    check_reachable(ray_options.cluster_address)
    as_folder = output_path.is_dir() or output_path.suffix.lower() not in _OUTPUT_SUFFIXES
    run = AnnotateRun.start(
        input_path, output_path, input_format, output_format or ("jsonl" if as_folder else None), skip_bad=skip_bad, log=log,
        output_is_file=not as_folder,
    )
    inputs, out_fmt, files = run.inputs, run.out_fmt, run.files
    parts = output_path if as_folder else output_path.with_name(f".{output_path.name}.parts")
    _own_files(parts, inputs)  # a folder holding anything else is refused before the model loads
    with OutputLock(files):
        nlp = load_pipeline(model)
        if spans:
            check_spans(nlp, out_fmt)
        digested, manifest = run.digest(nlp, include_text=include_text, chunk_chars=chunk_chars, spans=spans, threshold=threshold)
        digest = digested.digest
        del nlp  # the actors load their own; this one served the model digest only
        if not as_folder:
            finish_interrupted_swap(files)
            if output_path.exists() and output_path.stat().st_size > 0 and not overwrite:
                old = load_manifest(files)
                check_input_files(old, manifest, files)
                check_resumable(old, manifest, digest, files)
                n_done, _ = resume_output(output_path, out_fmt, run.records(digested), inputs.given)
                if n_done < digest.records:
                    raise AnnotateError(
                        f"{output_path} holds {n_done} of {digest.records} documents, written by the local backend: "
                        "resume it with --backend local, or pass --overwrite"
                    )
                _remove_parts(parts, inputs)
                return AnnotateSummary(total=digest.records, resumed=n_done, written=0, bad_lines=run.bad_lines, discarded_bytes=0)
        _start_parts(parts, inputs, {**manifest, "options": {**manifest["options"], "shard_records": shard_records}}, digest, overwrite)
        sizes = shard_sizes(digested.counts, shard_records)
        done = {i for i in range(len(sizes)) if (parts / part_name(i, out_fmt)).is_file()}
        resumed = sum(sizes[i] for i in done)
        if done:
            log(f"Resuming: {len(done)} of {len(sizes)} shards ({resumed} of {digest.records} documents) already in {parts}")
        written = 0
        if len(done) < len(sizes):
            written = _run_shards(
                model, run.records(digested), out_fmt, parts, done, shard_records,
                ray_options, include_text, {"batch_size": batch_size, "chunk_chars": chunk_chars, "spans": spans, "threshold": threshold},
                tqdm(total=digest.records, initial=resumed, unit="doc", desc="Annotating", disable=not progress, file=sys.stderr),
            )
        if not as_folder:
            with files.staged.open("wb", buffering=0) as out:
                for i in range(len(sizes)):
                    write_whole(out, (parts / part_name(i, out_fmt)).read_bytes(), files.staged)
                with writing(files.staged):
                    os.fsync(out.fileno())
            swap_in(files, manifest)
            _remove_parts(parts, inputs)
    return AnnotateSummary(total=digest.records, resumed=resumed, written=written, bad_lines=run.bad_lines, discarded_bytes=0)


def _remove_parts(parts: Path, inputs: InputFiles) -> None:
    """Remove the hidden folder of parts of a complete output file, and its manifest."""
    for path in _own_files(parts, inputs):
        path.unlink()
    if parts.exists():
        parts.rmdir()
    OutputFiles(parts).manifest.unlink(missing_ok=True)


def _run_shards(
    model: str,
    records: Iterator[Record],
    out_fmt: str,
    parts: Path,
    done: set,
    shard_records: int,
    ray_options: RayOptions,
    include_text: bool,
    pipe_options: Dict[str, Any],
    bar: Any,
) -> int:
    """Write every shard of `records` not in `done` with the actors of ray_options; the
    number of documents written."""
    written = 0

    def count(n: int) -> None:
        nonlocal written
        written += n
        bar.update(n)

    try:
        run_pool(
            ShardAnnotator, (model, out_fmt, include_text, pipe_options), ray_options,
            ((str(parts / part_name(index, out_fmt)), shard) for index, shard in _shards(records, shard_records) if index not in done),
            lambda actor, job: actor.write_shard.remote(*job),
            count,
            cannot_start=lambda why: AnnotateError(f"the Ray actors cannot start: {why}"),
            failed=lambda why: AnnotateError(f"a Ray actor failed: {why}; the parts written are whole: rerun the same command to resume"),
        )
    finally:
        bar.close()
    return written
