"""Entry points of setup.py: each resolves through its registry, also in a fresh interpreter."""
import ast
import importlib
import importlib.metadata
import json
import subprocess
import sys
from pathlib import Path

import pytest
import spacy
from spacy.language import Language
from spacy.util import registry as spacy_registry
from thinc.api import Model
from thinc.api import registry as thinc_registry

import spacy_taughtnet
from spacy_taughtnet.component import TaughtNetNER
from spacy_taughtnet.loss import DistillationLoss
from spacy_taughtnet.readers import TaughtNetCorpus
from spacy_taughtnet.scorer import score_entities

SETUP_PY = Path(__file__).parent.parent / "setup.py"
REQUIRED_GROUPS = ["spacy_factories", "spacy_architectures", "spacy_readers", "spacy_scorers", "thinc_losses"]
GROUP_REGISTRIES = {
    "spacy_factories": spacy_registry._entry_point_factories,
    "spacy_architectures": spacy_registry.architectures,
    "spacy_readers": spacy_registry.readers,
    "spacy_scorers": spacy_registry.scorers,
    "spacy_displacy_colors": spacy_registry.displacy_colors,
    "thinc_losses": thinc_registry.losses,
}


def setup_entry_points():
    """The entry_points literal of the setup() call in setup.py, as {group: {name: target}}."""
    tree = ast.parse(SETUP_PY.read_text(encoding="utf8"))
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "setup":
            for keyword in node.keywords:
                if keyword.arg == "entry_points":
                    groups = ast.literal_eval(keyword.value)
                    return {
                        group: {k.strip(): v.strip() for k, v in (e.split("=", 1) for e in entries)}
                        for group, entries in groups.items()
                    }
    raise AssertionError("no entry_points in setup.py")


ENTRY_POINTS = setup_entry_points()
ALL = [(group, name, target) for group, entries in ENTRY_POINTS.items() for name, target in entries.items()]


def load_target(target):
    module, _, attr = target.partition(":")
    obj = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


def test_setup_declares_the_expected_entry_points():
    assert set(REQUIRED_GROUPS) <= set(ENTRY_POINTS)
    assert ENTRY_POINTS["spacy_factories"] == {"taughtnet_ner": "spacy_taughtnet.component:make_taughtnet_ner"}
    assert "spacy-taughtnet.TokenTagger.v1" in ENTRY_POINTS["spacy_architectures"]
    assert "spacy-taughtnet.Corpus.v1" in ENTRY_POINTS["spacy_readers"]
    assert "spacy-taughtnet.ner_scorer.v1" in ENTRY_POINTS["spacy_scorers"]
    assert "spacy-taughtnet.DistillationLoss.v1" in ENTRY_POINTS["thinc_losses"]


def test_installed_metadata_matches_setup_py():
    """The editable install's entry points are those of setup.py (else: pip install -e .)."""
    dist = importlib.metadata.distribution("spacy-taughtnet")
    installed = {}
    for ep in dist.entry_points:
        installed.setdefault(ep.group, {})[ep.name] = ep.value
    assert installed == ENTRY_POINTS


@pytest.mark.parametrize("group,name,target", ALL, ids=[f"{g}:{n}" for g, n, _ in ALL])
def test_entry_point_resolves(group, name, target):
    obj = load_target(target)
    if group in GROUP_REGISTRIES:
        registry = GROUP_REGISTRIES[group]
        # through the entry point itself (what a fresh environment uses) and by name
        assert registry.get_entry_point(name) is obj
        assert registry.get(name) is obj
    else:
        assert group == "console_scripts", f"entry point group {group!r} is not covered by a test"
        assert callable(obj)


def test_factory_resolves():
    assert Language.has_factory("taughtnet_ner")
    meta = Language.get_factory_meta("taughtnet_ner")
    assert meta.default_config["overwrite"] is False
    assert meta.default_config["spans_key"] == "taughtnet"
    assert meta.default_config["set_ents"] is True
    assert "doc.spans" in meta.assigns
    assert meta.default_config["loss"]["@losses"] == "spacy-taughtnet.DistillationLoss.v1"
    nlp = spacy.blank("en")
    pipe = nlp.add_pipe("taughtnet_ner")
    assert isinstance(pipe, TaughtNetNER)
    # the pipeline's config rebuilds the same pipe
    nlp2 = spacy.util.load_model_from_config(nlp.config, auto_fill=True)
    assert isinstance(nlp2.get_pipe("taughtnet_ner"), TaughtNetNER)
    assert nlp2.config["components"]["taughtnet_ner"]["model"]["@architectures"] == "spacy-taughtnet.TokenTagger.v1"


