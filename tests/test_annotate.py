"""The `annotate` and `render` commands: formats, offsets, resuming, multiprocessing,
hostile input, displaCy colours."""
import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, List

import pytest
import spacy
from helpers import SAMPLES, cli, joined, write_input

from spacy_taughtnet.annotate import annotate_records, chunk_text
from spacy_taughtnet.annotate import resume as annotate_resume
from spacy_taughtnet.annotate import runner as annotate_runner
from spacy_taughtnet.digests import pipeline_digest
from spacy_taughtnet.displacy import COLORS, FALLBACK_PALETTE, color_for
from spacy_taughtnet.errors import AnnotateError, BadRecordError
from spacy_taughtnet.formats import Record, detect_format, read_records, scan_output

LABELS = {"Disease", "Chemical", "GENE", "Species"}
TEXTS = [joined(t, a) for t, a in SAMPLES]
IDS = {"text": [str(i) for i in range(1, len(SAMPLES) + 1)], "jsonl": [f"doc-{i}" for i in range(len(SAMPLES))],
       "pubtator": [str(1000 + i) for i in range(len(SAMPLES))]}
EXTENSIONS = {"text": ".txt", "jsonl": ".jsonl", "pubtator": ".pubtator"}


@pytest.fixture(scope="module")
def nlp(model_path):
    return spacy.load(model_path)


def read_output(path: Path, fmt: str) -> List[Dict]:
    """Parse an output file independently of the module under test."""
    data = path.read_bytes().decode("utf8")
    if fmt == "jsonl":
        assert data == "" or data.endswith("\n")
        return [json.loads(line) for line in data.split("\n") if line]
    docs = []
    assert data == "" or data.endswith("\n\n")
    for block in data.split("\n\n")[:-1]:
        lines = block.split("\n")
        pmid, kind, title = lines[0].split("|", 2)
        pmid_a, kind_a, abstract = lines[1].split("|", 2)
        assert (kind, kind_a, pmid_a) == ("t", "a", pmid)
        entities = []
        for line in lines[2:]:
            p, start, end, mention, label = line.split("\t")
            assert p == pmid
            entities.append({"start": int(start), "end": int(end), "text": mention, "label": label})
        docs.append({"id": pmid, "text": joined(title, abstract), "entities": entities})
    return docs


def spans(doc: Dict) -> List[tuple]:
    return [(e["start"], e["end"], e["label"]) for e in doc["entities"]]


def assert_same(docs_a: List[Dict], docs_b: List[Dict]) -> None:
    """Same documents and entities; confidences equal up to float noise of batching."""
    assert [d["id"] for d in docs_a] == [d["id"] for d in docs_b]
    for a, b in zip(docs_a, docs_b):
        assert a.get("text") == b.get("text")
        assert spans(a) == spans(b)
        for ea, eb in zip(a["entities"], b["entities"]):
            if "confidence" in ea:
                assert ea["confidence"] == pytest.approx(eb["confidence"], abs=1e-3)


# ----------------------------------------------------------------------------- formats


@pytest.mark.parametrize("out_fmt", ["jsonl", "pubtator"])
@pytest.mark.parametrize("in_fmt", ["text", "jsonl", "pubtator"])
def test_round_trip(tmp_path, model_path, nlp, in_fmt, out_fmt):
    src = write_input(tmp_path / f"in{EXTENSIONS[in_fmt]}", in_fmt)
    out = tmp_path / f"out{EXTENSIONS[out_fmt]}"
    result = cli("annotate", model_path, src, out, "--no-progress")
    assert result.exit_code == 0, result.output
    docs = read_output(out, out_fmt)
    assert [str(d["id"]) for d in docs] == [str(i) for i in IDS[in_fmt]]
    n_entities = 0
    for doc, text in zip(docs, TEXTS):
        shown = text.replace("\n", " ").replace("\r", " ") if out_fmt == "pubtator" else text
        assert doc["text"] == shown
        expected = [(e.start_char, e.end_char, e.label_) for e in nlp(text).ents] if text.strip() else []
        assert spans(doc) == expected
        for ent in doc["entities"]:
            assert doc["text"][ent["start"]:ent["end"]] == ent["text"]
            assert ent["label"] in LABELS
            if out_fmt == "jsonl":
                assert 0.0 < ent["confidence"] <= 1.0
            n_entities += 1
    assert n_entities >= 5
    if out_fmt == "pubtator":  # our PubTator output is PubTator input again
        again = list(read_records(out, "pubtator"))
        assert [r.text for r in again] == TEXTS
        assert [r.id for r in again] == [str(i) for i in IDS[in_fmt]]


def test_jsonl_without_text(tmp_path, model_path):
    out = tmp_path / "out.jsonl"
    result = cli("annotate", model_path, write_input(tmp_path / "in.txt", "text"), out, "--no-text", "--no-progress")
    assert result.exit_code == 0, result.output
    docs = read_output(out, "jsonl")
    assert [d["id"] for d in docs] == IDS["text"] and all("text" not in d for d in docs)


def test_format_detection(tmp_path):
    assert detect_format("a/CDR_TrainingSet.PubTator.txt", None) == "pubtator"
    assert detect_format("x.TXT", None) == "text"
    assert detect_format("x.data", "jsonl") == "jsonl"
    with pytest.raises(AnnotateError, match="--input-format"):
        detect_format("x.csv", None)
    with pytest.raises(AnnotateError, match="--output-format"):
        detect_format("x.txt", None, output=True)


