"""Install the packaged model as a user would and score it on each corpus's test split.

`pip install --find-links WHEELS en_NAME` (its requirements resolved, no --no-deps) into a
fresh venv (--env fresh: torch first, the rest from the package index) or into the running
environment (--env current: from WHEELS only; it must already hold the plugin the model
pins). Then, in a new interpreter started in `/`, `spacy.load("en_NAME")` and per-corpus
scores on ROOT/corpus/CORPUS/test.spacy; with --expect, they must match the run's own
scores of the same model (ROOT/metrics/student.json).
"""
import argparse
import json
import sys
from pathlib import Path

from spacy_taughtnet.errors import TaughtNetError
from spacy_taughtnet.evaluate import format_table
from spacy_taughtnet.layout import RunLayout
from spacy_taughtnet.package import corpus_name, install_and_score, read_rows
from spacy_taughtnet.workflow import parse_corpora

# The installed model reads the same DocBins with the same weights: its F1 may differ from
# the run's only by float rounding (another numpy or thinc release in a fresh venv).
F1_TOLERANCE = 0.001


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("wheels", type=Path, help="the flat folder `package` wrote (packages/wheels)")
    parser.add_argument("name", help="the model's package name, e.g. en_taughtnet_bio")
    parser.add_argument("--root", type=Path, required=True, help="run folder with corpus/CORPUS/test.spacy")
    parser.add_argument("--corpora", required=True)
    parser.add_argument("--env", choices=("fresh", "current"), default="fresh")
    parser.add_argument("--venv", type=Path, help="--env fresh: create the venv here and keep it (default: a temporary one)")
    parser.add_argument("--preinstall", default="torch==2.13.0", help="--env fresh: installed first, space-separated (empty: nothing)")
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
    problems = [f"{r['corpus']}: no {r['entity_type']} entity found" for r in rows if r["f1"] == 0]
    for row in rows:
        want = expected.get(row["corpus"])
        if want and abs(row["f1"] - want["f1"]) > F1_TOLERANCE:
            problems.append(f"{row['corpus']}: F1 {row['f1']:.4f} installed, {want['f1']:.4f} in {args.expect}")
    if problems:
        sys.exit("Error: " + "; ".join(problems))
    print(f"{args.name}: spacy.load works and finds every type ({', '.join(result['labels'])})"
          + (f"; scores match {args.expect}" if expected else ""))


if __name__ == "__main__":
    main()
