"""The `taughtnet_ner` pipe: overfitting, distillation, serialization, labels, scorer."""
import math

import numpy
import pytest
import spacy
import srsly
from helpers import TWO_TYPES, seeded_blank
from numpy.testing import assert_equal
from spacy.tokens import Doc, Span
from spacy.training import Example

import spacy_taughtnet
from spacy_taughtnet.component import CONFIDENCE_ATTR, TaughtNetNER
from spacy_taughtnet.corpora import TYPE_KEY
from spacy_taughtnet.decoding import tag_names
from spacy_taughtnet.errors import ModelVersionError
from spacy_taughtnet.heads import TEACHER_LABELS_KEY, TEACHER_PROBS_KEY
from spacy_taughtnet.loss import DistillationLoss
from spacy_taughtnet.scorer import bio_tags

EXPECTED = [sorted(ents) for _, ents in TWO_TYPES]


def char_ents(doc):
    return sorted((e.start_char, e.end_char, e.label_) for e in doc.ents)


def make_examples(nlp, data=TWO_TYPES):
    return [Example.from_dict(nlp.make_doc(text), {"entities": ents}) for text, ents in data]


@pytest.fixture(scope="module")
def trained():
    """test_overfitting_IO-style training: 50 updates on a handful of sentences."""
    nlp = seeded_blank(0)
    ner = nlp.add_pipe("taughtnet_ner", name="ner")
    examples = make_examples(nlp)
    optimizer = nlp.initialize(get_examples=lambda: examples)
    history = []
    for _ in range(50):
        losses = {}
        nlp.update(examples, sgd=optimizer, losses=losses)
        history.append(losses["ner"])
    return nlp, ner, history


def test_overfitting_IO(trained, tmp_path):
    nlp, ner, history = trained
    assert isinstance(ner, TaughtNetNER)
    assert isinstance(ner.loss, DistillationLoss) and ner.loss.lambda_ == 0.99
    assert ner.labels == ("Chemical", "Disease")  # sorted types of the examples
    assert history[-1] < 0.01
    assert history[-1] < history[0] / 100
    texts = [text for text, _ in TWO_TYPES]
    docs = [nlp(text) for text in texts]
    assert [char_ents(doc) for doc in docs] == EXPECTED
    confidences = [[ent._.get(CONFIDENCE_ATTR) for ent in doc.ents] for doc in docs]
    for doc_conf in confidences:
        for c in doc_conf:
            assert isinstance(c, float) and 0.0 < c <= 1.0
    # to_disk / spacy.load
    nlp.to_disk(tmp_path / "model")
    nlp2 = spacy.load(tmp_path / "model")
    assert nlp2.get_pipe("ner").labels == ("Chemical", "Disease")
    docs2 = [nlp2(text) for text in texts]
    assert [char_ents(doc) for doc in docs2] == EXPECTED
    for doc, doc2 in zip(docs, docs2):
        assert [e._.get(CONFIDENCE_ATTR) for e in doc2.ents] == pytest.approx(
            [e._.get(CONFIDENCE_ATTR) for e in doc.ents], abs=1e-6
        )
    # to_bytes / from_bytes
    nlp3 = spacy.blank("en")
    nlp3.add_pipe("taughtnet_ner", name="ner")
    nlp3.from_bytes(nlp.to_bytes())
    docs3 = [nlp3(text) for text in texts]
    assert [char_ents(doc) for doc in docs3] == EXPECTED
    # nlp.pipe gives the same entities as nlp(), in batches and twice
    for batch_size in (1, 2, 8, 8):
        piped = list(nlp.pipe(texts, batch_size=batch_size))
        assert [char_ents(d) for d in piped] == EXPECTED
        for doc, p in zip(docs, piped):
            assert_equal(doc.to_array(["ENT_IOB", "ENT_TYPE"]), p.to_array(["ENT_IOB", "ENT_TYPE"]))
    # and the same confidences, whatever the batch
    for doc, p in zip(docs, nlp.pipe(texts, batch_size=8)):
        assert [e._.get(CONFIDENCE_ATTR) for e in p.ents] == pytest.approx(
            [e._.get(CONFIDENCE_ATTR) for e in doc.ents], abs=1e-6
        )


