"""Fault injection for the workflow's outputs: `prepare` and distribution writes killed with
SIGKILL at every rename they make (and mid-shard), then rerun; distribution files corrupted
after they were written; and hostile settings: corpus names that leave assets/, teachers
specifications with YAML aliases or fields of the wrong type.

A kill happens in a forked child (cheap: spaCy is already imported) or, for `prepare`'s command
line, in a fresh Python process; either patches os.replace (every atomic write ends with one)
to SIGKILL itself at its n-th call. After a kill the output must be the old one,
intact, or absent, never half; the rerun removes what the killed run left.
"""
import hashlib
import json
import multiprocessing
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
import spacy
from helpers import CORPORA, random_distributions
from spacy.util import registry
from typer.testing import CliRunner

from spacy_taughtnet import digests
from spacy_taughtnet import distributions as distributions_module
from spacy_taughtnet.cli import app
from spacy_taughtnet.corpora import read_docbin, write_docbin
from spacy_taughtnet.digests import file_digest, inputs_digest
from spacy_taughtnet.distill import dump_distributions
from spacy_taughtnet.distributions import (
    TeacherDistributions,
    staging_path,
    write_distributions,
)
from spacy_taughtnet.errors import ConfigError, DistributionsError
from spacy_taughtnet.teachers import read_spec
from spacy_taughtnet.workflow import (
    TEACHER_STAMP,
    prepare_corpora,
    pretrain_tok2vec,
    train_teachers,
)

pytestmark = pytest.mark.slow  # fault injection: killed runs and reruns
ROOT = Path(__file__).resolve().parent.parent
TWO_CORPORA = ["Toy-disease-IOB", "Toy-chem-IOB"]
LABELS = ["Disease", "Chemical"]


def count_replaces(monkeypatch, fn, *args, **kwargs) -> int:
    """Run fn in-process, counting its os.replace calls."""
    calls = []
    real = os.replace
    monkeypatch.setattr(os, "replace", lambda src, dst: (calls.append(dst), real(src, dst)))
    fn(*args, **kwargs)
    monkeypatch.setattr(os, "replace", real)
    return len(calls)


def _kill_at_replace(n: int, after: bool) -> None:
    calls = [0]
    real = os.replace

    def replace(src, dst):
        calls[0] += 1
        if calls[0] == n and not after:
            os.kill(os.getpid(), signal.SIGKILL)
        real(src, dst)
        if calls[0] == n and after:
            os.kill(os.getpid(), signal.SIGKILL)

    os.replace = replace


def _child(n, after, fn, args, kwargs):
    if n:
        _kill_at_replace(n, after)
    fn(*args, **kwargs)


def run_killed(fn, *args, n: int = 0, after: bool = False, **kwargs) -> None:
    """Run fn in a forked child killed (SIGKILL) at its n-th os.replace, before or after it
    (n=0: fn kills itself); fails if the child was not killed."""
    child = multiprocessing.get_context("fork").Process(target=_child, args=(n, after, fn, args, kwargs))
    child.start()
    child.join(60)
    assert child.exitcode == -signal.SIGKILL, f"not killed (exit code {child.exitcode})"


def temporaries(folder: Path):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.name.endswith(".tmp"))


def snapshot(folder: Path):
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------- prepare


def prepare(root: Path, limit: int) -> None:
    prepare_corpora(CORPORA, root, TWO_CORPORA, limit=limit)


