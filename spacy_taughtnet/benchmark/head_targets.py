"""Where per-type heads take their teacher targets (the pipe's `head_targets`: each type's own
teachers, the type's marginals of TaughtNet's aggregated distribution, or their mean), chosen on
devel: students trained alike but for that setting, each scored on the devel split of every
corpus of one run folder, by its span group (each type's own predictions) and by doc.ents.
`devel_results` and `devel_table` serve every such comparison (merges.py too)."""
from pathlib import Path
from typing import Callable, Dict, List, Sequence, Tuple

from .tables import pct


def devel_results(
    command: str, root: Path, items: Sequence[Path], corpora: Sequence[str], field: str,
    student_of: Callable[[Path], Tuple[str, Path]],
) -> Dict:
    """The results of `benchmark COMMAND ROOT ITEM...`: each item's student (student_of gives
    its setting, under `field`, and its saved pipeline) scored on each corpus's devel split in
    ROOT, one row per student and corpus."""
    import spacy

    from ..evaluate import evaluate_corpus
    from ..layout import RunLayout

    layout = RunLayout(root)
    students = [student_of(item) for item in items]
    rows: List[Dict] = []
    for setting, model in students:
        nlp = spacy.load(model)
        for corpus in corpora:
            row = evaluate_corpus(nlp, layout.corpus(corpus, "dev"))
            rows.append({"model": str(model), field: setting, "corpus": corpus,
                         "spans_f1": row["f1"], "doc_ents_f1": row["doc_ents"]["f1"]})
            print(f"{setting:<11} {corpus:<20} spans F1 {pct(row['f1'])}  doc.ents F1 {pct(row['doc_ents']['f1'])}", flush=True)
    items_text = " ".join(str(item) for item in items)
    return {"command": f"python -m spacy_taughtnet benchmark {command} {root} {items_text} --corpora \"{' '.join(corpora)}\"", "rows": rows}


def devel_table(results: Dict, field: str, heading: str, what: str) -> List[str]:
    """The markdown of a devel comparison: per student, its setting (`field`), span group F1 per
    corpus and its macro, then the doc.ents macro."""
    corpora = list(dict.fromkeys(row["corpus"] for row in results["rows"]))
    models = list(dict.fromkeys((row["model"], row[field]) for row in results["rows"]))
    by = {(row["model"], row["corpus"]): row for row in results["rows"]}
    lines = [
        f"## {heading} (devel)", "",
        f"Produced by `{results['command']}`: {what}, each scored on the devel split of every corpus. "
        "Span group F1 (each type's own predictions), then `doc.ents` F1.", "",
        f"| `{field}` | student | " + " | ".join(f"{c} spans" for c in corpora) + " | spans macro | `doc.ents` macro |",
        "|---|---|" + "---|" * (len(corpora) + 2),
    ]
    for model, setting in models:
        spans = [by[model, c]["spans_f1"] for c in corpora]
        ents = [by[model, c]["doc_ents_f1"] for c in corpora]
        lines.append(f"| `{setting}` | {model} | " + " | ".join(pct(v) for v in spans)
                     + f" | {pct(sum(spans) / len(spans))} | {pct(sum(ents) / len(ents))} |")
    return lines


def measure(root: Path, models: Sequence[Path], corpora: Sequence[str]) -> Dict:
    """Score each student (a saved pipeline) on each corpus's devel split in ROOT; the results
    as benchmarks/head_targets.json holds them."""
    return devel_results("head-targets", root, models, corpora, "head_targets", _head_targets_of)


def _head_targets_of(model: Path) -> Tuple[str, Path]:
    """The student's head_targets, read from its saved config (devel_results loads it once, to score)."""
    from spacy.util import load_config

    from ..errors import ConfigError

    path = Path(model) / "config.cfg"
    config = load_config(path) if path.is_file() else None
    if config is None or "ner" not in config["nlp"]["pipeline"] or "head_targets" not in config["components"].get("ner", {}):
        raise ConfigError(f"{model}: no taughtnet_ner pipe named 'ner' with head_targets")
    return config["components"]["ner"]["head_targets"], model


def section(results: Dict) -> List[str]:
    """The markdown of benchmarks/head_targets.json."""
    return devel_table(
        results, "head_targets", "Per-type heads' teacher targets",
        "students trained alike but for `head_targets` (`own`: each type's own teachers; `aggregated`: the type's "
        "marginals of TaughtNet's aggregated global distribution; `mix`: their mean)",
    )