def test_predictions_do_not_depend_on_the_batch(trained):
    nlp, ner, _ = trained
    texts = [text for text, _ in TWO_TYPES]
    alone = [ner.predict_proba([nlp.make_doc(t)])[0] for t in texts]
    batched = ner.predict_proba([nlp.make_doc(t) for t in texts])
    for a, b in zip(alone, batched):
        numpy.testing.assert_allclose(a, b, atol=1e-5)
    for doc, p in zip([nlp(t) for t in texts], nlp.pipe(texts, batch_size=8)):
        assert [e._.get(CONFIDENCE_ATTR) for e in p.ents] == pytest.approx(
            [e._.get(CONFIDENCE_ATTR) for e in doc.ents], abs=1e-6
        )


def test_predict_proba(trained):
    nlp, ner, _ = trained
    docs = [nlp.make_doc(t) for t in ["Patients with diabetes received aspirin daily .", "", "Asthma ."]]
    probs = ner.predict_proba(docs)
    assert len(probs) == 3
    for doc, p in zip(docs, probs):
        assert isinstance(p, numpy.ndarray)
        assert p.shape == (len(doc), 5)
        assert p.dtype == numpy.float32
        numpy.testing.assert_allclose(p.sum(axis=1), 1.0, atol=1e-5)
        assert (p >= 0).all()
    assert ner.tag_names == ["B-Chemical", "I-Chemical", "B-Disease", "I-Disease", "O"]
    # the most probable tag of "diabetes" (token 2) is B-Disease, of "aspirin" (4) B-Chemical
    assert ner.tag_names[int(probs[0][2].argmax())] == "B-Disease"
    assert ner.tag_names[int(probs[0][4].argmax())] == "B-Chemical"
    assert ner.tag_names[int(probs[0][0].argmax())] == "O"
    # the BIO probabilities fold the model's BILUO ones: B = B + U, I = I + L
    assert ner.model_tag_names == [
        "B-Chemical", "I-Chemical", "L-Chemical", "U-Chemical",
        "B-Disease", "I-Disease", "L-Disease", "U-Disease", "O",
    ]
    (scores,) = ner.predict([docs[0]])
    biluo = numpy.exp(log_softmax(numpy.asarray(scores, dtype="float64")))
    assert biluo.shape == (len(docs[0]), 9)
    folded = numpy.stack(
        [biluo[:, 0] + biluo[:, 3], biluo[:, 1] + biluo[:, 2], biluo[:, 4] + biluo[:, 7], biluo[:, 5] + biluo[:, 6], biluo[:, 8]],
        axis=1,
    )
    numpy.testing.assert_allclose(probs[0], folded, atol=1e-6)
    # confidence of an entity: geometric mean of the probabilities of its tokens' BILUO tags
    doc = nlp("Breast cancer is common .")
    (ent,) = doc.ents
    (scores,) = ner.predict([nlp.make_doc("Breast cancer is common .")])
    p = numpy.exp(log_softmax(numpy.asarray(scores, dtype="float64")))
    expected = math.sqrt(p[0, 4] * p[1, 6])  # B-Disease, L-Disease
    assert ent._.get(CONFIDENCE_ATTR) == pytest.approx(expected, rel=1e-5)
    (ent,) = nlp("We gave dopamine to the mice .").ents
    (scores,) = ner.predict([nlp.make_doc("We gave dopamine to the mice .")])
    p = numpy.exp(log_softmax(numpy.asarray(scores, dtype="float64")))
    assert ent._.get(CONFIDENCE_ATTR) == pytest.approx(p[2, 3], rel=1e-5)  # U-Chemical


def test_empty_and_whitespace_docs(trained):
    nlp, ner, _ = trained
    assert len(nlp("")) == 0 and nlp("").ents == ()
    for text in ("   ", "  \n ", "\n"):
        doc = nlp(text)
        assert len(doc) == 1 and doc[0].is_space
        assert all(0 < e._.get(CONFIDENCE_ATTR) <= 1 for e in doc.ents)
    texts = ["", "Breast cancer is common .", "   ", "", "We gave dopamine to the mice ."]
    docs = list(nlp.pipe(texts))
    assert [len(d) for d in docs] == [0, 5, 1, 0, 7]
    assert [char_ents(docs[i]) for i in (0, 1, 3, 4)] == [[], EXPECTED[4], [], EXPECTED[3]]
    assert list(nlp.pipe(["", ""])) and all(len(d.ents) == 0 for d in nlp.pipe(["", ""]))
    assert [p.shape for p in ner.predict_proba([nlp.make_doc(""), nlp.make_doc("")])] == [(0, 5), (0, 5)]


