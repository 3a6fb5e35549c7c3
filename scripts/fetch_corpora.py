"""Put each corpus's train/devel/test TSV under assets/, from a local folder or the network;
with --transfer-sources, the transfer text's source files under assets/transfer/ instead.

The URLs and MD5 checksums come from the `assets` list of project.yml; files are checked
against them wherever they come from. A corpus without assets entries (one you added) is
copied from --source-dir as it is. Transfer sources are downloaded, unless --transfer-dir
names a folder of the prebuilt text (then nothing is fetched: `prepare-transfer` reads it).
"""
import argparse
import hashlib
import shutil
import sys
import urllib.request
from pathlib import Path

import srsly

from spacy_taughtnet.errors import ConfigError
from spacy_taughtnet.layout import check_corpus_name

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
                f"Error: could not download {asset['url']} ({err}); without network, pass local copies: "
                "spacy project run all --vars.corpora_dir DIR (the corpora) --vars.transfer_dir DIR (prebuilt transfer text)"
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


def ensure(dest: Path, source_dir: str, asset: dict, source: Path = None) -> None:
    """Fetch dest unless it is there with the expected checksum (project.yml's, else the
    local source file's; a file with neither is kept as it is)."""
    if dest.is_file():
        if asset:
            expected = asset["checksum"]
        else:
            expected = md5(source) if source and source.is_file() else None
        if expected is None or md5(dest) == expected:
            print(f"{dest}: present")
            return
    dest.parent.mkdir(parents=True, exist_ok=True)
    fetch(dest, source_dir, asset)
    print(f"{dest}: ok")


def fetch_transfer_sources(sources: list, dest: Path, assets: dict) -> None:
    for name in sources:
        listed = {path: asset for path, asset in assets.items() if path.startswith(f"assets/transfer/{name}/")}
        if not listed:
            if any((dest / "transfer" / name).glob("*.tsv")):
                print(f"{dest / 'transfer' / name}: present (no URL in project.yml)")
                continue
            sys.exit(
                f"Error: transfer source {name!r} has no assets in project.yml and no TSV under "
                f"{dest / 'transfer' / name}; put its files there, or pass prebuilt text: --vars.transfer_dir DIR"
            )
        for path, asset in listed.items():
            ensure(dest / Path(path).relative_to("assets"), "", asset)


def corpus_names(names: str) -> list:
    """The names of a space- or comma-separated var, each a plain folder name under DEST
    (as the package checks them), else exit before anything is written."""
    try:
        return [check_corpus_name(name) for name in names.replace(",", " ").split()]
    except ConfigError as err:
        sys.exit(f"Error: {err}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpora", default="", help="corpus folder names, space- or comma-separated")
    parser.add_argument("--source-dir", default="", help="local folder with the corpus folders (empty: download)")
    parser.add_argument("--transfer-sources", default="", help="transfer source corpora to fetch into DEST/transfer/ instead of the corpora")
    parser.add_argument("--transfer-dir", default="", help="a folder of prebuilt transfer text: fetch no transfer source")
    parser.add_argument("--dest", default="assets", type=Path)
    parser.add_argument("--project", default="project.yml", type=Path)
    args = parser.parse_args()
    assets = {a["dest"]: a for a in srsly.read_yaml(args.project).get("assets", [])}
    if args.transfer_sources or args.transfer_dir:
        if args.transfer_dir:
            if not Path(args.transfer_dir).is_dir():
                sys.exit(f"Error: transfer_dir {args.transfer_dir}: no such folder (it should hold the prebuilt *.txt.gz)")
            print(f"transfer text: prebuilt in {args.transfer_dir}; no source to fetch")
        else:
            fetch_transfer_sources(corpus_names(args.transfer_sources), args.dest, assets)
        return
    if not args.corpora:
        parser.error("give --corpora (or --transfer-sources)")
    for corpus in corpus_names(args.corpora):
        for filename in SPLIT_FILES:
            source = Path(args.source_dir) / corpus / filename if args.source_dir else None
            ensure(args.dest / corpus / filename, args.source_dir, assets.get(f"assets/{corpus}/{filename}"), source)


if __name__ == "__main__":
    main()
