"""The installable model: the two wheels it needs (its card, meta.json and README: model_card.py).

`build_plugin_wheel` and `build_model_wheel` write, into one flat folder, the plugin's wheel
(built from its source checkout) and the model's wheel (`spacy package`), whose requirements
pin the plugin to its minor version (versions.plugin_requirement): `pip install --find-links
FOLDER en_NAME` then installs the model anywhere. Installing it to check it is developer
tooling, outside the package: scripts/check_package.py.
"""
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Mapping

import srsly

from .errors import ConfigError
from .model_card import licenses_sources
from .versions import PLUGIN


def plugin_version(source: Path) -> str:
    """The plugin version of a source checkout, from spacy_taughtnet/about.py."""
    about: Dict[str, str] = {}
    path = Path(source) / "spacy_taughtnet" / "about.py"
    if not path.is_file():
        raise ConfigError(f"{source}: not a spacy-taughtnet source checkout (no spacy_taughtnet/about.py)")
    exec(path.read_text(encoding="utf8"), about)
    return about["__version__"]


def build_plugin_wheel(source: Path, wheel_dir: Path) -> Path:
    """The plugin's wheel, built from a clean copy of its source (no stale build/ folder)."""
    version = plugin_version(source)
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / "src"
        copy.mkdir()
        for name in ("setup.py", "README.md"):
            shutil.copyfile(Path(source) / name, copy / name)
        shutil.copytree(Path(source) / "spacy_taughtnet", copy / "spacy_taughtnet",
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        out = Path(tmp) / "dist"
        subprocess.run([sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out), str(copy)],
                       check=True, stdout=subprocess.DEVNULL)
        (wheel,) = out.glob("*.whl")
        if not wheel.name.startswith(f"spacy_taughtnet-{version}-"):
            raise ConfigError(f"{wheel.name}: expected the wheel of {PLUGIN} {version}")
        return _place(wheel, wheel_dir)


def save_self_contained(model: Path, dest: Path, meta: Mapping) -> Dict:
    """Save the trained pipeline `model` to `dest` as the package ships it, self-contained:
    each pipe that listens to a tok2vec component gets its own copy of it, and the tok2vec
    components no pipe listens to any more are left out (listeners.make_self_contained), so
    its `taughtnet_ner` pipe can be sourced into any pipeline. The same weights: the same
    predictions. Returns `meta` with the pipeline's components."""
    import spacy

    from .listeners import make_self_contained

    nlp = spacy.load(model)
    removed = make_self_contained(nlp)
    nlp.to_disk(dest)
    shipped = dict(meta, pipeline=nlp.pipe_names, components=nlp.component_names, disabled=nlp.disabled)
    if "labels" in meta:
        shipped["labels"] = {name: labels for name, labels in meta["labels"].items() if name not in removed}
    return shipped


def build_model_wheel(model: Path, meta: Mapping, readme: str, wheel_dir: Path, *, silent: bool = True) -> Path:
    """The model's wheel (`spacy package`) of the trained pipeline `model` made self-contained
    (`save_self_contained`), with `meta` as its meta.json, `readme` as README and the licences
    of `meta["sources"]` in LICENSES_SOURCES (spaCy's models' file for them)."""
    from spacy.cli.package import package

    with tempfile.TemporaryDirectory() as tmp:
        pipeline = Path(tmp) / "pipeline"
        meta = save_self_contained(model, pipeline, meta)
        srsly.write_json(pipeline / "meta.json", meta)
        (pipeline / "README.md").write_text(readme, encoding="utf8")
        if meta.get("sources"):
            (pipeline / "LICENSES_SOURCES").write_text(licenses_sources(meta["sources"]), encoding="utf8")
        out = Path(tmp) / "out"
        out.mkdir()
        package(pipeline, out, meta_path=pipeline / "meta.json", create_sdist=False, create_wheel=True,
                force=True, silent=silent)
        (wheel,) = out.glob("*/dist/*.whl")
        return _place(wheel, wheel_dir)


def _place(wheel: Path, wheel_dir: Path) -> Path:
    """Move a built wheel into the flat folder, replacing a file of the same name."""
    wheel_dir.mkdir(parents=True, exist_ok=True)
    target = wheel_dir / wheel.name
    shutil.copyfile(wheel, wheel_dir / f".{wheel.name}.tmp")
    os.replace(wheel_dir / f".{wheel.name}.tmp", target)
    return target


def wheel_requirements(wheel: Path) -> List[str]:
    """The Requires-Dist lines of a wheel's METADATA."""
    import zipfile

    with zipfile.ZipFile(wheel) as zf:
        (metadata,) = [n for n in zf.namelist() if n.endswith(".dist-info/METADATA")]
        text = zf.read(metadata).decode("utf8")
    return [line.split(":", 1)[1].strip() for line in text.splitlines() if line.startswith("Requires-Dist:")]
