"""Which saved pipes a release loads, and what a packaged model requires (versions.py)."""
import pytest
from packaging.requirements import Requirement

import spacy_taughtnet
from spacy_taughtnet import versions
from spacy_taughtnet.errors import ModelVersionError
from spacy_taughtnet.versions import (
    check_saved_version,
    minor_version,
    plugin_requirement,
)


def test_minor_version():
    assert minor_version("0.2.0") == (0, 2)
    assert minor_version("0.10.3") == (0, 10)
    assert minor_version("1.3.0rc1") == (1, 3)


@pytest.mark.parametrize("saved", [None, "0.2.0", "0.2.9", "0.1.0", "0.1.7", "0.0.1"])
def test_a_release_loads_its_minor_version_and_older_ones(saved, monkeypatch):
    monkeypatch.setattr(versions, "__version__", "0.2.0")
    check_saved_version(saved, "model/ner")


@pytest.mark.parametrize("saved,minor", [("0.3.0", "0.3"), ("0.10.1", "0.10"), ("1.0.0", "1.0"), ("1.2.0", "1.2")])
def test_a_newer_minor_or_another_major_version_is_refused(saved, minor, monkeypatch):
    monkeypatch.setattr(versions, "__version__", "0.2.0")
    with pytest.raises(ModelVersionError) as err:
        check_saved_version(saved, "model/ner")
    assert str(err.value) == (
        f"model/ner: this model was saved by spacy-taughtnet {saved}, but spacy-taughtnet 0.2.0 is installed, "
        f"which loads models of 0.2.x and older 0.x releases; it loads with spacy-taughtnet {minor}.x: "
        f"pip install 'spacy-taughtnet=={minor}.*' (or retrain the model)"
    )


def test_an_older_major_version_is_refused(monkeypatch):
    monkeypatch.setattr(versions, "__version__", "1.0.0")
    with pytest.raises(ModelVersionError, match="saved by spacy-taughtnet 0.2.0, but spacy-taughtnet 1.0.0 is installed"):
        check_saved_version("0.2.0", "pipe 'ner'")


def test_a_packaged_model_requires_the_minor_version_that_trained_it():
    assert plugin_requirement("0.2.0") == "spacy-taughtnet>=0.2.0,<0.3.0"
    assert plugin_requirement("0.2.7") == "spacy-taughtnet>=0.2.0,<0.3.0"
    assert plugin_requirement("1.9.3") == "spacy-taughtnet>=1.9.0,<1.10.0"
    major, minor = minor_version(spacy_taughtnet.__version__)
    pin = Requirement(plugin_requirement(spacy_taughtnet.__version__))
    assert pin.name == "spacy-taughtnet" and pin.specifier.contains(spacy_taughtnet.__version__)
    assert not pin.specifier.contains(f"{major}.{minor + 1}.0")
