"""`distill-teachers --backend ray` on a local Ray cluster started here: the same shards and
manifest as the local backend, a rerun that writes only the missing shards, a killed actor,
the GPU request."""
import json
import shutil
from pathlib import Path
from typing import Dict, Tuple

import numpy
import pytest
import spacy
from helpers import corpus_file, train_pipe
from typer.testing import CliRunner

pytestmark = pytest.mark.ray
ray = pytest.importorskip("ray")

from ray_helpers import actor_killed_mid_run  # noqa: E402

from spacy_taughtnet.cli import app  # noqa: E402
from spacy_taughtnet.corpora import read_docbin, read_iob, write_docbin  # noqa: E402
from spacy_taughtnet.distributions import MANIFEST, PROBS, staging_path  # noqa: E402
from spacy_taughtnet.layout import RunLayout  # noqa: E402

CORPORA = ["Toy-disease-IOB", "Toy-chem-IOB"]
# 12 docs in shards of 4 (3 shards), batches of 3: each shard ends with a short batch, on both backends
OPTIONS = ["--corpora", " ".join(CORPORA), "--shard-docs", "4", "--batch-size", "3"]
RAY_ARGS = ["--backend", "ray", "--num-actors", "2", "--cpus-per-actor", "0.5"]


@pytest.fixture(scope="module")
def run(teachers, docbins, tmp_path_factory) -> Tuple[Path, Path]:
    """A run folder (a union of 6 Disease and 6 Chemical docs; two Disease teachers, of
    Toy-disease-IOB and of a second Disease corpus, the first's copy; two Chemical teachers,
    seeds 0 and 1) and a specification of those teachers, whose Chemical rows are merged by
    product and Disease rows by corpus: on the Disease docs their own teacher alone, which
    needs each doc's corpus on the actors."""
    base = tmp_path_factory.mktemp("ray_distill")
    root, layout = base / "run", RunLayout(base / "run")
    vocab = spacy.blank("en").vocab
    union = read_docbin(docbins["Toy-disease-IOB"]["train"], vocab)[:6] + read_docbin(docbins["Toy-chem-IOB"]["train"], vocab)[:6]
    write_docbin(union, layout.global_split("train"))
    shutil.copytree(teachers["Disease"], layout.teacher_model("Toy-disease-IOB"))
    shutil.copytree(teachers["Disease"], layout.teacher_model("Toy-disease2-IOB"))
    shutil.copytree(teachers["Chemical"], layout.teacher_model("Toy-chem-IOB"))
    layout.teacher("Toy-chem-IOB", seed=1).mkdir(parents=True)
    train_pipe(read_iob(corpus_file("Toy-chem-IOB"), vocab), 30, seed=1)[0].to_disk(layout.teacher_model("Toy-chem-IOB", seed=1))
    spec = base / "teachers.yml"
    spec.write_text(
        "teachers:\n  - corpus: Toy-disease-IOB\n  - corpus: Toy-chem-IOB\n    seeds: 2\n  - corpus: Toy-disease2-IOB\n",
        encoding="utf8",
    )
    return root, spec


@pytest.fixture(scope="module")
def local(run) -> Path:
    root, spec = run
    out = root / "distributions" / "local"
    result = CliRunner().invoke(app, ["distill-teachers", str(root), *OPTIONS, "--teachers", str(spec), "--output", str(out)])
    assert result.exit_code == 0, result.output
    return out


def cli(*args) -> str:
    result = CliRunner().invoke(app, ["distill-teachers", *map(str, args)])
    assert result.exit_code == 0, result.output
    return result.output


def assert_same_distributions(out: Path, expected: Path) -> None:
    """The same manifest (shards, labels, inputs: the outputs are siblings, so the paths it
    records are the same), the same files (no shard twice, nothing left over) and the same
    stored rows, bit for bit; the staging folder is gone."""
    manifest = json.loads((out / MANIFEST).read_text())
    assert manifest["labels"] == ["Disease", "Chemical"]
    assert manifest == json.loads((expected / MANIFEST).read_text())
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == sorted(p.relative_to(expected) for p in expected.rglob("*"))
    for shard in manifest["shards"]:
        numpy.testing.assert_array_equal(numpy.load(out / shard["name"] / PROBS), numpy.load(expected / shard["name"] / PROBS))
    assert not staging_path(out).exists()


