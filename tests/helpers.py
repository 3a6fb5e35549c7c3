"""What several test modules share: fixture corpora, a small fast model config, training a
tiny model in-process, the `annotate` CLI and its inputs. Fixtures are in conftest.py."""
import gzip
import json
import random
import shutil
import time
import zipfile
from pathlib import Path
from typing import List, Sequence

import numpy
import spacy
from spacy.tokens import Doc
from spacy.training import Example
from thinc.api import fix_random_seed
from typer.testing import CliRunner, Result

from spacy_taughtnet.cli import app

FIXTURES = Path(__file__).parent / "fixtures"
CORPORA = FIXTURES / "corpora"
PUBMED_XML = FIXTURES / "pubmed" / "pubmed_sample.xml"
CORPUS_TYPES = {
    "Toy-disease-IOB": "Disease",
    "Toy-chem-IOB": "Chemical",
    "Toy-gene-IOB": "GENE",
    "Toy-species-IOB": "Species",
}

# A narrow model: trains in well under a second per few dozen updates on 2 CPU cores.
SMALL_MODEL = {
    "@architectures": "spacy-taughtnet.TokenTagger.v1",
    "hidden_width": 32,
    "window_size": 1,
    "maxout_pieces": 2,
    "dropout": 0.0,
    "tok2vec": {
        "@architectures": "spacy.HashEmbedCNN.v2",
        "pretrained_vectors": None,
        "width": 32,
        "depth": 2,
        "embed_size": 500,
        "window_size": 1,
        "maxout_pieces": 2,
        "subword_features": True,
    },
}

# What train_model learns: six sentences with entities of all four types.
TRAIN = [
    ("Patients with breast cancer received aspirin .", [("breast cancer", "Disease"), ("aspirin", "Chemical")]),
    ("Cisplatin induced renal failure in mice .", [("Cisplatin", "Chemical"), ("renal failure", "Disease"), ("mice", "Species")]),
    ("Expression of BRCA1 was reduced in rats with diabetes .", [("BRCA1", "GENE"), ("rats", "Species"), ("diabetes", "Disease")]),
    ("Tamoxifen blocked EGFR in zebrafish .", [("Tamoxifen", "Chemical"), ("EGFR", "GENE"), ("zebrafish", "Species")]),
    ("The risk of asthma rose when p53 was mutated .", [("asthma", "Disease"), ("p53", "GENE")]),
    ("We studied caffeine and dopamine in humans .", [("caffeine", "Chemical"), ("dopamine", "Chemical"), ("humans", "Species")]),
]

# Five sentences of Disease and Chemical entities, as (text, [(start, end, label)]).
TWO_TYPES = [
    ("Patients with diabetes received aspirin daily .", [(14, 22, "Disease"), (32, 39, "Chemical")]),
    ("Cisplatin caused renal failure in two patients .", [(0, 9, "Chemical"), (17, 30, "Disease")]),
    ("Asthma was not treated with caffeine .", [(0, 6, "Disease"), (28, 36, "Chemical")]),
    ("We gave dopamine to the mice .", [(8, 16, "Chemical")]),
    ("Breast cancer is common .", [(0, 13, "Disease")]),
]

# (title, abstract) pairs: PubTator input uses both, the other formats their joined text.
SAMPLES = [
    ("Cisplatin induced renal failure in mice .", "Patients with breast cancer received aspirin ."),
    ("Expression of BRCA1 was reduced in rats with diabetes .", ""),
    ("", ""),
    ("   ", ""),
    ("Tamoxifen blocked EGFR in zebrafish .", "The risk of asthma rose when p53 was mutated ."),
    ("We studied caffeine 😀 and dopamine in humans .", "Control \x07 chars \x00 \x1b[31m and e\u0301mojis 👩\u200d👩\u200d👧 with diabetes ."),
]


def corpus_file(corpus: str, split: str = "train") -> Path:
    return CORPORA / corpus / f"{split}.tsv"


def gold_examples(nlp, docs: Sequence[Doc]) -> List[Example]:
    """Examples whose predicted doc has the reference's own tokens (gold tokenisation)."""
    return [
        Example(Doc(nlp.vocab, words=[t.text for t in d], spaces=[bool(t.whitespace_) for t in d]), d)
        for d in docs
    ]


