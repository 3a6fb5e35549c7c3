"""IOB TSV reading, DocBin round trip, the union, BIO tags, and bad input."""
import codecs
import warnings

import pytest
from helpers import corpus_file
from spacy.tokens import Doc

from spacy_taughtnet.corpora import (
    CORPUS_KEY,
    TYPE_KEY,
    CorpusError,
    build_union,
    doc_corpus,
    doc_entity_type,
    iob_sentences,
    iob_words,
    read_docbin,
    read_iob,
    write_docbin,
)
from spacy_taughtnet.scorer import bio_tags


def ents(doc):
    return [(e.start, e.end, e.text, e.label_) for e in doc.ents]


def test_iob_sentences_are_token_lines_between_blank_lines(tmp_path):
    """The one IOB reader (read_iob builds on it, the transfer text takes its words): line
    numbers of the file as it is, -DOCSTART- lines skipped, a BOM and CRLF line ends dropped,
    any number of columns."""
    path = tmp_path / "any.tsv"
    path.write_bytes(codecs.BOM_UTF8 + b"-DOCSTART-\tO\r\n\r\nMice\tB-Species\r\nate\tO\textra\r\n\n\n  \nrice\n")
    assert [[tuple(line) for line in sentence] for sentence in iob_sentences(path)] == [
        [(3, ["Mice", "B-Species"]), (4, ["ate", "O", "extra"])],
        [(8, ["rice"])],
    ]
    assert list(iob_words(path)) == [["Mice", "ate"], ["rice"]]


def test_docstart_lines_are_not_sentences(tmp_path, vocab):
    path = tmp_path / "docs.tsv"
    path.write_text("-DOCSTART-\tO\n\na\tB-Disease\nb\tO\n\n-DOCSTART-\tO\n\nc\tO\n", encoding="utf8")
    assert [doc.text for doc in read_iob(path, vocab)] == ["a b", "c"]


def test_read_fixture_file(vocab):
    path = corpus_file("Toy-disease-IOB")
    docs = read_iob(path, vocab)
    assert len(docs) == 40
    n_b_labels = path.read_text(encoding="utf8").count("\tB-Disease\n")
    assert sum(len(d.ents) for d in docs) == n_b_labels == 28
    assert all(e.label_ == "Disease" for d in docs for e in d.ents)
    assert [t.text for t in docs[0]] == "We studied interleukin 6 and aspirin in yeast .".split()
    assert ents(docs[0]) == []
    assert ents(docs[1]) == [(3, 5, "renal failure", "Disease")]
    assert ents(docs[2]) == [(2, 3, "asthma", "Disease")]
    assert docs[1].text == "The risk of renal failure rose when interleukin 6 was mutated ."
    # every token carries an explicit IOB value (O where not an entity, never missing)
    assert all(t.ent_iob_ in ("B", "I", "O") for d in docs for t in d)
    for doc in docs:
        assert doc_corpus(doc) == "Toy-disease-IOB"
        assert doc_entity_type(doc) == "Disease"
        assert doc.user_data[CORPUS_KEY] == "Toy-disease-IOB"
        assert doc.user_data[TYPE_KEY] == "Disease"


def test_read_corpus_name_and_limit(vocab):
    path = corpus_file("Toy-chem-IOB")
    all_docs = read_iob(path, vocab)
    docs = read_iob(path, vocab, corpus="BC5CDR-chem", limit=5)
    assert len(docs) == 5
    assert [d.text for d in docs] == [d.text for d in all_docs[:5]]
    assert [ents(d) for d in docs] == [ents(d) for d in all_docs[:5]]
    assert {doc_corpus(d) for d in docs} == {"BC5CDR-chem"}
    assert {doc_entity_type(d) for d in docs} == {"Chemical"}
    assert len(read_iob(path, vocab, limit=1000)) == 40


def test_docs_from_elsewhere_have_no_metadata(vocab):
    doc = Doc(vocab, words=["a"])
    assert doc_entity_type(doc) is None and doc_corpus(doc) is None


