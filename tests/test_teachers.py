"""Teachers specifications: corpus teachers with seeds, any spaCy NER pipeline with a label
map (taughtnet_ner, greedy ner, beam_ner, entity_ruler), teachers merged per type, a
multi-type teacher, the default specification, and every bad specification's error."""
import json
import random
import shutil
from pathlib import Path

import numpy
import pytest
import spacy
from helpers import SMALL_MODEL, corpus_file, gold_examples, seeded_blank, train_pipe
from spacy.tokens import Doc
from typer.testing import CliRunner

from spacy_taughtnet.aggregate import aggregate_distributions, merge_teachers
from spacy_taughtnet.cli import app
from spacy_taughtnet.corpora import doc_entity_type, read_docbin, read_iob, write_docbin
from spacy_taughtnet.distributions import TeacherDistributions
from spacy_taughtnet.errors import ConfigError, TeacherError
from spacy_taughtnet.layout import RunLayout
from spacy_taughtnet.teachers import (
    default_spec,
    load_teacher,
    load_teachers,
    read_spec,
)
from spacy_taughtnet.workflow import distill_teachers

CORPORA = ["Toy-disease-IOB", "Toy-chem-IOB"]
# spaCy's stock ner with helpers' small tok2vec (SMALL_MODEL)
SMALL_PARSER = {
    "@architectures": "spacy.TransitionBasedParser.v2",
    "state_type": "ner",
    "extra_state_tokens": False,
    "hidden_width": 32,
    "maxout_pieces": 2,
    "use_upper": True,
    "nO": None,
    "tok2vec": SMALL_MODEL["tok2vec"],
}


def write_yaml(path, data):
    import srsly

    srsly.write_yaml(path, data)
    return path


@pytest.fixture(scope="module")
def run(teachers, docbins, tmp_path_factory):
    """A run folder: the union of 4 Disease, 4 Chemical and 4 GENE docs; the Disease
    teacher; two Chemical teachers (seeds 0 and 1); and, beside it, a stock `ner` trained on
    the gene fixture relabelled GGP, the same weights as a beam_ner, a multi-type
    entity_ruler and a pipeline without NER."""
    base = tmp_path_factory.mktemp("spec")
    root, layout = base / "run", RunLayout(base / "run")
    vocab = spacy.blank("en").vocab
    union = []
    for corpus in ("Toy-disease-IOB", "Toy-chem-IOB", "Toy-gene-IOB"):
        union += read_docbin(docbins[corpus]["train"], vocab)[:4]
    write_docbin(union, layout.global_split("train"))
    shutil.copytree(teachers["Disease"], layout.teacher_model("Toy-disease-IOB"))
    shutil.copytree(teachers["Chemical"], layout.teacher_model("Toy-chem-IOB"))
    chem_docs = read_iob(corpus_file("Toy-chem-IOB"), spacy.blank("en").vocab)
    layout.teacher("Toy-chem-IOB", seed=1).mkdir(parents=True)
    train_pipe(chem_docs, 30, seed=1)[0].to_disk(layout.teacher_model("Toy-chem-IOB", seed=1))

    # a stock ner whose label is GGP
    gene = read_iob(corpus_file("Toy-gene-IOB"), spacy.blank("en").vocab, entity_type="GENE")
    nlp = seeded_blank()
    ner = nlp.add_pipe("ner", config={"model": SMALL_PARSER})
    relabelled = []
    for doc in gene:
        copy = Doc(nlp.vocab, words=[t.text for t in doc], spaces=[bool(t.whitespace_) for t in doc])
        copy.ents = [copy.char_span(e.start_char, e.end_char, label="GGP") for e in doc.ents]
        relabelled.append(copy)
    examples = gold_examples(nlp, relabelled)
    optimizer = nlp.initialize(lambda: examples)
    rng = random.Random(0)
    for _ in range(40):
        nlp.update(rng.sample(examples, min(16, len(examples))), sgd=optimizer)
    assert ner.labels == ("GGP",)
    nlp.to_disk(base / "ggp_ner")
    ner.cfg["beam_width"] = 4  # the same weights, read through the beam (saved in ner/cfg)
    nlp.to_disk(base / "ggp_beam")

    ruler = spacy.blank("en")
    ruler.add_pipe("entity_ruler").add_patterns([
        {"label": "DIS", "pattern": "diabetes"}, {"label": "DIS", "pattern": "asthma"},
        {"label": "CHEM", "pattern": "tamoxifen"}, {"label": "CHEM", "pattern": "lithium"},
        {"label": "CELL", "pattern": "cells"},
    ])
    ruler.to_disk(base / "ruler")
    no_ner = spacy.blank("en")
    no_ner.add_pipe("sentencizer")
    no_ner.to_disk(base / "no_ner")
    return base, root


