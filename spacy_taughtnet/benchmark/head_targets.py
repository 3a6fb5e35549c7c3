"""Where per-type heads take their teacher targets (the pipe's `head_targets`: each type's own
teachers, the type's marginals of TaughtNet's aggregated distribution, or their mean), chosen on
devel: students trained alike but for that setting, each scored on the devel split of every
corpus of one run folder, by its span group (each type's own predictions) and by doc.ents."""
from pathlib import Path
from typing import Dict, List, Sequence

from .tables import pct


def measure(root: Path, models: Sequence[Path], corpora: Sequence[str]) -> Dict:
    """Score each student (a saved pipeline) on each corpus's devel split in ROOT; the results
    as benchmarks/head_targets.json holds them."""
    import spacy

    from ..errors import ConfigError
    from ..evaluate import evaluate_corpus
    from ..layout import RunLayout

    layout = RunLayout(root)
    rows: List[Dict] = []
    for model in models:
        nlp = spacy.load(model)
        if "ner" not in nlp.pipe_names or "head_targets" not in nlp.get_pipe("ner").cfg:
            raise ConfigError(f"{model}: no taughtnet_ner pipe named 'ner' with head_targets")
        setting = nlp.get_pipe("ner").cfg["head_targets"]
        for corpus in corpora:
            row = evaluate_corpus(nlp, layout.corpus(corpus, "dev"))
            rows.append({"model": str(model), "head_targets": setting, "corpus": corpus,
                         "spans_f1": row["f1"], "doc_ents_f1": row["doc_ents"]["f1"]})
            print(f"{setting:<11} {corpus:<20} spans F1 {pct(row['f1'])}  doc.ents F1 {pct(row['doc_ents']['f1'])}", flush=True)
    models_text = " ".join(str(model) for model in models)
    return {
        "command": f"python -m spacy_taughtnet benchmark head-targets {root} {models_text} --corpora \"{' '.join(corpora)}\"",
        "rows": rows,
    }


def section(results: Dict) -> List[str]:
    """The markdown of benchmarks/head_targets.json."""
    corpora = list(dict.fromkeys(row["corpus"] for row in results["rows"]))
    models = list(dict.fromkeys((row["model"], row["head_targets"]) for row in results["rows"]))
    by = {(row["model"], row["corpus"]): row for row in results["rows"]}
    lines = [
        "## Per-type heads' teacher targets (devel)", "",
        f"Produced by `{results['command']}`: students trained alike but for "
        "`head_targets` (`own`: each type's own teachers; `aggregated`: the type's marginals of TaughtNet's "
        "aggregated global distribution; `mix`: their mean), each scored on the devel split of every corpus. "
        "Span group F1 (each type's own predictions), then `doc.ents` F1.", "",
        "| `head_targets` | student | " + " | ".join(f"{c} spans" for c in corpora) + " | spans macro | `doc.ents` macro |",
        "|---|---|" + "---|" * (len(corpora) + 2),
    ]
    for model, setting in models:
        spans = [by[model, c]["spans_f1"] for c in corpora]
        ents = [by[model, c]["doc_ents_f1"] for c in corpora]
        lines.append(f"| `{setting}` | {model} | " + " | ".join(pct(v) for v in spans)
                     + f" | {pct(sum(spans) / len(spans))} | {pct(sum(ents) / len(ents))} |")
    return lines
