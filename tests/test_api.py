"""What a user of the installed package reaches first: the top-level names, the version flag,
the Python versions it installs on (the wheel, with its py.typed: test_package.py)."""
import subprocess
import sys
from pathlib import Path

from packaging.specifiers import SpecifierSet
from typer.testing import CliRunner

import spacy_taughtnet
from spacy_taughtnet.about import __version__
from spacy_taughtnet.cli import app
from spacy_taughtnet.evaluate import evaluate_corpus

ROOT = Path(__file__).resolve().parent.parent


def test_evaluate_corpus_is_a_top_level_name():
    from spacy_taughtnet import evaluate_corpus as top_level

    assert top_level is evaluate_corpus and "evaluate_corpus" in spacy_taughtnet.__all__
    assert all(hasattr(spacy_taughtnet, name) for name in spacy_taughtnet.__all__)


def test_importing_the_package_leaves_its_cli_and_ray_out():
    code = "import sys, spacy_taughtnet; print(sorted(m for m in ('spacy_taughtnet.cli', 'ray') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_version_flag():
    result = subprocess.run([sys.executable, "-m", "spacy_taughtnet", "--version"], capture_output=True, text=True)
    assert (result.returncode, result.stdout) == (0, f"spacy-taughtnet {__version__}\n"), result.stderr
    result = CliRunner().invoke(app, ["--version"])
    assert result.exit_code == 0 and result.output == f"spacy-taughtnet {__version__}\n"
    assert "--version" in CliRunner().invoke(app, ["--help"]).output
    # the commands still run with the group's options in place
    assert CliRunner().invoke(app, ["render", "--help"]).exit_code == 0


def test_python_requires_what_the_pinned_torch_needs():
    setup = (ROOT / "setup.py").read_text(encoding="utf8")
    (requires,) = [line.split("=", 1)[1].strip().strip('",') for line in setup.splitlines() if "python_requires" in line and "=" in line]
    assert "torch==2.13.0" in (ROOT / "requirements.txt").read_text(encoding="utf8")
    # torch 2.13.0 publishes wheels for Python 3.10 and newer only
    assert not SpecifierSet(requires).contains("3.9.18") and SpecifierSet(requires).contains("3.10.0")

