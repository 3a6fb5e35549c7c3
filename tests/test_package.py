"""The installable model: the model card built from a metrics file, the plugin pin, and the two
wheels `package` writes into one flat folder (a small trained model; no install here: the
workflow tests install the quick run's model)."""
import json
import re
import shlex
import zipfile
from pathlib import Path

import pytest
import spacy
import srsly
from helpers import (
    CORPUS_TYPES,
    SMALL_MODEL,
    corpus_file,
    gold_examples,
    seeded_blank,
    train_pipe,
)
from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from spacy.training import Example
from spacy.util import load_config
from weasel.util import load_project_config

import spacy_taughtnet
from spacy_taughtnet.corpora import read_iob
from spacy_taughtnet.errors import ConfigError
from spacy_taughtnet.evaluate import evaluate_corpus
from spacy_taughtnet.heads import JointHeads, PerTypeHeads
from spacy_taughtnet.model_card import (  # duplicates check: an import block, alike wherever these names are imported
    NOT_TRAINING_VARS,
    TRAINING_VARS,
    card_readme,
    check_training_vars,
    corpus_folder_url,
    corpus_sources,
    heads_method,
    model_card,
    read_rows,
    training_command,
)
from spacy_taughtnet.package import (
    build_model_wheel,
    build_plugin_wheel,
    plugin_version,
    save_self_contained,
    wheel_requirements,
)
from spacy_taughtnet.versions import minor_version

ROOT = Path(__file__).resolve().parent.parent
CORPORA = ["Toy-disease-IOB", "Toy-chem-IOB"]
RAW = "https://raw.githubusercontent.com/someone/corpora/main/data/Toy-disease-IOB"


@pytest.fixture(scope="module")
def small_run(tmp_path_factory, docbins):
    """A small two-type model on disk, its metrics file as `evaluate-all` writes it, and a
    project.yml whose assets cover one of its corpora."""
    root = tmp_path_factory.mktemp("small_run")
    vocab = spacy.blank("en").vocab
    docs = [doc for corpus in CORPORA for doc in read_iob(corpus_file(corpus), vocab)]
    nlp, _ = train_pipe(docs, 30, labels=[CORPUS_TYPES[c] for c in CORPORA])
    nlp.to_disk(root / "model")
    rows = {"student": [], "teachers": []}
    for corpus in CORPORA:
        row = evaluate_corpus(nlp, docbins[corpus]["test"])
        rows["student"].append({"model": "student", **row, "corpus": corpus})
        rows["teachers"].append({"model": f"teacher:{corpus}", **row, "corpus": corpus, "f1": 0.5})
    (root / "metrics").mkdir()
    for group, group_rows in rows.items():  # as workflow.evaluate_models writes them
        (root / "metrics" / f"{group}.json").write_text(json.dumps(group_rows, indent=2) + "\n")
    assets = [{"dest": f"assets/Toy-disease-IOB/{split}.tsv", "url": f"{RAW}/{split}.tsv", "checksum": "0" * 32,
               "description": f"Toy-disease-IOB {split} split (CC BY 4.0)"} for split in ("train", "devel", "test")]
    srsly.write_yaml(root / "project.yml", {"vars": {"corpora": "A B", "limit": 0, "lambda": 0.99}, "assets": assets})
    return root


def card(run: Path, **kwargs):
    meta = srsly.read_json(run / "model" / "meta.json")
    meta.update(name="taughtnet_small", version="0.1.0")
    rows = read_rows(run / "metrics" / "student.json")
    options = dict(teacher_rows=read_rows(run / "metrics" / "teachers.json"), version=spacy_taughtnet.__version__, license="CC BY 4.0",
                   sources=corpus_sources(run / "project.yml", CORPORA), author="A. Author", url="https://example.org/m")
    return model_card(meta, rows, **{**options, **kwargs})


