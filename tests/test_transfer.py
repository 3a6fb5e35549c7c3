import gzip
import hashlib
import json
import shutil

import numpy
import pytest
import spacy
from helpers import CORPORA, CORPUS_TYPES, FIXTURES, SMALL_MODEL
from spacy.tokens import DocBin
from spacy.util import registry

from spacy_taughtnet.corpora import CORPUS_KEY, doc_entity_type, iob_words
from spacy_taughtnet.distributions import TeacherDistributions
from spacy_taughtnet.errors import ConfigError, CorpusError, DistributionsError
from spacy_taughtnet.heads import TEACHER_PROBS_KEY, TEACHER_TYPE_PROBS_KEY
from spacy_taughtnet.transfer import (
    build_transfer_text,
    read_transfer_docs,
    text_sentences,
    transfer_files,
)


def write_tsv(path, sentences):
    path.parent.mkdir(parents=True, exist_ok=True)
    blocks = ["\n".join(f"{token}\tO" for token in sentence.split()) for sentence in sentences]
    path.write_text("\n\n".join(blocks) + "\n", encoding="utf8")
    return path


@pytest.fixture
def sources(tmp_path):
    a_train = write_tsv(tmp_path / "A-IOB" / "train.tsv", [
        "-DOCSTART-", "Mice lacking p53 develop tumours .", "Too short", "Held out sentence here .",
        "Mice lacking p53 develop tumours .",
    ])
    a_test = write_tsv(tmp_path / "A-IOB" / "test.tsv", ["A second source sentence ."])
    b_train = write_tsv(tmp_path / "B-IOB" / "train.tsv", [
        "Mice lacking p53 develop tumours .", "Cells were grown in serum .",
    ])
    held_out = write_tsv(tmp_path / "eval" / "test.tsv", ["Held out sentence here ."])
    return [("A", iob_words(a_train)), ("A", iob_words(a_test)), ("B", iob_words(b_train))], [held_out]


def test_build_applies_the_rule(sources, tmp_path):
    pairs, exclude = sources
    counts = build_transfer_text(pairs, exclude, tmp_path / "transfer")
    lines = {
        name: gzip.open(tmp_path / "transfer" / f"{name}.txt.gz", "rt", encoding="utf8").read().splitlines()
        for name in ("A", "B")
    }
    # -DOCSTART- skipped, the 2-token sentence dropped, the held-out one dropped, duplicates
    # dropped keeping the first occurrence (so B loses the sentence A already gave).
    assert lines == {
        "A": ["Mice lacking p53 develop tumours .", "A second source sentence ."],
        "B": ["Cells were grown in serum ."],
    }
    assert counts == {"A": {"sentences": 2, "tokens": 11}, "B": {"sentences": 1, "tokens": 6}}
    assert json.loads((tmp_path / "transfer" / "counts.json").read_text()) == counts


def test_build_is_byte_reproducible(sources, tmp_path):
    pairs, exclude = sources
    digests = []
    for out in ("one", "two"):
        pairs = [(name, list(sentences)) for name, sentences in pairs]
        build_transfer_text(pairs, exclude, tmp_path / out)
        digests.append(hashlib.md5((tmp_path / out / "A.txt.gz").read_bytes()).hexdigest())
    assert digests[0] == digests[1]