MIXED = {  # no `merge`: the default where corpus teachers are listed, corpus
    "smoothing": 0.2,
    "teachers": [
        {"corpus": "Toy-disease-IOB"},
        {"corpus": "Toy-chem-IOB", "seeds": 2},
        {"pipeline": "ggp_ner", "labels": {"GGP": "GENE"}, "smoothing": 0.1},
        {"pipeline": "ruler", "labels": {"DIS": "Disease", "CHEM": "Chemical"}, "ignore_unmapped": True},
    ],
}


def one_hot(doc, label, n_cols, column, smoothing):
    rows = numpy.zeros((len(doc), n_cols), dtype=numpy.float32)
    rows[:, -1] = 1.0
    for ent in doc.ents:
        if ent.label_ in label:
            rows[ent.start:ent.end, -1] = 0.0
            rows[ent.start, column[ent.label_]] = 1.0
            rows[ent.start + 1:ent.end, column[ent.label_] + 1] = 1.0
    return (1 - smoothing) * rows + smoothing / n_cols


@pytest.mark.slow
@pytest.mark.parametrize("merge", [None, "mean"])
def test_mixed_spec(run, tmp_path, merge):
    base, root = run
    spec = read_spec(write_yaml(base / "mixed.yml", {**MIXED, **({"merge": merge} if merge else {})}))
    merge = merge or "corpus"
    assert spec.merge == merge
    assert spec.corpus_teachers() == [("Toy-disease-IOB", 0), ("Toy-chem-IOB", 0), ("Toy-chem-IOB", 1)]
    out = tmp_path / "dist"
    labels = distill_teachers(root, CORPORA, out, spec=spec, normalize="sum", batch_size=5)
    assert labels == ["Disease", "Chemical", "GENE"]  # the mapped labels in spec order
    store = TeacherDistributions(out)
    store.check_teachers()
    manifest = json.loads((out / "manifest.json").read_text())
    assert manifest["labels"] == labels
    multi = {"kind": "one-hot", "smoothing": 0.2, "multi_type": ["Disease", "Chemical"], "unmapped": "O"}
    assert [(t["label"], t["settings"]) for t in manifest["teachers"]] == [
        ("Disease", {}), ("Chemical", {"merge": merge}), ("Chemical", {"merge": merge}),
        ("GENE", {"from": ["GGP"], "kind": "one-hot", "smoothing": 0.1}),
        ("Disease", {"from": ["DIS"], **multi}), ("Chemical", {"from": ["CHEM"], **multi}),
    ]
    # the same rows, computed here from each pipeline's own outputs
    layout = RunLayout(root)
    docs = read_docbin(layout.global_split("train"), spacy.blank("en").vocab)

    def proba(path, doc):
        nlp, _, pipe = load_teacher(path)
        return pipe.predict_proba([Doc(nlp.vocab, words=[t.text for t in doc])])[0]

    ggp, ruler = spacy.load(base / "ggp_ner"), spacy.load(base / "ruler")
    for i, doc in enumerate(docs):
        words = [t.text for t in doc]
        disease = proba(layout.teacher_model("Toy-disease-IOB"), doc)
        # by corpus, one corpus's seeds merge by their product on every doc
        chemical = merge_teachers([proba(layout.teacher_model("Toy-chem-IOB", seed), doc) for seed in (0, 1)],
                                  "product" if merge == "corpus" else merge)
        gene = one_hot(ggp(Doc(ggp.vocab, words=words)), {"GGP"}, 3, {"GGP": 0}, 0.1)
        joint = one_hot(ruler(Doc(ruler.vocab, words=words)), {"DIS", "CHEM"}, 5, {"DIS": 0, "CHEM": 2}, 0.2)
        expected = aggregate_distributions([disease, chemical, gene], joint=[([0, 1], joint)])
        numpy.testing.assert_allclose(store.doc_distributions(i)[0], expected, atol=2e-3)
    # where the ruler and the corpus teachers agree, the student's target agrees too
    for word, column in (("asthma", 0), ("tamoxifen", 2)):
        hits = [(i, t.i) for i, d in enumerate(docs) for t in d if t.text == word]
        assert hits and all(store.doc_distributions(i)[0][t].argmax() == column for i, t in hits)


