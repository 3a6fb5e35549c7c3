"""The installable model's card: its meta.json (`model_card`: the test scores per corpus, the
sources and their licences, the plugin requirement) and its README (`card_readme`: install,
use, method, corpora, training command, citation), from the metrics that `evaluate-all` wrote.
The wheels that carry them are package.py's.
"""
import json
import re
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Union

import srsly

from .errors import ConfigError
from .versions import PLUGIN, is_plugin_requirement, plugin_requirement

CITATION = (
    "Moscato, Postiglione, Sansone, Sperlì, \"TaughtNet: Learning Multi-Task Biomedical Named Entity "
    "Recognition From Single-Task Teachers\", IEEE Journal of Biomedical and Health Informatics "
    "27(5):2512-2523, 2023, doi:10.1109/JBHI.2023.3244044"
)
BIBTEX = """@article{moscato2023taughtnet,
  author = {Moscato and Postiglione and Sansone and Sperl{\\`i}},
  title = {TaughtNet: Learning Multi-Task Biomedical Named Entity Recognition From Single-Task Teachers},
  journal = {IEEE Journal of Biomedical and Health Informatics},
  volume = {27},
  number = {5},
  pages = {2512--2523},
  year = {2023},
  doi = {10.1109/JBHI.2023.3244044}
}"""
# The project vars that shape the trained model, in the order the training command lists them:
# every var of the `all` workflow's steps but where things are (root, corpora_dir, transfer_dir:
# the same corpora and text, checked by their MD5s) and the device (gpu_id). project.yml's
# package step passes each (--var); tests/test_package.py checks both lists against project.yml.
TRAINING_VARS = (
    "corpora", "limit", "teachers_spec", "teacher_config", "student_config", "transformer",
    "transformer_case", "teacher_max_steps", "student_max_steps", "eval_frequency",
    "student_eval_frequency", "transfer_sources", "transfer_limit", "labelled_repeats",
    "transfer_patience", "pretrain_epochs", "pretrain_seed", "init_tok2vec", "normalize",
    "lambda", "temperature", "seed",
)
NOT_TRAINING_VARS = ("root", "corpora_dir", "transfer_dir", "gpu_id")


def corpus_name(row: Mapping) -> str:
    """The corpus of a metrics row: `evaluate-all` writes its name, `evaluate` its test DocBin path."""
    path = Path(row["corpus"])
    return path.parent.name if path.suffix == ".spacy" else path.name


def corpus_sources(project_file: Path, corpora: Sequence[str]) -> List[Dict[str, str]]:
    """One `sources` entry per corpus from the project's assets (assets/CORPUS/SPLIT.tsv): its
    folder URL and the licence the assets' descriptions name in their closing parentheses.
    A corpus without assets (a local folder) is listed by name only."""
    assets = srsly.read_yaml(project_file).get("assets", []) if Path(project_file).is_file() else []
    sources = []
    for corpus in corpora:
        mine = [a for a in assets if Path(a.get("dest", "")).parent.name == corpus and "url" in a]
        source = {"name": corpus}
        if mine:
            source["url"] = corpus_folder_url(mine[0]["url"])
            licences = {m.group(1) for a in mine if (m := re.search(r"\(([^()]+)\)\s*$", a.get("description", "")))}
            if len(licences) == 1:
                source["license"] = licences.pop()
        sources.append(source)
    return sources


def corpus_folder_url(file_url: str) -> str:
    """The web page of a corpus file's folder: raw.githubusercontent.com files map to their
    github.com folder page, other URLs to their parent."""
    match = re.fullmatch(r"https://raw\.githubusercontent\.com/([^/]+)/([^/]+)/([^/]+)/(.*)/[^/]+", file_url)
    if match:
        owner, repo, branch, folder = match.groups()
        return f"https://github.com/{owner}/{repo}/tree/{branch}/{folder}"
    return file_url.rsplit("/", 1)[0] + "/"


