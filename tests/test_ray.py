"""`annotate --backend ray` on a local Ray cluster started here: the same bytes as the local
backend, folder output, a rerun after a killed driver, a killed actor, the resource request."""
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Tuple

import pytest
from tqdm import tqdm

pytestmark = pytest.mark.ray
ray = pytest.importorskip("ray")

from helpers import (  # noqa: E402
    PUBMED_XML,
    alive,
    children_of,
    cli,
    gone_soon,
    gzipped,
    write_input,
)
from ray_helpers import actor_killed_mid_run, actor_pids, actors_gone  # noqa: E402

from spacy_taughtnet.annotate import ray_backend  # noqa: E402
from spacy_taughtnet.errors import AnnotateError, ConfigError  # noqa: E402
from spacy_taughtnet.formats import InputFiles  # noqa: E402
from spacy_taughtnet.ray_cluster import PoolActor, RayOptions, run_pool  # noqa: E402

N_SMALL = 50
N_LONG = 2000  # 20 shards of 100: about 2 s of annotation, so a kill lands mid-run
WORDS = "Patients with breast cancer received aspirin ; cisplatin induced renal failure in mice".split()
RAY_ARGS = ["--backend", "ray", "--num-actors", "1", "--cpus-per-actor", "0.5", "--no-progress"]


def samples(n: int):
    return [(" ".join(WORDS[(i * 7 + j) % len(WORDS)] for j in range(4 + i % 9)) + f" {i} .", "Expression of BRCA1 in rats .")
            for i in range(n)]


@pytest.fixture(scope="module")
def long_input(model_path, tmp_path_factory) -> Tuple[Path, bytes]:
    """A 2000-document input and the local backend's output of it."""
    root = tmp_path_factory.mktemp("ray_long")
    source = write_input(root / "in.jsonl", "jsonl", samples(N_LONG))
    result = cli("annotate", model_path, source, root / "local.jsonl", "--no-progress")
    assert result.exit_code == 0, result.output
    return source, (root / "local.jsonl").read_bytes()


def local_output(model_path: Path, source: Path, out: Path) -> bytes:
    result = cli("annotate", model_path, source, out, "--no-progress")
    assert result.exit_code == 0, result.output
    return out.read_bytes()


def parts_of(folder: Path) -> Dict[str, Tuple[int, int]]:
    """part name -> (inode, mtime_ns): a part rewritten gets a new inode (rename)."""
    return {p.name: (p.stat().st_ino, p.stat().st_mtime_ns) for p in folder.glob("part-*.jsonl")}


@pytest.mark.parametrize("in_fmt,out_ext,n_docs,shard", [("jsonl", ".jsonl", N_SMALL, 15), ("text", ".pubtator", N_SMALL, 15),
                                                         ("pubmed", ".jsonl", 3, 2)])
def test_same_bytes_as_local(cluster, model_path, tmp_path, in_fmt, out_ext, n_docs, shard):
    if in_fmt == "pubmed":
        source = gzipped(PUBMED_XML, tmp_path / "pubmed24n0001.xml.gz")
    else:
        source = write_input(tmp_path / f"in.{in_fmt}", in_fmt, samples(N_SMALL))
    expected = local_output(model_path, source, tmp_path / f"local{out_ext}")
    out = tmp_path / f"ray{out_ext}"
    result = cli("annotate", model_path, source, out, *RAY_ARGS, "--shard-records", shard)
    assert result.exit_code == 0, result.output
    assert f"{n_docs} docs written" in result.output
    assert out.read_bytes() == expected
    # The manifest is the local backend's, so either backend can check or resume the output.
    assert (tmp_path / f"ray{out_ext}.manifest.json").read_text().replace(str(out), "") == \
        (tmp_path / f"local{out_ext}.manifest.json").read_text().replace(str(tmp_path / f"local{out_ext}"), "")
    assert not (tmp_path / f".ray{out_ext}.parts").exists()
    # A second run finds it complete and writes nothing.
    again = cli("annotate", model_path, source, out, *RAY_ARGS, "--shard-records", shard)
    assert again.exit_code == 0 and f"0 docs written, {n_docs} already there" in again.output
    assert out.read_bytes() == expected


def test_folder_output(cluster, model_path, tmp_path):
    source = write_input(tmp_path / "in.jsonl", "jsonl", samples(N_SMALL))
    expected = local_output(model_path, source, tmp_path / "local.jsonl")
    out = tmp_path / "parts"
    result = cli("annotate", model_path, source, out, *RAY_ARGS, "--shard-records", 20)
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in out.iterdir())
    assert names == ["part-00000.jsonl", "part-00001.jsonl", "part-00002.jsonl"]
    assert b"".join((out / name).read_bytes() for name in names) == expected
    assert [len((out / name).read_bytes().splitlines()) for name in names] == [20, 20, 10]
    assert (tmp_path / "parts.manifest.json").exists()
    # Another shard size is another output: refused, not mixed.
    other = cli("annotate", model_path, source, out, *RAY_ARGS, "--shard-records", 25)
    assert other.exit_code == 1 and "shard_records 25 (was 20)" in other.output


