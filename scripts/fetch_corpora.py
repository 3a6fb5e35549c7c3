"""Put each corpus's train/devel/test TSV under assets/, from a local folder or the network.

The URLs and MD5 checksums come from the `assets` list of project.yml; files are checked
against them wherever they come from. A corpus without assets entries (one you added) is
copied from --source-dir as it is.
"""
import argparse
import hashlib
import shutil
import sys
import urllib.request
from pathlib import Path

import srsly

SPLIT_FILES = ("train.tsv", "devel.tsv", "test.tsv")


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def fetch(dest: Path, source_dir: str, asset: dict) -> None:
    tmp = dest.with_name(f".{dest.name}.tmp")
    if source_dir:
        source = Path(source_dir) / dest.parent.name / dest.name
        if not source.is_file():
            sys.exit(f"Error: {source} not found (corpora_dir={source_dir}); it should hold {dest.parent.name}/{dest.name}")
        shutil.copyfile(source, tmp)
    elif asset:
        print(f"downloading {asset['url']}")
        try:
            with urllib.request.urlopen(asset["url"], timeout=60) as response, open(tmp, "wb") as out:
                shutil.copyfileobj(response, out)
        except OSError as err:
            sys.exit(
                f"Error: could not download {asset['url']} ({err}); without network, pass a local copy: "
                "spacy project run all --vars.corpora_dir DIR"
            )
    else:
        sys.exit(
            f"Error: {dest} is missing and has no URL in project.yml; put the corpus folder "
            f"{dest.parent.name}/ (train.tsv, devel.tsv, test.tsv) under assets/ or under --vars.corpora_dir"
        )
    if asset and md5(tmp) != asset["checksum"]:
        found = md5(tmp)
        tmp.unlink()
        sys.exit(f"Error: checksum mismatch for {dest}: expected MD5 {asset['checksum']}, got {found}")
    tmp.replace(dest)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpora", required=True, help="corpus folder names, space- or comma-separated")
    parser.add_argument("--source-dir", default="", help="local folder with the corpus folders (empty: download)")
    parser.add_argument("--dest", default="assets", type=Path)
    parser.add_argument("--project", default="project.yml", type=Path)
    args = parser.parse_args()
    assets = {a["dest"]: a for a in srsly.read_yaml(args.project).get("assets", [])}
    for corpus in args.corpora.replace(",", " ").split():
        for filename in SPLIT_FILES:
            dest = args.dest / corpus / filename
            asset = assets.get(f"assets/{corpus}/{filename}")
            source = Path(args.source_dir) / corpus / filename if args.source_dir else None
            if dest.is_file():
                if asset:
                    expected = asset["checksum"]
                else:
                    expected = md5(source) if source and source.is_file() else None
                if expected is None or md5(dest) == expected:
                    print(f"{dest}: present")
                    continue
            dest.parent.mkdir(parents=True, exist_ok=True)
            fetch(dest, args.source_dir, asset)
            print(f"{dest}: ok")


if __name__ == "__main__":
    main()