def training_command(used: Mapping[str, str]) -> str:
    """`spacy project run all .` with every var of TRAINING_VARS, as `used` (the training
    run's) gives it: the command trains this model whatever the project's defaults become.
    A var missing from `used` is refused: the command would not be the run's."""
    missing = [key for key in TRAINING_VARS if key not in used]
    if missing:
        raise ConfigError(f"the training command needs every var of the run; missing: {', '.join(missing)} (--var KEY=VALUE)")
    parts = ["spacy project run all ."]
    for key in TRAINING_VARS:
        value = str(used[key])
        parts.append(f"--vars.{key} " + (f'"{value}"' if not value or " " in value else value))
    return " ".join(parts)


# Training vars that the student's saved config records: (section path, key) of each.
STUDENT_CONFIG_VARS = {
    "seed": (("training",), "seed"),
    "student_max_steps": (("training",), "max_steps"),
    "student_eval_frequency": (("training",), "eval_frequency"),
    "lambda": (("components", "*", "loss"), "lambda_"),
    "temperature": (("components", "*", "loss"), "temperature"),
}


def check_training_vars(config: Mapping, used: Mapping[str, str]) -> None:
    """Refuse vars for the training command that the student's config contradicts (vars not
    given to `package` as they were to `all`): the card would show a command that did not
    make this model. `*` is the `taughtnet_ner` component, whatever its name."""
    pipes = [name for name, c in config.get("components", {}).items() if c.get("factory") == "taughtnet_ner"]
    wrong = []
    for var, (path, key) in STUDENT_CONFIG_VARS.items():
        if var not in used or len(pipes) != 1:
            continue
        section = config
        for part in path:
            section = section.get(pipes[0] if part == "*" else part, {})
        if key in section and float(section[key]) != float(used[var]):
            wrong.append(f"{var} {used[var]} (the student's config: {key} = {section[key]})")
    if wrong:
        raise ConfigError(f"vars that did not train this model: {'; '.join(wrong)}; give `package` the vars of its `all` run")


def _pct(value: float) -> str:
    return f"{value * 100:.2f}"


def headline(row: Mapping) -> Mapping:
    """The figures users read of an evaluation row: those of doc.ents (`doc_ents`, where the
    pipe keeps each type's predictions in a span group), else the row's own."""
    return row.get("doc_ents") or row


