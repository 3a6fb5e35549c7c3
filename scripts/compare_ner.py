"""Single-type NER on one corpus: `taughtnet_ner` (configs/teacher.cfg) against spaCy's
stock transition-based `ner` (configs/stock_ner.cfg), same tok2vec, same step budget,
model selection on devel, seqeval on test. Prints a table and writes a JSON file.

    python scripts/compare_ner.py assets/NCBI-disease-IOB --steps 3000 --output metrics/compare_ner.json
"""
import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import spacy

from spacy_taughtnet.atomic import atomic_path
from spacy_taughtnet.corpora import read_iob, write_docbin
from spacy_taughtnet.evaluate import evaluate_corpus, format_table
from spacy_taughtnet.layout import best_model

CONFIGS = {"taughtnet_ner": "configs/teacher.cfg", "stock ner": "configs/stock_ner.cfg"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("corpus", type=Path, help="corpus folder with train.tsv, devel.tsv, test.tsv")
    parser.add_argument("--steps", type=int, default=3000)
    parser.add_argument("--output", type=Path, default=None)
    args = parser.parse_args()
    project = Path(__file__).resolve().parent.parent
    vocab = spacy.blank("en").vocab
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        for split, filename in (("train", "train.tsv"), ("dev", "devel.tsv"), ("test", "test.tsv")):
            write_docbin(read_iob(args.corpus / filename, vocab), tmp / f"{split}.spacy")
        for system, config in CONFIGS.items():
            output = tmp / system.replace(" ", "_")
            start = time.perf_counter()
            subprocess.run(
                [sys.executable, "-m", "spacy", "train", str(project / config), "--output", str(output),
                 "--paths.train", str(tmp / "train.spacy"), "--paths.dev", str(tmp / "dev.spacy"),
                 "--training.max_steps", str(args.steps)],
                check=True, stdout=subprocess.DEVNULL,
            )
            train_seconds = time.perf_counter() - start
            nlp = spacy.load(best_model(output))
            row = {"model": system, **evaluate_corpus(nlp, tmp / "test.spacy"), "corpus": args.corpus.name}
            row["train_seconds"] = round(train_seconds, 1)
            row["words_per_second"] = round(row["words_per_second"])
            rows.append(row)
            print(format_table(rows[-1:], ("model", "corpus", "precision", "recall", "f1", "words_per_second", "train_seconds")), flush=True)
    print(format_table(rows, ("model", "corpus", "precision", "recall", "f1", "words_per_second", "train_seconds")))
    if args.output:
        with atomic_path(args.output) as out:
            out.write_text(json.dumps({"steps": args.steps, "rows": rows}, indent=2) + "\n")


if __name__ == "__main__":
    main()
