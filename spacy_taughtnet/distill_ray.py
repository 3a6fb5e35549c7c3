"""`distill-teachers --backend ray`: the teachers' pass (distill.py) on Ray actors, on one
machine or a cluster. Imported only when that backend is asked for.

The distributions are those of the local backend, shard for shard (distributions.py's layout
and manifest): the driver checks the inputs and writes the header as `dump_distributions` does,
then sends the docs of each shard not yet written (a DocBin's bytes) to a free actor. Each
actor loads the teachers once and writes whole shards into the staging folder with
`distributions.write_shard` (atomic), computing the rows with `distill.shard_rows`, so the same docs
in the same batches give the same rows. A shard already written from the same inputs is kept,
so a rerun after a killed driver writes only the missing ones; an actor that dies is
restarted and its shard retried. The driver then calls `finalise_distributions`. Actors write
the shards themselves: on a cluster, the output must be on a filesystem that every node
mounts at the same path. The cluster and the pool of actors are ray_cluster.py's.
"""
import dataclasses
import sys
from itertools import islice
from pathlib import Path
from typing import Any, Dict, Iterator, List, Set, Tuple, Union

from spacy.tokens import DocBin

from .distill import (
    DEFAULT_BATCH_SIZE,
    DEFAULT_NORMALIZE,
    DistillInputs,
    distill_inputs,
    shard_rows,
)
from .distributions import (
    SHARD_DOCS,
    distributions_header,
    finalise_distributions,
    shard_ranges,
    staging_path,
    write_shard,
    written_shard,
)
from .errors import DistributionsError, TeacherError
from .ray_cluster import PoolActor, RayOptions, check_reachable, require_ray, run_pool
from .teachers import TeachersSpec, load_teachers


class ShardDistiller(PoolActor):
    """A Ray actor: loads the teachers once, then writes whole shards of distributions."""

    def __init__(self, use_gpu: bool, spec: TeachersSpec, root: str, folder: str, header: Dict[str, Any],
                 lengths: List[int], options: Dict[str, Any]) -> None:
        super().__init__(use_gpu)
        self.teachers, _ = load_teachers(spec, root)
        self.folder, self.header, self.lengths, self.options = folder, header, lengths, options

    def write(self, k: int, docs: bytes) -> int:
        """Write shard k from its docs (a DocBin's bytes); the number of docs."""
        start, end = shard_ranges(self.header["n_docs"], self.header["shard_docs"])[k]
        batch = DocBin().from_bytes(docs).get_docs(self.teachers[0].nlp.vocab)
        rows = shard_rows(self.teachers, batch, self.header["labels"], **self.options)
        write_shard(self.folder, self.header, k, self.lengths[start:end], rows)
        return end - start


def dump_distributions_ray(
    docbin_path: Union[str, Path],
    spec: TeachersSpec,
    root: Union[str, Path],
    output: Union[str, Path],
    *,
    normalize: str = DEFAULT_NORMALIZE,
    batch_size: int = DEFAULT_BATCH_SIZE,
    shard_docs: int = SHARD_DOCS,
    ray_options: RayOptions = RayOptions(),
    progress: bool = True,
) -> List[str]:
    """`dump_distributions` of the teachers of `spec` (run folder `root`) with Ray actors (where
    and how many: `ray_options`): the same folder, shards and manifest. Rerun the same call to
    write only the missing shards. Returns the labels."""
    from tqdm import tqdm

    require_ray("distill-teachers")
    check_reachable(ray_options.cluster_address)
    # the actors' working folder may be another: every path they load from is absolute
    root, output = Path(root).resolve(), Path(output).resolve()
    spec = dataclasses.replace(spec, base=spec.base.resolve())
    teachers, labels = load_teachers(spec, root)
    inputs = distill_inputs(Path(docbin_path).resolve(), teachers, labels, spec.merge)
    del teachers  # the actors load their own; these served the checks and the manifest
    header = distributions_header(
        output, inputs.docbin_path, inputs.lengths, labels=inputs.labels, normalize=normalize,
        teachers=inputs.recorded, shard_docs=shard_docs,
    )
    folder = staging_path(output)
    folder.mkdir(parents=True, exist_ok=True)
    ranges = shard_ranges(header["n_docs"], shard_docs)
    done = {k for k in range(len(ranges)) if written_shard(folder, header, k) is not None}
    try:
        if len(done) < len(ranges):
            _run_shards(
                inputs, spec, root, folder, header, done, ray_options,
                {"merge": spec.merge, "normalize": normalize, "batch_size": batch_size},
                tqdm(total=len(inputs.lengths), initial=sum(ranges[k][1] - ranges[k][0] for k in done),
                     desc=f"distill {inputs.docbin_path.name}", unit="doc", disable=not progress, file=sys.stderr),
            )
    except BaseException:
        if not any(folder.iterdir()):  # keep completed shards for the rerun
            folder.rmdir()
        raise
    finalise_distributions(folder, output, header, inputs.lengths)
    return inputs.labels


def _run_shards(
    inputs: DistillInputs, spec: TeachersSpec, root: Path, folder: Path, header: Dict[str, Any], done: Set[int],
    ray_options: RayOptions, row_options: Dict[str, Any], bar: Any,
) -> None:
    """Write every shard not in `done` with the actors of ray_options, sending each its shard's docs."""

    def jobs() -> Iterator[Tuple[int, bytes]]:
        """(k, its docs as a DocBin's bytes) of each shard not in `done`."""
        docs = inputs.doc_bin.get_docs(inputs.vocab)
        for k, (start, end) in enumerate(shard_ranges(header["n_docs"], header["shard_docs"])):
            shard = list(islice(docs, end - start))
            if k not in done:
                # with each doc's corpus and type (user_data), which merge "corpus" reads
                yield k, DocBin(docs=shard, store_user_data=True).to_bytes()

    try:
        run_pool(
            ShardDistiller, (spec, str(root), str(folder), header, inputs.lengths, row_options), ray_options,
            jobs(),
            lambda actor, job: actor.write.remote(*job),
            bar.update,
            cannot_start=lambda why: TeacherError(f"the Ray actors cannot start: {why}"),
            failed=lambda why: DistributionsError(f"a Ray actor failed: {why}; the shards written are whole: rerun the same command to resume"),
        )
    finally:
        bar.close()
