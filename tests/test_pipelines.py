"""The student in pipelines it was not trained in, and on data it was not built for.

A small stock pipeline (tok2vec + a listening `ner`) is trained here; the student is
trained from configs/student.cfg (narrowed) and added after the stock `ner` with
replace_listeners, in Python and through a config, with each combination of `overwrite`,
`set_ents` and `spans_key`. Then: evaluating a DocBin made by `spacy convert`, which holds
no per-doc type record. Last, that every setting of configs/student.cfg's `ner` reaches
the pipe it builds.
"""
import re
import warnings
from pathlib import Path

import numpy
import pytest
import spacy
import srsly
from helpers import TWO_TYPES, corpus_file, seeded_blank
from numpy.testing import assert_array_equal
from spacy.cli.convert import convert as spacy_convert
from spacy.language import Language
from spacy.tokens import DocBin, Span
from spacy.training import Example
from spacy.util import load_config, load_model_from_config
from thinc.api import Config, fix_random_seed
from typer.testing import CliRunner

from spacy_taughtnet.cli import app
from spacy_taughtnet.component import CONFIDENCE_ATTR
from spacy_taughtnet.corpora import doc_entity_type, read_docbin, read_iob, write_docbin
from spacy_taughtnet.errors import ConfigError, CorpusError
from spacy_taughtnet.evaluate import evaluate_corpus
from spacy_taughtnet.listeners import make_self_contained

CONFIGS = Path(__file__).parent.parent / "configs"

# The student's data: Chemical and Disease. The stock pipeline's: PRODUCT and ORG, where
# "aspirin" and "cisplatin" are PRODUCTs, so they overlap the student's Chemicals.
STUDENT_DATA = [
    ("Patients with diabetes received aspirin from Bayer .", [(14, 22, "Disease"), (32, 39, "Chemical")]),
    *TWO_TYPES[1:],
]
STOCK_DATA = [
    ("Patients with diabetes received aspirin from Bayer .", [(32, 39, "PRODUCT"), (45, 50, "ORG")]),
    ("Cisplatin caused renal failure in two patients .", [(0, 9, "PRODUCT")]),
    ("Pfizer sold caffeine tablets .", [(0, 6, "ORG")]),
    ("Novartis makes no aspirin .", [(0, 8, "ORG"), (18, 25, "PRODUCT")]),
]
TEXT = STUDENT_DATA[0][0]
STOCK_ENTS = [("aspirin", "PRODUCT"), ("Bayer", "ORG")]
STUDENT_ENTS = [("diabetes", "Disease"), ("aspirin", "Chemical")]


def train(nlp, data, n_updates=50):
    examples = [Example.from_dict(nlp.make_doc(text), {"entities": ents}) for text, ents in data]
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(n_updates):
        nlp.update(examples, sgd=optimizer)
    return nlp


def ents(doc):
    return [(e.text, e.label_) for e in doc.ents]


def group(doc, key="taughtnet"):
    return [(s.text, s.label_) for s in doc.spans[key]]


@pytest.fixture(scope="module")
def stock_path(tmp_path_factory):
    """A user's pipeline: tok2vec (width 48) and a stock `ner` listening to it, as in
    spaCy's trained pipelines."""
    nlp = seeded_blank(0)
    nlp.add_pipe("tok2vec", config={"model": {"width": 48, "depth": 2, "embed_size": 500}})
    listener = {"@architectures": "spacy.Tok2VecListener.v1", "width": 48, "upstream": "*"}
    nlp.add_pipe("ner", config={"model": {"tok2vec": listener}})
    train(nlp, STOCK_DATA, 30)
    assert ents(nlp(TEXT)) == STOCK_ENTS
    path = tmp_path_factory.mktemp("stock") / "stock"
    nlp.to_disk(path)
    return path


# configs/student.cfg narrowed to train in seconds; initialize resolves the readers (the
# examples are given in-process).
NARROW_STUDENT = {
    "paths.train": "unused.spacy",
    "paths.dev": "unused.spacy",
    "components.tok2vec.model.encode.depth": 2,
    "components.tok2vec.model.embed.rows": [500, 200, 200, 200],
    "components.ner.model.hidden_width": 32,
}