def test_no_entity_starts_or_ends_on_whitespace(trained):
    nlp, _, _ = trained
    texts = ["   ", "\n", "Patients with \n diabetes received  aspirin daily ."]
    ents = [ent for doc in nlp.pipe(texts) for ent in doc.ents]
    assert ents  # the check below is not vacuous
    for ent in ents:
        assert not ent[0].is_space and not ent[-1].is_space, (ent.doc.text, ent.text, ent.label_)


def test_overwrite_false_keeps_existing_entities(trained):
    nlp, ner, _ = trained
    assert ner.cfg["overwrite"] is False
    doc = nlp.make_doc("Patients with diabetes received aspirin daily .")
    doc.ents = [Span(doc, 2, 3, label="CUSTOM")]  # "diabetes"
    doc = ner(doc)
    assert [(e.text, e.label_) for e in doc.ents] == [("diabetes", "CUSTOM"), ("aspirin", "Chemical")]
    assert 0 < doc.ents[1]._.get(CONFIDENCE_ATTR) <= 1
    # an existing entity overlapping a prediction partly is kept too
    doc = nlp.make_doc("Cisplatin caused renal failure in two patients .")
    doc.ents = [Span(doc, 3, 5, label="CUSTOM")]  # "failure in"
    doc = ner(doc)
    assert [(e.text, e.label_) for e in doc.ents] == [("Cisplatin", "Chemical"), ("failure in", "CUSTOM")]


def test_confidence_only_on_entities_the_pipe_set(trained):
    nlp, ner, _ = trained
    doc = nlp.make_doc("Patients with diabetes received aspirin daily .")
    doc.ents = [Span(doc, 2, 3, label="CUSTOM")]  # "diabetes", predicted Disease
    doc = ner(doc)
    assert doc.ents[0].label_ == "CUSTOM"
    assert doc.ents[0]._.get(CONFIDENCE_ATTR) is None


def test_overwrite_true_replaces_entities(trained):
    nlp, _, _ = trained
    nlp2 = spacy.blank("en")
    ner2 = nlp2.add_pipe("taughtnet_ner", name="ner", config={"overwrite": True})
    assert ner2.cfg["overwrite"] is True
    ner2.from_bytes(nlp.get_pipe("ner").to_bytes(exclude=["cfg"]), exclude=["cfg"])
    ner2.cfg["labels"] = list(nlp.get_pipe("ner").labels)
    doc = nlp2.make_doc("Patients with diabetes received aspirin daily .")
    doc.ents = [Span(doc, 0, 1, label="CUSTOM"), Span(doc, 2, 3, label="CUSTOM")]
    doc = ner2(doc)
    assert [(e.text, e.label_) for e in doc.ents] == [("diabetes", "Disease"), ("aspirin", "Chemical")]
    assert [t.ent_iob_ for t in doc][:2] == ["O", "O"]


def test_add_label_rules():
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("taughtnet_ner")
    assert ner.add_label("Disease") == 1
    assert ner.add_label("Disease") == 0
    for bad in ("B-X", "I-Disease", "O", ""):
        with pytest.raises(ValueError, match="entity type"):
            ner.add_label(bad)
    assert ner.labels == ("Disease",)
    doc = nlp.make_doc("renal failure")
    examples = [Example.from_dict(doc, {"entities": [(0, 13, "Disease")]})]
    nlp.initialize(lambda: examples)
    with pytest.raises(ValueError, match="initialized"):
        ner.add_label("Chemical")
    assert ner.labels == ("Disease",)


