"""Install a packaged model and check that `spacy.load(name)` finds every entity type.

The sample text of each type is a few training sentences of its corpus that hold
entities of that type; the check runs in a fresh interpreter, as a user would.
"""
import argparse
import json
import subprocess
import sys
import zipfile
from pathlib import Path

import spacy

from spacy_taughtnet.corpora import doc_entity_type, read_docbin

CHECK = """
import json, sys
import spacy
samples = json.loads(sys.argv[1])
nlp = spacy.load(sys.argv[2])
missing = []
for ent_type, text in samples.items():
    ents = [(e.text, e.label_, round(e._.taughtnet_confidence, 3)) for e in nlp(text).ents]
    print(f"{ent_type}: {ents}")
    if not any(label == ent_type for _, label, _ in ents):
        missing.append(ent_type)
if missing:
    sys.exit(f"Error: no entity of type(s) {missing} found in their sample texts")
print(f"{sys.argv[2]}: spacy.load works and finds every type ({nlp.get_pipe('ner').labels})")
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("package_dir", type=Path, help="packages/en_NAME-VERSION")
    parser.add_argument("--root", type=Path, required=True, help="run folder with corpus/")
    parser.add_argument("--corpora", required=True)
    parser.add_argument("--sentences", type=int, default=3)
    args = parser.parse_args()
    wheels = sorted((args.package_dir / "dist").glob("*.whl"))
    if not wheels:
        sys.exit(f"Error: no wheel under {args.package_dir}/dist; run `spacy project run package` first")
    with zipfile.ZipFile(wheels[-1]) as wheel:
        metadata = next(n for n in wheel.namelist() if n.endswith(".dist-info/METADATA"))
        requires = [line for line in wheel.read(metadata).decode().splitlines() if line.startswith("Requires-Dist:")]
    if not any("spacy-taughtnet" in line for line in requires):
        sys.exit(f"Error: {wheels[-1]} does not require spacy-taughtnet: {requires}")
    subprocess.run([sys.executable, "-m", "pip", "install", "--no-deps", "--force-reinstall", "-q", str(wheels[-1])], check=True)
    vocab = spacy.blank("en").vocab
    samples = {}
    for corpus in args.corpora.replace(",", " ").split():
        docs = read_docbin(args.root / "corpus" / corpus / "train.spacy", vocab)
        with_ents = [doc.text for doc in docs if doc.ents][: args.sentences]
        samples[doc_entity_type(docs[0])] = " ".join(with_ents)
    name = wheels[-1].name.split("-")[0]
    subprocess.run([sys.executable, "-c", CHECK, json.dumps(samples), name], check=True)


if __name__ == "__main__":
    main()