def trained_student(folder: Path, overrides=None) -> Path:
    """The student as configs/student.cfg builds it (tok2vec + listening ner), narrowed
    (NARROW_STUDENT, then `overrides`), trained on STUDENT_DATA, saved to FOLDER/student."""
    config = load_config(CONFIGS / "student.cfg", overrides={**NARROW_STUDENT, **(overrides or {})})
    nlp = load_model_from_config(config, auto_fill=True)
    fix_random_seed(0)
    train(nlp, STUDENT_DATA)
    assert ents(nlp(TEXT)) == STUDENT_ENTS
    nlp.to_disk(folder / "student")
    return folder / "student"


@pytest.fixture(scope="module")
def student_path(tmp_path_factory):
    """The student, its tok2vec of width 32."""
    return trained_student(tmp_path_factory.mktemp("student"), {"components.tok2vec.model.encode.width": 32})


def combined(stock_path, student_path, **settings):
    """The README recipe: the student's ner gets its own tok2vec copy, then is sourced."""
    nlp = spacy.load(stock_path)
    student = spacy.load(student_path, config={"components": {"ner": settings}})
    student.replace_listeners("tok2vec", "ner", ["model.tok2vec"])
    nlp.add_pipe("ner", name="taughtnet", source=student)
    return nlp


def test_configs_name_their_listeners_upstream():
    """A listener with upstream "*" links to every tok2vec of a pipeline it is added to."""
    n_listeners = 0
    for path in sorted(CONFIGS.glob("*.cfg")):
        config = Config().from_disk(path, interpolate=False)
        for name, component in config["components"].items():
            tok2vec = component.get("model", {}).get("tok2vec", {})
            if tok2vec.get("@architectures", "").endswith("Listener.v1"):
                n_listeners += 1
                assert tok2vec["upstream"] in config["nlp"]["pipeline"], (path.name, name)
                assert tok2vec["upstream"] != name
    assert n_listeners == 5


@pytest.mark.slow
def test_student_after_stock_ner_keeps_the_users_tensor(stock_path, student_path):
    stock = spacy.load(stock_path)
    nlp = combined(stock_path, student_path)
    assert nlp.pipe_names == ["tok2vec", "ner", "taughtnet"]
    # the student listens to nothing: the user's tok2vec has only the stock ner listening
    assert nlp.get_pipe("tok2vec").listening_components == ["ner"]
    alone = spacy.load(student_path)(TEXT)
    before, doc = stock(TEXT), nlp(TEXT)
    assert_array_equal(doc.tensor, before.tensor)
    assert doc.tensor.shape[1] == 48
    assert_array_equal(doc[4].vector, before[4].vector)
    # overwrite = false: the stock entities stay; the Chemical "aspirin" overlaps one
    assert ents(doc) == [("diabetes", "Disease"), ("aspirin", "PRODUCT"), ("Bayer", "ORG")]
    # every prediction is in the span group, with the scores of the student alone
    assert group(doc) == group(alone) == STUDENT_ENTS
    scores = doc.spans["taughtnet"].attrs["scores"]
    assert len(scores) == len(doc.spans["taughtnet"]) == 2
    assert all(0.0 < s <= 1.0 for s in scores)
    numpy.testing.assert_allclose(scores, alone.spans["taughtnet"].attrs["scores"], atol=1e-6)
    # the extension is set on the entity the pipe added to doc.ents, with the same score
    assert doc.ents[0]._.get(CONFIDENCE_ATTR) == pytest.approx(float(scores[0]), abs=1e-6)
    assert doc.ents[1]._.get(CONFIDENCE_ATTR) is None
    # nlp.pipe agrees with nlp()
    (piped,) = nlp.pipe([TEXT])
    assert ents(piped) == ents(doc) and group(piped) == group(doc)


