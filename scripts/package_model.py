"""Build the installable model and the plugin it needs, as two wheels in one flat folder.

The model's wheel (`spacy package`) carries the trained pipeline made self-contained (its
`taughtnet_ner` pipe with its own copy of the tok2vec it listened to in training, so that it
can be sourced into any pipeline; the same weights, the same scores), its model card (meta.json
and README: corpora, licence, method, per-corpus test scores from the evaluate-all step,
training command) and requires spacy-taughtnet of the same minor version; the plugin's wheel is built from the
source checkout of the spacy_taughtnet this interpreter imports (or --plugin-source).
Then `pip install --find-links WHEELS en_NAME` installs the model on any machine.
"""
import argparse
import sys
from pathlib import Path

import srsly
from spacy.util import load_config

import spacy_taughtnet
from spacy_taughtnet.errors import TaughtNetError
from spacy_taughtnet.model_card import (  # duplicates check: an import block, alike wherever these names are imported
    card_readme,
    check_training_vars,
    corpus_name,
    corpus_sources,
    heads_method,
    model_card,
    read_rows,
    training_command,
)
from spacy_taughtnet.package import (
    build_model_wheel,
    build_plugin_wheel,
    plugin_version,
    wheel_requirements,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path, help="trained pipeline folder (e.g. training/student/model-best)")
    parser.add_argument("wheels", type=Path, help="flat folder for both wheels (e.g. packages/wheels)")
    parser.add_argument("--name", required=True, help="package name without the language prefix")
    parser.add_argument("--version", required=True)
    parser.add_argument("--metrics", type=Path, required=True,
                        help="the model's per-corpus test scores (ROOT/metrics/student.json, or `evaluate --output`)")
    parser.add_argument("--teacher-metrics", type=Path, help="the teachers' (ROOT/metrics/teachers.json), shown beside them")
    parser.add_argument("--project", type=Path, default=Path("project.yml"), help="project.yml: corpus URLs and licences")
    parser.add_argument("--var", action="append", default=[], metavar="KEY=VALUE",
                        help="a project var of the training run, for the model card's training command: all of "
                             "spacy_taughtnet.model_card.TRAINING_VARS, or none (no command on the card) (repeatable)")
    parser.add_argument("--license", default="CC BY 4.0", help="the model's licence (default: its corpora's)")
    parser.add_argument("--author", default="")
    parser.add_argument("--url", default="")
    parser.add_argument("--email", default="")
    parser.add_argument("--plugin-source", type=Path, help="spacy-taughtnet source checkout (default: the imported one's)")
    args = parser.parse_args()
    used = dict(var.split("=", 1) for var in args.var if "=" in var)
    if len(used) != len(args.var):
        parser.error("--var takes KEY=VALUE")
    source = args.plugin_source or Path(spacy_taughtnet.__file__).resolve().parent.parent
    try:
        version = plugin_version(source)
        rows = read_rows(args.metrics)
        teacher_rows = read_rows(args.teacher_metrics) if args.teacher_metrics else []
        config = load_config(args.model / "config.cfg", interpolate=True)
        check_training_vars(config, used)
        meta = srsly.read_json(args.model / "meta.json")
        meta.update(name=args.name, version=args.version)
        card = model_card(meta, rows, teacher_rows=teacher_rows, version=version,
                          sources=corpus_sources(args.project, [corpus_name(r) for r in rows]),
                          license=args.license, author=args.author, url=args.url, email=args.email)
        readme = card_readme(card, method=heads_method(args.model), training=training_command(used) if used else "",
                             project_file=args.project)
        plugin = build_plugin_wheel(source, args.wheels)
        model = build_model_wheel(args.model, card, readme, args.wheels, silent=False)
    except TaughtNetError as err:
        sys.exit(f"Error: {err}")
    print(f"{plugin}\n{model}\n  requires: {', '.join(wheel_requirements(model))}")
    print(f"Install anywhere: pip install --find-links {args.wheels} en_{args.name}")


if __name__ == "__main__":
    main()
