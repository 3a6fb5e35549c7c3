"""Build the installable model package (sdist and wheel) from a trained pipeline.

Wraps `spacy package`, making sure the package requires spacy-taughtnet: the pipeline's
`taughtnet_ner` factory lives there, and `spacy.load` fails on a machine without it.
"""
import argparse
import tempfile
from pathlib import Path

import srsly
from spacy.cli.package import package

import spacy_taughtnet


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("model", type=Path, help="trained pipeline folder (e.g. training/student/model-best)")
    parser.add_argument("output", type=Path, help="folder for the package (e.g. packages)")
    parser.add_argument("--name", required=True, help="package name without the language prefix")
    parser.add_argument("--version", required=True)
    args = parser.parse_args()
    meta = srsly.read_json(args.model / "meta.json")
    major, minor = spacy_taughtnet.__version__.split(".")[:2]
    plugin = f"spacy-taughtnet>={spacy_taughtnet.__version__},<{major}.{int(minor) + 1}.0"
    meta["requirements"] = [r for r in meta.get("requirements", []) if not r.startswith("spacy-taughtnet")] + [plugin]
    labels = meta.get("labels", {}).get("ner", [])
    meta["description"] = (
        "Multi-type biomedical NER distilled from single-type teachers (TaughtNet); "
        f"entity types: {', '.join(labels)}"
    )
    args.output.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        meta_path = Path(tmp) / "meta.json"
        srsly.write_json(meta_path, meta)
        package(args.model, args.output, meta_path=meta_path, name=args.name, version=args.version,
                create_sdist=True, create_wheel=True, force=True, silent=False)
    print(f"requirements: {meta['requirements']}")


if __name__ == "__main__":
    main()
