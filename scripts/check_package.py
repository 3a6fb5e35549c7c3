"""Install the packaged model as a user would and score it on each corpus's test split.

`pip install --find-links WHEELS en_NAME` (its requirements resolved, no --no-deps) into a
fresh venv (--env fresh: --preinstall first, the rest from the package index) or into the
running environment (--env current: from WHEELS only; it must already hold the plugin the
model pins). Then, in a new interpreter started in `/`, `spacy.load("en_NAME")` and per-corpus
scores on ROOT/corpus/CORPUS/test.spacy; with --expect, they must match the run's own scores
of the same model (ROOT/metrics/student.json).

Release tooling, not part of the installed package: the `evaluate-package` step runs it.
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence

from spacy_taughtnet.errors import ConfigError, TaughtNetError
from spacy_taughtnet.evaluate import format_table
from spacy_taughtnet.layout import RunLayout
from spacy_taughtnet.model_card import corpus_name, read_rows
from spacy_taughtnet.package import wheel_requirements
from spacy_taughtnet.versions import PLUGIN, is_plugin_requirement
from spacy_taughtnet.workflow import parse_corpora

# The installed model reads the same DocBins with the same weights: its F1 may differ from
# the run's only by float rounding (another numpy or thinc release in a fresh venv).
F1_TOLERANCE = 0.001
# What a fresh venv gets before the model: the CPU torch the project is tested with.
PREINSTALL = "torch==2.13.0"

# Run by the environment under test, from another directory: the installed model and plugin
# only. Prints `spacy info NAME` (the model card as users see it), then the scores as JSON.
SCORE_INSTALLED = """
import json, sys
import spacy
import spacy_taughtnet
from spacy.cli.info import info
from spacy_taughtnet.evaluate import evaluate_corpus
info(sys.argv[1], silent=False)
nlp = spacy.load(sys.argv[1])
rows = [evaluate_corpus(nlp, path) for path in json.loads(sys.argv[2])]
print(json.dumps({"plugin_version": spacy_taughtnet.__version__, "plugin_file": spacy_taughtnet.__file__,
                  "model_path": str(nlp.path), "labels": list(nlp.get_pipe("ner").labels), "rows": rows}))
