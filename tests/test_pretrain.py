"""Pretraining the tok2vec (`pretrain`) and starting the teachers and the student from it
(`--init-tok2vec`): the weights file, its record, the cache, the seed, and the checks."""
import math
from pathlib import Path

import numpy
import pytest
import spacy
import srsly
from helpers import CORPORA
from spacy.tokens import Doc
from spacy.training.initialize import init_nlp
from spacy.util import load_config, load_model_from_config
from thinc.api import Config
from typer.testing import CliRunner

from spacy_taughtnet.cli import app
from spacy_taughtnet.corpora import iob_words, read_docbin, write_docbin
from spacy_taughtnet.errors import ConfigError, CorpusError
from spacy_taughtnet.layout import RunLayout
from spacy_taughtnet.workflow import (
    prepare_corpora,
    pretrain_tok2vec,
    train_student,
    train_teachers,
)

CONFIGS = Path(__file__).resolve().parent.parent / "configs"
PRETRAIN_CFG = CONFIGS / "pretrain.cfg"
TOY = ["Toy-disease-IOB", "Toy-chem-IOB"]


def n_tokens(path: Path) -> int:
    return sum(len(doc) for doc in read_docbin(path, spacy.blank("en").vocab))


@pytest.fixture(scope="module")
def run_root(tmp_path_factory) -> Path:
    """A run folder: the union of two fixture corpora and transfer text (a third corpus's
    sentences, without their labels)."""
    root = tmp_path_factory.mktemp("pretrain") / "run"
    prepare_corpora(CORPORA, root, TOY)
    vocab = spacy.blank("en").vocab
    write_docbin(
        (Doc(vocab, words=words) for words in iob_words(CORPORA / "Toy-species-IOB" / "train.tsv")),
        RunLayout(root).transfer_docs,
    )
    return root


@pytest.fixture(scope="module")
def pretrained(run_root) -> Path:
    """Two epochs of the `pretrain` command, seed 0; the weights file."""
    result = CliRunner().invoke(app, ["pretrain", str(run_root), str(PRETRAIN_CFG), "--max-epochs", "2"])
    assert result.exit_code == 0, result.output
    assert "epoch 1: loss per word" in result.output
    return RunLayout(run_root).pretrain_weights


def fresh_tok2vec(overrides=None):
    """A new, initialised tok2vec of configs/pretrain.cfg (with `overrides`)."""
    config = load_config(PRETRAIN_CFG, overrides=overrides or {}, interpolate=True)
    nlp = load_model_from_config(Config({"nlp": config["nlp"], "components": config["components"]}), auto_fill=True)
    model = nlp.get_pipe("tok2vec").model
    model.initialize(X=[nlp.make_doc("a doc")])
    return model


def tok2vec_params(model):
    """The tok2vec's parameters, layer by layer ({name: array} per layer, as thinc stores them)."""
    return model.to_dict()["params"]


def same_params(a, b) -> bool:
    return len(a) == len(b) and all(
        x.keys() == y.keys() and all(numpy.array_equal(x[k], y[k]) for k in x) for x, y in zip(a, b)
    )


def test_pretrain_writes_the_weights_and_their_record(run_root, pretrained):
    layout = RunLayout(run_root)
    assert sorted(p.name for p in layout.pretrain.iterdir()) == ["pretrain.json", "tok2vec.bin"]
    assert not [p for p in run_root.iterdir() if p.name.endswith(".tmp")]
    record = srsly.read_json(layout.pretrain / "pretrain.json")
    docbins = [layout.global_split("train"), layout.transfer_docs]  # the transfer text, as it is there
    assert record["docbins"] == [str(p) for p in docbins]
    assert record["epochs"] == 2 and record["seed"] == 0
    assert record["words"] == 2 * sum(n_tokens(p) for p in docbins)
    assert list(record["loss_per_word"]) == ["0", "1"]
    assert all(math.isfinite(v) and v > 0 for v in record["loss_per_word"].values())
    assert record["final_loss_per_word"] == record["loss_per_word"]["1"]
    assert srsly.read_json(run_root / "timings" / "pretrain.json")["seconds"] == pytest.approx(record["seconds"], abs=0.1)
    # the weights are a tok2vec of the configs' shape, changed by the pretraining
    fresh = fresh_tok2vec()
    loaded = srsly.msgpack_loads(pretrained.read_bytes())["params"]
    assert len(loaded) == len(tok2vec_params(fresh))
    assert not same_params(loaded, tok2vec_params(fresh))


@pytest.mark.slow
def test_pretrain_is_cached_and_reproducible(run_root, pretrained, tmp_path, capsys):
    settings = {"pretraining.max_epochs": 2}
    before = pretrained.stat().st_mtime_ns
    pretrain_tok2vec(run_root, PRETRAIN_CFG, overrides=settings)
    assert "pretrain: up to date" in capsys.readouterr().out
    assert pretrained.stat().st_mtime_ns == before
    # the same seed elsewhere gives the same bytes; another seed, or no transfer text, others
    pretrain_tok2vec(run_root, PRETRAIN_CFG, output=tmp_path / "again", overrides=settings)
    assert (tmp_path / "again" / "tok2vec.bin").read_bytes() == pretrained.read_bytes()
    pretrain_tok2vec(run_root, PRETRAIN_CFG, output=tmp_path / "seed1", overrides={**settings, "system.seed": 1})
    assert (tmp_path / "seed1" / "tok2vec.bin").read_bytes() != pretrained.read_bytes()
    record = pretrain_tok2vec(
        run_root, PRETRAIN_CFG, output=tmp_path / "union", transfer=False, overrides={"pretraining.max_epochs": 1}
    )
    union = RunLayout(run_root).global_split("train")
    assert record["docbins"] == [str(union)] and record["words"] == n_tokens(union)