@pytest.mark.slow
@pytest.mark.parametrize("overwrite,set_ents,spans_key,expected_ents", [
    (False, True, "taughtnet", [("diabetes", "Disease"), ("aspirin", "PRODUCT"), ("Bayer", "ORG")]),
    (True, True, "taughtnet", STUDENT_ENTS),
    (False, False, "taughtnet", STOCK_ENTS),
    (True, False, "bio", STOCK_ENTS),
    (False, True, None, [("diabetes", "Disease"), ("aspirin", "PRODUCT"), ("Bayer", "ORG")]),
    (True, True, None, STUDENT_ENTS),
])
def test_settings_combinations(stock_path, student_path, tmp_path, overwrite, set_ents, spans_key, expected_ents):
    settings = {"overwrite": overwrite, "set_ents": set_ents, "spans_key": spans_key}
    nlp = combined(stock_path, student_path, **settings)
    assert {key: nlp.get_pipe("taughtnet").cfg[key] for key in settings} == settings
    stock_doc = spacy.load(stock_path)(TEXT)
    doc = nlp(TEXT)
    assert ents(doc) == expected_ents
    assert_array_equal(doc.tensor, stock_doc.tensor)
    if spans_key is None:
        assert list(doc.spans) == []
    else:
        assert list(doc.spans) == [spans_key] and group(doc, spans_key) == STUDENT_ENTS
    # the settings are in the combined pipeline's config, so they survive save and load
    nlp.to_disk(tmp_path / "combined")
    reloaded = spacy.load(tmp_path / "combined")
    assert {key: reloaded.get_pipe("taughtnet").cfg[key] for key in settings} == settings
    doc2 = reloaded(TEXT)
    assert ents(doc2) == expected_ents
    assert_array_equal(doc2.tensor, stock_doc.tensor)
    if spans_key is not None:
        assert group(doc2, spans_key) == STUDENT_ENTS
        numpy.testing.assert_allclose(doc2.spans[spans_key].attrs["scores"], doc.spans[spans_key].attrs["scores"], atol=1e-6)


def test_combined_pipeline_load_time_overrides(stock_path, student_path, tmp_path):
    combined(stock_path, student_path).to_disk(tmp_path / "combined")
    nlp = spacy.load(tmp_path / "combined", config={"components": {"taughtnet": {"set_ents": False, "spans_key": "bio"}}})
    doc = nlp(TEXT)
    assert ents(doc) == STOCK_ENTS and group(doc, "bio") == STUDENT_ENTS
    nlp = spacy.load(tmp_path / "combined", config={"components": {"taughtnet": {"overwrite": True}}})
    assert ents(nlp(TEXT)) == STUDENT_ENTS


def test_config_recipe_sources_with_replace_listeners(stock_path, student_path, tmp_path):
    config = Config().from_str(f"""
[nlp]
lang = "en"
pipeline = ["tok2vec", "ner", "taughtnet"]

[components]

[components.tok2vec]
source = "{stock_path}"

[components.ner]
source = "{stock_path}"

[components.taughtnet]
source = "{student_path}"
component = "ner"
replace_listeners = ["model.tok2vec"]
""")
    nlp = load_model_from_config(config, auto_fill=True)
    reference = combined(stock_path, student_path)(TEXT)
    doc = nlp(TEXT)
    assert ents(doc) == ents(reference) and group(doc) == group(reference)
    assert_array_equal(doc.tensor, reference.tensor)
    # the copied tok2vec is part of the pipe's own config, so the pipeline saves whole
    assert nlp.config["components"]["taughtnet"]["model"]["tok2vec"]["@architectures"] == "spacy.Tok2Vec.v2"
    nlp.to_disk(tmp_path / "assembled")
    assert ents(spacy.load(tmp_path / "assembled")(TEXT)) == ents(reference)


def test_sourcing_the_ner_without_its_tok2vec_is_refused(stock_path, student_path):
    student = spacy.load(student_path)
    # in a pipeline without a tok2vec, the listener would read an empty doc.tensor
    nlp = spacy.blank("en")
    nlp.add_pipe("ner", name="taughtnet", source=student)
    with pytest.raises(ConfigError, match="doc.tensor is empty.*replace_listeners"):
        nlp(TEXT)
    # in the stock pipeline it links to the user's tok2vec (width 48, its own is 32)
    nlp = spacy.load(stock_path)
    nlp.add_pipe("ner", name="taughtnet", source=spacy.load(student_path))
    with pytest.raises(ConfigError, match="width 32, but doc.tensor has width 48"):
        nlp(TEXT)