def score_table(student_rows: Sequence[Mapping], teacher_rows: Sequence[Mapping] = ()) -> str:
    """Markdown: per corpus, the student's test P/R/F1 on doc.ents and words/s (and its span
    group's F1, its teacher's F1)."""
    teacher_f1 = {corpus_name(row): row["f1"] for row in teacher_rows}
    with_spans = any("doc_ents" in row for row in student_rows)
    header = (["corpus", "type", "precision", "recall", "F1"] + (["span group F1"] if with_spans else [])
              + (["teacher F1"] if teacher_f1 else []) + ["words/s"])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in student_rows:
        corpus, ents = corpus_name(row), headline(row)
        cells = [corpus, row["entity_type"], _pct(ents["precision"]), _pct(ents["recall"]), _pct(ents["f1"])]
        if with_spans:
            cells.append(_pct(row["f1"]))
        if teacher_f1:
            cells.append(_pct(teacher_f1[corpus]) if corpus in teacher_f1 else "-")
        cells.append(f"{row['words_per_second']:,.0f}" if row.get("words_per_second") else "-")
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def model_card(
    meta: Mapping,
    student_rows: Sequence[Mapping],
    *,
    teacher_rows: Sequence[Mapping] = (),
    sources: Sequence[Mapping[str, str]] = (),
    version: str,
    license: str,
    author: str = "",
    url: str = "",
    email: str = "",
) -> Dict:
    """The model's meta.json: `meta` (the trained pipeline's) with the model card.

    `spacy info` prints `description` (one line with each corpus's test P/R/F1), `notes` (the
    per-corpus table with words/s and the teachers' F1) and `sources`; `performance` holds the
    same figures (`per_corpus` rows, spaCy's `ents_per_type`, `speed` in words/s over all test
    splits); `requirements` pins the plugin to the minor version of `version`. A label of the
    model with no scored corpus (a type only a pipeline teacher supplies) is named as not
    evaluated in `description`, `notes` and `performance["not_evaluated"]`.
    """
    if not student_rows:
        raise ConfigError("no per-corpus test scores of the student: run the evaluate-all step first")
    card = {k: v for k, v in meta.items() if k not in ("performance", "description", "notes", "sources")}
    types = [row["entity_type"] for row in student_rows]
    labels = dict.fromkeys(label for pipe_labels in meta.get("labels", {}).values() for label in pipe_labels)
    untested = [label for label in labels if label not in types]
    teacher_f1 = {corpus_name(row): row["f1"] for row in teacher_rows}
    per_corpus = []
    for row in student_rows:
        entry = {"corpus": corpus_name(row), "entity_type": row["entity_type"]}
        entry.update({k: headline(row)[k] for k in ("precision", "recall", "f1")})
        entry.update({k: row[k] for k in ("n_docs", "n_words", "words_per_second")})
        if "doc_ents" in row:
            entry["span_group"] = {k: row[k] for k in ("precision", "recall", "f1")}
        if entry["corpus"] in teacher_f1:
            entry["teacher_f1"] = teacher_f1[entry["corpus"]]
        per_corpus.append(entry)
    timed = [row for row in student_rows if row.get("words_per_second")]
    speed = sum(r["n_words"] for r in timed) / sum(r["n_words"] / r["words_per_second"] for r in timed) if timed else None
    card["performance"] = {
        "per_corpus": per_corpus,
        "ents_per_type": {row["entity_type"]: {"p": row["precision"], "r": row["recall"], "f": row["f1"]} for row in per_corpus},
        "speed": speed,
    }
    if untested:
        card["performance"]["not_evaluated"] = untested
    scores = "; ".join(
        f"{r['corpus']} {r['entity_type']} {_pct(r['precision'])}/{_pct(r['recall'])}/{_pct(r['f1'])}" for r in per_corpus
    )
    # One line: setuptools makes it the wheel's Summary. The full table goes to `notes`,
    # which `spacy info` prints too and spaCy's README generator appends.
    unscored = (
        f"Not evaluated: {', '.join(untested)} (no corpus with gold for {'it' if len(untested) == 1 else 'them'}: "
        "learnt from the teachers alone)." if untested else ""
    )
    card["description"] = (
        f"Biomedical NER of {', '.join(labels or types)}: one `taughtnet_ner` pipe distilled from single-type NER "
        f"teachers (after TaughtNet, Moscato et al., IEEE JBHI 2023). Test P/R/F1 (%) of doc.ents, each corpus on "
        f"its own type: "
        f"{scores}. {unscored + ' ' if unscored else ''}Trained with {PLUGIN} {version}."
    )
    card["notes"] = (
        "### Test scores per corpus\n\n"
        "Test split of each corpus, scored on that corpus's own entity type (seqeval, entity level, "
        "exact match; %) in `doc.ents`, and, where the pipe keeps each type's own predictions in a span "
        "group, in that group (`doc.spans`); words/s of `nlp.pipe` over that split on the CPU of the machine that "
        "ran the evaluation:\n\n" + score_table(student_rows, teacher_rows)
    )
    if untested:
        card["notes"] += (
            f"\n\n**{unscored}** Only a pipeline teacher supplies "
            f"{'this type' if len(untested) == 1 else 'these types'}: the model predicts "
            f"{'it' if len(untested) == 1 else 'them'}, but no test score exists, and model selection "
            "did not look at them (it scores the types with devel data)."
        )
    card["sources"] = [dict(source) for source in sources]
    card["license"] = license
    for key, value in (("author", author), ("url", url), ("email", email)):
        if value:
            card[key] = value
        else:
            card.pop(key, None)
    requirement = plugin_requirement(version)
    card["requirements"] = [r for r in meta.get("requirements", []) if not is_plugin_requirement(r)] + [requirement]
    return card