def test_pubtator_input_tolerates_annotations_and_missing_blank_lines(tmp_path):
    src = tmp_path / "in.pubtator"
    src.write_text(
        "1|t|Aspirin in mice\n1|a|Some abstract .\n1\t0\t7\tAspirin\tChemical\tD001241\n1\tCID\tD1\tD2\n"
        "2|t|Only a title\n\n\n3|t|T\n3|a|\n",
        encoding="utf8",
    )
    records = list(read_records(src, "pubtator"))
    assert [(r.id, r.text) for r in records] == [("1", "Aspirin in mice Some abstract ."), ("2", "Only a title"), ("3", "T")]


# ----------------------------------------------------------------------------- resuming


@pytest.mark.slow
@pytest.mark.parametrize("out_fmt", ["jsonl", "pubtator"])
def test_resume_after_truncation(tmp_path, model_path, out_fmt):
    samples = [(f"Cisplatin induced renal failure in mice number {i} .", "BRCA1 in rats with diabetes .") for i in range(12)]
    src = write_input(tmp_path / "in.jsonl", "jsonl", samples)
    clean = tmp_path / f"clean{EXTENSIONS[out_fmt]}"
    assert cli("annotate", model_path, src, clean, "--no-progress", "--batch-size", 3).exit_code == 0
    full = clean.read_bytes()
    terminator = b"\n" if out_fmt == "jsonl" else b"\n\n"
    first_end = full.index(terminator) + len(terminator)
    cuts = [first_end + 7, first_end, len(full) // 2, len(full) - 1, 1]
    for cut in cuts:
        out = tmp_path / f"cut{cut}{EXTENSIONS[out_fmt]}"
        out.write_bytes(full[:cut])
        shutil.copy(f"{clean}.manifest.json", f"{out}.manifest.json")
        result = cli("annotate", model_path, src, out, "--no-progress", "--batch-size", 3)
        assert result.exit_code == 0, result.output
        docs = read_output(out, out_fmt)
        assert [d["id"] for d in docs] == [f"doc-{i}" for i in range(12)]  # no loss, no duplicate
        assert_same(docs, read_output(clean, out_fmt))
        partial = not full[:cut].endswith(terminator)
        assert ("Removed a partial record" in result.stderr) == partial
    # A complete output: a rerun writes nothing and changes nothing.
    result = cli("annotate", model_path, src, clean, "--no-progress")
    assert result.exit_code == 0 and "0 docs written, 12 already there" in result.stderr
    assert clean.read_bytes() == full


def test_resume_after_crash_while_writing(tmp_path, model_path, monkeypatch):
    """A run killed in the middle of writing a record: the rerun completes the output."""
    samples = [(f"Tamoxifen blocked EGFR in zebrafish {i} .", "") for i in range(10)]
    src = write_input(tmp_path / "in.txt", "text", samples)
    clean, out = tmp_path / "clean.jsonl", tmp_path / "out.jsonl"
    assert cli("annotate", model_path, src, clean, "--no-progress").exit_code == 0
    real_format = annotate_runner.format_record
    calls = []

    def crashing_format(*args, **kwargs):
        calls.append(1)
        data = real_format(*args, **kwargs)
        if len(calls) == 5:
            return data[: len(data) // 2]  # the process dies halfway through this record
        if len(calls) == 6:
            raise SystemExit("killed")
        return data

    monkeypatch.setattr(annotate_runner, "format_record", crashing_format)
    cli("annotate", model_path, src, out, "--no-progress")
    assert len(read_output_lines(out)) == 4
    monkeypatch.setattr(annotate_runner, "format_record", real_format)
    result = cli("annotate", model_path, src, out, "--no-progress")
    assert result.exit_code == 0, result.output
    assert "Resuming: 4 of 10" in result.stderr
    assert_same(read_output(out, "jsonl"), read_output(clean, "jsonl"))


def read_output_lines(path: Path) -> List[bytes]:
    return [line for line in path.read_bytes().split(b"\n")[:-1]]


def test_resume_refuses_another_input(tmp_path, model_path):
    out = tmp_path / "out.jsonl"
    first = write_input(tmp_path / "a.jsonl", "jsonl", [("Aspirin in mice .", ""), ("BRCA1 .", "")])
    assert cli("annotate", model_path, first, out, "--no-progress").exit_code == 0
    other = write_input(tmp_path / "b.jsonl", "jsonl", [("Something else .", ""), ("BRCA1 .", "")])
    result = cli("annotate", model_path, other, out, "--no-progress")
    assert result.exit_code == 1
    assert f"{other}: records 1-2 (from line 1) differ" in result.stderr and "--overwrite" in result.stderr
    shorter = write_input(tmp_path / "c.jsonl", "jsonl", [("Aspirin in mice .", "")])
    result = cli("annotate", model_path, shorter, out, "--no-progress")
    assert result.exit_code == 1 and f"{shorter}: records 1-1 (from line 1) differ" in result.stderr
    result = cli("annotate", model_path, other, out, "--no-progress", "--overwrite")
    assert result.exit_code == 0
    assert [d["text"] for d in read_output(out, "jsonl")] == ["Something else .", "BRCA1 ."]


def test_resume_refuses_a_corrupt_output(tmp_path, model_path):
    """An output whose manifest matches this run, but whose records are not its records."""
    src = write_input(tmp_path / "in.txt", "text")
    out = tmp_path / "out.jsonl"
    interrupted_run(model_path, src, out, keep=3)
    lines = out.read_bytes().splitlines(keepends=True)
    out.write_bytes(lines[0] + b"not json\n" + lines[2])
    result = cli("annotate", model_path, src, out, "--no-progress")
    assert result.exit_code == 1 and f"{out}:2: the existing output is not a jsonl file" in result.stderr
    out.write_bytes(lines[0] + lines[2])  # a record lost from the middle
    result = cli("annotate", model_path, src, out, "--no-progress")
    assert result.exit_code == 1 and f"{out}:2: the existing output does not continue the input" in result.stderr


def test_scan_output_reads_pubtator_as_annotate_writes_it(tmp_path):
    """PubTator's one parser, strict on annotate's own output: each whole document with where
    it ends, a trailing partial one left out, and a document not as format_record writes it
    refused at its line."""
    out = tmp_path / "out.pubtator"
    first = "1|t|Aspirin .\n1|a|\n1\t0\t7\tAspirin\tChemical\n\n"
    second = "2|t|BRCA1\n2|a|in mice\n\n"
    out.write_text(first + second + "3|t|cut", encoding="utf8")
    scanned = [(done.id, done.text, done.line, end) for done, end in scan_output(out, "pubtator")]
    assert scanned == [("1", "Aspirin .", 1, len(first)), ("2", "BRCA1 in mice", 5, len(first + second))]
    for content, line, reason in [
        ("1|t|Aspirin .\n1\t0\t7\tAspirin\tChemical\n1|a|\n\n", 2, "an annotation line before the abstract line of PMID 1"),
        ("1|t|Aspirin .\n1|a|\n2|t|BRCA1\n2|a|\n\n", 3, "no blank line before the title line of PMID 2"),
        ("1|t|Aspirin .\n1|a|\n\n\n", 4, "a blank line outside a document"),
        ("1|t|Aspirin .\n\n", 2, "the document of PMID 1 has no abstract line"),
    ]:
        out.write_text(content, encoding="utf8")
        with pytest.raises(AnnotateError) as err:
            list(scan_output(out, "pubtator"))
        assert str(err.value).startswith(f"{out}:{line}: the existing output is not a pubtator file written by annotate ({reason}")


# ----------------------------------------------------------------------------- INPUT: a folder or a glob of shards


def write_shards(folder: Path, fmt: str, sizes=(3, 1, 2)) -> List[Path]:
    """SAMPLES in files of `sizes` documents, named so that sorted order is their order, and
    their concatenation as all.<ext> beside the folder. JSONL documents have no id of their own."""
    if fmt == "text":
        docs = [joined(t, a) + "\n" for t, a in SAMPLES]
    elif fmt == "jsonl":
        docs = [json.dumps({"text": joined(t, a)}) + "\n" for t, a in SAMPLES]
    else:
        docs = [f"{1000 + i}|t|{t}\n{1000 + i}|a|{a}\n\n" for i, (t, a) in enumerate(SAMPLES)]
    folder.mkdir(parents=True, exist_ok=True)
    (folder.parent / f"all{EXTENSIONS[fmt]}").write_text("".join(docs), encoding="utf8")
    paths, start = [], 0
    for i, size in enumerate(sizes):
        paths.append(folder / f"shard-{i:02d}{EXTENSIONS[fmt]}")
        paths[-1].write_text("".join(docs[start:start + size]), encoding="utf8")
        start += size
    return paths


@pytest.mark.slow
@pytest.mark.parametrize("in_fmt", ["text", "jsonl", "pubtator"])
def test_folder_and_glob_read_as_their_concatenation(tmp_path, model_path, in_fmt):
    """Ids that are line numbers go on from one file to the next, as in the concatenation."""
    ext = EXTENSIONS[in_fmt]
    write_shards(tmp_path / "shards", in_fmt)
    (tmp_path / "shards" / "notes.md").write_text("not an input file")
    (tmp_path / "shards" / f".hidden{ext}").write_text("not read either")
    expected = tmp_path / "all.out.jsonl"
    assert cli("annotate", model_path, tmp_path / f"all{ext}", expected, "--no-progress").exit_code == 0
    ids = [d["id"] for d in read_output(expected, "jsonl")]
    assert ids == ([str(i) for i in IDS["pubtator"]] if in_fmt == "pubtator" else IDS["text"])
    for given in (tmp_path / "shards", f"{tmp_path}/shards/shard-*{ext}"):
        out = tmp_path / "out.jsonl"
        result = cli("annotate", model_path, given, out, "--no-progress", "--overwrite")
        assert result.exit_code == 0, result.output
        assert f"{len(SAMPLES)} docs written" in result.stderr
        assert out.read_bytes() == expected.read_bytes()
        manifest = json.loads((tmp_path / "out.jsonl.manifest.json").read_text())
        assert manifest["input"]["path"] == str(given)
        assert manifest["input"]["files"] == [{"name": f"shard-{i:02d}{ext}", "records": n} for i, n in enumerate((3, 1, 2))]
        assert manifest["input"]["blocks"] == json.loads((tmp_path / "all.out.jsonl.manifest.json").read_text())["input"]["blocks"]


def test_bad_line_in_a_shard_names_its_file(tmp_path, model_path):
    paths = write_shards(tmp_path / "shards", "jsonl")
    paths[1].write_text('{"text": "fine"}\nnot json\n')
    result = cli("annotate", model_path, tmp_path / "shards", tmp_path / "out.jsonl", "--no-progress")
    assert result.exit_code == 1 and f"{paths[1]}:2: invalid JSON" in result.stderr
    assert not (tmp_path / "out.jsonl").exists()
    result = cli("annotate", model_path, tmp_path / "shards", tmp_path / "out.jsonl", "--no-progress", "--skip-bad")
    assert result.exit_code == 0, result.output
    # line 2 of shard-01 is line 5 of the concatenation: the ids after it keep their place
    assert [d["id"] for d in read_output(tmp_path / "out.jsonl", "jsonl")] == ["1", "2", "3", "4", "6", "7"]


def test_input_folder_and_glob_errors(tmp_path, model_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.md").write_text("no input here")
    result = cli("annotate", model_path, tmp_path / "empty", tmp_path / "out.jsonl")
    assert result.exit_code == 1
    assert f"Error: {tmp_path / 'empty'}: no input file in this folder (none ends in" in result.stderr
    pattern = f"{tmp_path}/pubmed*.xml.gz"
    result = cli("annotate", model_path, pattern, tmp_path / "out.jsonl")
    assert result.exit_code == 1 and f"Error: {pattern}: no input file matches this pattern" in result.stderr
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    write_input(mixed / "a.jsonl", "jsonl")
    write_input(mixed / "b.txt", "text")
    result = cli("annotate", model_path, mixed, tmp_path / "out.jsonl")
    assert result.exit_code == 1 and f"{mixed}: holds files of two formats (a.jsonl: jsonl, b.txt: text)" in result.stderr
    # An output that a rerun would read as input: in the input folder, or matched by the pattern.
    for given in (mixed, f"{mixed}/*"):
        result = cli("annotate", model_path, given, mixed / "out.jsonl", "--input-format", "text")
        assert result.exit_code == 1 and "so a rerun would read it as input" in result.stderr, result.output
    assert sorted(p.name for p in mixed.iterdir()) == ["a.jsonl", "b.txt"]
    assert not (tmp_path / "out.jsonl").exists()


@pytest.mark.slow
def test_resume_refuses_another_list_of_files(tmp_path, model_path):
    paths = write_shards(tmp_path / "shards", "text")
    out = tmp_path / "out.jsonl"
    full = interrupted_run(model_path, tmp_path / "shards", out, keep=2)
    cut = out.read_bytes()
    extra = write_input(tmp_path / "shards" / "shard-03.txt", "text", SAMPLES[:1])
    result = cli("annotate", model_path, tmp_path / "shards", out, "--no-progress")
    assert result.exit_code == 1
    assert f"{tmp_path / 'shards'} names 4 files, the input of the run being resumed 3; new: shard-03.txt" in result.stderr
    extra.unlink()
    paths[0].rename(tmp_path / "shards" / "shard-00b.txt")
    result = cli("annotate", model_path, tmp_path / "shards", out, "--no-progress")
    assert result.exit_code == 1 and "not there now: shard-00.txt; new: shard-00b.txt" in result.stderr
    (tmp_path / "shards" / "shard-00b.txt").rename(paths[0])
    write_input(paths[1], "text", SAMPLES[3:5])  # a line moved from shard-02 to shard-01
    write_input(paths[2], "text", SAMPLES[5:])
    result = cli("annotate", model_path, tmp_path / "shards", out, "--no-progress")
    assert result.exit_code == 1 and f"shard-01.txt of {tmp_path / 'shards'} has 2 records, 1 in the input" in result.stderr
    result = cli("annotate", model_path, tmp_path / "all.txt", out, "--no-progress")  # one file now
    assert result.exit_code == 1 and f"this run reads the file {tmp_path / 'all.txt'}, the run being resumed read the 3 files" in result.stderr
    assert "--overwrite" in result.stderr and out.read_bytes() == cut
    write_input(paths[1], "text", SAMPLES[3:4])
    write_input(paths[2], "text", SAMPLES[4:])
    result = cli("annotate", model_path, f"{tmp_path}/shards/*.txt", out, "--no-progress")  # the same files, by a pattern
    assert result.exit_code == 0 and "Resuming: 2 of 6" in result.stderr, result.output
    assert out.read_bytes() == full


# ----------------------------------------------------------------------------- multiprocessing


def test_n_process_2_same_as_1(tmp_path, model_path):
    samples = [SAMPLES[i % len(SAMPLES)] for i in range(40)]
    src = write_input(tmp_path / "in.jsonl", "jsonl", samples)
    one, two = tmp_path / "one.jsonl", tmp_path / "two.jsonl"
    assert cli("annotate", model_path, src, one, "--no-progress", "--batch-size", 4).exit_code == 0
    result = cli("annotate", model_path, src, two, "--no-progress", "--batch-size", 4, "--n-process", 2)
    assert result.exit_code == 0, result.output
    docs_one, docs_two = read_output(one, "jsonl"), read_output(two, "jsonl")
    assert len(docs_one) == 40
    assert_same(docs_one, docs_two)
    assert all(e["confidence"] is not None for d in docs_two for e in d["entities"])


# ----------------------------------------------------------------------------- hostile input


def test_empty_and_whitespace_documents(tmp_path, model_path):
    src = tmp_path / "in.txt"
    src.write_text("\n   \n\t\nAspirin in mice .\n\n", encoding="utf8")
    out = tmp_path / "out.jsonl"
    assert cli("annotate", model_path, src, out, "--no-progress").exit_code == 0
    docs = read_output(out, "jsonl")
    assert [(d["id"], d["text"]) for d in docs] == [("1", ""), ("2", "   "), ("3", "\t"), ("4", "Aspirin in mice ."), ("5", "")]
    assert all(d["entities"] == [] for d in docs if not d["text"].strip())
    empty = tmp_path / "empty.jsonl"
    empty.write_text("", encoding="utf8")
    result = cli("annotate", model_path, empty, tmp_path / "none.pubtator", "--no-progress")
    assert result.exit_code == 0 and (tmp_path / "none.pubtator").read_text() == ""


@pytest.mark.slow
def test_million_character_document(tmp_path, model_path):
    rng = random.Random(0)
    words = "Patients with diabetes received cisplatin in mice and BRCA1 was mutated in rats .".split()
    parts, length = [], 0
    while length < 1_000_000:
        parts.append(rng.choice(words))
        length += len(parts[-1]) + 1
    text = " ".join(parts)[:1_000_000]
    assert len(text) == 1_000_000
    src = tmp_path / "big.jsonl"
    src.write_text(json.dumps({"id": "big", "text": text}) + "\n", encoding="utf8")
    out = tmp_path / "out.jsonl"
    result = cli("annotate", model_path, src, out, "--no-progress")
    assert result.exit_code == 0, result.output
    (doc,) = read_output(out, "jsonl")
    assert doc["text"] == text and len(doc["entities"]) > 1000
    assert all(text[e["start"]:e["end"]] == e["text"] for e in doc["entities"])
    assert all(a["end"] <= b["start"] for a, b in zip(doc["entities"], doc["entities"][1:]))


class _SpyPipeline:
    """Passes pipe() through to a pipeline, recording the longest text it was given."""

    def __init__(self, nlp, max_length):
        self.nlp, self.max_length, self.longest = nlp, max_length, 0

    def pipe(self, texts, **kwargs):
        def spy():
            for text in texts:
                self.longest = max(self.longest, len(text))
                yield text

        return self.nlp.pipe(spy(), **kwargs)


def test_long_documents_are_annotated_in_bounded_pieces(nlp):
    text = "Aspirin induced asthma in mice . " * 3000 + "x" * 12000 + " BRCA1 in rats ."
    spy = _SpyPipeline(nlp, max_length=4000)  # chunk_chars is capped at nlp.max_length
    ((record, entities, _),) = list(annotate_records(spy, [Record(id=1, text=text, line=1)], chunk_chars=50000))
    assert 0 < spy.longest <= 4000
    assert entities and all(text[e["start"]:e["end"]] == e["text"] for e in entities)


def test_chunk_text():
    text = "First line .\nA sentence . Another one ! " + "word " * 50 + "x" * 300
    for max_chars in (1, 7, 40, 100, 1000):
        pieces = list(chunk_text(text, max_chars))
        assert "".join(p for _, p in pieces) == text
        assert all(len(p) <= max_chars for _, p in pieces)
        assert all(text[off:off + len(p)] == p for off, p in pieces)
    assert list(chunk_text("", 10)) == [(0, "")]
    assert list(chunk_text("short", 10)) == [(0, "short")]
    # A line break in the second half of the window first ...
    assert next(chunk_text("a" * 30 + "\nb c. d e " + "f " * 20, 40)) == (0, "a" * 30 + "\n")
    # ... then a sentence end, then whitespace, and a hard cut only without whitespace.
    pieces = [p for _, p in chunk_text("word " * 4 + "End. " + "longer" * 4 + " " + "x" * 70, 30)]
    assert pieces == ["word word word word End. ", "longer" * 4 + " ", "x" * 30, "x" * 30, "x" * 10]


def test_control_characters_and_emoji(tmp_path, model_path):
    text = "Aspirin\x00 in \x1b[1mmice\x1b[0m \u2028 with\r diabetes\x85 😀👩\u200d👩\u200d👧 e\u0301 \ud83d\ude00\tBRCA1\x0b\x0c ."
    src = tmp_path / "in.jsonl"
    src.write_text(json.dumps({"id": "x", "text": text}) + "\n" + json.dumps({"id": "y", "text": "\x00\x01\x02"}) + "\n", encoding="utf8")
    for out_fmt in ("jsonl", "pubtator"):
        out = tmp_path / f"out{EXTENSIONS[out_fmt]}"
        result = cli("annotate", model_path, src, out, "--no-progress")
        assert result.exit_code == 0, result.output
        docs = read_output(out, out_fmt)
        assert [d["id"] for d in docs] == ["x", "y"]
        assert docs[0]["entities"]  # the check below is not vacuous
        for doc in docs:
            for ent in doc["entities"]:
                mention = doc["text"][ent["start"]:ent["end"]]
                assert mention == ent["text"] or mention.replace("\t", " ") == ent["text"]


def test_unpaired_surrogate_is_a_bad_line(tmp_path, model_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": 1, "text": "ok"}\n{"id": 2, "text": "bad \\ud800 half"}\n', encoding="utf8")
    result = cli("annotate", model_path, src, tmp_path / "out.jsonl", "--no-progress")
    assert result.exit_code == 1 and f"{src}:2:" in result.stderr and "surrogate" in result.stderr


def test_non_utf8_input(tmp_path, model_path):
    src = tmp_path / "latin1.txt"
    src.write_bytes("Aspirin in mice .\nBRCA1 .\nCaf\xe9ine in rats .\nLast .\n".encode("latin-1"))
    out = tmp_path / "out.jsonl"
    result = cli("annotate", model_path, src, out, "--no-progress")
    assert result.exit_code == 1
    assert f"{src}:3: not valid UTF-8" in result.stderr and "Traceback" not in result.output
    assert not out.exists() or out.read_text() == ""  # stopped before annotating anything
    result = cli("annotate", model_path, src, out, "--no-progress", "--skip-bad")
    assert result.exit_code == 0 and f"Skipped {src}:3: not valid UTF-8" in result.stderr
    assert [d["id"] for d in read_output(out, "jsonl")] == ["1", "2", "4"]


@pytest.mark.parametrize(
    "fmt,content,bad_line,reason",
    [
        ("jsonl", '{"id": 1, "text": "Aspirin ."}\n{"id": 2, "text": "unterminated\n{"id": 3, "text": "BRCA1 ."}\n', 2, "invalid JSON"),
        ("jsonl", '{"id": 1, "text": "Aspirin ."}\n\n{"id": 2, "txt": "no text"}\n{"id": 3, "text": "BRCA1 ."}\n', 3, 'string "text"'),
        ("jsonl", '{"id": 1, "text": "Aspirin ."}\n[1, 2]\n{"id": 3, "text": "BRCA1 ."}\n', 2, "JSON object"),
        ("jsonl", '{"id": 1, "text": "Aspirin ."}\n{"id": [2], "text": "x"}\n{"id": 3, "text": "BRCA1 ."}\n', 2, '"id" must be'),
        ("jsonl", '{"id": 1, "text": "Aspirin ."}\n' + "[" * 100_000 + "]" * 100_000 + '\n{"id": 3, "text": "BRCA1 ."}\n', 2, "nested too deeply"),
        ("pubtator", "1|t|Aspirin .\n1|a|\n\n2|x|broken line\n\n3|t|BRCA1 .\n3|a|\n", 4, "not a PubTator line"),
        ("pubtator", "1|t|Aspirin .\n1|a|\n\n2|a|abstract without title\n\n3|t|BRCA1 .\n3|a|\n", 4, "without its title"),
    ],
)
def test_malformed_line(tmp_path, model_path, fmt, content, bad_line, reason):
    src = tmp_path / f"in{EXTENSIONS[fmt]}"
    src.write_text(content, encoding="utf8")
    out = tmp_path / "out.jsonl"
    result = cli("annotate", model_path, src, out, "--no-progress")
    assert result.exit_code == 1
    assert f"Error: {src}:{bad_line}: " in result.stderr and reason in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and result.exception.__class__ is SystemExit
    result = cli("annotate", model_path, src, out, "--no-progress", "--skip-bad")
    assert result.exit_code == 0, result.output
    assert f"Skipped {src}:{bad_line}: " in result.stderr and "1 bad input lines skipped" in result.stderr
    assert [str(d["id"]) for d in read_output(out, "jsonl")] == ["1", "3"]


def test_id_unfit_for_pubtator_output(tmp_path, model_path):
    src = tmp_path / "in.jsonl"
    src.write_text('{"id": "a|b", "text": "Aspirin ."}\n', encoding="utf8")
    result = cli("annotate", model_path, src, tmp_path / "out.pubtator", "--no-progress")
    assert result.exit_code == 1 and f"{src}:1: id 'a|b' cannot be a PubTator PMID" in result.stderr


def test_bad_model_paths(tmp_path):
    src = write_input(tmp_path / "in.txt", "text")
    not_a_model = tmp_path / "empty_dir"
    not_a_model.mkdir()
    no_ner = tmp_path / "no_ner"
    spacy.blank("en").to_disk(no_ner)
    for model in (tmp_path / "missing", not_a_model, src, "no_such_package_xyz", no_ner):
        result = cli("annotate", model, src, tmp_path / "out.jsonl", "--no-progress")
        assert result.exit_code == 1, (model, result.output)
        assert "Error: cannot load model" in result.stderr or "has no component that sets entities" in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
        assert result.exception.__class__ is SystemExit
    result = cli("annotate", tmp_path / "missing", tmp_path / "nope.txt", tmp_path / "out.jsonl")
    assert result.exit_code == 1 and "Error:" in result.stderr


@pytest.mark.slow
def test_missing_model_in_a_real_process(tmp_path):
    src = write_input(tmp_path / "in.txt", "text")
    proc = subprocess.run(
        [sys.executable, "-m", "spacy_taughtnet", "annotate", str(tmp_path / "missing"), str(src), str(tmp_path / "o.jsonl")],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1
    assert proc.stderr.strip().count("\n") == 0 and "Traceback" not in proc.stderr
    assert "cannot load model" in proc.stderr and "missing" in proc.stderr


def test_missing_input_file(tmp_path, model_path):
    result = cli("annotate", model_path, tmp_path / "nope.txt", tmp_path / "out.jsonl")
    assert result.exit_code == 1 and "input file not found" in result.stderr


def test_bad_record_error_names_file_and_line():
    err = BadRecordError("f.jsonl", 7, "invalid JSON")
    assert str(err) == "f.jsonl:7: invalid JSON" and isinstance(err, AnnotateError)


# ----------------------------------------------------------------------------- displaCy


@pytest.mark.slow
def test_displacy_colors_registered_by_entry_point():
    code = (
        "import json, sys\n"
        "from spacy.displacy.render import EntityRenderer\n"
        "print(json.dumps(EntityRenderer({}).colors))\n"
        "print('spacy_taughtnet' in sys.modules)\n"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    colors_line, loaded = proc.stdout.strip().splitlines()
    colors = json.loads(colors_line)
    for label in ("Disease", "Chemical", "GENE", "Species", "Anatomy"):  # the five types of the broad model
        assert colors[label.upper()] == COLORS[label]
    assert len({COLORS[label] for label in ("Disease", "Chemical", "GENE", "Species", "Anatomy")}) == 5
    assert loaded == "True"  # loaded through the entry point, not imported by the test


def test_fallback_colors():
    assert color_for("disease") == COLORS["Disease"]
    assert color_for("CellLine") in FALLBACK_PALETTE
    assert color_for("CellLine") == color_for("CellLine") == color_for("CELLLINE")


def test_render_writes_html(tmp_path, model_path):
    src = write_input(tmp_path / "samples.jsonl", "jsonl")
    page = tmp_path / "page.html"
    result = cli("render", model_path, src, page)
    assert result.exit_code == 0, result.output
    html = page.read_text(encoding="utf8")
    assert html.lstrip().lower().startswith("<!doctype html>") and "<mark" in html
    found = [label for label in LABELS if f">{label}</span>" in html]
    assert len(found) >= 3
    assert COLORS["Disease"] in html and "doc-0" in html
    result = cli("render", tmp_path / "missing", src, tmp_path / "p2.html")
    assert result.exit_code == 1 and not (tmp_path / "p2.html").exists()


# ----------------------------------------------------------------------------- the output never is the input


@pytest.mark.parametrize("how", ["dotdot", "hard link", "symlink"])
def test_output_is_never_the_input(tmp_path, model_path, how):
    """`annotate IN sub/../IN --overwrite` once deleted IN (the check ran before sub existed)."""
    src = write_input(tmp_path / "in.jsonl", "jsonl")
    before = src.read_bytes()
    if how == "dotdot":
        out = tmp_path / "sub" / ".." / "in.jsonl"
    elif how == "hard link":
        out = tmp_path / "link.jsonl"
        os.link(src, out)
    else:
        out = tmp_path / "sym.jsonl"
        out.symlink_to(src)
    result = cli("annotate", model_path, src, out, "--no-progress", "--overwrite")
    assert result.exit_code == 1 and "is the input" in result.stderr, result.output
    assert src.read_bytes() == before


def test_files_beside_the_output_are_never_the_input(tmp_path, model_path):
    out = tmp_path / "out.jsonl"
    for beside in ("out.jsonl.manifest.json", "out.jsonl.lock"):
        src = write_input(tmp_path / beside, "jsonl")
        before = src.read_bytes()
        result = cli("annotate", model_path, src, out, "--input-format", "jsonl", "--no-progress")
        assert result.exit_code == 1 and f"{src}" in result.stderr and "is the input" in result.stderr, result.output
        assert src.read_bytes() == before
        src.unlink()


# ----------------------------------------------------------------------------- the manifest


def interrupted_run(model, src: Path, out: Path, *options, keep: int) -> bytes:
    """A complete run cut back to its first `keep` records (an interrupted run); its full output."""
    result = cli("annotate", model, src, out, "--no-progress", *options)
    assert result.exit_code == 0, result.output
    full = out.read_bytes()
    out.write_bytes(b"".join(full.splitlines(keepends=True)[:keep]))
    return full


def test_resume_without_text_refuses_a_changed_input(tmp_path, model_path):
    """With --no-text resume compared ids only: an edited input kept stale entities."""
    samples = [(f"Cisplatin induced renal failure in mice {i} .", "") for i in range(12)]
    src = write_input(tmp_path / "in.jsonl", "jsonl", samples)
    out = tmp_path / "out.jsonl"
    interrupted_run(model_path, src, out, "--no-text", keep=5)
    samples[2] = ("Aspirin in rats with diabetes .", "")  # a record already annotated
    write_input(src, "jsonl", samples)
    cut = out.read_bytes()
    result = cli("annotate", model_path, src, out, "--no-progress", "--no-text")
    assert result.exit_code == 1
    assert f"{src}: records 1-12 (from line 1) differ from the input of the run being resumed" in result.stderr
    assert "--overwrite" in result.stderr and out.read_bytes() == cut


def test_resume_names_the_block_where_the_input_differs(tmp_path, model_path, monkeypatch):
    monkeypatch.setattr(annotate_resume, "BLOCK_RECORDS", 4)
    samples = [(f"Tamoxifen blocked EGFR in zebrafish {i} .", "") for i in range(10)]
    src = tmp_path / "in.txt"
    write_input(src, "text", samples)
    out = tmp_path / "out.jsonl"
    interrupted_run(model_path, src, out, keep=2)
    samples[6] = ("Tamoxifen blocked EGFR in rats .", "")
    write_input(src, "text", samples)
    result = cli("annotate", model_path, src, out, "--no-progress")
    assert result.exit_code == 1 and f"{src}: records 5-8 (from line 5) differ" in result.stderr, result.output
    write_input(src, "text", samples[:8])  # fewer records
    result = cli("annotate", model_path, src, out, "--no-progress")
    assert result.exit_code == 1 and f"{src}: records 5-8 (from line 5) differ" in result.stderr
    write_input(src, "text", [(f"Tamoxifen blocked EGFR in zebrafish {i} .", "") for i in range(13)])  # more
    result = cli("annotate", model_path, src, out, "--no-progress")
    assert result.exit_code == 1 and f"{src}: records 9-12 (from line 9) differ" in result.stderr


def test_resume_refuses_other_options(tmp_path, model_path):
    src = write_input(tmp_path / "in.jsonl", "jsonl")
    out = tmp_path / "out.jsonl"
    interrupted_run(model_path, src, out, keep=2)
    cut = out.read_bytes()
    for options, says in [
        (["--chunk-chars", "100"], "--chunk-chars 100 (was 5000)"),
        (["--no-text"], "--no-text (was --text)"),
    ]:
        result = cli("annotate", model_path, src, out, "--no-progress", *options)
        assert result.exit_code == 1 and "options differ from the run being resumed" in result.stderr, result.output
        assert says in result.stderr and "--overwrite" in result.stderr
        assert out.read_bytes() == cut


def test_resume_refuses_another_model(tmp_path, model_path, nlp):
    src = write_input(tmp_path / "in.jsonl", "jsonl")
    out = tmp_path / "out.jsonl"
    interrupted_run(model_path, src, out, keep=2)
    cut = out.read_bytes()
    versioned = tmp_path / "versioned"
    shutil.copytree(model_path, versioned)
    meta = json.loads((versioned / "meta.json").read_text())
    meta["version"] = "0.0.1"
    (versioned / "meta.json").write_text(json.dumps(meta))
    retrained = tmp_path / "retrained"  # same name, version and config; other weights
    other = spacy.load(model_path)
    params = next(node for node in other.get_pipe("ner").model.walk() if node.has_param("W"))
    params.set_param("W", params.get_param("W") + 0.01)
    other.to_disk(retrained)
    for model, says in [(versioned, "version 0.0.1 (was 0.0.0)"), (retrained, "its files differ")]:
        result = cli("annotate", model, src, out, "--no-progress")
        assert result.exit_code == 1, result.output
        assert "the model differs from the one of the run being resumed" in result.stderr and says in result.stderr
        assert out.read_bytes() == cut
    result = cli("annotate", model_path, src, out, "--no-progress")  # the same model resumes
    assert result.exit_code == 0 and "Resuming: 2 of 6" in result.stderr


def test_resume_refuses_a_manifest_of_the_old_model_digest(tmp_path, model_path):
    """Version 1 manifests digested the model's files by another rule: not resumed, and
    --overwrite starts afresh."""
    src = write_input(tmp_path / "in.jsonl", "jsonl")
    out = tmp_path / "out.jsonl"
    interrupted_run(model_path, src, out, keep=2)
    manifest_path = tmp_path / "out.jsonl.manifest.json"
    manifest = json.loads(manifest_path.read_text())
    assert manifest["model"]["pipeline_sha256"] == pipeline_digest(model_path)  # the distributions' rule
    manifest["annotate_manifest"] = 1
    manifest["model"]["files_sha256"] = manifest["model"].pop("pipeline_sha256")
    manifest_path.write_text(json.dumps(manifest))
    result = cli("annotate", model_path, src, out, "--no-progress")
    assert result.exit_code == 1 and "written by an older spacy-taughtnet" in result.stderr and "--overwrite" in result.stderr
    result = cli("annotate", model_path, src, out, "--no-progress", "--overwrite")
    assert result.exit_code == 0 and len(read_output(out, "jsonl")) == 6


def test_resume_refuses_an_output_without_manifest(tmp_path, model_path):
    src = write_input(tmp_path / "in.jsonl", "jsonl")
    out = tmp_path / "out.jsonl"
    interrupted_run(model_path, src, out, keep=2)
    manifest = tmp_path / "out.jsonl.manifest.json"
    manifest.unlink()
    result = cli("annotate", model_path, src, out, "--no-progress")
    assert result.exit_code == 1 and f"{manifest} is missing" in result.stderr and "--overwrite" in result.stderr
    out.write_bytes(b"")  # an empty output holds nothing to check: a fresh start
    result = cli("annotate", model_path, src, out, "--no-progress")
    assert result.exit_code == 0 and len(read_output(out, "jsonl")) == 6 and manifest.is_file()


def test_overwrite_keeps_the_old_output_until_the_new_one_is_complete(tmp_path, model_path, monkeypatch):
    src = write_input(tmp_path / "in.jsonl", "jsonl")
    out = tmp_path / "out.jsonl"
    manifest = tmp_path / "out.jsonl.manifest.json"
    assert cli("annotate", model_path, src, out, "--no-progress", "--no-text").exit_code == 0
    old, old_manifest = out.read_bytes(), manifest.read_bytes()
    real_format = annotate_runner.format_record
    calls = []

    def crashing_format(*args, **kwargs):
        calls.append(1)
        if len(calls) == 4:
            raise SystemExit("killed")
        return real_format(*args, **kwargs)

    monkeypatch.setattr(annotate_runner, "format_record", crashing_format)
    cli("annotate", model_path, src, out, "--no-progress", "--overwrite")
    assert len(calls) == 4 and out.read_bytes() == old and manifest.read_bytes() == old_manifest
    monkeypatch.setattr(annotate_runner, "format_record", real_format)
    result = cli("annotate", model_path, src, out, "--no-progress", "--overwrite")
    assert result.exit_code == 0, result.output
    assert [d["text"] for d in read_output(out, "jsonl")] == TEXTS
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.jsonl", "out.jsonl", "out.jsonl.lock", "out.jsonl.manifest.json"]
    assert json.loads(manifest.read_text())["options"]["include_text"] is True


def test_confidence_comes_from_the_span_group(model_path):
    """annotate reads each entity's score from the span group of taughtnet_ner (spans_key),
    so a pipe configured without a group gives no confidence, and any span group with
    attrs["scores"] (a spancat's) gives its scores."""
    record = Record(id="1", text="Patients with breast cancer received aspirin .", line=1)
    student = spacy.load(model_path)
    key = student.get_pipe("ner").cfg["spans_key"]
    [(_, entities, _)] = list(annotate_records(student, [record]))
    doc = student(record.text)
    group = {(s.start_char, s.end_char, s.label_): float(v) for s, v in zip(doc.spans[key], doc.spans[key].attrs["scores"])}
    assert entities and all(e["confidence"] == pytest.approx(group[(e["start"], e["end"], e["label"])], rel=1e-3) for e in entities)

    no_group = spacy.load(model_path, config={"components": {"ner": {"spans_key": None}}})
    [(_, entities, _)] = list(annotate_records(no_group, [record]))
    assert entities and all(e["confidence"] is None for e in entities)

    @spacy.Language.component("scored_spans_for_test")
    def scored_spans(doc):
        doc.ents = [doc.char_span(37, 44, "Chemical")]
        doc.spans["sc"] = list(doc.ents)
        doc.spans["sc"].attrs["scores"] = [0.25]
        return doc

    rules = spacy.blank("en")
    rules.add_pipe("scored_spans_for_test")
    [(_, entities, _)] = list(annotate_records(rules, [record]))
    assert entities == [{"start": 37, "end": 44, "label": "Chemical", "text": "aspirin", "confidence": 0.25}]