@pytest.fixture(scope="module")
def student96_path(tmp_path_factory):
    """The student, its tok2vec of width 96 (the config's, and spaCy's default tok2vec's)."""
    return trained_student(tmp_path_factory.mktemp("student96"))


def host_with_tok2vec():
    """A user's pipeline with spaCy's default tok2vec (width 96)."""
    nlp = seeded_blank(1)
    nlp.add_pipe("tok2vec")
    nlp.initialize()
    assert nlp("A test .").tensor.shape[1] == 96
    return nlp


def test_listener_form_sourced_beside_a_foreign_tok2vec_of_its_width_is_refused(student96_path):
    """It used to run and tag garbage: its listener read the host's tok2vec."""
    nlp = host_with_tok2vec()
    nlp.add_pipe("ner", name="taughtnet", source=spacy.load(student96_path))
    with pytest.raises(ConfigError, match=r"pipe 'taughtnet'.*not the output of the tok2vec it was trained with "
                       r"\('tok2vec'\).*packaged model.*replace_listeners\('tok2vec'"):
        nlp(TEXT)
    # through nlp.pipe too, and the refusal holds on later calls
    with pytest.raises(ConfigError, match="not the output of the tok2vec"):
        list(nlp.pipe([TEXT, TEXT]))


def test_listener_form_saved_beside_a_foreign_tok2vec_is_refused_on_load(student96_path, tmp_path):
    nlp = host_with_tok2vec()
    nlp.add_pipe("ner", name="taughtnet", source=spacy.load(student96_path))
    nlp.to_disk(tmp_path / "host")  # never run: the saved cfg records its tok2vec's weights
    with pytest.raises(ConfigError, match=re.escape(str(tmp_path / "host" / "taughtnet")) +
                       r": pipe 'taughtnet' listens to the tok2vec component 'tok2vec', whose weights are not"):
        spacy.load(tmp_path / "host")
    # the student itself, and a pipeline that sourced its tok2vec with it, load and run
    assert ents(spacy.load(student96_path)(TEXT)) == STUDENT_ENTS
    student = spacy.load(student96_path)
    both = seeded_blank(1)
    both.add_pipe("tok2vec", source=student)
    both.add_pipe("ner", name="taughtnet", source=student)
    assert ents(both(TEXT)) == STUDENT_ENTS
    both.to_disk(tmp_path / "both")
    assert ents(spacy.load(tmp_path / "both")(TEXT)) == STUDENT_ENTS


def test_self_contained_student_is_safe_beside_any_tok2vec(student96_path, tmp_path):
    alone = spacy.load(student96_path)(TEXT)
    student = spacy.load(student96_path)
    assert make_self_contained(student) == ["tok2vec"]
    assert student.pipe_names == ["ner"]
    student.to_disk(tmp_path / "packaged")
    packaged = spacy.load(tmp_path / "packaged")
    doc = packaged(TEXT)
    assert ents(doc) == ents(alone) == STUDENT_ENTS
    numpy.testing.assert_allclose(doc.spans["taughtnet"].attrs["scores"], alone.spans["taughtnet"].attrs["scores"], atol=1e-6)
    for source in (packaged, spacy.load(tmp_path / "packaged")):
        nlp = host_with_tok2vec()
        nlp.add_pipe("ner", name="taughtnet", source=source)
        assert ents(nlp(TEXT)) == STUDENT_ENTS
        nlp.to_disk(tmp_path / "host")
        assert ents(spacy.load(tmp_path / "host")(TEXT)) == STUDENT_ENTS


def test_initialize_warns_before_resetting_a_sourced_student(student96_path, tmp_path):
    nlp = host_with_tok2vec()
    make_self_contained(student := spacy.load(student96_path))
    nlp.add_pipe("ner", name="taughtnet", source=student)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with nlp.select_pipes(disable=["taughtnet"]):  # the advice of the warning
            nlp.initialize()
    assert ents(nlp(TEXT)) == STUDENT_ENTS
    with pytest.warns(UserWarning, match=r"pipe 'taughtnet': initialize\(\) re-initialises the weights.*"
                      r"nlp.select_pipes\(disable=\['taughtnet'\]\)"):
        nlp.initialize()
    # a new pipe initializes without a warning
    fresh = spacy.blank("en")
    fresh.add_pipe("taughtnet_ner")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fresh.initialize(lambda: [Example.from_dict(fresh.make_doc(t), {"entities": e}) for t, e in STUDENT_DATA])