def heads_method(model: Path) -> str:
    """The method paragraph of a trained pipeline's `taughtnet_ner` pipe: its heads' (heads.py)."""
    import spacy

    from .teachers import find_taughtnet_pipe

    _, pipe = find_taughtnet_pipe(spacy.load(model), str(model))
    return pipe.strategy.method


def card_readme(meta: Mapping, *, method: str, training: str = "", project_file: Optional[Path] = None) -> str:
    """The package README: spaCy's (description, features, labels), then how to install and
    use the model, the method (`method`: the paragraph of the student's heads, `heads_method`),
    the corpora with their file URLs, the training command and the citation."""
    from spacy.cli.package import generate_readme

    name = f"{meta['lang']}_{meta['name']}"
    text = generate_readme({k: v for k, v in meta.items() if k != "performance"})
    lines = [
        f"# {name}", "", text.rstrip(), "",
        "## Install", "",
        f"Both wheels, `{name}` and the `{PLUGIN}` plugin its `taughtnet_ner` pipe comes from, in one folder "
        "or web page (a release page, a private index):", "",
        "```bash", f"pip install --find-links WHEELS {name}", "```", "",
        "## Use", "",
        "```python", "import spacy", "", f'nlp = spacy.load("{name}")',
        'doc = nlp("Cisplatin-induced nephrotoxicity is reduced in mice lacking the TNF receptor.")',
        "print([(ent.text, ent.label_) for ent in doc.ents])", "```", "",
        "## Method", "",
        "Public biomedical NER corpora each annotate one entity type. A single-type teacher is trained "
        "per corpus (other spaCy NER pipelines may teach too, their labels mapped onto the student's); every teacher runs over the union of the corpora. "
        + method,
        "",
    ]
    if project_file is not None and Path(project_file).is_file():
        lines += _corpus_files(meta.get("sources", []), project_file)
    if training:
        lines += ["## Training", "", f"With the `{PLUGIN}` project (`project.yml`), then `spacy project run package`:", "",
                  "```bash", training, "```", ""]
    lines += ["## Citation", "", CITATION + ".", "", "```bibtex", BIBTEX, "```", ""]
    return "\n".join(lines)


def _corpus_files(sources: Sequence[Mapping], project_file: Path) -> List[str]:
    assets = srsly.read_yaml(project_file).get("assets", [])
    lines = ["## Corpora", "", "| corpus | licence | files |", "|---|---|---|"]
    for source in sources:
        files = [a for a in assets if Path(a.get("dest", "")).parent.name == source["name"] and "url" in a]
        links = ", ".join(f"[{Path(a['dest']).stem}]({a['url']}) (md5 `{a['checksum']}`)" if a.get("checksum") else
                          f"[{Path(a['dest']).stem}]({a['url']})" for a in files)
        lines.append(f"| {source['name']} | {source.get('license', 'not recorded')} | {links or 'a local folder'} |")
    return lines + [""]


def licenses_sources(sources: Sequence[Mapping[str, str]]) -> str:
    """LICENSES_SOURCES: each training corpus, where it comes from and under which licence."""
    blocks = [f"{s['name']}\n{'-' * len(s['name'])}\nURL: {s.get('url', 'a local folder')}\n"
              f"Licence: {s.get('license', 'not recorded')}\n" for s in sources]
    return "Training data of this model\n\n" + "\n".join(blocks)


def read_rows(path: Union[str, Path]) -> List[Dict]:
    """Metrics rows written by `evaluate-all` or `evaluate --output`."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no metrics here; run the evaluate-all step first")
    return json.loads(path.read_text(encoding="utf8"))