def test_crlf_and_no_trailing_blank_line(tmp_path, vocab):
    path = tmp_path / "crlf.tsv"
    path.write_bytes(b"a\tB-Disease\r\nb\tI-Disease\r\nc\tO\r\n\r\nd\tO\r\ne\tB-Disease")
    docs = read_iob(path, vocab)
    assert [[t.text for t in d] for d in docs] == [["a", "b", "c"], ["d", "e"]]
    assert [ents(d) for d in docs] == [[(0, 2, "a b", "Disease")], [(1, 2, "e", "Disease")]]


def test_utf8_bom_is_not_part_of_the_first_token(tmp_path, vocab):
    path = tmp_path / "bom.tsv"
    path.write_bytes(b"\xef\xbb\xbfaspirin\tB-Chemical\nworks\tO\n")
    (doc,) = read_iob(path, vocab)
    assert [t.text for t in doc] == ["aspirin", "works"]
    assert ents(doc) == [(0, 1, "aspirin", "Chemical")]


def test_no_entity_in_the_sentences_read_names_the_limit(vocab):
    # the first two sentences of the fixture have no Chemical entity
    with pytest.raises(CorpusError) as err:
        read_iob(corpus_file("Toy-chem-IOB"), vocab, limit=2)
    assert "no B-/I- label in the first 2 sentences" in str(err.value) and "--limit" in str(err.value)
    assert doc_entity_type(read_iob(corpus_file("Toy-chem-IOB"), vocab, limit=2, entity_type="Chemical")[0]) == "Chemical"


def test_no_entity_needs_entity_type(tmp_path, vocab):
    path = tmp_path / "plain.tsv"
    path.write_text("a\tO\nb\tO\n", encoding="utf8")
    with pytest.raises(CorpusError, match="entity_type") as err:
        read_iob(path, vocab)
    assert "plain.tsv" in str(err.value)
    (doc,) = read_iob(path, vocab, entity_type="Disease")
    assert doc_entity_type(doc) == "Disease" and ents(doc) == []


def test_docbin_round_trip_keeps_user_data(tmp_path, vocab):
    docs = read_iob(corpus_file("Toy-gene-IOB"), vocab, limit=7)
    out = tmp_path / "sub" / "gene.spacy"
    assert write_docbin(docs, out) == 7
    assert out.is_file()
    back = read_docbin(out, vocab)
    assert [d.text for d in back] == [d.text for d in docs]
    assert [ents(d) for d in back] == [ents(d) for d in docs]
    assert [(doc_corpus(d), doc_entity_type(d)) for d in back] == [("Toy-gene-IOB", "GENE")] * 7
    assert [f.name for f in out.parent.iterdir()] == ["gene.spacy"]


def test_read_docbin_errors(tmp_path, vocab):
    with pytest.raises(CorpusError, match="not found") as err:
        read_docbin(tmp_path / "missing.spacy", vocab)
    assert "missing.spacy" in str(err.value)
    write_docbin([], tmp_path / "empty.spacy")
    with pytest.raises(CorpusError, match="no docs") as err:
        read_docbin(tmp_path / "empty.spacy", vocab)
    assert "empty.spacy" in str(err.value)


def test_write_docbin_leaves_nothing_when_the_docs_fail(tmp_path, vocab):
    docs = read_iob(corpus_file("Toy-gene-IOB"), vocab, limit=3)
    folder = tmp_path / "out"
    folder.mkdir()

    def failing():
        yield docs[0]
        yield docs[1]
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        write_docbin(failing(), folder / "train.spacy")
    assert list(folder.iterdir()) == []


def test_write_docbin_failure_keeps_previous_file(tmp_path, vocab):
    docs = read_iob(corpus_file("Toy-gene-IOB"), vocab, limit=3)
    target = tmp_path / "train.spacy"
    write_docbin(docs, target)
    before = target.read_bytes()

    def failing():
        yield docs[0]
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_docbin(failing(), target)
    assert target.read_bytes() == before
    assert [f.name for f in tmp_path.iterdir()] == ["train.spacy"]


