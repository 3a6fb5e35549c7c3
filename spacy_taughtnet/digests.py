"""One hash vocabulary: every digest the package stores or compares is a sha256, as hex.

A stored digest is only ever compared with one computed by the same function here: a file's
bytes, a spaCy pipeline folder, a model's weights, a JSON value, or a step's inputs (files and
settings)."""
import hashlib
import json
from pathlib import Path
from typing import Any, Sequence, Union

PathLike = Union[str, Path]


def file_digest(path: PathLike) -> str:
    """sha256 of a file's bytes, read in blocks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def json_digest(value: Any) -> str:
    """sha256 of a JSON value, keys sorted: equal values, equal digests."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode("utf8")).hexdigest()


def pipeline_digest(path: PathLike) -> str:
    """sha256 over a spaCy pipeline folder's config.cfg and the files of its components'
    folders (named by the config's [nlp] pipeline), sorted by path: stable when the folder is
    copied or its meta.json edited, changed when it is retrained."""
    from thinc.api import Config

    path = Path(path)
    config = Config().from_disk(path / "config.cfg", interpolate=False)
    files = [path / "config.cfg"]
    for name in config["nlp"]["pipeline"]:
        files += sorted(f for f in (path / name).rglob("*") if f.is_file())
    digest = hashlib.sha256()
    for f in files:
        digest.update(f"{f.relative_to(path).as_posix()}\0{file_digest(f)}\n".encode("utf8"))
    return digest.hexdigest()


def weights_digest(model: Any) -> str:
    """sha256 of a thinc model's parameters (names, shapes and float32 values, in walk order)."""
    import numpy

    digest = hashlib.sha256()
    for i, node in enumerate(model.walk()):
        for name in node.param_names:
            if node.has_param(name):
                value = numpy.ascontiguousarray(model.ops.to_numpy(node.get_param(name)), dtype="float32")
                digest.update(f"{i}:{name}:{value.shape}".encode())
                digest.update(value.tobytes())
    return digest.hexdigest()


def inputs_digest(paths: Sequence[PathLike], settings: Any) -> str:
    """sha256 of a step's inputs: its settings (a JSON value) and the bytes of each file, in
    order. A step whose stored inputs digest equals this one's is up to date."""
    digest = hashlib.sha256(json_digest(settings).encode("ascii"))
    for path in paths:
        digest.update(file_digest(path).encode("ascii"))
    return digest.hexdigest()