def test_initialize_without_labels_raises():
    nlp = spacy.blank("en")
    nlp.add_pipe("taughtnet_ner")
    examples = [Example.from_dict(nlp.make_doc("nothing here"), {})]
    with pytest.raises(ValueError, match="no entity labels"):
        nlp.initialize(lambda: examples)


def test_serialize_uninitialized_pipe():
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("taughtnet_ner", name="ner")
    ner.add_label("GENE")
    ner.add_label("Disease")
    data = ner.to_bytes()
    ner2 = spacy.blank("en").add_pipe("taughtnet_ner", name="ner")
    ner2.from_bytes(data)
    assert ner2.labels == ("GENE", "Disease")
    nlp3 = spacy.blank("en")
    nlp3.add_pipe("taughtnet_ner", name="ner")
    nlp3.from_bytes(nlp.to_bytes())
    assert nlp3.get_pipe("ner").labels == ("GENE", "Disease")
    # the loaded pipe can still be initialized and used
    examples = [Example.from_dict(nlp3.make_doc("renal failure"), {"entities": [(0, 13, "Disease")]})]
    nlp3.initialize(lambda: examples)
    assert nlp3.get_pipe("ner").model.get_ref("output_layer").get_dim("nO") == 9  # BILUO, 2 types
    assert len(nlp3("renal failure")) == 2


def test_serialize_initialized_pipe(trained):
    _, ner, _ = trained
    data = ner.to_bytes()
    ner2 = spacy.blank("en").add_pipe("taughtnet_ner", name="ner")
    ner2.from_bytes(data)
    assert ner2.labels == ner.labels
    assert ner2.model.get_ref("output_layer").get_dim("nO") == 9
    assert ner2.to_bytes() == data
    with pytest.raises(ValueError, match="initialized"):
        ner2.add_label("GENE")
    docs = [Doc(ner2.vocab, words="Asthma was not treated with caffeine .".split())]
    numpy.testing.assert_allclose(ner2.predict_proba(docs)[0], ner.predict_proba(docs)[0], atol=1e-6)


def test_load_time_overrides_of_factory_settings(trained, tmp_path):
    nlp, _, _ = trained
    nlp.to_disk(tmp_path / "model")
    text = "Patients with diabetes received aspirin daily ."
    saved = spacy.load(tmp_path / "model").get_pipe("ner").cfg
    assert {k: saved[k] for k in ("overwrite", "spans_key", "set_ents")} == {"overwrite": False, "spans_key": "taughtnet", "set_ents": True}
    overrides = {"overwrite": True, "spans_key": None, "set_ents": False}
    loaded = spacy.load(tmp_path / "model", config={"components": {"ner": overrides}})
    ner = loaded.get_pipe("ner")
    assert {k: ner.cfg[k] for k in overrides} == overrides
    assert ner.labels == ("Chemical", "Disease")  # the saved cfg still gives the labels
    doc = loaded.make_doc(text)
    doc.ents = [Span(doc, 0, 1, label="CUSTOM")]
    doc = ner(doc)
    assert char_ents(doc) == [(0, 8, "CUSTOM")] and list(doc.spans) == []
    # from_bytes too: a pipe takes its settings from its own config
    nlp2 = spacy.blank("en")
    ner2 = nlp2.add_pipe("taughtnet_ner", name="ner", config={"overwrite": True, "spans_key": "bio"})
    nlp2.from_bytes(nlp.to_bytes())
    assert (ner2.cfg["overwrite"], ner2.cfg["spans_key"], ner2.labels) == (True, "bio", ("Chemical", "Disease"))
    doc = nlp2(text)
    assert [(s.text, s.label_) for s in doc.spans["bio"]] == [("diabetes", "Disease"), ("aspirin", "Chemical")]