def test_build_union_order_and_types(tmp_path, vocab):
    paths = []
    for corpus in ("Toy-species-IOB", "Toy-disease-IOB", "Toy-chem-IOB"):
        path = tmp_path / f"{corpus}.spacy"
        write_docbin(read_iob(corpus_file(corpus), vocab, limit=4), path)
        paths.append(path)
    docs, types = build_union(paths, vocab)
    assert types == ["Species", "Disease", "Chemical"]
    assert len(docs) == 12
    assert [doc_entity_type(d) for d in docs] == ["Species"] * 4 + ["Disease"] * 4 + ["Chemical"] * 4
    assert [doc_corpus(d) for d in docs][::4] == ["Toy-species-IOB", "Toy-disease-IOB", "Toy-chem-IOB"]


def test_build_union_takes_several_corpora_of_one_type(tmp_path, vocab):
    """Two Disease corpora give one Disease type (at its first corpus's place); each doc keeps
    its corpus. One corpus given twice is refused, naming the second file."""
    paths = []
    for corpus in ("Toy-disease-IOB", "Toy-chem-IOB", "Toy-disease2-IOB"):
        paths.append(tmp_path / f"{corpus}.spacy")
        write_docbin(read_iob(corpus_file(corpus), vocab, limit=6, corpus=corpus), paths[-1])
    docs, types = build_union(paths, vocab)
    assert types == ["Disease", "Chemical"]
    assert [(doc_corpus(d), doc_entity_type(d)) for d in docs][::6] == [
        ("Toy-disease-IOB", "Disease"), ("Toy-chem-IOB", "Chemical"), ("Toy-disease2-IOB", "Disease")]
    with pytest.raises(CorpusError, match="corpus 'Toy-disease-IOB' is already in the union") as err:
        (tmp_path / "again.spacy").write_bytes(paths[0].read_bytes())
        build_union([paths[0], paths[1], tmp_path / "again.spacy"], vocab)
    assert "again.spacy" in str(err.value)


def test_build_union_refuses_untyped_docbin(tmp_path, vocab):
    path = tmp_path / "plain.spacy"
    write_docbin([Doc(vocab, words=["a", "b"])], path)
    with pytest.raises(CorpusError, match="plain.spacy"):
        build_union([path], vocab)


def test_bio_tags_of_read_docs_match_the_file(vocab):
    path = corpus_file("Toy-species-IOB")
    docs = read_iob(path, vocab)
    labels = [line.split("\t")[1] for line in path.read_text(encoding="utf8").splitlines() if line.strip()]
    assert [tag for d in docs for tag in bio_tags(d)] == labels


# ---------------------------------------------------------------- bad input


def write(tmp_path, text, name="bad.tsv"):
    path = tmp_path / name
    path.write_bytes(text.encode("utf8") if isinstance(text, str) else text)
    return path


def read_error(path, vocab, **kwargs) -> str:
    with pytest.raises(CorpusError) as err:
        read_iob(path, vocab, **kwargs)
    return str(err.value)


@pytest.mark.parametrize(
    "line",
    ["fever\tB-Disease\textra", "fever", "\tO", "fever\tO\t"],
    ids=["3-columns", "1-column", "empty-token", "trailing-tab"],
)
def test_bad_column_count(tmp_path, vocab, line):
    path = write(tmp_path, f"a\tO\nb\tO\n{line}\nc\tO\n")
    message = read_error(path, vocab)
    assert "bad.tsv:3" in message
    assert "column" in message


@pytest.mark.parametrize("label", ["X-Disease", "B-", "I-", "B", "b-Disease", "Disease", ""])
def test_unknown_label(tmp_path, vocab, label):
    path = write(tmp_path, f"a\tO\n\nb\t{label}\n")
    message = read_error(path, vocab)
    assert "bad.tsv:3" in message
    assert "unknown label" in message and repr(label) in message


