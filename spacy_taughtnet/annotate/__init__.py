"""Annotate documents with a pipeline: the `annotate` command's engine. The formats it reads
and writes are the package's formats.py.

  resume.py       the files beside an output: its lock, its manifest, the input digest, resume checks
  runner.py       loading the pipeline, the nlp.pipe loop, long documents in pieces, annotate_file
  workers.py      nlp.pipe worker processes that die with their parent, or when it gets SIGINT or SIGTERM
  ray_backend.py  --backend ray: shards written by Ray actors (imported only when asked for; the
                  cluster and the pool of actors are the package's ray_cluster.py)

Resuming: the output is appended one whole record at a time. A run that finds an output
already there checks, with the manifest beside it, that it was written by the same model
with the same options from the same input, checks that its complete records are the first
records of the input, truncates a trailing partial record left by a crash, and annotates
only the rest. Anything else is refused; --overwrite starts afresh (the old output stays
until the new one is complete).
"""
from .runner import (
    DEFAULT_CHUNK_CHARS,
    AnnotateSummary,
    annotate_file,
    annotate_records,
    chunk_text,
    load_pipeline,
)

__all__ = [
    "DEFAULT_CHUNK_CHARS",
    "AnnotateSummary",
    "annotate_file",
    "annotate_records",
    "chunk_text",
    "load_pipeline",
]