def test_prepare_killed_at_every_rename(tmp_path, monkeypatch, capsys):
    root = tmp_path / "run"
    prepare(root, limit=6)
    old = snapshot(root / "corpus")
    assert len(old) == 8  # 2 corpora x 3 splits + the 2 union splits
    fresh = tmp_path / "fresh"
    prepare(fresh, limit=6)
    n_replaces = count_replaces(monkeypatch, prepare, fresh, limit=9)
    new = snapshot(fresh / "corpus")
    assert n_replaces == 8 + 2  # every DocBin, then the folder: old aside, new in
    outcomes = set()
    # killed before each rename, and after the last two (after the others = before the next)
    kills = [(n, False) for n in range(1, n_replaces + 1)] + [(n_replaces - 1, True), (n_replaces, True)]
    for n, after in kills:
        run_killed(prepare, root, limit=9, n=n, after=after)
        corpus = root / "corpus"
        state = snapshot(corpus) if corpus.exists() else None
        assert state in (old, new, None), f"half-written corpus after a kill at rename {n}"
        assert temporaries(root), "a kill leaves the temporary folder"
        outcomes.add("old" if state == old else "new" if state == new else "absent")
        prepare(root, limit=6)  # the next run removes the temporaries
        assert snapshot(corpus) == old and temporaries(root) == []
    capsys.readouterr()
    assert outcomes == {"old", "new", "absent"}