def seeded_blank(seed: int = 0):
    """spacy.blank("en"), then the random seed: creating the first pipeline loads the
    entry points of every installed spaCy plugin, which may draw random numbers."""
    nlp = spacy.blank("en")
    fix_random_seed(seed)
    return nlp


def train_pipe(docs: Sequence[Doc], n_updates: int, *, labels=None, model=None, seed: int = 0, batch_size: int = 16):
    """A blank pipeline with one `taughtnet_ner` pipe, trained with nlp.update on `docs`."""
    nlp = seeded_blank(seed)
    config = {"model": model or SMALL_MODEL}
    ner = nlp.add_pipe("taughtnet_ner", name="ner", config=config)
    for label in labels or ():
        ner.add_label(label)
    examples = gold_examples(nlp, docs)
    optimizer = nlp.initialize(lambda: examples)
    rng = random.Random(seed)
    losses_seen = []
    for step in range(n_updates):
        batch = rng.sample(examples, min(batch_size, len(examples)))
        losses = {}
        nlp.update(batch, sgd=optimizer, losses=losses)
        losses_seen.append(losses["ner"])
    return nlp, losses_seen


def fit_train(nlp, n_updates: int):
    """Initialise `nlp` on TRAIN and update it `n_updates` times on all of it; returns it."""
    examples = []
    for text, ents in TRAIN:
        spans = [(text.index(t), text.index(t) + len(t), label) for t, label in ents]
        examples.append(Example.from_dict(nlp.make_doc(text), {"entities": spans}))
    optimizer = nlp.initialize(lambda: examples)
    for _ in range(n_updates):
        nlp.update(examples, sgd=optimizer)
    return nlp


def train_model():
    """A `taughtnet_ner` pipeline trained on TRAIN: what the `annotate` tests annotate with."""
    fix_random_seed(0)
    nlp = spacy.blank("en")
    nlp.add_pipe("taughtnet_ner", name="ner", config={"model": SMALL_MODEL})
    return fit_train(nlp, 30)


def random_distributions(rng: numpy.random.Generator, n_rows: int, n_cols: int) -> numpy.ndarray:
    x = rng.random((n_rows, n_cols)) + 1e-3
    return x / x.sum(axis=1, keepdims=True)


def cli(*args) -> Result:
    return CliRunner().invoke(app, [str(a) for a in args])


def joined(title: str, abstract: str) -> str:
    return f"{title} {abstract}" if abstract else title


def write_input(path: Path, fmt: str, samples=SAMPLES) -> Path:
    if fmt == "text":
        path.write_text("".join(joined(t, a) + "\n" for t, a in samples), encoding="utf8")
    elif fmt == "jsonl":
        path.write_text("".join(json.dumps({"id": f"doc-{i}", "text": joined(t, a)}) + "\n" for i, (t, a) in enumerate(samples)), encoding="utf8")
    else:
        blocks = [f"{1000 + i}|t|{t}\n{1000 + i}|a|{a}\n" for i, (t, a) in enumerate(samples)]
        path.write_text("\n".join(blocks), encoding="utf8")
    return path


def gzipped(source: Path, target: Path) -> Path:
    with source.open("rb") as f, gzip.open(target, "wb") as out:
        shutil.copyfileobj(f, out)
    return target


def wheel_metadata(dest: Path, package: str, version: str = "0.1.0") -> str:
    """The METADATA of the model's wheel `spacy project run package` built in dest/packages/wheels."""
    wheel = dest / "packages" / "wheels" / f"{package}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        return zf.read(f"{package}-{version}.dist-info/METADATA").decode()


def children_of(pid: int) -> List[int]:
    """Live (not zombie) child processes of pid, from /proc."""
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:  # ended meanwhile
                continue
            state, ppid = stat.rsplit(")", 1)[1].split()[:2]
            if int(ppid) == pid and state != "Z":
                found.append(int(entry.name))
    return found


def alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


def gone_soon(pids: List[int], timeout: float = 5) -> bool:
    """Whether none of `pids` is alive within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while any(alive(pid) for pid in pids) and time.monotonic() < deadline:
        time.sleep(0.05)
    return not any(alive(pid) for pid in pids)