def test_beam_ner_gives_the_beams_entity_probabilities(run):
    base, _ = run
    spec = read_spec(write_yaml(base / "beam.yml", {"teachers": [{"pipeline": "ggp_beam", "labels": {"GGP": "GENE"}}]}))
    (teacher,), labels = load_teachers(spec, base)
    assert teacher.kind == "beam" and labels == ["GENE"]
    words = "interleukin 6 and BRCA1 were mutated in p53 deficient cells".split()
    (rows,) = teacher.predict([Doc(spacy.blank("en").vocab, words=words)])
    nlp = spacy.load(base / "ggp_beam")
    doc = nlp.make_doc(" ".join(words))
    (scored,) = nlp.get_pipe("ner").scored_ents(nlp.get_pipe("ner").predict([doc]))
    expected_b = numpy.zeros(len(words))
    for (start, end, label), prob in scored.items():
        expected_b[start] += prob
    numpy.testing.assert_allclose(rows[:, 0], expected_b, atol=1e-5)
    numpy.testing.assert_allclose(rows.sum(axis=1), 1.0, atol=1e-5)
    assert ((rows > 1e-4) & (rows < 1 - 1e-4)).any()  # probabilities, not a one-hot


@pytest.mark.slow
def test_default_spec_is_todays_distill(run, teachers, tmp_path):
    """No specification: one teacher per corpus, the rows of the teachers' predict_proba as
    they are (each type's own columns: the default distill runs no aggregation), bit for bit,
    and the manifest's teachers as before."""
    _, root = run
    layout = RunLayout(root)
    union = tmp_path / "union.spacy"
    docs = read_docbin(layout.global_split("train"), spacy.blank("en").vocab)
    write_docbin([d for d in docs if doc_entity_type(d) != "GENE"], union)  # 4 Disease, 4 Chemical
    assert default_spec(CORPORA).corpus_teachers() == [(c, 0) for c in CORPORA]
    teachers_, labels = load_teachers(default_spec(CORPORA), root)
    assert labels == ["Disease", "Chemical"]
    from spacy_taughtnet.distill import dump_distributions

    out = tmp_path / "dist"
    dump_distributions(union, teachers_, out, labels=labels, batch_size=3)
    manifest = json.loads((out / "manifest.json").read_text())
    assert [t["label"] for t in manifest["teachers"]] == ["Disease", "Chemical"]
    stored = numpy.load(out / "shard-00000" / "probs.npy")
    rows = []
    for start in range(0, 8, 3):
        batch = read_docbin(union, spacy.blank("en").vocab)[start:start + 3]
        per_teacher = []
        for corpus in CORPORA:
            nlp, name, pipe = load_teacher(layout.teacher_model(corpus))
            copies = [Doc(nlp.vocab, words=[t.text for t in d], spaces=[bool(t.whitespace_) for t in d]) for d in batch]
            per_teacher.append(numpy.concatenate(pipe.predict_proba(list(nlp.pipe(copies, disable=[name])))))
        rows.append(numpy.concatenate(per_teacher, axis=1))  # each type's (B, I, O)
    numpy.testing.assert_array_equal(stored, numpy.concatenate(rows).astype(numpy.float16))


def test_train_teachers_trains_each_seed(run, docbins, tmp_path, monkeypatch):
    import spacy.cli.train

    from spacy_taughtnet.workflow import train_teachers

    root = tmp_path / "run"
    layout = RunLayout(root)
    for split, name in (("train", "train"), ("dev", "devel")):
        layout.corpus("Toy-chem-IOB", split).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(docbins["Toy-chem-IOB"][name], layout.corpus("Toy-chem-IOB", split))
    calls = []
    monkeypatch.setattr(spacy.cli.train, "train", lambda config, output, use_gpu, overrides: calls.append(overrides))
    spec = read_spec(write_yaml(tmp_path / "seeds.yml", {"teachers": [{"corpus": "Toy-chem-IOB", "seeds": 3}]}))
    train_teachers(root, ["Toy-chem-IOB"], Path(__file__).parents[1] / "configs" / "teacher.cfg", spec=spec)
    assert [(c.get("training.seed"), c.get("system.seed")) for c in calls] == [(None, None), (1, 1), (2, 2)]
    assert sorted(p.name for p in (root / "teachers").iterdir()) == ["Toy-chem-IOB", "Toy-chem-IOB-seed1", "Toy-chem-IOB-seed2"]


# ---------------------------------------------------------------- bad specifications


def spec_error(base, name, data, error=TeacherError):
    path = write_yaml(base / f"{name}.yml", data)
    with pytest.raises(error) as err:
        load_teachers(read_spec(path), base / "run")
    message = str(err.value)
    assert str(path) in message
    return message


def test_teacher_that_cannot_be_loaded(run):
    message = spec_error(run[0], "missing", {"teachers": [{"pipeline": "en_no_such_model", "labels": {"X": "GENE"}}]})
    assert "teacher 1 (pipeline en_no_such_model)" in message and "cannot load" in message


