"""Single-type NER on one corpus: `taughtnet_ner` (configs/teacher.cfg) against spaCy's stock
transition-based `ner` (configs/stock_ner.cfg), same tok2vec, same step budget, model
selection on devel, seqeval on test."""
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

from .tables import pct

CONFIGS = {"taughtnet_ner": "configs/teacher.cfg", "stock ner": "configs/stock_ner.cfg"}
COLUMNS = ("model", "corpus", "precision", "recall", "f1", "words_per_second", "train_seconds")


def measure(corpus: Path, steps: int) -> Dict:
    """Train both systems on the corpus folder's train.tsv (devel.tsv for selection) and score
    them on test.tsv; the results as benchmarks/compare_ner.json holds them."""
    import spacy

    from ..corpora import read_iob, write_docbin
    from ..evaluate import evaluate_corpus, format_table
    from ..layout import best_model

    vocab = spacy.blank("en").vocab
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for split, filename in (("train", "train.tsv"), ("dev", "devel.tsv"), ("test", "test.tsv")):
            write_docbin(read_iob(corpus / filename, vocab), tmp / f"{split}.spacy")
        for system, config in CONFIGS.items():
            output = tmp / system.replace(" ", "_")
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "spacy", "train", config, "--output", str(output),
                 "--paths.train", str(tmp / "train.spacy"), "--paths.dev", str(tmp / "dev.spacy"),
                 "--training.max_steps", str(steps)],
                check=True, stdout=subprocess.DEVNULL,
            )
            train_seconds = time.perf_counter() - start
            row = {"model": system, **evaluate_corpus(spacy.load(best_model(output)), tmp / "test.spacy"), "corpus": corpus.name}
            row["train_seconds"] = round(train_seconds, 1)
            row["words_per_second"] = round(row["words_per_second"])
            rows.append(row)
            print(format_table(rows[-1:], COLUMNS), flush=True)
    return {"command": f"python -m spacy_taughtnet benchmark compare-ner {corpus} --steps {steps}", "steps": steps, "rows": rows}


def section(results: Dict) -> List[str]:
    """The markdown of benchmarks/compare_ner.json."""
    corpus = results["rows"][0]["corpus"]
    return [
        "## `taughtnet_ner` against spaCy's `ner`, one type", "",
        f"Produced by `{results['command']}`: each trained {results['steps']} steps on {corpus} with the same tok2vec, "
        "selected on devel, scored on test; every figure is in `benchmarks/compare_ner.json`.", "",
        "| | precision | recall | F1 | words/s (test) | training (s) |", "|---|---|---|---|---|---|",
        *(f"| `{row['model']}` | {pct(row['precision'])} | {pct(row['recall'])} | {pct(row['f1'])} | "
          f"{row['words_per_second']:,} | {row['train_seconds']:.0f} |" for row in results["rows"]),
    ]
