"""Shared fixtures (tiny trained teachers, DocBins of the fixture corpora) and the markers' rule;
the helpers that test modules share are in helpers.py."""
from pathlib import Path
from typing import Dict

import pytest
import spacy
from helpers import CORPUS_TYPES, corpus_file, train_model, train_pipe

from spacy_taughtnet.corpora import read_iob, write_docbin

# The modules whose workflow fixtures pip-install a model into this environment and uninstall
# it: one at a time, as pip takes no lock on an environment
INSTALLING = {"test_workflow", "test_transformers"}


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects and before xdist reads the groups
def pytest_collection_modifyitems(items):
    """Workflow and Ray tests are slow tests too: `-m "not slow"` leaves them out.
    Under `-n 2` (pytest-xdist, `--dist loadgroup`) a module's tests share one worker, so its
    fixtures are built once. Modules that share a resource share a worker too: those that start
    Ray (the Ray tests find and kill actors by process name, which a second cluster would
    confuse), and those that pip-install a model into this environment (INSTALLING)."""
    ray_modules = {item.module.__name__ for item in items if item.get_closest_marker("ray")}
    for item in items:
        if item.get_closest_marker("workflow") or item.get_closest_marker("ray"):
            item.add_marker(pytest.mark.slow)
        module = item.module.__name__
        group = "ray" if module in ray_modules else "installs" if module in INSTALLING else module
        item.add_marker(pytest.mark.xdist_group(group))


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


@pytest.fixture(scope="module")
def model_path(tmp_path_factory) -> Path:
    """helpers.train_model's pipeline on disk, one per test module: the model that the annotate
    tests (local, Ray, faults) annotate with."""
    path = tmp_path_factory.mktemp("model") / "model"
    train_model().to_disk(path)
    return path


@pytest.fixture(scope="module")
def cluster():
    """A local Ray (2 CPUs) for one Ray test module; its GCS address."""
    import ray

    context = ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield context.address_info["gcs_address"]
    ray.shutdown()


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