def test_plugin_version_check(trained, tmp_path):
    """A newer minor version's pipe is refused, from disk and from bytes, naming both versions;
    an older minor version's (here 0.1.x), another patch release's, and a cfg without the
    record load (test_versions.py has the rule itself)."""
    nlp, ner, _ = trained
    assert ner.cfg["plugin_version"] == spacy_taughtnet.__version__
    nlp.to_disk(tmp_path / "model")
    cfg_path = tmp_path / "model" / "ner" / "cfg"
    cfg = srsly.read_json(cfg_path)
    assert cfg["plugin_version"] == spacy_taughtnet.__version__
    major, minor, _ = spacy_taughtnet.__version__.split(".")
    other = f"{major}.{int(minor) + 1}.0"
    srsly.write_json(cfg_path, {**cfg, "plugin_version": other})
    with pytest.raises(ModelVersionError) as err:
        spacy.load(tmp_path / "model")
    message = str(err.value)
    assert f"saved by spacy-taughtnet {other}" in message and f"spacy-taughtnet {spacy_taughtnet.__version__} is installed" in message
    assert f"pip install 'spacy-taughtnet=={major}.{int(minor) + 1}.*'" in message
    # from bytes as well
    data = srsly.msgpack_loads(ner.to_bytes())
    data["cfg"] = srsly.json_dumps({**srsly.json_loads(data["cfg"]), "plugin_version": other})
    with pytest.raises(ModelVersionError, match=other):
        spacy.blank("en").add_pipe("taughtnet_ner").from_bytes(srsly.msgpack_dumps(data))
    for saved in (f"{major}.{minor}.99", f"{major}.{int(minor) - 1}.3"):
        srsly.write_json(cfg_path, {**cfg, "plugin_version": saved})
        assert spacy.load(tmp_path / "model").get_pipe("ner").cfg["plugin_version"] == spacy_taughtnet.__version__
    srsly.write_json(cfg_path, {k: v for k, v in cfg.items() if k != "plugin_version"})
    assert spacy.load(tmp_path / "model").get_pipe("ner").labels == ("Chemical", "Disease")


def test_span_group_holds_every_prediction_with_its_score(trained):
    nlp, ner, _ = trained
    doc = nlp.make_doc("Patients with diabetes received aspirin daily .")
    doc.ents = [Span(doc, 2, 3, label="CUSTOM")]  # "diabetes"
    doc = ner(doc)
    group = doc.spans["taughtnet"]
    assert group.name == "taughtnet"
    assert [(s.text, s.label_) for s in group] == [("diabetes", "Disease"), ("aspirin", "Chemical")]
    scores = group.attrs["scores"]
    assert scores.dtype == numpy.float32 and scores.shape == (2,)
    assert float(scores[1]) == pytest.approx(doc.ents[1]._.get(CONFIDENCE_ATTR), abs=1e-6)
    # the score of "diabetes", kept out of doc.ents, is its confidence as the pipe alone gives it
    (alone,) = [e for e in nlp("Patients with diabetes received aspirin daily .").ents if e.text == "diabetes"]
    assert float(scores[0]) == pytest.approx(alone._.get(CONFIDENCE_ATTR), abs=1e-6)


# ---------------------------------------------------------------- loss values


def log_softmax(x):
    x = x - x.max(axis=1, keepdims=True)
    return x - numpy.log(numpy.exp(x).sum(axis=1, keepdims=True))


def biluo_gold(doc):
    """BILUO tags of a doc's entities, by hand."""
    tags = ["O"] * len(doc)
    for e in doc.ents:
        if len(e) == 1:
            tags[e.start] = f"U-{e.label_}"
        else:
            tags[e.start] = f"B-{e.label_}"
            tags[e.end - 1] = f"L-{e.label_}"
            for i in range(e.start + 1, e.end - 1):
                tags[i] = f"I-{e.label_}"
    return tags


def test_get_loss_without_teacher_is_cross_entropy_by_hand(trained):
    nlp, ner, _ = trained
    examples = make_examples(nlp)
    scores = ner.model.predict([eg.predicted for eg in examples])
    loss, d_scores = ner.get_loss(examples, scores)
    index = {tag: i for i, tag in enumerate(ner.model_tag_names)}
    terms = []
    for eg, s in zip(examples, scores):
        lp = log_softmax(numpy.asarray(s, dtype="float64"))
        for t, tag in enumerate(biluo_gold(eg.reference)):
            terms.append(-lp[t, index[tag]])
    assert biluo_gold(examples[1].reference)[:4] == ["U-Chemical", "O", "B-Disease", "L-Disease"]
    assert loss == pytest.approx(sum(terms) / len(terms), rel=1e-5)
    assert [d.shape for d in d_scores] == [s.shape for s in scores]