@pytest.mark.parametrize("how", ["select_pipes", "disable"])
def test_a_disabled_tok2vec_is_named_as_the_cause(student96_path, how):
    if how == "select_pipes":
        nlp = spacy.load(student96_path)
        with nlp.select_pipes(disable="tok2vec"):
            with pytest.raises(ConfigError, match=r"pipe 'ner': its model listens to the tok2vec component "
                               r"'tok2vec', which has not run on this doc.*disabled or excluded"):
                nlp(TEXT)
        assert ents(nlp(TEXT)) == STUDENT_ENTS
    else:
        nlp = spacy.load(student96_path, disable=["tok2vec"])
        with pytest.raises(ConfigError, match=r"'tok2vec', which has not run on this doc.*disabled or excluded.*enable 'tok2vec'"):
            nlp(TEXT)


def test_span_group_scores_survive_a_docbin_without_user_data(stock_path, student_path):
    doc = combined(stock_path, student_path)(TEXT)
    doc_bin = DocBin(store_user_data=False)
    doc_bin.add(doc)
    (restored,) = DocBin().from_bytes(doc_bin.to_bytes()).get_docs(spacy.blank("en").vocab)
    assert group(restored) == STUDENT_ENTS
    numpy.testing.assert_allclose(restored.spans["taughtnet"].attrs["scores"], doc.spans["taughtnet"].attrs["scores"])


# ---------------------------------------------------------------- a DocBin from spacy convert

ORACLE = {}


@Language.component("taughtnet_test_convert_oracle")
def oracle_component(doc):
    """Sets the entities listed in ORACLE for the doc's words (a model with known output)."""
    doc.ents = [Span(doc, s, e, label=l) for s, e, l in ORACLE[tuple(t.text for t in doc)]]
    return doc


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    """The Disease test split converted by `spacy convert` (no type record) and by
    read_iob (with it); ORACLE predicts its gold entities and a Chemical on each doc's
    first token outside them."""
    out = tmp_path_factory.mktemp("converted")
    source = corpus_file("Toy-disease-IOB", "test")
    # what `python -m spacy convert SOURCE OUT --converter ner --file-type spacy` runs
    spacy_convert(source, out, converter="ner", file_type="spacy", n_sents=1)
    typed = out / "typed.spacy"
    write_docbin(read_iob(source, spacy.blank("en").vocab), typed)
    docs = read_docbin(out / "test.spacy", spacy.blank("en").vocab)
    assert len(docs) == 12 and {doc_entity_type(doc) for doc in docs} == {None}
    for doc in docs:
        free = next(t.i for t in doc if t.ent_iob_ == "O")
        ORACLE[tuple(t.text for t in doc)] = [(e.start, e.end, e.label_) for e in doc.ents] + [(free, free + 1, "Chemical")]
    return out / "test.spacy", typed


def oracle_nlp():
    nlp = spacy.blank("en")
    nlp.add_pipe("taughtnet_test_convert_oracle")
    return nlp