def test_model_card_headline_is_doc_ents_with_the_span_group_beside():
    """A per-type student's rows carry doc.ents figures: the card's P/R/F1 (description,
    notes, performance) are those, its span group's F1 stands beside them."""
    rows = [{"corpus": "training/corpus/A-IOB/test.spacy", "entity_type": "Disease", "precision": 0.9, "recall": 0.8, "f1": 0.85,
             "n_docs": 10, "n_words": 100, "words_per_second": 1000.0,
             "doc_ents": {"precision": 0.88, "recall": 0.7, "f1": 0.78}}]
    meta = model_card({"labels": {"ner": ["Disease"]}}, rows, version="0.2.0", license="CC BY 4.0")
    (entry,) = meta["performance"]["per_corpus"]
    assert (entry["precision"], entry["recall"], entry["f1"]) == (0.88, 0.7, 0.78)
    assert entry["span_group"] == {"precision": 0.9, "recall": 0.8, "f1": 0.85}
    assert meta["performance"]["ents_per_type"] == {"Disease": {"p": 0.88, "r": 0.7, "f": 0.78}}
    assert "Disease 88.00/70.00/78.00" in meta["description"] and "doc.ents" in meta["description"]
    assert "| A-IOB | Disease | 88.00 | 70.00 | 78.00 | 85.00 | 1,000 |" in meta["notes"]
    assert "| corpus | type | precision | recall | F1 | span group F1 | words/s |" in meta["notes"]


def test_plugin_version_of_a_source_checkout():
    assert plugin_version(ROOT) == spacy_taughtnet.__version__
    with pytest.raises(ConfigError, match="not a spacy-taughtnet source checkout"):
        plugin_version(ROOT / "tests")


def test_model_card_values_come_from_the_metrics_file(small_run):
    meta = card(small_run)
    rows = json.loads((small_run / "metrics" / "student.json").read_text())
    per_corpus = meta["performance"]["per_corpus"]
    assert [r["corpus"] for r in per_corpus] == CORPORA
    for entry, row in zip(per_corpus, rows):
        for key in ("entity_type", "precision", "recall", "f1", "n_words", "words_per_second"):
            assert entry[key] == row[key]
        assert entry["teacher_f1"] == 0.5
        assert meta["performance"]["ents_per_type"][row["entity_type"]] == {"p": row["precision"], "r": row["recall"], "f": row["f1"]}
        scores = f"{row['precision'] * 100:.2f}/{row['recall'] * 100:.2f}/{row['f1'] * 100:.2f}"
        assert f"{row['corpus']} {row['entity_type']} {scores}" in meta["description"]
        assert f"| {row['corpus']} | {row['entity_type']} | {row['precision'] * 100:.2f} |" in meta["notes"]
        assert f"{row['words_per_second']:,.0f}" in meta["notes"]
    seconds = sum(r["n_words"] / r["words_per_second"] for r in rows)
    assert meta["performance"]["speed"] == pytest.approx(sum(r["n_words"] for r in rows) / seconds)
    assert "\n" not in meta["description"]  # the wheel's one-line Summary
    assert meta["license"] == "CC BY 4.0" and meta["author"] == "A. Author" and meta["url"] == "https://example.org/m"
    assert meta["labels"]["ner"] == ["Disease", "Chemical"]


def test_card_method_is_the_students_heads(small_run, tmp_path):
    """The README's method is the paragraph of the trained student's heads, read from the pipe."""
    nlp = spacy.blank("en")
    nlp.add_pipe("taughtnet_ner", config={"heads": "per_type"})
    nlp.initialize(lambda: [Example.from_dict(nlp.make_doc("renal failure"), {"entities": [(0, 13, "Disease")]})])
    nlp.to_disk(tmp_path / "per_type")
    assert heads_method(small_run / "model") == JointHeads.method
    assert heads_method(tmp_path / "per_type") == PerTypeHeads.method
    meta = srsly.read_json(small_run / "model" / "meta.json")
    meta.update(name="taughtnet_small", version="0.1.0")
    card_meta = model_card(meta, read_rows(small_run / "metrics" / "student.json"), version="0.1.0", license="MIT")
    per_type, joint = card_readme(card_meta, method=PerTypeHeads.method), card_readme(card_meta, method=JointHeads.method)
    assert "one head per type" in per_type and "global label space" not in per_type
    assert "global label space" in joint and "one head per type" not in joint


