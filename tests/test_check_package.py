"""scripts/check_package.py, the install check of the packaged model: which wheel it installs,
its refusal to replace this environment's plugin, and how it compares the installed model's
scores with the run's (no install here: the workflow tests install the quick run's model)."""
import re
import zipfile
from pathlib import Path

import pytest
from check_package import F1_TOLERANCE, install_and_score, model_wheel, score_problems

import spacy_taughtnet
from spacy_taughtnet.errors import ConfigError


def fake_wheel(folder: Path, name: str, version: str, requires=()) -> Path:
    """A wheel holding only its METADATA: what model_wheel and the plugin check read."""
    path = folder / f"{name}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{name}-{version}.dist-info/METADATA",
                    "Metadata-Version: 2.1\n" + "".join(f"Requires-Dist: {r}\n" for r in requires))
    return path


def test_model_wheel_is_the_newest_version(tmp_path):
    for version in ("0.9.0", "0.10.0", "0.2.1"):
        fake_wheel(tmp_path, "en_taughtnet_small", version)
    fake_wheel(tmp_path, "en_other", "1.0.0")
    assert model_wheel(tmp_path, "en_taughtnet_small").name == "en_taughtnet_small-0.10.0-py3-none-any.whl"
    assert model_wheel(tmp_path, "en_taughtnet_small", "0.9.0").name == "en_taughtnet_small-0.9.0-py3-none-any.whl"
    with pytest.raises(ConfigError, match="no wheel en_taughtnet_small-1.0.0-py3-none-any.whl"):
        model_wheel(tmp_path, "en_taughtnet_small", "1.0.0")


def test_refuses_to_replace_this_environments_plugin(tmp_path):
    """A model pinning another minor version than the installed plugin's is not installed
    into this environment: pip would replace the (editable) plugin with the wheel."""
    fake_wheel(tmp_path, "en_taughtnet_small", "0.1.0", ["spacy<3.9.0,>=3.8.0", "spacy-taughtnet<9.10.0,>=9.9.0"])
    message = rf"requires spacy-taughtnet<9.10.0,>=9.9.0, this environment has spacy-taughtnet {re.escape(spacy_taughtnet.__version__)}:"
    with pytest.raises(ConfigError, match=message):
        install_and_score(tmp_path, "en_taughtnet_small", [], fresh=False)


def test_score_problems():
    rows = [{"corpus": "A", "entity_type": "Disease", "f1": 0.8}, {"corpus": "B", "entity_type": "Chemical", "f1": 0.0},
            {"corpus": "C", "entity_type": "GENE", "f1": 0.7}]
    expected = {"A": {"f1": 0.8 + F1_TOLERANCE / 2}, "C": {"f1": 0.7 + 2 * F1_TOLERANCE}}
    assert score_problems(rows, expected, Path("student.json")) == [
        "B: no Chemical entity found", "C: F1 0.7000 installed, 0.7020 in student.json"]
    assert score_problems(rows[:1], expected, Path("student.json")) == []


def test_score_problems_accepts_a_type_the_run_itself_never_found():
    """A short run (six-corpus `quick`: linnaeus's first 300 sentences hold few species) may
    score 0 on a corpus; the installed model reproducing that 0 is no package fault."""
    rows = [{"corpus": "L", "entity_type": "Species", "f1": 0.0}, {"corpus": "B", "entity_type": "Chemical", "f1": 0.0}]
    expected = {"L": {"f1": 0.0}, "B": {"f1": 0.4}}
    assert score_problems(rows, expected, Path("student.json")) == [
        "B: no Chemical entity found", "B: F1 0.0000 installed, 0.4000 in student.json"]