def test_evaluate_refuses_to_guess_the_types_of_a_converted_docbin(converted):
    untyped, typed = converted
    with pytest.raises(CorpusError, match=re.escape(str(untyped)) + ": .*no entity type record.*--entity-type.*'Disease'"):
        evaluate_corpus(oracle_nlp(), untyped)
    scores = evaluate_corpus(oracle_nlp(), untyped, entity_types=["Disease"])
    assert (scores["precision"], scores["recall"], scores["f1"]) == (1.0, 1.0, 1.0)
    assert scores["entity_type"] == "Disease" and scores["n_docs"] == 12
    # the same as the DocBin that records its type
    assert {k: v for k, v in evaluate_corpus(oracle_nlp(), typed).items() if k not in ("corpus", "words_per_second")} == {
        k: v for k, v in scores.items() if k not in ("corpus", "words_per_second")
    }
    # scoring every type, as a guess would, counts the Chemicals as errors
    both = evaluate_corpus(oracle_nlp(), untyped, entity_types=["Disease", "Chemical"])
    assert both["entity_type"] == "Disease,Chemical" and both["precision"] < 1.0 == both["recall"]
    # types that leave gold entities out, or contradict the record, are refused
    with pytest.raises(CorpusError, match=r"gold entities of type\(s\) \['Disease'\] are not among"):
        evaluate_corpus(oracle_nlp(), untyped, entity_types=["Chemical"])
    with pytest.raises(CorpusError, match="records the entity type 'Disease'"):
        evaluate_corpus(oracle_nlp(), typed, entity_types=["Chemical"])


def test_evaluate_command_takes_the_entity_type(converted, teachers, tmp_path):
    untyped, _ = converted
    runner = CliRunner()
    refused = runner.invoke(app, ["evaluate", str(teachers["Disease"]), str(untyped)])
    assert refused.exit_code == 1 and "--entity-type" in refused.output
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # seqeval: undefined precision on a tiny teacher
        result = runner.invoke(app, ["evaluate", str(teachers["Disease"]), str(untyped),
                                     "--entity-type", "Disease", "--output", str(tmp_path / "scores.json")])
    assert result.exit_code == 0, result.output
    (row,) = srsly.read_json(tmp_path / "scores.json")
    assert row["entity_type"] == "Disease" and row["n_docs"] == 12
    assert 0.0 <= row["f1"] <= 1.0


# ---------------------------------------------------------------- no dead setting in the default

def student_fingerprint(overrides):
    """What configs/student.cfg (narrowed, then `overrides`) builds into its `ner` pipe once
    initialised: the pipe's settings, its loss, and every layer's attributes and weight shapes."""
    nlp = load_model_from_config(load_config(CONFIGS / "student.cfg", overrides={**NARROW_STUDENT, **overrides}), auto_fill=True)
    examples = [Example.from_dict(nlp.make_doc(text), {"entities": ents}) for text, ents in STUDENT_DATA]
    nlp.initialize(lambda: examples)
    ner = nlp.get_pipe("ner")
    layers = [
        (node.name, sorted((k, repr(v)) for k, v in node.attrs.items()),
         [(p, node.get_param(p).shape) for p in node.param_names if node.has_param(p)])
        for node in ner.model.walk()
    ]
    return {k: v for k, v in ner.cfg.items() if k != "plugin_version"}, (ner.loss.lambda_, ner.loss.temperature), layers


def changed(value):
    """Another valid value of one setting of [components.ner]."""
    if isinstance(value, bool):
        return not value
    if isinstance(value, int):
        return value + 1
    if isinstance(value, float):
        return value / 2
    return {"per_type": "joint"}.get(value, value + "_other")


def test_every_setting_of_the_default_students_ner_reaches_the_pipe():
    """No dead setting (issue 23): changing any value of configs/student.cfg's [components.ner]
    changes what is built, the pipe's settings, its loss or its layers. The blocks spaCy
    itself reads ([training], [corpora], the tok2vec and the ner's listener of it) are
    spaCy's to check."""
    config = load_config(CONFIGS / "student.cfg", interpolate=False)

    def leaves(section, prefix):
        for key, value in section.items():
            if isinstance(value, dict):
                yield from leaves(value, f"{prefix}.{key}")
            elif not key.startswith("@") and key != "factory" and value is not None and not str(value).startswith("${"):
                yield f"{prefix}.{key}", value

    ner = {key: value for key, value in config["components"]["ner"].items()}
    ner["model"] = {key: value for key, value in ner["model"].items() if key != "tok2vec"}
    settings = dict(leaves(ner, "components.ner"))
    assert {"components.ner.heads", "components.ner.loss.lambda_", "components.ner.model.maxout_pieces"} <= set(settings)
    default = student_fingerprint({})
    for key, value in settings.items():
        fix_random_seed(0)
        assert student_fingerprint({key: changed(value)}) != default, f"{key} = {changed(value)!r} changes nothing"
