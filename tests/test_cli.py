"""The command line's defaults are the library's, and its checks are the library's."""
import sys

import pytest
import typer
from helpers import cli

from spacy_taughtnet.aggregate import DEFAULT_MERGE
from spacy_taughtnet.annotate.runner import DEFAULT_CHUNK_CHARS
from spacy_taughtnet.cli import app
from spacy_taughtnet.distill import DEFAULT_BATCH_SIZE, DEFAULT_NORMALIZE
from spacy_taughtnet.distributions import SHARD_DOCS
from spacy_taughtnet.errors import AnnotateError, RayBackendError
from spacy_taughtnet.ray_cluster import (
    DEFAULT_CPUS_PER_ACTOR,
    DEFAULT_GPUS_PER_ACTOR,
    DEFAULT_SHARD_RECORDS,
)
from spacy_taughtnet.render import DEFAULT_LIMIT
from spacy_taughtnet.workflow import distill_teachers


def defaults(command: str) -> dict:
    """{parameter name: default} of a command, as click parses it."""
    return {param.name: param.default for param in typer.main.get_command(app).commands[command].params}


def test_defaults_are_the_library_constants():
    for command in ("distill", "distill-teachers"):
        assert defaults(command)["normalize"] == DEFAULT_NORMALIZE
        assert defaults(command)["batch_size"] == DEFAULT_BATCH_SIZE
        assert defaults(command)["shard_docs"] == SHARD_DOCS
    assert defaults("distill")["merge"] == DEFAULT_MERGE
    assert defaults("annotate")["chunk_chars"] == DEFAULT_CHUNK_CHARS
    assert defaults("render")["limit"] == DEFAULT_LIMIT


def test_ray_defaults_are_the_ray_clusters():
    assert defaults("annotate")["shard_records"] == DEFAULT_SHARD_RECORDS
    for command in ("annotate", "distill-teachers"):
        assert defaults(command)["cpus_per_actor"] == DEFAULT_CPUS_PER_ACTOR
        assert defaults(command)["gpus_per_actor"] == DEFAULT_GPUS_PER_ACTOR


@pytest.mark.parametrize("args", [
    ["annotate", "no-model", "in.txt", "out.jsonl"],
    ["distill-teachers", "no-run", "--corpora", "A-IOB"],
], ids=["annotate", "distill-teachers"])
def test_an_unknown_backend_is_refused_by_the_one_check(args):
    result = cli(*args, "--backend", "spark")
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: --backend must be local or ray, got 'spark'"


@pytest.mark.parametrize("args", [
    ["annotate", "no-model", "in.txt", "out.jsonl"],
    ["distill-teachers", "no-run", "--corpora", "A-IOB"],
], ids=["annotate", "distill-teachers"])
def test_a_missing_ray_names_the_command(monkeypatch, args):
    """Without Ray, --backend ray says which command needs it, before reading anything."""
    monkeypatch.setitem(sys.modules, "ray", None)  # `import ray` raises ImportError
    result = cli(*args, "--backend", "ray")
    assert result.exit_code == 1
    assert result.stderr.strip() == f'Error: {args[0]} --backend ray needs Ray, an optional extra: pip install "spacy-taughtnet[ray]"'


def test_a_missing_ray_is_not_an_annotate_error_in_distill_teachers(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "ray", None)
    with pytest.raises(RayBackendError) as err:
        distill_teachers(tmp_path, ["A-IOB"], tmp_path / "distributions", backend="ray")
    assert not isinstance(err.value, AnnotateError)
    assert str(err.value).startswith("distill-teachers --backend ray needs Ray")