def test_pretrain_needs_its_docbins(tmp_path):
    root = tmp_path / "run"
    with pytest.raises(CorpusError, match=r"global/train\.spacy: missing; run the prepare step"):
        pretrain_tok2vec(root, PRETRAIN_CFG)
    prepare_corpora(CORPORA, root, TOY)
    with pytest.raises(CorpusError, match=r"transfer/train\.spacy: missing; run the prepare-transfer step"):
        pretrain_tok2vec(root, PRETRAIN_CFG, transfer=True)
    assert not RunLayout(root).pretrain.exists()


def test_configs_pretrain_the_tok2vec_they_train():
    pretrain = load_config(PRETRAIN_CFG, interpolate=True)
    for name in ("teacher.cfg", "student.cfg", "stock_ner.cfg"):  # stock_ner: the benchmark's baseline
        config = load_config(CONFIGS / name, interpolate=True)
        assert config["components"]["tok2vec"] == pretrain["components"]["tok2vec"], name
        # the block spaCy reads to load init_tok2vec (all of it required): pretrain.cfg's
        assert config["pretraining"] == pretrain["pretraining"], name


@pytest.mark.parametrize("config_name", ["teacher.cfg", "student.cfg"])
def test_teacher_and_student_start_from_the_pretrained_weights(run_root, pretrained, config_name):
    layout = RunLayout(run_root)
    paths = {"paths.train": str(layout.global_split("train")), "paths.dev": str(layout.global_split("dev"))}
    expected = srsly.msgpack_loads(pretrained.read_bytes())["params"]
    nlp = init_nlp(load_config(CONFIGS / config_name, overrides={**paths, "paths.init_tok2vec": str(pretrained)}))
    assert same_params(tok2vec_params(nlp.get_pipe("tok2vec").model), expected)
    # what the comparison would see without the weights
    nlp = init_nlp(load_config(CONFIGS / config_name, overrides=paths))
    assert not same_params(tok2vec_params(nlp.get_pipe("tok2vec").model), expected)


def test_missing_weights_are_named_before_training(run_root, tmp_path):
    missing = tmp_path / "nowhere" / "tok2vec.bin"
    with pytest.raises(ConfigError, match=f"{missing}: pretrained tok2vec weights not found"):
        train_teachers(run_root, TOY, CONFIGS / "teacher.cfg", overrides={"paths.init_tok2vec": str(missing)})
    assert not (run_root / "teachers").exists()
    result = CliRunner().invoke(app, [
        "train-student", str(run_root), str(CONFIGS / "student.cfg"), "--no-teachers",
        "--output", str(tmp_path / "student"), "--init-tok2vec", str(missing),
    ])
    assert result.exit_code == 1
    assert f"Error: {missing}: pretrained tok2vec weights not found" in result.output
    assert not (tmp_path / "student").exists()


def test_weights_of_another_shape_are_refused_naming_file_and_config(run_root, tmp_path):
    narrow = fresh_tok2vec({"components.tok2vec.model.encode.width": 64})
    weights = tmp_path / "narrow.bin"
    weights.write_bytes(narrow.to_bytes())
    teacher_cfg, student_cfg = CONFIGS / "teacher.cfg", CONFIGS / "student.cfg"
    with pytest.raises(ConfigError) as err:
        train_teachers(run_root, TOY, teacher_cfg, overrides={"paths.init_tok2vec": str(weights)})
    message = str(err.value)
    assert message.startswith(f"{weights}: these pretrained weights do not fit the tok2vec of {teacher_cfg}")
    assert "is 96 in the config, 64 in the weights" in message
    with pytest.raises(ConfigError, match=f"do not fit the tok2vec of {student_cfg}"):
        train_student(run_root, student_cfg, output=tmp_path / "student", overrides={"paths.init_tok2vec": str(weights)})
    assert not (run_root / "teachers").exists() and not (tmp_path / "student").exists()


def test_weights_with_a_config_spacy_would_ignore_them_in(run_root, pretrained, tmp_path):
    """Without a [pretraining] block spaCy silently skips init_tok2vec: refused instead."""
    config = Config().from_disk(CONFIGS / "teacher.cfg", interpolate=False)
    config["pretraining"] = {}
    config.to_disk(tmp_path / "no_block.cfg")
    with pytest.raises(ConfigError, match=r"no_block\.cfg: init_tok2vec is .*the \[pretraining\] block is empty"):
        train_teachers(run_root, TOY, tmp_path / "no_block.cfg", overrides={"paths.init_tok2vec": str(pretrained)})


def test_zero_epochs_turns_pretraining_off(run_root, pretrained, tmp_path):
    """`--max-epochs 0` (the transformer configs' setting): a record without weights, stale
    weights gone, and training from that path is refused, saying pretraining is off."""
    output = tmp_path / "off"
    output.mkdir()
    (output / "tok2vec.bin").write_bytes(pretrained.read_bytes())
    result = CliRunner().invoke(app, ["pretrain", str(run_root), str(PRETRAIN_CFG), "--max-epochs", "0", "--output", str(output)])
    assert result.exit_code == 0, result.output
    assert "pretrain: off (0 epochs)" in result.output
    assert sorted(p.name for p in output.iterdir()) == ["pretrain.json"]
    assert srsly.read_json(output / "pretrain.json") == {"epochs": 0}
    weights = output / "tok2vec.bin"
    with pytest.raises(ConfigError, match=f"{weights}: pretraining is off .*0 epochs.*empty init_tok2vec"):
        train_teachers(run_root, TOY, CONFIGS / "teacher.cfg", overrides={"paths.init_tok2vec": str(weights)})