def test_teacher_with_no_ner_pipe(run):
    message = spec_error(run[0], "no_ner", {"teachers": [{"pipeline": "no_ner", "labels": {"X": "GENE"}}]})
    assert "no NER pipe" in message and "sentencizer" in message and "component" in message
    message = spec_error(run[0], "no_pipe", {"teachers": [{"pipeline": "ggp_ner", "component": "tagger", "labels": {"GGP": "GENE"}}]})
    assert "no pipe 'tagger'" in message


def test_unmapped_label(run):
    message = spec_error(run[0], "unmapped", {"teachers": [{"pipeline": "ruler", "labels": {"DIS": "Disease"}}]})
    assert "teacher 1 (pipeline ruler)" in message and "'CHEM'" in message and "ignore_unmapped" in message
    message = spec_error(run[0], "absent", {"teachers": [{"pipeline": "ggp_ner", "labels": {"GGP": "GENE", "PROTEIN": "GENE"}}]})
    assert "'PROTEIN'" in message and "no such label" in message


def test_mapping_outside_the_students_labels_and_type_without_teacher(run):
    teacher = {"pipeline": "ggp_ner", "labels": {"GGP": "GENE"}}
    message = spec_error(run[0], "outside", {"labels": ["Disease"], "teachers": [{"corpus": "Toy-disease-IOB"}, teacher]})
    assert "teacher 2 (pipeline ggp_ner)" in message and "['GENE']" in message and "not student labels" in message
    message = spec_error(run[0], "untaught", {"labels": ["GENE", "Species"], "teachers": [teacher]})
    assert "['Species'] have no teacher" in message


def test_corpus_teacher_not_trained(run):
    message = spec_error(run[0], "untrained", {"teachers": [{"corpus": "Toy-chem-IOB", "seeds": 3}]})
    assert "seed 2" in message and "Toy-chem-IOB-seed2" in message


@pytest.mark.parametrize("data,merge", [
    ({"teachers": [{"corpus": "A"}, {"corpus": "B", "seeds": 2}]}, "corpus"),
    ({"teachers": [{"corpus": "A"}, {"pipeline": "p", "labels": {"X": "Y"}}]}, "corpus"),
    ({"teachers": [{"pipeline": "p", "labels": {"X": "Y"}}]}, "product"),
    ({"teachers": [{"corpus": "A"}], "merge": "mean"}, "mean"),
])
def test_a_spec_without_merge_merges_by_corpus_where_it_lists_corpus_teachers(tmp_path, data, merge):
    assert read_spec(write_yaml(tmp_path / "spec.yml", data)).merge == merge


def test_the_default_teachers_merge_by_corpus():
    assert default_spec(["A", "B"]).merge == "corpus"


@pytest.mark.parametrize("data,expected", [
    ({"teachers": []}, "non-empty list"),
    ({"teachers": [{"corpus": "A", "pipeline": "b"}]}, "teacher 1: expected a mapping with either"),
    ({"teachers": [{"corpus": "A", "labels": {"X": "Y"}}]}, "unknown keys ['labels'] for a corpus teacher"),
    ({"teachers": [{"corpus": "A", "seeds": 0}]}, "seeds must be"),
    ({"teachers": [{"corpus": "A"}, {"corpus": "A"}]}, "listed twice"),
    ({"teachers": [{"pipeline": "p"}]}, "`labels` must map"),
    ({"teachers": [{"pipeline": "p", "labels": {"X": "Y"}, "smoothing": 1.5}]}, "smoothing must be"),
    ({"teachers": [{"corpus": "A"}], "merge": "vote"}, "merge must be one of"),
    ({"teachers": [{"corpus": "A"}], "temperature": 2}, "unknown keys ['temperature']"),
    ({"teachers": [{"corpus": "../A"}]}, "plain folder name"),
])
def test_malformed_specs(tmp_path, data, expected):
    path = write_yaml(tmp_path / "spec.yml", data)
    with pytest.raises(ConfigError) as err:
        read_spec(path)
    assert expected in str(err.value)
    if "plain folder name" not in expected:
        assert str(path) in str(err.value)


def test_cli_reports_a_bad_spec_in_one_line(run):
    base, root = run
    spec = write_yaml(base / "cli.yml", {"teachers": [{"pipeline": "no_ner", "labels": {"X": "GENE"}}]})
    result = CliRunner().invoke(app, ["distill-teachers", str(root), "--corpora", " ".join(CORPORA), "--teachers", str(spec)])
    assert result.exit_code == 1
    assert "Error:" in result.output and "no NER pipe" in result.output and str(spec) in result.output