def test_a_type_without_gold_is_named_as_not_evaluated(small_run):
    """A label only a pipeline teacher supplies has no test split: the card says so, in the
    description, the notes (and so the README) and the performance, and scores nothing for it."""
    meta = srsly.read_json(small_run / "model" / "meta.json")
    meta.update(name="taughtnet_small", version="0.1.0", labels={"tok2vec": [], "ner": ["Disease", "Chemical", "GENE"]})
    card_meta = model_card(meta, read_rows(small_run / "metrics" / "student.json"), version="0.1.0", license="MIT")
    line = "Not evaluated: GENE (no corpus with gold for it: learnt from the teachers alone)."
    assert card_meta["description"].startswith("Biomedical NER of Disease, Chemical, GENE:")
    assert line in card_meta["description"] and "\n" not in card_meta["description"]
    assert line in card_meta["notes"] and "Only a pipeline teacher supplies this type" in card_meta["notes"]
    assert line in card_readme(card_meta, method=JointHeads.method)
    assert card_meta["performance"]["not_evaluated"] == ["GENE"]
    assert "GENE" not in card_meta["performance"]["ents_per_type"]
    assert [r["entity_type"] for r in card_meta["performance"]["per_corpus"]] == ["Disease", "Chemical"]
    # every label scored: nothing said
    assert "not_evaluated" not in card(small_run)["performance"] and "Not evaluated" not in card(small_run)["notes"]

def test_sources_and_requirements(small_run):
    assert card(small_run)["sources"] == [
        {"name": "Toy-disease-IOB", "url": "https://github.com/someone/corpora/tree/main/data/Toy-disease-IOB", "license": "CC BY 4.0"},
        {"name": "Toy-chem-IOB"},  # no assets: a local folder, nothing recorded
    ]
    assert corpus_folder_url("https://example.org/data/x/train.tsv") == "https://example.org/data/x/"
    meta = srsly.read_json(small_run / "model" / "meta.json")
    meta["requirements"] = ["spacy_taughtnet>=0.0.1", "spacy-transformers>=1.4.0,<1.5.0"]
    rows = read_rows(small_run / "metrics" / "student.json")
    pinned = model_card(meta, rows, version="0.3.2", license="MIT")
    assert pinned["requirements"] == ["spacy-transformers>=1.4.0,<1.5.0", "spacy-taughtnet>=0.3.0,<0.4.0"]
    assert "author" not in pinned and "url" not in pinned and pinned["sources"] == []
    with pytest.raises(ConfigError, match="run the evaluate-all step first"):
        model_card(meta, [], version="0.1.0", license="MIT")
    with pytest.raises(ConfigError, match="run the evaluate-all step first"):
        read_rows(small_run / "metrics" / "missing.json")


def package_vars(overrides):
    """The --var KEY=VALUE pairs of project.yml's package step, as `spacy project run package .
    --vars.KEY VALUE...` substitutes them."""
    (step,) = [c for c in load_project_config(ROOT, overrides=overrides)["commands"] if c["name"] == "package"]
    args = shlex.split(step["script"][0])
    return dict(args[i + 1].split("=", 1) for i, arg in enumerate(args) if arg == "--var")


def test_training_command_is_the_runs_with_every_var():
    used = package_vars({"vars.seed": 2, "vars.teachers_spec": "my teachers.yml", "vars.pretrain_epochs": 0, "vars.init_tok2vec": ""})
    assert list(used) == list(TRAINING_VARS)
    command = training_command(used)
    assert command.startswith(
        "spacy project run all . --vars.corpora \"NCBI-disease-IOB BC5CDR-chem-IOB BC2GM-IOB BC5CDR-disease-IOB linnaeus-IOB AnatEM-IOB\" ")
    for expected in ('--vars.seed 2', '--vars.teachers_spec "my teachers.yml"', "--vars.pretrain_epochs 0",
                     '--vars.init_tok2vec ""', "--vars.pretrain_seed 0", "--vars.transfer_limit 0",
                     "--vars.labelled_repeats 3", "--vars.transfer_patience 3000", "--vars.lambda 0.9"):
        assert f" {expected}" in command
    assert command.count(" --vars.") == len(TRAINING_VARS)
    # its vars parse back to the run's
    args = shlex.split(command)[5:]
    assert dict(zip([a.removeprefix("--vars.") for a in args[::2]], args[1::2])) == used
    del used["transfer_patience"], used["seed"]
    with pytest.raises(ConfigError, match="missing: transfer_patience, seed"):
        training_command(used)