def test_architecture_resolves_from_config():
    config = {
        "model": {
            "@architectures": "spacy-taughtnet.TokenTagger.v1",
            "hidden_width": 16,
            "window_size": 1,
            "nO": 7,
            "tok2vec": {
                "@architectures": "spacy.HashEmbedCNN.v2",
                "pretrained_vectors": None,
                "width": 16,
                "depth": 1,
                "embed_size": 100,
                "window_size": 1,
                "maxout_pieces": 2,
                "subword_features": False,
            },
        }
    }
    model = spacy_registry.resolve(config)["model"]
    assert isinstance(model, Model)
    assert model.has_ref("tok2vec") and model.has_ref("output_layer")
    assert model.get_ref("output_layer").get_dim("nO") == 7
    doc = spacy.blank("en")("aspirin caused asthma")
    model.initialize(X=[doc])
    (scores,) = model.predict([doc])
    assert scores.shape == (3, 7)


def test_reader_scorer_loss_resolve_from_config(tmp_path):
    resolved = spacy_registry.resolve(
        {
            "reader": {"@readers": "spacy-taughtnet.Corpus.v1", "path": str(tmp_path / "x.spacy"), "limit": 3},
            "scorer": {"@scorers": "spacy-taughtnet.ner_scorer.v1"},
        }
    )
    assert isinstance(resolved["reader"], TaughtNetCorpus)
    assert resolved["reader"].limit == 3 and resolved["reader"].distributions is None
    assert resolved["scorer"] is score_entities
    loss = thinc_registry.resolve({"loss": {"@losses": "spacy-taughtnet.DistillationLoss.v1", "lambda_": 0.7}})["loss"]
    assert isinstance(loss, DistillationLoss) and loss.lambda_ == 0.7


def run_python(code: str) -> str:
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=str(Path(__file__).parent)
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return result.stdout.strip().splitlines()[-1]


FRESH_USE = """
import json, sys
import spacy
from spacy.util import registry
from thinc.api import registry as thinc_registry
out = {"imported_before": "spacy_taughtnet" in sys.modules}
nlp = spacy.blank("en")
pipe = nlp.add_pipe("taughtnet_ner")
out["pipe"] = type(pipe).__module__ + "." + type(pipe).__name__
resolved = registry.resolve({
    "reader": {"@readers": "spacy-taughtnet.Corpus.v1", "path": "x.spacy"},
    "scorer": {"@scorers": "spacy-taughtnet.ner_scorer.v1"},
})
out["reader"] = type(resolved["reader"]).__name__
out["scorer"] = resolved["scorer"].__name__
loss = thinc_registry.resolve({"l": {"@losses": "spacy-taughtnet.DistillationLoss.v1", "temperature": 2.0}})["l"]
out["loss"] = [type(loss).__name__, loss.temperature]
print(json.dumps(out))
"""


@pytest.mark.slow
def test_fresh_interpreter_finds_the_pipe_through_entry_points():
    out = json.loads(run_python(FRESH_USE))
    assert out == {
        "imported_before": False,
        "pipe": "spacy_taughtnet.component.TaughtNetNER",
        "reader": "TaughtNetCorpus",
        "scorer": "score_entities",
        "loss": ["DistillationLoss", 2.0],
    }


IMPORT_FOOTPRINT = """
import json, sys
import spacy, thinc.api  # what any spaCy pipeline imports anyway
before = set(sys.modules)
import spacy_taughtnet.component
added = sorted(set(sys.modules) - before)
heavy = ("torch", "typer", "seqeval", "tqdm", "transformers", "spacy_transformers", "click")
print(json.dumps({
    "added_heavy": [m for m in added if m.split(".")[0] in heavy],
    "own": sorted(m for m in added if m.startswith("spacy_taughtnet")),
    "seqeval": "seqeval" in sys.modules,
}))
"""

IMPORT_WITHOUT_TORCH = """
import sys
sys.modules["torch"] = None  # any import of torch now fails
import spacy_taughtnet.component
from spacy_taughtnet.component import TaughtNetNER
print("ok", "torch" in sys.modules and sys.modules["torch"] is not None)
"""


@pytest.mark.slow
def test_component_import_does_not_pull_heavy_dependencies():
    """spaCy itself imports torch (through thinc, when installed) and typer (its CLI), so
    the check is that importing the component adds none of them to what spaCy loads."""
    out = json.loads(run_python(IMPORT_FOOTPRINT))
    assert out["added_heavy"] == []
    assert out["seqeval"] is False
    # the CLI and the evaluation/distillation modules stay unimported
    assert not {"spacy_taughtnet.cli", "spacy_taughtnet.evaluate", "spacy_taughtnet.distill"} & set(out["own"])
    assert "spacy_taughtnet.component" in out["own"]
    assert run_python(IMPORT_WITHOUT_TORCH) == "ok False"


def test_package_version():
    assert spacy_taughtnet.__version__ == importlib.metadata.version("spacy-taughtnet")