def test_folder_and_glob_of_shards(cluster, model_path, tmp_path):
    """Text files of 25, 10 and 15 documents: a shard never spans two files (shards of 10:
    3 + 1 + 2 parts), and the records are the local backend's of the files' concatenation
    (ids, line numbers there, go on from file to file)."""
    docs = samples(N_SMALL)
    folder = tmp_path / "in"
    folder.mkdir()
    for i, (start, end) in enumerate([(0, 25), (25, 35), (35, 50)]):
        write_input(folder / f"in-{i}.txt", "text", docs[start:end])
    expected = local_output(model_path, write_input(tmp_path / "all.txt", "text", docs), tmp_path / "local.jsonl")
    parts = tmp_path / "parts"
    result = cli("annotate", model_path, folder, parts, *RAY_ARGS, "--shard-records", 10)
    assert result.exit_code == 0, result.output
    names = sorted(p.name for p in parts.iterdir())
    assert names == [f"part-{i:05d}.jsonl" for i in range(6)]
    assert [len((parts / name).read_bytes().splitlines()) for name in names] == [10, 10, 5, 10, 10, 5]
    assert b"".join((parts / name).read_bytes() for name in names) == expected
    out = tmp_path / "ray.jsonl"
    result = cli("annotate", model_path, f"{folder}/in-*.txt", out, *RAY_ARGS, "--shard-records", 10)
    assert result.exit_code == 0, result.output
    assert out.read_bytes() == expected


def processes_under(pid: int) -> Dict[int, str]:
    """pid -> name (its command's first word, without the folder) of each live descendant of `pid`."""
    found = {}
    for child in children_of(pid):
        try:
            found[child] = Path(f"/proc/{child}/cmdline").read_bytes().split(b"\0")[0].decode().rsplit("/", 1)[-1]
        except OSError:  # ended meanwhile
            continue
        found.update(processes_under(child))
    return found