"""


def install_and_score(
    wheel_dir: Path,
    name: str,
    tests: Sequence[Path],
    *,
    fresh: bool,
    preinstall: Sequence[str] = (),
    venv: Optional[Path] = None,
) -> Dict:
    """Install the model `name` with `pip install --find-links WHEEL_DIR NAME` and score it on
    each test DocBin in a new interpreter started in the filesystem root.

    fresh: into a new venv (at `venv`, else a temporary one, removed after), after
    `preinstall`; its other requirements come from the package index. Otherwise into the
    running environment, from the wheel folder only (`--no-index`), which must already hold
    a plugin version the model accepts. Returns the scores and the seconds taken."""
    wheel_dir, tests = Path(wheel_dir).resolve(), [str(Path(t).resolve()) for t in tests]
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        if fresh:
            venv = Path(venv) if venv else Path(tmp) / "venv"
            subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
            python = str(venv / "bin" / "python")
            if preinstall:
                pip(python, "install", *preinstall)
            pip(python, "install", "--find-links", str(wheel_dir), name)
            pip(python, "check")
        else:
            python = sys.executable
            check_running_plugin(wheel_dir, name)
            pip(python, "uninstall", "--yes", name)
            pip(python, "install", "--no-index", "--find-links", str(wheel_dir), name)
        installed = time.perf_counter()
        env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
        result = subprocess.run([python, "-c", SCORE_INSTALLED, name, json.dumps(tests)], cwd="/", env=env,
                                check=True, stdout=subprocess.PIPE, text=True)
    info, scores = result.stdout.strip().rsplit("\n", 1)
    out = json.loads(scores)
    out.update(python=python, spacy_info=info, install_seconds=installed - start,
               seconds=time.perf_counter() - start)
    return out


def pip(python: str, *args: str) -> None:
    print("$ pip " + " ".join(args), flush=True)
    subprocess.run([python, "-m", "pip", *args, "--quiet", "--disable-pip-version-check"], check=True)


def check_running_plugin(wheel_dir: Path, name: str) -> None:
    """Refuse to install into the running environment a model whose plugin pin its installed
    plugin does not meet: pip would replace that plugin (an editable checkout) with the wheel."""
    from importlib.metadata import version as installed_version

    from packaging.requirements import Requirement

    wheel = model_wheel(wheel_dir, name)
    (pin,) = [Requirement(r) for r in wheel_requirements(wheel) if is_plugin_requirement(r)]
    have = installed_version(PLUGIN)
    if not pin.specifier.contains(have, prereleases=True):
        raise ConfigError(f"{wheel.name} requires {pin}, this environment has {PLUGIN} {have}: check it in a fresh venv")


def model_wheel(wheel_dir: Path, name: str, version: Optional[str] = None) -> Path:
    """The newest wheel of the model `name` (or of that version) in the flat folder."""
    from packaging.version import Version

    pattern = f"{re.sub('_+', '_', name)}-{version or '*'}-py3-none-any.whl"
    wheels = sorted(Path(wheel_dir).glob(pattern), key=lambda p: Version(p.name.split("-")[1]))
    if not wheels:
        raise ConfigError(f"{wheel_dir}: no wheel {pattern}; run `spacy project run package` first")
    return wheels[-1]


def score_problems(rows: Sequence[Mapping], expected: Mapping[str, Mapping], expect_path: Optional[Path]) -> List[str]:
    """What is wrong with the installed model's rows: a corpus with no entity found (unless the
    run scored 0 there too), or an F1 further than F1_TOLERANCE from the run's (`expected`:
    corpus -> row of `expect_path`)."""
    problems = []
    for row in rows:
        want = expected.get(row["corpus"])
        if row["f1"] == 0 and not (want and want["f1"] == 0):
            problems.append(f"{row['corpus']}: no {row['entity_type']} entity found")
        if want and abs(row["f1"] - want["f1"]) > F1_TOLERANCE:
            problems.append(f"{row['corpus']}: F1 {row['f1']:.4f} installed, {want['f1']:.4f} in {expect_path}")
    return problems


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("wheels", type=Path, help="the flat folder `package` wrote (packages/wheels)")
    parser.add_argument("name", help="the model's package name, e.g. en_taughtnet_bio")
    parser.add_argument("--root", type=Path, required=True, help="run folder with corpus/CORPUS/test.spacy")
    parser.add_argument("--corpora", required=True)
    parser.add_argument("--env", choices=("fresh", "current"), default="fresh")
    parser.add_argument("--venv", type=Path, help="--env fresh: create the venv here and keep it (default: a temporary one)")
    parser.add_argument("--preinstall", default=PREINSTALL, help="--env fresh: installed first, space-separated (empty: nothing)")
    parser.add_argument("--expect", type=Path, help="the run's scores of the packaged model (ROOT/metrics/student.json)")
    parser.add_argument("--output", type=Path, help="write the installed model's scores here (JSON)")
    args = parser.parse_args()
    try:
        corpora = parse_corpora(args.corpora)
        tests = [RunLayout(args.root).corpus(corpus, "test") for corpus in corpora]
        missing = [str(t) for t in tests if not t.is_file()]
        if missing:
            sys.exit(f"Error: no test DocBin {', '.join(missing)}; run the prepare step first")
        expected = {corpus_name(r): r for r in read_rows(args.expect)} if args.expect else {}
        result = install_and_score(args.wheels, args.name, tests, fresh=args.env == "fresh",
                                   preinstall=args.preinstall.split(), venv=args.venv)
    except TaughtNetError as err:
        sys.exit(f"Error: {err}")
    rows = [{**row, "corpus": corpus} for corpus, row in zip(corpora, result["rows"])]
    print(result["spacy_info"])
    print(f"{args.name} from {result['model_path']}, spacy-taughtnet {result['plugin_version']} from {result['plugin_file']}")
    print(format_table(rows, ("corpus", "entity_type", "precision", "recall", "f1", "words_per_second")))
    print(f"install: {result['install_seconds']:.0f} s, install and score: {result['seconds']:.0f} s ({args.env} env)")
    if args.output:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps({**result, "rows": rows}, indent=2) + "\n")
    problems = score_problems(rows, expected, args.expect)
    if problems:
        sys.exit("Error: " + "; ".join(problems))
    print(f"{args.name}: spacy.load works and finds every type ({', '.join(result['labels'])})"
          + (f"; scores match {args.expect}" if expected else ""))


if __name__ == "__main__":
    main()