def test_i_after_o_is_an_error_by_default(tmp_path, vocab):
    path = write(tmp_path, "a\tO\nb\tO\nc\tI-Disease\nd\tI-Disease\ne\tO\n")
    message = read_error(path, vocab)
    assert "bad.tsv:3" in message
    assert "'I-Disease' follows O" in message


def test_i_at_sentence_start_is_an_error(tmp_path, vocab):
    path = write(tmp_path, "a\tB-Disease\n\nc\tI-Disease\n")
    assert "bad.tsv:3" in read_error(path, vocab)


def test_i_after_o_with_repair_warns_and_reads_b(tmp_path, vocab):
    path = write(tmp_path, "a\tO\nb\tO\nc\tI-Disease\nd\tI-Disease\ne\tO\n\nf\tI-Disease\n")
    with pytest.warns(UserWarning) as record:
        docs = read_iob(path, vocab, repair=True)
    messages = [str(w.message) for w in record]
    assert len(messages) == 2
    assert "bad.tsv:3" in messages[0] and "read as B-Disease" in messages[0]
    assert "bad.tsv:7" in messages[1]
    assert ents(docs[0]) == [(2, 4, "c d", "Disease")]
    assert ents(docs[1]) == [(0, 1, "f", "Disease")]


def test_valid_file_reads_without_warnings(tmp_path, vocab):
    path = write(tmp_path, "a\tB-Disease\nb\tI-Disease\nc\tB-Disease\n", name="good.tsv")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        (doc,) = read_iob(path, vocab, repair=True)
    assert ents(doc) == [(0, 2, "a b", "Disease"), (2, 3, "c", "Disease")]


def test_i_after_another_types_entity(tmp_path, vocab):
    path = write(tmp_path, "a\tO\nb\tB-Disease\nc\tI-Chemical\n")
    message = read_error(path, vocab)
    assert "bad.tsv:3" in message
    # also refused when the type is given and the I- label is of the given type after another type
    path2 = write(tmp_path, "a\tO\nb\tB-Chemical\nc\tI-Disease\n", name="bad2.tsv")
    assert "bad2.tsv:2" in read_error(path2, vocab, entity_type="Disease")


def test_two_entity_types_in_one_file(tmp_path, vocab):
    path = write(tmp_path, "a\tB-Disease\nb\tO\n\nc\tO\nd\tB-Chemical\n")
    message = read_error(path, vocab)
    assert "bad.tsv:5" in message
    assert "'Chemical'" in message and "'Disease'" in message and "line 1" in message


def test_label_of_other_type_than_entity_type_argument(tmp_path, vocab):
    path = write(tmp_path, "a\tO\nb\tO\nc\tB-Chemical\n")
    message = read_error(path, vocab, entity_type="Disease")
    assert "bad.tsv:3" in message and "entity_type argument" in message


@pytest.mark.parametrize("content", [b"", b"\n\n\n", b"  \n\t\n \n"], ids=["empty", "blank-lines", "whitespace"])
def test_empty_files(tmp_path, vocab, content):
    path = write(tmp_path, content)
    message = read_error(path, vocab, entity_type="Disease")
    assert "bad.tsv" in message and "empty" in message


def test_non_utf8_file(tmp_path, vocab):
    path = write(tmp_path, b"a\tO\nb\tO\nc\xff\tO\n")
    message = read_error(path, vocab)
    assert "bad.tsv:3" in message and "UTF-8" in message
    with pytest.raises(CorpusError, match="bad.tsv:3: not valid UTF-8"):
        list(iob_words(path))


def test_both_readers_name_an_empty_token(tmp_path, vocab):
    path = write(tmp_path, "a\tO\n \tO\n")
    assert "bad.tsv:2: empty token" in read_error(path, vocab)
    with pytest.raises(CorpusError, match="bad.tsv:2: empty token"):
        list(iob_words(path))


def test_missing_file(tmp_path, vocab):
    message = read_error(tmp_path / "nope.tsv", vocab)
    assert "nope.tsv" in message and "not found" in message
    # a folder is not a corpus file either
    assert "not found" in read_error(tmp_path, vocab)