@pytest.mark.workflow
def test_prepare_cli_killed_then_rerun(tmp_path, capsys):
    """kill -9 of `python -m spacy_taughtnet prepare` while it builds the new corpus folder."""
    root = tmp_path / "run"
    prepare(root, limit=6)
    old = snapshot(root / "corpus")
    args = ["prepare", str(CORPORA), str(root), "--corpora", " ".join(TWO_CORPORA), "--limit", "9"]
    wrapper = (
        "import os, signal, sys\n"
        "real, calls = os.replace, []\n"
        "def replace(src, dst):\n"
        "    calls.append(dst)\n"
        "    if len(calls) == 5:\n"
        "        os.kill(os.getpid(), signal.SIGKILL)\n"
        "    real(src, dst)\n"
        "os.replace = replace\n"
        "from spacy_taughtnet.cli import main\n"
        "sys.argv = ['spacy-taughtnet'] + sys.argv[1:]\n"
        "main()\n"
    )
    killed = subprocess.run([sys.executable, "-c", wrapper, *args], capture_output=True, text=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr
    assert "Toy-chem-IOB/train.spacy: 9 docs" in killed.stdout
    assert snapshot(root / "corpus") == old
    (stale,) = [p for p in root.iterdir() if p.name.endswith(".tmp")]
    assert stale.name.startswith(".corpus.") and (stale / "Toy-disease-IOB" / "train.spacy").is_file()
    prepare(root, limit=9)
    capsys.readouterr()
    assert temporaries(root) == []
    assert len(read_docbin(root / "corpus" / "global" / "train.spacy", spacy.blank("en").vocab)) == 18


def test_teachers_step_removes_what_a_killed_training_left(tmp_path, capsys):
    """A teacher killed after its new folder was renamed in, before the old one was deleted:
    the teacher is up to date and not retrained, its leftover goes at the next start."""
    root = tmp_path / "run"
    prepare_corpora(CORPORA, root, ["Toy-chem-IOB"], limit=5)
    config = ROOT / "configs" / "teacher.cfg"
    teacher = root / "teachers" / "Toy-chem-IOB"
    teacher.mkdir(parents=True)
    corpus = root / "corpus" / "Toy-chem-IOB"
    (teacher / TEACHER_STAMP).write_text(inputs_digest([config, corpus / "train.spacy", corpus / "dev.spacy"], {}) + "\n")
    leftover = root / "teachers" / ".Toy-chem-IOB.k9x2abcd.tmp"
    (leftover / "Toy-chem-IOB" / "model-best").mkdir(parents=True)
    train_teachers(root, ["Toy-chem-IOB"], config)
    assert "teacher Toy-chem-IOB: up to date" in capsys.readouterr().out
    assert sorted(p.name for p in (root / "teachers").iterdir()) == ["Toy-chem-IOB"]


def old_md5_stamp(paths, settings):
    """The stamp of releases before digests.py: md5 of the settings' JSON, then the files' bytes."""
    stamp = hashlib.md5(json.dumps(settings, sort_keys=True).encode("utf8"))
    for path in paths:
        stamp.update(Path(path).read_bytes())
    return stamp.hexdigest()


def test_an_old_md5_stamp_reruns_a_step_once(tmp_path, monkeypatch, capsys):
    """A teacher stamped inputs.md5, and a pretrain.json with an md5 "inputs", by the old rule:
    each step runs again once (nothing says their inputs are unchanged), then is up to date."""
    import spacy.cli.train

    from spacy_taughtnet import pretrain

    root = tmp_path / "run"
    prepare_corpora(CORPORA, root, ["Toy-chem-IOB"], limit=5)
    trained = []
    monkeypatch.setattr(spacy.cli.train, "train", lambda config, output, **kwargs: trained.append(output))
    config = ROOT / "configs" / "teacher.cfg"
    teacher = root / "teachers" / "Toy-chem-IOB"
    teacher.mkdir(parents=True)
    corpus = root / "corpus" / "Toy-chem-IOB"
    (teacher / "inputs.md5").write_text(old_md5_stamp([config, corpus / "train.spacy", corpus / "dev.spacy"], {}) + "\n")
    for _ in range(2):
        train_teachers(root, ["Toy-chem-IOB"], config)
    assert len(trained) == 1 and "teacher Toy-chem-IOB: up to date" in capsys.readouterr().out
    assert sorted(p.name for p in teacher.iterdir()) == [TEACHER_STAMP]

    pretrain_cfg = ROOT / "configs" / "pretrain.cfg"
    runs = []
    monkeypatch.setattr(pretrain, "run_pretraining", lambda config, overrides, output: (
        runs.append(output), (output / "tok2vec.bin").write_bytes(b"weights"), {"seconds": 0.0})[-1])
    output = root / "pretrain"
    output.mkdir()
    (output / "tok2vec.bin").write_bytes(b"weights")
    docbin = root / "corpus" / "global" / "train.spacy"
    (output / "pretrain.json").write_text(json.dumps({"inputs": old_md5_stamp([pretrain_cfg, docbin], {})}))
    for _ in range(2):
        pretrain_tok2vec(root, pretrain_cfg, transfer=False)
    assert len(runs) == 1 and "pretrain: up to date" in capsys.readouterr().out


# ---------------------------------------------------------------- distributions written, killed

LENGTHS = [3, 1, 2, 4, 2]


def rows_for(seed):
    return random_distributions(numpy.random.default_rng(seed), sum(LENGTHS), 5).astype(numpy.float32)


def write(out: Path, docbin: Path, rows, *, die_in_shard=None, calls=None):
    """write_distributions in shards of 2 docs; die_in_shard=k: SIGKILL after shard k's first rows."""
    offsets = numpy.cumsum([0] + LENGTHS)

    def shard_rows(start, end):
        if calls is not None:
            calls.append(start)
        yield rows[offsets[start] : offsets[start] + 1]
        if die_in_shard is not None and start == 2 * die_in_shard:
            os.kill(os.getpid(), signal.SIGKILL)
        yield rows[offsets[start] + 1 : offsets[end]]

    normalize = "sum" if rows is OLD_ROWS else "softmax"  # other inputs: no shard of the old run is reused
    write_distributions(out, docbin, LENGTHS, shard_rows, labels=LABELS, normalize=normalize, shard_docs=2, type_columns=False)


OLD_ROWS, NEW_ROWS = rows_for(0), rows_for(1)


def read_rows(out: Path, docbin: Path):
    store = TeacherDistributions(out)
    store.check_docbin(docbin)
    return numpy.concatenate([store.doc_distributions(i)[0] for i in range(len(store))])


def complete_shards(out: Path):
    staging = staging_path(out)
    return sorted(p.parent.name for p in staging.glob("shard-*/shard.json")) if staging.is_dir() else []


def test_distributions_killed_at_every_rename_and_mid_shard(tmp_path, monkeypatch):
    docbin, out = tmp_path / "train.spacy", tmp_path / "dist"
    docbin.write_bytes(b"the docs")
    write(out, docbin, OLD_ROWS)
    old = read_rows(out, docbin)
    write(tmp_path / "fresh", docbin, OLD_ROWS)
    n_replaces = count_replaces(monkeypatch, write, tmp_path / "fresh", docbin, NEW_ROWS)
    assert n_replaces == 3 * 2 + 1 + 2  # per shard: folder and shard.json; manifest; the swap
    new = read_rows(tmp_path / "fresh", docbin)
    kills = [{"n": n} for n in range(1, n_replaces + 1)] + [{"n": n, "after": True} for n in (n_replaces - 1, n_replaces)]
    kills += [{"die_in_shard": k} for k in range(3)]
    outcomes = set()
    for kill in kills:
        run_killed(write, out, docbin, NEW_ROWS, **kill)
        if out.exists():
            rows = read_rows(out, docbin)  # complete: it opens and checks out
            assert numpy.array_equal(rows, old) or numpy.array_equal(rows, new), kill
            outcomes.add("old" if numpy.array_equal(rows, old) else "new")
        else:
            outcomes.add("absent")
        kept = complete_shards(out)
        calls = []
        write(out, docbin, NEW_ROWS, calls=calls)
        # the rerun writes only the shards the killed run did not complete
        assert [f"shard-{start // 2:05d}" for start in calls] == sorted({"shard-00000", "shard-00001", "shard-00002"} - set(kept)), kill
        assert numpy.array_equal(read_rows(out, docbin), new)
        assert temporaries(tmp_path) == [] and not staging_path(out).exists()
        write(out, docbin, OLD_ROWS)
    assert outcomes == {"old", "new", "absent"}


def test_distill_killed_then_resumed(teachers, docbins, tmp_path, capsys):
    vocab = spacy.blank("en").vocab
    docs = read_docbin(docbins["Toy-disease-IOB"]["devel"], vocab) + read_docbin(docbins["Toy-chem-IOB"]["devel"], vocab)
    union = tmp_path / "union.spacy"
    write_docbin(docs, union)
    out = tmp_path / "dist"
    teacher_paths = [teachers["Disease"], teachers["Chemical"]]
    # killed at the 6th rename: shards 0 and 1 written; shard 2 complete but not renamed into place
    run_killed(dump_distributions, union, teacher_paths, out, shard_docs=5, batch_size=2, n=6)
    assert not out.exists() and complete_shards(out) == ["shard-00000", "shard-00001"]
    assert len(temporaries(tmp_path)) == 1  # shard 2's, killed before its rename
    capsys.readouterr()
    dump_distributions(union, teacher_paths, out, shard_docs=5, batch_size=2)
    rerun = capsys.readouterr().out
    assert "docs [0, 5): kept from an earlier run" in rerun and "docs [5, 10): kept" in rerun
    assert "docs [10, 15)" not in rerun
    assert temporaries(tmp_path) == [] and not staging_path(out).exists()
    dump_distributions(union, teacher_paths, tmp_path / "fresh")
    resumed, fresh = TeacherDistributions(out), TeacherDistributions(tmp_path / "fresh")
    assert len(resumed) == len(docs) == 24
    for i in range(len(docs)):
        numpy.testing.assert_array_equal(resumed.doc_distributions(i)[1], fresh.doc_distributions(i)[1])


# ---------------------------------------------------------------- corrupted distributions


@pytest.fixture(scope="module")
def distilled(teachers, docbins, tmp_path_factory):
    """Copies of the two teachers, a union DocBin of 12 docs and its distributions (shards of 4)."""
    base = tmp_path_factory.mktemp("distilled")
    teacher_copies = []
    for label in LABELS:
        shutil.copytree(teachers[label], base / label)
        teacher_copies.append(base / label)
    vocab = spacy.blank("en").vocab
    docs = read_docbin(docbins["Toy-disease-IOB"]["train"], vocab)[:6] + read_docbin(docbins["Toy-chem-IOB"]["train"], vocab)[:6]
    union = base / "train.spacy"
    write_docbin(docs, union)
    dump_distributions(union, teacher_copies, base / "dist", shard_docs=4)
    return base, union, teacher_copies


@pytest.fixture
def run_copy(distilled, tmp_path):
    """A copy of the distilled folder (DocBin, teachers, distributions) to corrupt."""
    base, _, _ = distilled
    shutil.copytree(base, tmp_path / "run")
    return tmp_path / "run"


def read_all(run: Path, docbin: Path = None):
    """What `spacy train` does with the folder: every example of spacy-taughtnet.Corpus.v1."""
    reader = registry.resolve({"c": {"@readers": "spacy-taughtnet.Corpus.v1", "path": str(docbin or run / "train.spacy"),
                                     "distributions": str(run / "dist")}})["c"]
    return list(reader(spacy.blank("en")))


def refused(run: Path, docbin: Path = None) -> str:
    with pytest.raises(DistributionsError) as err:
        read_all(run, docbin)
    return str(err.value)


def test_intact_copy_reads(run_copy):
    assert len(read_all(run_copy)) == 12


def test_truncated_shard(run_copy):
    probs = run_copy / "dist" / "shard-00001" / "probs.npy"
    probs.write_bytes(probs.read_bytes()[:-10])
    message = refused(run_copy)
    assert str(probs) in message and "truncated" in message


def test_shuffled_rows(run_copy):
    """Rows moved between docs still sum to 1: only the shard's digest catches it."""
    probs = run_copy / "dist" / "shard-00002" / "probs.npy"
    rows = numpy.load(probs)
    shuffled = rows[numpy.random.default_rng(0).permutation(len(rows))]
    assert not numpy.array_equal(shuffled, rows)
    numpy.save(probs, shuffled)
    message = refused(run_copy)
    assert str(probs) in message and "changed since it was written" in message and "may not match their docs" in message


@pytest.mark.parametrize("value,reason", [(-0.5, "negative value"), (numpy.nan, "not finite")], ids=["negative", "nan"])
def test_bad_values_with_forged_digests(run_copy, value, reason):
    """Bad values written with the digests updated to match: each doc's rows are checked when read."""
    import json

    shard = run_copy / "dist" / "shard-00001"
    rows = numpy.load(shard / "probs.npy")
    lengths = numpy.load(shard / "lengths.npy")
    row = int(lengths[0]) + 1  # token 1 of the shard's second doc, doc 5
    rows[row, 0] = value
    numpy.save(shard / "probs.npy", rows)
    manifest_path = run_copy / "dist" / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    manifest["shards"][1]["sha256"]["probs.npy"] = file_digest(shard / "probs.npy")
    manifest_path.write_text(json.dumps(manifest))
    message = refused(run_copy)
    assert str(shard / "probs.npy") in message and "doc 5, token 1" in message and reason in message


def test_bad_aggregated_values_are_refused_when_written(distilled, tmp_path, monkeypatch):
    """An inf from the aggregation (an overflow, a bug) stops distill naming file and doc,
    instead of surfacing later in training as "lower the learning rate"."""
    from spacy_taughtnet import distill

    _, union, teacher_copies = distilled
    real = distill.aggregate_distributions
    batches = []

    def overflowing(*args, **kwargs):
        rows = real(*args, **kwargs)
        batches.append(len(rows))
        if len(batches) == 2:  # the second batch of 2 docs: docs 2 and 3
            rows[1, 0] = numpy.inf
        return rows

    monkeypatch.setattr(distill, "aggregate_distributions", overflowing)
    with pytest.raises(DistributionsError) as err:
        dump_distributions(union, teacher_copies, tmp_path / "dist", normalize="sum", shard_docs=4, batch_size=2)
    message = str(err.value)
    assert "shard-00000/probs.npy" in message and "doc 2, token 1" in message and "not finite" in message
    assert not (tmp_path / "dist").exists()


def test_docbin_changed_after_distill(run_copy):
    vocab = spacy.blank("en").vocab
    docs = read_docbin(run_copy / "train.spacy", vocab)
    write_docbin(docs[::-1], run_copy / "train.spacy")  # same docs and count, other order
    message = refused(run_copy)
    assert "the corpus changed after distill" in message and str(run_copy / "train.spacy") in message


def test_other_docbin_of_the_same_size(run_copy):
    """The size matches, so the sha256 decides."""
    other = run_copy / "other.spacy"
    data = bytearray((run_copy / "train.spacy").read_bytes())
    data[-1] ^= 1
    other.write_bytes(bytes(data))
    with pytest.raises(DistributionsError, match="the corpus changed after distill"):
        TeacherDistributions(run_copy / "dist").check_docbin(other)


def test_teacher_changed_after_distill(distilled, teachers, tmp_path):
    _, union, teacher_copies = distilled
    for teacher in teacher_copies:
        shutil.copytree(teacher, tmp_path / teacher.name)
    mine = [tmp_path / teacher.name for teacher in teacher_copies]
    dump_distributions(union, mine, tmp_path / "dist", shard_docs=4)
    shutil.rmtree(mine[1])
    shutil.copytree(teachers["Disease"], mine[1])  # retrained: other weights in the same place
    message = refused(tmp_path, union)
    assert f"teacher {mine[1]} (Chemical) changed since these distributions were made" in message


def test_manifest_missing_or_malformed(run_copy):
    manifest = run_copy / "dist" / "manifest.json"
    text = manifest.read_text()
    manifest.write_text(text.replace('"shards"', '"shard_list"'))
    assert "malformed" in refused(run_copy)
    manifest.unlink()
    assert "not a teacher distributions folder (no manifest.json)" in refused(run_copy)


def test_lengths_changed(run_copy):
    lengths = run_copy / "dist" / "shard-00000" / "lengths.npy"
    values = numpy.load(lengths)
    values[[0, 1]] = values[[1, 0]] + numpy.array([1, -1])
    numpy.save(lengths, values)
    assert "shard-00000/lengths.npy: changed since it was written" in refused(run_copy)


def test_the_reader_checks_digests_once(run_copy, monkeypatch):
    hashed = []
    real = digests.file_digest
    for module in (digests, distributions_module):  # pipeline_digest hashes the teachers' files in digests
        monkeypatch.setattr(module, "file_digest", lambda path: (hashed.append(Path(path).name), real(path))[1])
    reader = registry.resolve({"c": {"@readers": "spacy-taughtnet.Corpus.v1", "path": str(run_copy / "train.spacy"),
                                     "distributions": str(run_copy / "dist")}})["c"]
    nlp = spacy.blank("en")
    for epoch in range(2):
        assert len(list(reader(nlp))) == 12
    # at the first epoch: the DocBin, each shard's lengths.npy and, as its docs are read, its
    # probs.npy; the teachers' files (check_teachers)
    data = sorted(name for name in hashed if name in ("train.spacy", "lengths.npy", "probs.npy"))
    assert data == sorted(["train.spacy"] + ["lengths.npy"] * 3 + ["probs.npy"] * 3)
    assert "config.cfg" in hashed


# ----------------------------------------------------------------------------- corpus names of the fetch step


def test_fetch_refuses_corpus_names_outside_assets(tmp_path):
    """`spacy project run corpora . --vars.corpora ../../outside` wrote the corpus outside the
    project (and made its folder there when the copy failed)."""
    project, source = tmp_path / "project", tmp_path / "source"
    project.mkdir()
    (project / "project.yml").write_text("assets: []\n", encoding="utf8")
    for name in ("Toy-chem-IOB", "outside"):
        shutil.copytree(CORPORA / "Toy-chem-IOB", source / name)
    fetch = [sys.executable, ROOT / "scripts" / "fetch_corpora.py", "--dest", project / "assets", "--project", project / "project.yml"]
    for option, names in [("--corpora", "Toy-chem-IOB ../../outside"), ("--corpora", ".."), ("--transfer-sources", "../../outside")]:
        result = subprocess.run([*map(str, fetch), option, names, "--source-dir", str(source)], capture_output=True, text=True)
        assert result.returncode != 0 and "plain folder name" in result.stderr, result.stderr
        assert "Traceback" not in result.stderr
        assert sorted(p.name for p in tmp_path.iterdir()) == ["project", "source"]
        assert sorted(p.name for p in project.iterdir()) == ["project.yml"]


# ----------------------------------------------------------------------------- teachers specifications


def alias_bomb(levels: int, width: int) -> str:
    """A YAML `merge:` value whose last list holds width**levels strings through aliases."""
    lists = ["&l0 [" + ", ".join(["lol"] * width) + "]"]
    lists += [f"&l{i} [" + ", ".join([f"*l{i - 1}"] * width) + "]" for i in range(1, levels)]
    return "teachers: [{corpus: Toy-chem-IOB}]\nmerge: [" + ", ".join(lists) + "]\n"


def test_a_teachers_spec_with_yaml_aliases_is_refused(tmp_path):
    """A 371-byte alias bomb in `merge:` grew to 3.6 GB before a MemoryError."""
    path = tmp_path / "bomb.yml"
    path.write_text(alias_bomb(6, 8), encoding="utf8")
    with pytest.raises(ConfigError) as err:
        read_spec(path)
    message = str(err.value)
    assert message.startswith(f"{path}:2: ") and "alias" in message and len(message) < 300


@pytest.mark.parametrize("text,field", [
    ("teachers: [{corpus: Toy-chem-IOB}]\nlabels: [[a]]\n", "labels"),
    ("teachers: [{corpus: Toy-chem-IOB}]\nlabels: [Disease, 1]\n", "labels"),
    ("teachers: [{corpus: [Toy-chem-IOB]}]\n", "corpus"),
    ("teachers: [{corpus: ../outside}]\n", "corpus"),
    ("teachers: [{pipeline: {p: 1}, labels: {X: Y}}]\n", "pipeline"),
    ("teachers: [{pipeline: p, labels: {X: Y}, component: [ner]}]\n", "component"),
    ("teachers: [{corpus: Toy-chem-IOB}]\nmerge: [product]\n", "merge"),
    ("teachers: [{corpus: Toy-chem-IOB}]\n1: x\nb: y\n", "unknown keys"),
    ("teachers: [{corpus: Toy-chem-IOB}\nmerge: mean\n", "not valid YAML"),
    ("teachers: [{corpus: Toy-chem-IOB}]\nmerge: mean\nmerge: product\n", "duplicate key \"merge\""),
    ("teachers: " + "[" * 10000 + "]" * 10000 + "\n", "nested more than 20 levels"),
])
def test_every_field_of_a_teachers_spec_is_type_checked(tmp_path, text, field):
    """`labels: [[a]]` gave a TypeError traceback."""
    path = tmp_path / "spec.yml"
    path.write_text(text, encoding="utf8")
    with pytest.raises(ConfigError) as err:
        read_spec(path)
    message = str(err.value)
    assert message.startswith(str(path)) and field in message and "\n" not in message
    result = CliRunner().invoke(app, ["distill-teachers", str(tmp_path / "run"), "--corpora", "Toy-chem-IOB", "--teachers", str(path)])
    assert result.exit_code == 1 and result.stderr.strip() == f"Error: {message}"