def test_build_errors(sources, tmp_path):
    pairs, exclude = sources
    with pytest.raises(CorpusError, match="missing.tsv: file not found"):
        build_transfer_text([("A", iob_words(tmp_path / "missing.tsv"))], exclude, tmp_path / "out")
    only_held_out = [("A", iob_words(exclude[0]))]
    with pytest.raises(CorpusError, match="no transfer sentences left"):
        build_transfer_text(only_held_out, exclude, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_read_transfer_docs(sources, tmp_path):
    pairs, exclude = sources
    build_transfer_text(pairs, exclude, tmp_path / "transfer")
    vocab = spacy.blank("en").vocab
    docs = list(read_transfer_docs(transfer_files(tmp_path / "transfer"), vocab))
    assert [doc.text for doc in docs] == [
        "Mice lacking p53 develop tumours . ", "A second source sentence . ", "Cells were grown in serum . ",
    ]
    assert [doc.user_data[CORPUS_KEY] for doc in docs] == ["transfer:A", "transfer:A", "transfer:B"]
    assert all(doc_entity_type(doc) is None and len(doc.ents) == 0 for doc in docs)
    only_b = list(read_transfer_docs(transfer_files(tmp_path / "transfer"), vocab, sources=["B"]))
    assert [doc.user_data[CORPUS_KEY] for doc in only_b] == ["transfer:B"]
    first = list(read_transfer_docs(transfer_files(tmp_path / "transfer"), vocab, limit=1))
    assert len(first) == 2  # one per file


def test_read_transfer_errors(tmp_path):
    with pytest.raises(CorpusError, match="no transfer text here"):
        transfer_files(tmp_path)
    bad = tmp_path / "bad.txt.gz"
    with gzip.open(bad, "wt", encoding="utf8") as out:
        out.write("fine line here\ntwo  spaces\n")
    with pytest.raises(CorpusError, match=r"bad.txt.gz:2: tokens must be separated by single spaces"):
        list(read_transfer_docs([bad], spacy.blank("en").vocab))


@pytest.mark.parametrize("damage, error", [
    ("cut short", r"bad.txt.gz:(\d+): cannot read line \1 or any after it: Compressed file ended"),
    ("not gzip", r"bad.txt.gz:1: cannot read line 1 or any after it: Not a gzipped file"),
    ("not UTF-8", r"bad.txt.gz:2: not valid UTF-8"),
])
def test_damaged_transfer_text_names_the_file_and_line(tmp_path, damage, error):
    """A .gz cut short gave a bare EOFError, naming neither the file nor the line."""
    fixture = (FIXTURES / "transfer" / "Toy.txt.gz").read_bytes()
    data = {
        "cut short": fixture[: len(fixture) // 2],
        "not gzip": b"plain text named .gz\n",
        "not UTF-8": gzip.compress("fine line here\ncaf\xe9 au lait\n".encode("latin-1")),
    }[damage]
    bad = tmp_path / "bad.txt.gz"
    bad.write_bytes(data)
    with pytest.raises(CorpusError, match=error):
        list(text_sentences(bad))


# ------------------------------------------------- transfer text in the workflow

TOY = ["Toy-disease-IOB", "Toy-chem-IOB"]


@pytest.fixture
def transfer_run(tmp_path, teachers, docbins):
    """A run folder with the union of two fixture corpora, their teachers, the union's
    distributions, and transfer text built from a source corpus and a user's own file."""
    from spacy_taughtnet.layout import RunLayout
    from spacy_taughtnet.workflow import (
        distill_teachers,
        prepare_corpora,
        prepare_transfer,
    )

    assets = tmp_path / "assets"
    for name in TOY:
        shutil.copytree(CORPORA / name, assets / name)
    union_sentence = next(iob_words(CORPORA / TOY[0] / "test.tsv"))
    write_tsv(assets / "transfer" / "Src-IOB" / "train.tsv", [
        "Mice given aspirin developed asthma .", " ".join(union_sentence), "Rats lacking EGFR were treated with caffeine .",
    ])
    own = tmp_path / "own.txt"
    own.write_text("Cisplatin caused renal failure in two patients.\n\nOK\n", encoding="utf8")
    root = tmp_path / "run"
    layout = RunLayout(root)
    prepare_corpora(assets, root, TOY)
    for name in TOY:
        (layout.teacher(name)).mkdir(parents=True)
        shutil.copytree(teachers[CORPUS_TYPES[name]], layout.teacher_model(name))
    distill_teachers(root, TOY, layout.distributions("train"))
    counts = prepare_transfer(root, assets, TOY, sources=["Src-IOB"], texts=[own])
    distill_teachers(root, TOY, layout.distributions("transfer"), docbin=layout.transfer_docs)
    return root, layout, counts


def test_prepare_transfer_drops_corpus_sentences(transfer_run):
    root, layout, counts = transfer_run
    # The sentence of a corpus's test split is dropped; "OK" is too short.
    assert counts == {"Src": {"sentences": 2, "tokens": 14}, "own": {"sentences": 1, "tokens": 8}}
    docs = list(DocBin().from_disk(layout.transfer_docs).get_docs(spacy.blank("en").vocab))
    assert [doc.text for doc in docs] == [
        "Mice given aspirin developed asthma . ", "Rats lacking EGFR were treated with caffeine . ",
        "Cisplatin caused renal failure in two patients . ",
    ]
    assert [doc.user_data[CORPUS_KEY] for doc in docs] == ["transfer:Src", "transfer:Src", "transfer:own"]


def test_transfer_docs_get_distributions(transfer_run):
    root, layout, _ = transfer_run
    store = TeacherDistributions(layout.distributions("transfer"))
    assert len(store) == 3 and store.labels == ["Disease", "Chemical"]
    store.check_docbin(layout.transfer_docs)
    for i in range(3):
        rows = store.doc_distributions(i)[1]  # each type's (B, I, O): no aggregation by default
        assert rows.shape[1] == 6
        numpy.testing.assert_allclose(rows.reshape(-1, 2, 3).sum(axis=2), 1.0, atol=1e-5)


def reader(layout, **args):
    config = {"corpus": {"@readers": "spacy-taughtnet.Corpus.v2", "path": str(layout.global_split("train")),
                         "distributions": str(layout.distributions("train")), **args}}
    return registry.resolve(config)["corpus"]


def test_reader_reads_transfer_beside_the_union(transfer_run):
    root, layout, _ = transfer_run
    nlp = spacy.blank("en")
    n_union = len(DocBin().from_disk(layout.global_split("train")))
    plain = list(reader(layout)(nlp))
    assert len(plain) == n_union
    args = {"transfer": str(layout.transfer_docs), "transfer_distributions": str(layout.distributions("transfer"))}
    examples = list(reader(layout, **args, labelled_repeats=2)(nlp))
    assert len(examples) == 2 * n_union + 3
    transfer = examples[-3:]
    assert [eg.reference.user_data[CORPUS_KEY] for eg in transfer] == ["transfer:Src", "transfer:Src", "transfer:own"]
    for eg in transfer:
        assert eg.get_aligned_ner() == [None] * len(eg.predicted)  # no gold: missing, not O
        assert eg.reference.user_data[TEACHER_TYPE_PROBS_KEY].shape == (len(eg.predicted), 6)
        assert TEACHER_PROBS_KEY not in eg.reference.user_data
    with pytest.raises(ConfigError, match="needs its teacher distributions"):
        reader(layout, transfer=str(layout.transfer_docs))
    with pytest.raises(DistributionsError, match="distributions for 3 docs"):
        list(reader(layout, transfer=str(layout.global_split("train")),
                    transfer_distributions=str(layout.distributions("transfer")))(nlp))


def kl_sum(teacher, scores, temperature):
    """KL(teacher || softmax(scores / temperature)) summed over the rows, in float64."""
    q = numpy.asarray(teacher, dtype="float64")
    z = numpy.asarray(scores, dtype="float64") / temperature
    log_p = z - z.max(1, keepdims=True)
    log_p -= numpy.log(numpy.exp(log_p).sum(1, keepdims=True))
    return (numpy.where(q > 0, q * numpy.log(numpy.where(q > 0, q, 1)), 0) - q * log_p).sum()


def test_loss_on_transfer_docs_is_the_soft_term_only(transfer_run):
    """A transfer doc has no gold, so get_loss gives exactly lambda * T^2 * KL on it, and a batch
    mixing labelled and transfer docs is accepted (every example has distributions)."""
    from spacy_taughtnet.workflow import distill_teachers

    root, layout, _ = transfer_run
    nlp = spacy.blank("en")
    # joint heads learn the aggregated distribution: distilled with a normaliser
    summed = {name: layout.root / "summed" / name for name in ("train", "transfer")}
    distill_teachers(root, TOY, summed["train"], normalize="sum")
    distill_teachers(root, TOY, summed["transfer"], normalize="sum", docbin=layout.transfer_docs)
    args = {"distributions": str(summed["train"]), "transfer": str(layout.transfer_docs), "transfer_distributions": str(summed["transfer"])}
    examples = list(reader(layout, **args)(nlp))
    ner = nlp.add_pipe("taughtnet_ner", config={"model": SMALL_MODEL, "loss": {
        "@losses": "spacy-taughtnet.DistillationLoss.v1", "lambda_": 0.9, "temperature": 2.0}})
    for label in ("Disease", "Chemical"):
        ner.add_label(label)
    nlp.initialize(lambda: examples[:5])
    transfer = examples[-3:]
    scores = ner.model.predict([eg.predicted for eg in transfer])
    loss, _ = ner.get_loss(transfer, scores)
    expected = sum(kl_sum(ner.strategy.targets(eg, ner.labels)[1], guess, 2.0) for eg, guess in zip(transfer, scores))
    n_tokens = sum(len(eg.predicted) for eg in transfer)
    assert loss == pytest.approx(0.9 * 4.0 * expected / n_tokens, rel=1e-5)
    mixed = examples[:2] + transfer
    loss, grads = ner.get_loss(mixed, ner.model.predict([eg.predicted for eg in mixed]))
    assert numpy.isfinite(loss) and len(grads) == 5


def test_per_type_loss_on_transfer_docs_is_the_soft_term_only(transfer_run):
    """With per-type heads, a transfer doc gives each head exactly lambda * T^2 * KL to its own
    type's teachers: no gold, so no CE term, although the doc records no type."""
    root, layout, _ = transfer_run
    nlp = spacy.blank("en")
    args = {"transfer": str(layout.transfer_docs), "transfer_distributions": str(layout.distributions("transfer"))}
    examples = list(reader(layout, **args)(nlp))
    ner = nlp.add_pipe("taughtnet_ner", config={"model": SMALL_MODEL, "heads": "per_type", "loss": {
        "@losses": "spacy-taughtnet.DistillationLoss.v1", "lambda_": 0.9, "temperature": 2.0}})
    nlp.initialize(lambda: examples[:5])
    transfer = examples[-3:]
    assert all((ner.strategy.targets(eg, ner.labels)[0] == -1).all() for eg in transfer)
    scores = ner.model.predict([eg.predicted for eg in transfer])
    loss, _ = ner.get_loss(transfer, scores)
    expected = 0.0
    n_tokens = sum(len(eg.predicted) for eg in transfer)
    for eg, guess in zip(transfer, scores):
        teacher, guess = ner.strategy.targets(eg, ner.labels)[1], numpy.asarray(guess)
        expected += sum(kl_sum(teacher[:, 5 * j : 5 * j + 5], guess[:, 5 * j : 5 * j + 5], 2.0) for j in range(len(ner.labels)))
    assert loss == pytest.approx(0.9 * 4.0 * expected / n_tokens, rel=1e-5)


def test_prepare_transfer_from_a_prebuilt_folder(tmp_path, sources):
    from spacy_taughtnet.layout import RunLayout
    from spacy_taughtnet.workflow import prepare_transfer

    pairs, exclude = sources
    build_transfer_text(pairs, exclude, tmp_path / "prebuilt")
    assets = tmp_path / "assets"
    for name in TOY:
        shutil.copytree(CORPORA / name, assets / name)
    counts = prepare_transfer(tmp_path / "run", assets, TOY, sources=["B-IOB", "A-IOB"], prebuilt=tmp_path / "prebuilt", limit=1)
    assert list(counts) == ["B", "A"]  # the sources' order
    docs = list(DocBin().from_disk(RunLayout(tmp_path / "run").transfer_docs).get_docs(spacy.blank("en").vocab))
    assert [doc.user_data[CORPUS_KEY] for doc in docs] == ["transfer:A", "transfer:B"]  # limit: 1 per file
    with pytest.raises(CorpusError, match=r"prebuilt: no C.txt.gz"):
        prepare_transfer(tmp_path / "run", assets, TOY, sources=["C-IOB"], prebuilt=tmp_path / "prebuilt")
    with pytest.raises(CorpusError, match=r"no train/devel/test TSV of transfer source 'C-IOB'"):
        prepare_transfer(tmp_path / "run", assets, TOY, sources=["C-IOB"])


def test_a_labelled_corpus_never_reaches_the_transfer_text(tmp_path):
    """The prebuilt fixture transfer_labelled/Toy.txt.gz holds 3 train and 3 test sentences of
    Toy-disease2-IOB among 20 unlabelled ones: with that corpus labelled, none of its sentences
    is transfer text, and every unlabelled sentence that no corpus holds is."""
    from spacy_taughtnet.workflow import prepare_transfer

    corpora = ["Toy-disease2-IOB", "Toy-chem-IOB"]
    assets = tmp_path / "assets"
    for name in corpora:
        shutil.copytree(CORPORA / name, assets / name)
    prebuilt = FIXTURES / "transfer_labelled"
    lines = [" ".join(words) for words in text_sentences(prebuilt / "Toy.txt.gz")]
    labelled = {" ".join(words) for name in corpora for split in ("train", "devel", "test")
                for words in iob_words(CORPORA / name / f"{split}.tsv")}
    leaked = [line for line in lines if line in labelled]
    assert len(lines) == 26 and len(leaked) >= 6
    counts = prepare_transfer(tmp_path / "run", assets, corpora, sources=["Toy"], prebuilt=prebuilt)
    kept = [doc.text.strip() for doc in DocBin().from_disk(tmp_path / "run" / "transfer" / "train.spacy").get_docs(spacy.blank("en").vocab)]
    assert kept == list(dict.fromkeys(line for line in lines if line not in labelled))
    assert counts["Toy"]["sentences"] == len(kept) and not set(kept) & labelled