def shard_files(folder: Path) -> Dict[str, Tuple[int, int]]:
    """shard -> (inode, mtime_ns) of its probs.npy: a shard rewritten is a new file (rename)."""
    return {p.parent.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.glob(f"shard-*/{PROBS}")}


def test_same_as_local(cluster, run, local):
    root, spec = run
    out = root / "distributions" / "ray"
    cli(root, *OPTIONS, "--teachers", spec, "--output", out, *RAY_ARGS)
    manifest = json.loads((out / MANIFEST).read_text())
    assert len(manifest["shards"]) == 3 and manifest["n_docs"] == 12
    assert_same_distributions(out, local)


def test_rerun_writes_only_missing_shards(cluster, run, local):
    """A driver killed after two of the three shards: the staging folder holds them (here
    the local backend's, made from the same inputs); the rerun writes the third alone."""
    root, spec = run
    out = root / "distributions" / "resumed"
    staging = staging_path(out)
    shutil.copytree(local, staging)
    (staging / MANIFEST).unlink()
    shutil.rmtree(staging / "shard-00001")
    kept = shard_files(staging)
    assert sorted(kept) == ["shard-00000", "shard-00002"]
    cli(root, *OPTIONS, "--teachers", spec, "--output", out, *RAY_ARGS[:2], "--num-actors", "1", "--cpus-per-actor", "0.5")
    now = shard_files(out)
    assert {name: now[name] for name in kept} == kept
    assert "shard-00001" in now
    assert_same_distributions(out, local)


@pytest.fixture(scope="module")
def long_run(run) -> Tuple[Path, Path, Path]:
    """The run's teachers over a union of its 12 docs 20 times (240 docs, 20 shards of 12):
    a few seconds of work, so that a kill lands mid-run. Returns (root, spec, local output)."""
    root, spec = run
    long_root = root.parent / "long"
    layout = RunLayout(long_root)
    shutil.copytree(root / "teachers", long_root / "teachers")
    vocab = spacy.blank("en").vocab
    write_docbin(read_docbin(RunLayout(root).global_split("train"), vocab) * 20, layout.global_split("train"))
    out = long_root / "distributions" / "local"
    cli(long_root, *LONG_OPTIONS, "--teachers", spec, "--output", out)
    return long_root, spec, out


LONG_OPTIONS = ["--corpora", " ".join(CORPORA), "--shard-docs", "12", "--batch-size", "4"]


def test_killed_actor(cluster, long_run):
    """An actor SIGKILLed after two shards: Ray restarts it and retries its shard; the
    distributions are the local backend's, no shard written twice or lost."""
    root, spec, local = long_run
    out = root / "distributions" / "ray"
    with actor_killed_mid_run("ShardDistiller", staging_path(out), "shard-*") as killed:
        cli(root, *LONG_OPTIONS, "--teachers", spec, "--output", out, *RAY_ARGS)
    assert killed and killed["outputs"] < 20, f"the actor was not killed mid-run: {killed}"
    assert_same_distributions(out, local)


def test_gpu_actors_on_a_cluster_without_gpus(cluster, run, tmp_path):
    """--gpus-per-actor reaches the actors' resource request: this cluster has no GPU to give."""
    root, spec = run
    out = tmp_path / "dist"
    result = CliRunner().invoke(app, ["distill-teachers", str(root), *OPTIONS, "--teachers", str(spec), "--output", str(out),
                                      *RAY_ARGS, "--gpus-per-actor", "1"])
    assert result.exit_code == 1
    assert "cannot hold 2 actors of 0.5 CPUs and 1 GPUs" in result.output
    assert not out.exists() and not staging_path(out).exists()


def test_ray_options_are_checked_first(run, tmp_path):
    root, spec = run
    out = tmp_path / "dist"
    result = CliRunner().invoke(app, ["distill-teachers", str(root), *OPTIONS, "--output", str(out), "--backend", "ray",
                                      "--gpus-per-actor", "-1"])
    assert result.exit_code == 1 and result.output.strip() == "Error: --gpus-per-actor must be 0 or more, got -1.0"
    assert not out.exists() and not staging_path(out).exists()
