"""The command line's defaults are the library's, and its checks are the library's."""
import pytest
import typer
from helpers import cli

from spacy_taughtnet.aggregate import DEFAULT_MERGE, DEFAULT_NORMALIZE
from spacy_taughtnet.annotate.runner import DEFAULT_CHUNK_CHARS
from spacy_taughtnet.cli import app
from spacy_taughtnet.distill import DEFAULT_BATCH_SIZE
from spacy_taughtnet.distributions import SHARD_DOCS
from spacy_taughtnet.render import DEFAULT_LIMIT


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


def test_ray_defaults_are_the_ray_backends():
    """Typed again in cli.py: their module imports Ray, which the CLI must not need."""
    ray_backend = pytest.importorskip("spacy_taughtnet.annotate.ray_backend")
    assert defaults("annotate")["shard_records"] == ray_backend.DEFAULT_SHARD_RECORDS
    for command in ("annotate", "distill-teachers"):
        assert defaults(command)["cpus_per_actor"] == ray_backend.RayOptions.cpus_per_actor
        assert defaults(command)["gpus_per_actor"] == ray_backend.RayOptions.gpus_per_actor


@pytest.mark.parametrize("args", [
    ["annotate", "no-model", "in.txt", "out.jsonl"],
    ["distill-teachers", "no-run", "--corpora", "A-IOB"],
], ids=["annotate", "distill-teachers"])
def test_an_unknown_backend_is_refused_by_the_one_check(args):
    result = cli(*args, "--backend", "spark")
    assert result.exit_code == 1
    assert result.stderr.strip() == "Error: --backend must be local or ray, got 'spark'"