def test_training_vars_are_those_of_the_workflow():
    """Every var of the training workflows' steps is on the card, but where things are and
    the device; the package step passes each."""
    project = srsly.read_yaml(ROOT / "project.yml")
    steps = {step for workflow in ("all", "all_union") for step in project["workflows"][workflow]}
    scripts = " ".join(line for c in project["commands"] if c["name"] in steps for line in c["script"])
    used = set(re.findall(r"\$\{vars\.(\w+)\}", scripts))
    assert used == set(TRAINING_VARS) | set(NOT_TRAINING_VARS)
    assert package_vars({}) == {key: str(value) for key, value in load_project_config(ROOT)["vars"].items() if key in TRAINING_VARS}


def test_training_vars_must_match_the_students_config(small_run):
    config = load_config(small_run / "model" / "config.cfg", interpolate=True)
    check_training_vars(config, {"lambda": "0.99", "temperature": "1.0", "student_max_steps": "20000", "limit": "7"})
    with pytest.raises(ConfigError) as err:
        check_training_vars(config, {"lambda": "0.5", "student_max_steps": "400", "temperature": "1"})
    assert "lambda 0.5 (the student's config: lambda_ = 0.99)" in str(err.value)
    assert "student_max_steps 400 (the student's config: max_steps = 20000)" in str(err.value)
    assert "temperature" not in str(err.value)


def test_readme_has_the_card(small_run):
    meta = card(small_run)
    readme = card_readme(meta, method=JointHeads.method, training="spacy project run all .", project_file=small_run / "project.yml")
    assert readme.startswith("# en_taughtnet_small\n")
    assert meta["description"] in readme and meta["notes"] in readme
    assert "pip install --find-links WHEELS en_taughtnet_small" in readme
    assert f"[train]({RAW}/train.tsv)" in readme and "| Toy-chem-IOB | not recorded | a local folder |" in readme
    assert "[Toy-disease-IOB](https://github.com/someone/corpora/tree/main/data/Toy-disease-IOB)" in readme  # Sources
    assert "spacy project run all ." in readme and "doi:10.1109/JBHI.2023.3244044" in readme


@pytest.fixture(scope="module")
def listener_model(tmp_path_factory):
    """The training form of the student: a tok2vec and a `taughtnet_ner` listening to it."""
    nlp = seeded_blank(0)
    nlp.add_pipe("tok2vec", config={"model": SMALL_MODEL["tok2vec"]})
    listener = {"@architectures": "spacy.Tok2VecListener.v1", "width": 32, "upstream": "tok2vec"}
    nlp.add_pipe("taughtnet_ner", name="ner", config={"model": {**SMALL_MODEL, "tok2vec": listener}})
    examples = gold_examples(nlp, [doc for corpus in CORPORA for doc in read_iob(corpus_file(corpus), nlp.vocab)])
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(20):
        nlp.update(examples, sgd=optimizer)
    path = tmp_path_factory.mktemp("listener") / "model"
    nlp.to_disk(path)
    return path


def predictions(nlp, texts):
    return [[(e.start, e.end, e.label_) for e in doc.ents] for doc in nlp.pipe(texts)]


TEXTS = [" ".join(t.text for t in doc) for corpus in CORPORA for doc in read_iob(corpus_file(corpus, "test"), spacy.blank("en").vocab)]