def one_hot_teacher(doc_tags, labels, sharp=0.96):
    """Near one-hot distributions over tag_names(labels) for BIO tags."""
    names = tag_names(labels)
    rest = (1 - sharp) / (len(names) - 1)
    probs = numpy.full((len(doc_tags), len(names)), rest, dtype=numpy.float32)
    for t, tag in enumerate(doc_tags):
        probs[t, names.index(tag if tag in names else "O")] = sharp
    return probs


def distill_examples(nlp, teacher_labels, data=TWO_TYPES):
    """Examples whose gold has only the Disease entities (a Disease corpus), with teacher
    distributions that know both types, in the column order of `teacher_labels`."""
    examples = []
    for text, ents in data:
        full = nlp.make_doc(text)
        full.ents = [full.char_span(s, e, label=l) for s, e, l in ents]
        reference = nlp.make_doc(text)
        reference.ents = [reference.char_span(s, e, label=l) for s, e, l in ents if l == "Disease"]
        reference.user_data[TYPE_KEY] = "Disease"
        reference.user_data[TEACHER_PROBS_KEY] = one_hot_teacher(bio_tags(full), teacher_labels)
        reference.user_data[TEACHER_LABELS_KEY] = list(teacher_labels)
        examples.append(Example(nlp.make_doc(text), reference))
    return examples


def test_get_loss_with_teacher_by_hand():
    nlp = seeded_blank(1)
    ner = nlp.add_pipe("taughtnet_ner", config={"loss": {"@losses": "spacy-taughtnet.DistillationLoss.v1", "lambda_": 0.5, "temperature": 2.0}})
    assert (ner.loss.lambda_, ner.loss.temperature) == (0.5, 2.0)
    ner.add_label("Chemical")
    ner.add_label("Disease")
    examples = distill_examples(nlp, ["Disease", "Chemical"])
    nlp.initialize(lambda: examples)
    scores = ner.model.predict([eg.predicted for eg in examples])
    loss, _ = ner.get_loss(examples, scores)
    # model columns: B-Chem I-Chem L-Chem U-Chem B-Dis I-Dis L-Dis U-Dis O
    # teacher columns: B-Disease I-Disease B-Chemical I-Chemical O, spread over BILUO with
    # the next token's I- probability c: B -> B (c), U (1 - c); I -> I (c), L (1 - c)
    ce_terms, kl_terms = [], []
    for eg, s in zip(examples, scores):
        s = numpy.asarray(s, dtype="float64")
        lp = log_softmax(s)
        pt = numpy.exp(log_softmax(s / 2.0))
        q = eg.reference.user_data[TEACHER_PROBS_KEY].astype("float64")
        for t, tag in enumerate(biluo_gold(eg.reference)):
            if tag != "O":  # gold O is missing for the hard loss
                ce_terms.append(-lp[t, ner.model_tag_names.index(tag)])
            target = []
            for b, i in ((2, 3), (0, 1)):  # Chemical, then Disease
                c = q[t + 1, i] if t + 1 < len(q) else 0.0
                target += [q[t, b] * c, q[t, i] * c, q[t, i] * (1 - c), q[t, b] * (1 - c)]
            target.append(q[t, 4])
            target = numpy.array(target)
            assert target.sum() == pytest.approx(1.0)
            kl_terms.append(float((target * numpy.log(numpy.where(target > 0, target, 1) / pt[t])).sum()))
    assert len(ce_terms) == 6  # diabetes, renal failure, Asthma, Breast cancer: 1 + 2 + 1 + 2 tokens
    expected = 0.5 * sum(ce_terms) / len(ce_terms) + 0.5 * 4.0 * sum(kl_terms) / len(kl_terms)
    assert loss == pytest.approx(expected, rel=1e-4)


def test_teacher_column_order_does_not_matter():
    nlp = seeded_blank(2)
    ner = nlp.add_pipe("taughtnet_ner")
    ner.add_label("Chemical")
    ner.add_label("Disease")
    theirs = distill_examples(nlp, ["Disease", "Chemical"])
    ours = distill_examples(nlp, ["Chemical", "Disease"])
    nlp.initialize(lambda: ours)
    scores = ner.model.predict([eg.predicted for eg in ours])
    loss_a, grad_a = ner.get_loss(theirs, scores)
    loss_b, grad_b = ner.get_loss(ours, scores)
    assert loss_a == pytest.approx(loss_b, rel=1e-6)
    for a, b in zip(grad_a, grad_b):
        numpy.testing.assert_allclose(a, b, atol=1e-7)


