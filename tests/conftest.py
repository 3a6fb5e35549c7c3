"""Shared fixtures: fixture corpora, a small fast model config, tiny trained teachers."""
import random
from pathlib import Path
from typing import Dict, List, Sequence

import numpy
import pytest
import spacy
from spacy.tokens import Doc
from spacy.training import Example
from thinc.api import fix_random_seed

from spacy_taughtnet.corpora import read_iob, write_docbin

FIXTURES = Path(__file__).parent / "fixtures"
CORPORA = FIXTURES / "corpora"
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


@pytest.fixture
def vocab():
    return spacy.blank("en").vocab


@pytest.fixture(scope="session")
def teachers(tmp_path_factory) -> Dict[str, Path]:
    """Two tiny single-type teachers (Disease, Chemical) saved to disk, trained in-process."""
    root = tmp_path_factory.mktemp("teachers")
    paths = {}
    for corpus in ("Toy-disease-IOB", "Toy-chem-IOB"):
        docs = read_iob(corpus_file(corpus), spacy.blank("en").vocab)
        nlp, _ = train_pipe(docs, 30)
        path = root / CORPUS_TYPES[corpus]
        nlp.to_disk(path)
        paths[CORPUS_TYPES[corpus]] = path
    return paths


@pytest.fixture(scope="session")
def docbins(tmp_path_factory) -> Dict[str, Dict[str, Path]]:
    """DocBins of every fixture corpus and split: docbins[corpus][split]."""
    root = tmp_path_factory.mktemp("docbins")
    out: Dict[str, Dict[str, Path]] = {}
    vocab = spacy.blank("en").vocab
    for corpus in CORPUS_TYPES:
        out[corpus] = {}
        for split in ("train", "devel", "test"):
            path = root / corpus / f"{split}.spacy"
            write_docbin(read_iob(corpus_file(corpus, split), vocab), path)
            out[corpus][split] = path
    return out


def random_distributions(rng: numpy.random.Generator, n_rows: int, n_cols: int) -> numpy.ndarray:
    x = rng.random((n_rows, n_cols)) + 1e-3
    return x / x.sum(axis=1, keepdims=True)


def wheel_metadata(dest: Path, package: str, version: str = "0.1.0") -> str:
    """The METADATA of the model's wheel `spacy project run package` built in dest/packages/wheels."""
    import zipfile

    wheel = dest / "packages" / "wheels" / f"{package}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel) as zf:
        return zf.read(f"{package}-{version}.dist-info/METADATA").decode()