def test_the_shipped_pipeline_is_self_contained(listener_model, tmp_path):
    meta = srsly.read_json(listener_model / "meta.json")
    assert meta["pipeline"] == ["tok2vec", "ner"] and "tok2vec" in meta["labels"]
    shipped = save_self_contained(listener_model, tmp_path / "shipped", meta)
    assert shipped["pipeline"] == shipped["components"] == ["ner"] and list(shipped["labels"]) == ["ner"]
    nlp = spacy.load(tmp_path / "shipped")
    assert nlp.pipe_names == ["ner"]
    assert nlp.config["components"]["ner"]["model"]["tok2vec"]["@architectures"] == "spacy.HashEmbedCNN.v2"
    expected = predictions(spacy.load(listener_model), TEXTS)
    assert any(expected) and predictions(nlp, TEXTS) == expected
    # a pipeline without listeners is saved as it is
    assert save_self_contained(tmp_path / "shipped", tmp_path / "again", shipped) == shipped


@pytest.fixture(scope="module")
def wheels(small_run, listener_model, tmp_path_factory):
    folder = tmp_path_factory.mktemp("wheels")
    meta = card(small_run)
    meta.update({key: srsly.read_json(listener_model / "meta.json")[key] for key in ("pipeline", "components", "labels")})
    plugin = build_plugin_wheel(ROOT, folder)
    model = build_model_wheel(listener_model, meta, card_readme(meta, method=JointHeads.method), folder)
    return folder, plugin, model, meta


@pytest.mark.slow
def test_both_wheels_in_one_flat_folder(wheels, listener_model, tmp_path):
    folder, plugin, model, meta = wheels
    version = spacy_taughtnet.__version__
    assert sorted(p.name for p in folder.iterdir()) == sorted(
        [f"spacy_taughtnet-{version}-py3-none-any.whl", "en_taughtnet_small-0.1.0-py3-none-any.whl"])
    (requirement,) = [Requirement(r) for r in wheel_requirements(model)]
    major, minor = minor_version(version)
    assert requirement.name == "spacy-taughtnet" and requirement.specifier == SpecifierSet(f">={major}.{minor}.0,<{major}.{minor + 1}.0")
    with zipfile.ZipFile(plugin) as zf:
        entry_points = zf.read(f"spacy_taughtnet-{version}.dist-info/entry_points.txt").decode()
        assert "taughtnet_ner = spacy_taughtnet.component:make_taughtnet_ner" in entry_points
        assert "spacy_taughtnet/package.py" in zf.namelist()
        assert "spacy_taughtnet/py.typed" in zf.namelist()  # PEP 561: its type hints are for its users
        assert "Requires-Python: >=3.10\n" in zf.read(f"spacy_taughtnet-{version}.dist-info/METADATA").decode()
    with zipfile.ZipFile(model) as zf:
        inner = "en_taughtnet_small/en_taughtnet_small-0.1.0"
        packaged = json.loads(zf.read(f"{inner}/meta.json"))
        assert packaged["pipeline"] == ["ner"] and list(packaged["labels"]) == ["ner"]
        for packaged_row, row in zip(packaged["performance"]["per_corpus"], meta["performance"]["per_corpus"]):
            assert packaged_row["corpus"] == row["corpus"] and packaged_row["f1"] == pytest.approx(row["f1"], abs=1e-9)
        assert packaged["description"] == meta["description"] and packaged["sources"] == meta["sources"]
        assert "## Citation" in zf.read(f"{inner}/README.md").decode()
        assert "Toy-disease-IOB\n---------------\nURL: https://github.com/" in zf.read(f"{inner}/LICENSES_SOURCES").decode()
        metadata = zf.read("en_taughtnet_small-0.1.0.dist-info/METADATA").decode()
        assert f"Summary: {meta['description']}\n" in metadata
        zf.extractall(tmp_path / "unzipped")
    # the packaged pipe carries its tok2vec: the same predictions as the trained pipeline
    nlp = spacy.load(tmp_path / "unzipped" / inner)
    assert nlp.pipe_names == ["ner"] and predictions(nlp, TEXTS) == predictions(spacy.load(listener_model), TEXTS)