# A union of two single-type corpora: every sentence mentions both types, each corpus
# annotates one of them (the other is O in its gold), the teachers know both.
UNION_DATA = [
    ("Disease", "Patients with diabetes received aspirin daily .", [(14, 22, "Disease"), (32, 39, "Chemical")]),
    ("Disease", "Cisplatin caused renal failure in two patients .", [(0, 9, "Chemical"), (17, 30, "Disease")]),
    ("Disease", "Asthma was not treated with lithium carbonate .", [(0, 6, "Disease"), (28, 45, "Chemical")]),
    ("Disease", "We gave dopamine to the mice with breast cancer .", [(8, 16, "Chemical"), (34, 47, "Disease")]),
    ("Chemical", "Aspirin did not prevent asthma in children .", [(0, 7, "Chemical"), (24, 30, "Disease")]),
    ("Chemical", "Lithium carbonate caused renal failure .", [(0, 17, "Chemical"), (25, 38, "Disease")]),
    ("Chemical", "Dopamine levels fell in diabetes .", [(0, 8, "Chemical"), (24, 32, "Disease")]),
    ("Chemical", "Breast cancer patients took cisplatin .", [(0, 13, "Disease"), (28, 37, "Chemical")]),
]


def union_examples(nlp, teacher_labels):
    examples = []
    for own_type, text, ents in UNION_DATA:
        full = nlp.make_doc(text)
        full.ents = [full.char_span(s, e, label=l) for s, e, l in ents]
        assert len(full.ents) == 2
        reference = nlp.make_doc(text)
        reference.ents = [reference.char_span(s, e, label=l) for s, e, l in ents if l == own_type]
        reference.user_data[TYPE_KEY] = own_type
        reference.user_data[TEACHER_PROBS_KEY] = one_hot_teacher(bio_tags(full), teacher_labels)
        reference.user_data[TEACHER_LABELS_KEY] = list(teacher_labels)
        examples.append(Example(nlp.make_doc(text), reference))
    return examples


def train_on_union(seed):
    nlp = seeded_blank(seed)
    ner = nlp.add_pipe("taughtnet_ner", name="ner")
    ner.add_label("Chemical")  # component order: Chemical, Disease
    ner.add_label("Disease")
    examples = union_examples(nlp, ["Disease", "Chemical"])  # teacher order differs
    optimizer = nlp.initialize(lambda: examples)
    history = []
    for _ in range(50):
        losses = {}
        nlp.update(examples, sgd=optimizer, losses=losses)
        history.append(losses["ner"])
    return nlp, ner, examples, history


@pytest.mark.slow
def test_distillation_learns_teacher_argmax_where_gold_is_o():
    nlp, ner, examples, history = train_on_union(0)
    assert ner.labels == ("Chemical", "Disease")
    assert all(len(eg.reference.ents) == 1 for eg in examples)  # each gold holds one type only
    assert history[-1] < history[0] / 10
    teacher_names = tag_names(["Disease", "Chemical"])
    n_teacher_only = 0
    for eg in examples:
        (probs,) = ner.predict_proba([nlp.make_doc(eg.reference.text)])
        teacher = [teacher_names[i] for i in eg.reference.user_data[TEACHER_PROBS_KEY].argmax(axis=1)]
        student = [ner.tag_names[i] for i in probs.argmax(axis=1)]
        assert student == teacher, eg.reference.text
        gold = bio_tags(eg.reference)
        n_teacher_only += sum(g == "O" and t != "O" for g, t in zip(gold, teacher))
    assert n_teacher_only == 11  # tokens of the type each corpus left O: 5 Chemical + 6 Disease