def killed_after_parts(args: List[str], out: Path, log: Path, parts: int) -> Dict[int, str]:
    """Run `annotate ARGS` writing the folder of parts `out`, and SIGKILL it once `parts`
    parts are there; the processes under it then (processes_under)."""
    with log.open("wb") as to_log:
        driver = subprocess.Popen([sys.executable, "-m", "spacy_taughtnet", "annotate", *args], stdout=to_log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 120
        while len(parts_of(out)) < parts if out.is_dir() else True:
            assert driver.poll() is None, log.read_text()
            assert time.monotonic() < deadline, f"not {parts} parts written in 120 s"
            time.sleep(0.02)
        under = processes_under(driver.pid)
        driver.send_signal(signal.SIGKILL)
        driver.wait()
    return under


def test_rerun_after_killed_driver(cluster, model_path, long_input, tmp_path):
    source, expected = long_input
    out = tmp_path / "parts"
    args = [str(model_path), str(source), str(out), *RAY_ARGS, "--shard-records", "100", "--address", cluster]
    killed_after_parts(args, out, tmp_path / "driver.log", 3)
    # its actors die with it, and a part one of them was writing may still land (whole) meanwhile
    actors_gone("ShardAnnotator")
    before = parts_of(out)
    assert 3 <= len(before) < N_LONG // 100, "the driver was not killed mid-run"

    result = cli("annotate", model_path, source, out, *RAY_ARGS, "--shard-records", 100)
    assert result.exit_code == 0, result.output
    assert f"{len(before)} of 20 shards" in result.output
    after = parts_of(out)
    assert {name: after[name] for name in before} == before  # the parts already there were not rewritten
    assert len(after) == 20 and not list(out.glob(".*.tmp"))
    assert b"".join((out / name).read_bytes() for name in sorted(after)) == expected


def test_a_killed_driver_takes_its_local_ray_along(model_path, long_input, tmp_path, monkeypatch):
    """A driver that started a local Ray (no --address), SIGKILLed, left Ray's agents (started
    by its raylet) for a minute, waiting for the dead GCS; its local Ray goes with it now."""
    source, _ = long_input
    out = tmp_path / "parts"
    monkeypatch.delenv("RAY_ADDRESS", raising=False)
    local_ray = killed_after_parts([str(model_path), str(source), str(out), *RAY_ARGS, "--shard-records", "100"], out, tmp_path / "driver.log", 1)
    assert {"raylet", "gcs_server"} <= set(local_ray.values()), local_ray
    assert gone_soon(list(local_ray), timeout=10), {pid: name for pid, name in local_ray.items() if alive(pid)}


def test_killed_actor(cluster, model_path, long_input, tmp_path):
    source, expected = long_input
    out = tmp_path / "ray.jsonl"
    with actor_killed_mid_run("ShardAnnotator", tmp_path / ".ray.jsonl.parts", "part-*.jsonl") as killed:
        result = cli("annotate", model_path, source, out, *RAY_ARGS, "--shard-records", 100)
    assert result.exit_code == 0, result.output
    assert killed and killed["outputs"] < N_LONG // 100, f"the actor was not killed mid-run: {killed}"
    assert out.read_bytes() == expected


def test_resource_request(tmp_path):
    options = RayOptions(num_actors=2, cpus_per_actor=0.5, gpus_per_actor=1)
    assert options.actor_options() == {"num_cpus": 0.5, "num_gpus": 1, "max_restarts": 4, "max_task_retries": 4}
    for wrong, says in [({"cpus_per_actor": 0}, "--cpus-per-actor must be positive, got 0"),
                        ({"cpus_per_actor": float("nan")}, "--cpus-per-actor must be positive, got nan"),
                        ({"gpus_per_actor": -1}, "--gpus-per-actor must be 0 or more, got -1"),
                        ({"num_actors": 0}, "--num-actors must be at least 1, got 0")]:
        with pytest.raises(ConfigError) as err:
            RayOptions(**wrong)
        assert str(err.value) == says
    # The command checks them before anything else.
    source = write_input(tmp_path / "in.jsonl", "jsonl", samples(5))
    result = cli("annotate", "no-model", source, tmp_path / "out", "--backend", "ray", "--cpus-per-actor", "0")
    assert result.exit_code == 1 and result.output.strip() == "Error: --cpus-per-actor must be positive, got 0.0"
    assert not (tmp_path / "out").exists()


def test_gpu_actors_on_a_cluster_without_gpus(cluster, model_path, tmp_path):
    source = write_input(tmp_path / "in.jsonl", "jsonl", samples(5))
    result = cli("annotate", model_path, source, tmp_path / "out.jsonl", *RAY_ARGS, "--gpus-per-actor", "1")
    assert result.exit_code == 1
    assert "cannot hold 1 actors of 0.5 CPUs and 1 GPUs" in result.output
    assert not (tmp_path / "out.jsonl").exists()


def test_unreachable_address(model_path, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]  # nothing listens there once closed
    source = write_input(tmp_path / "in.jsonl", "jsonl", samples(5))
    result = cli("annotate", model_path, source, tmp_path / "out", *RAY_ARGS, "--address", f"127.0.0.1:{port}")
    assert result.exit_code == 1
    assert result.output.startswith(f"Error: cannot connect to the Ray cluster at '127.0.0.1:{port}': Connection refused")
    assert not (tmp_path / "out").exists()


def test_run_pool(cluster):
    """The actors asked for, every job on a free actor, each result passed on, the actors
    killed at the end; a task that fails raises the error made of its message, an actor that
    cannot start the other one, and the actors are killed too."""

    class Doubler(PoolActor):
        def __init__(self, use_gpu: bool, factor: int) -> None:
            super().__init__(use_gpu)
            if factor < 0:
                raise ValueError(f"cannot multiply by {factor}")
            self.factor = factor

        def double(self, x: int) -> int:
            if x < 0:
                raise ValueError(f"negative: {x}")
            return self.factor * x

    options = RayOptions(num_actors=2, cpus_per_actor=0.5)
    errors = {"cannot_start": lambda why: AnnotateError(f"cannot start: {why}"), "failed": lambda why: AnnotateError(f"failed: {why}")}
    results = []

    def collect(result: int) -> None:
        assert len(actor_pids("Doubler")) == 2  # the actors asked for
        results.append(result)

    run_pool(Doubler, (2,), options, iter(range(5)), lambda actor, x: actor.double.remote(x), collect, **errors)
    assert sorted(results) == [0, 2, 4, 6, 8]
    assert actors_gone("Doubler")
    with pytest.raises(AnnotateError) as err:
        run_pool(Doubler, (2,), options, [1, -1, 2], lambda actor, x: actor.double.remote(x), results.append, **errors)
    assert str(err.value) == "failed: negative: -1"
    assert actors_gone("Doubler")
    with pytest.raises(AnnotateError) as err:
        run_pool(Doubler, (-1,), options, [1], lambda actor, x: actor.double.remote(x), results.append, **errors)
    assert str(err.value) == "cannot start: ValueError: cannot multiply by -1"
    assert actors_gone("Doubler")


def test_actors_that_cannot_load_the_model(cluster, tmp_path):
    """A model the driver loads but the actors cannot (not on their node): one line, nothing written."""
    source = write_input(tmp_path / "in.jsonl", "jsonl", samples(5))
    records = InputFiles.resolve(source, None)[0].records("jsonl")
    with pytest.raises(AnnotateError) as err:
        ray_backend._run_shards(
            str(tmp_path / "only-on-the-driver"), records, "jsonl", tmp_path / "parts", set(), 10,
            RayOptions(num_actors=1, cpus_per_actor=0.5), True, {}, tqdm(disable=True),
        )
    assert str(err.value) == (f"the Ray actors cannot start: spacy_taughtnet.errors.AnnotateError: cannot load model "
                              f"'{tmp_path / 'only-on-the-driver'}': no such file or directory")
    assert not (tmp_path / "parts").exists()


def test_ray_address_from_the_environment(model_path, tmp_path, monkeypatch):
    """Under `ray job submit` the cluster's address comes in RAY_ADDRESS: it is used, not ignored."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    monkeypatch.setenv("RAY_ADDRESS", f"127.0.0.1:{port}")
    source = write_input(tmp_path / "in.jsonl", "jsonl", samples(5))
    result = cli("annotate", model_path, source, tmp_path / "out", *RAY_ARGS)
    assert result.exit_code == 1 and f"cannot connect to the Ray cluster at '127.0.0.1:{port}'" in result.output


def test_model_that_cannot_load(tmp_path):
    source = write_input(tmp_path / "in.jsonl", "jsonl", samples(5))
    result = cli("annotate", tmp_path / "no-model", source, tmp_path / "out", *RAY_ARGS)
    assert result.exit_code == 1 and "cannot load model" in result.output
    assert not (tmp_path / "out").exists()


def test_unreadable_shard(cluster, model_path, tmp_path):
    """A folder of shards whose second file is not gzip data: one error naming that file, and
    no part named as complete for it."""
    folder = tmp_path / "in"
    folder.mkdir()
    write_input(folder / "a.jsonl", "jsonl", samples(5))
    (folder / "b.jsonl.gz").write_bytes(b"not gzip data\n")
    result = cli("annotate", model_path, folder, tmp_path / "out", *RAY_ARGS, "--input-format", "jsonl")
    assert result.exit_code == 1, result.output
    line = result.output.strip()
    assert line.startswith("Error: ") and "\n" not in line and str(folder / "b.jsonl.gz") in line, line
    out = tmp_path / "out"
    assert not out.exists() or not any(p.name.startswith("part-") for p in out.iterdir())


def test_overwrite_removes_only_its_own_parts(cluster, model_path, tmp_path):
    """--overwrite ran rmtree on the output folder: an input in it, the folder input itself,
    or a user's files there were lost. A folder holding anything but parts is refused."""
    data, results = tmp_path / "data", tmp_path / "results"
    data.mkdir()
    source = write_input(data / "docs.jsonl", "jsonl", samples(N_SMALL))
    (results / "plots").mkdir(parents=True)
    (results / "summary.csv").write_text("a,b\n")

    def files_under(folder: Path) -> Dict[str, bytes]:
        return {p.relative_to(folder).as_posix(): p.read_bytes() if p.is_file() else b"" for p in sorted(folder.rglob("*"))}

    before = files_under(tmp_path)
    for given, out, says in [(source, data, f"{data}: holds the input file docs.jsonl"),
                             (data, data, f"{data}: holds the input file docs.jsonl"),
                             (source, results, f"{results}: holds files that annotate did not write (plots, summary.csv)")]:
        for overwrite in ([], ["--overwrite"]):
            result = cli("annotate", model_path, given, out, *RAY_ARGS, *overwrite)
            assert result.exit_code == 1 and says in result.output and "--overwrite" not in result.output, result.output
    assert files_under(tmp_path) == before
    # A folder of its own parts: --overwrite replaces them, and the temporary of a part being
    # written when a run was killed.
    parts = tmp_path / "parts"
    assert cli("annotate", model_path, source, parts, *RAY_ARGS, "--shard-records", 20).exit_code == 0
    (parts / ".part-00002.jsonl.k3j9x0_a.tmp").write_text("half a part")
    result = cli("annotate", model_path, source, parts, *RAY_ARGS, "--shard-records", 25, "--overwrite")
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in parts.iterdir()) == ["part-00000.jsonl", "part-00001.jsonl"]
    expected = local_output(model_path, source, tmp_path / "local.jsonl")
    assert b"".join((parts / name).read_bytes() for name in ["part-00000.jsonl", "part-00001.jsonl"]) == expected