@pytest.mark.slow
def test_distillation_decodes_the_teacher_entities():
    for seed in range(4):
        nlp, _, _, _ = train_on_union(seed)
        predicted = [char_ents(nlp(text)) for _, text, _ in UNION_DATA]
        assert predicted == [sorted(ents) for _, _, ents in UNION_DATA], f"seed {seed}"


def test_initialize_takes_labels_from_teacher_distributions():
    nlp = spacy.blank("en")
    ner = nlp.add_pipe("taughtnet_ner")
    nlp.initialize(lambda: distill_examples(nlp, ["Disease", "Chemical"]))
    assert ner.labels == ("Disease", "Chemical")


@pytest.fixture
def distill_pipe():
    nlp = seeded_blank(0)
    ner = nlp.add_pipe("taughtnet_ner", name="ner")
    ner.add_label("Chemical")
    ner.add_label("Disease")
    optimizer = nlp.initialize(lambda: distill_examples(nlp, ["Chemical", "Disease"]))
    return nlp, ner, optimizer


def test_batch_mixing_teacher_and_no_teacher_raises(distill_pipe):
    nlp, _, optimizer = distill_pipe
    with_teacher = distill_examples(nlp, ["Chemical", "Disease"])[:2]
    without = make_examples(nlp)[2:4]
    with pytest.raises(ValueError, match="mixes 2 examples with teacher distributions and 2 without"):
        nlp.update(with_teacher + without, sgd=optimizer)


def test_teacher_labels_disagreeing_raise(distill_pipe):
    nlp, _, optimizer = distill_pipe
    examples = distill_examples(nlp, ["Disease", "GENE"])
    with pytest.raises(ValueError) as err:
        nlp.update(examples, sgd=optimizer)
    message = str(err.value)
    assert "['Chemical', 'Disease']" in message and "['Disease', 'GENE']" in message
    # also at initialize
    nlp2 = spacy.blank("en")
    ner2 = nlp2.add_pipe("taughtnet_ner")
    ner2.add_label("Chemical")
    with pytest.raises(ValueError, match=r"\['Chemical'\].*\['Disease', 'GENE'\]"):
        nlp2.initialize(lambda: distill_examples(nlp2, ["Disease", "GENE"]))


def test_teacher_wrong_row_count_raises(distill_pipe):
    nlp, _, optimizer = distill_pipe
    examples = distill_examples(nlp, ["Chemical", "Disease"])
    probs = examples[1].reference.user_data[TEACHER_PROBS_KEY]
    examples[1].reference.user_data[TEACHER_PROBS_KEY] = numpy.concatenate([probs, probs[:1]])
    with pytest.raises(ValueError, match=f"have {len(probs) + 1} rows, but the doc has {len(probs)} tokens"):
        nlp.update(examples, sgd=optimizer)


# ---------------------------------------------------------------- scorer


def test_pipe_uses_the_scorer(trained):
    nlp, _, _ = trained
    text = "Patients with diabetes received aspirin daily ."
    reference = nlp.make_doc(text)
    reference.ents = [reference.char_span(14, 22, label="Disease")]
    reference.user_data[TYPE_KEY] = "Disease"
    scores = nlp.evaluate([Example(nlp.make_doc(text), reference)])
    # the predicted Chemical "aspirin" is not a false positive on a Disease doc
    assert (scores["ents_p"], scores["ents_r"], scores["ents_f"]) == (1.0, 1.0, 1.0)
    reference.user_data.pop(TYPE_KEY)
    scores = nlp.evaluate([Example(nlp.make_doc(text), reference)])
    assert scores["ents_p"] == 0.5 and scores["ents_r"] == 1.0
    # a doc without the type record is scored on the types given to the scorer
    scores = nlp.evaluate([Example(nlp.make_doc(text), reference)], scorer_cfg={"entity_types": ["Disease"]})
    assert (scores["ents_p"], scores["ents_r"]) == (1.0, 1.0)
    assert list(scores["ents_per_type"]) == ["Disease"]
    # and a recorded type wins over them
    reference.user_data[TYPE_KEY] = "Chemical"
    scores = nlp.evaluate([Example(nlp.make_doc(text), reference)], scorer_cfg={"entity_types": ["Disease"]})
    assert scores["ents_p"] == 0.0 and list(scores["ents_per_type"]) == ["Chemical"]
