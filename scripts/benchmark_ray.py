"""annotate throughput: the local backend (1 and 2 processes) against Ray (1 and 2 actors).

Input: pseudo-abstracts of 10 consecutive sentences of the transfer text (a folder of
*.txt.gz, e.g. ../shared/unlabeled), as JSONL. Every system annotates the same input with
the same model through `python -m spacy_taughtnet annotate`; the records must be identical.
Ray's fixed cost (starting a local Ray, loading the model in each actor) is the wall time on
a 10-document input. Writes benchmarks/ray.json and benchmarks/ray.md, then reassemble
BENCHMARKS.md with `python scripts/benchmark.py assemble`.

    python scripts/benchmark_ray.py MODEL ../shared/unlabeled --docs 8000
"""
import argparse
import gzip
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List

PROJECT = Path(__file__).resolve().parent.parent
SYSTEMS = {
    "local, 1 process": [],
    "local, --n-process 2": ["--n-process", "2"],
    "Ray, 1 actor": ["--backend", "ray", "--num-actors", "1", "--cpus-per-actor", "1"],
    "Ray, 2 actors": ["--backend", "ray", "--num-actors", "2", "--cpus-per-actor", "1"],
}


def write_abstracts(text_dir: Path, path: Path, n_docs: int, per_doc: int = 10) -> int:
    """Write n_docs pseudo-abstracts (per_doc consecutive sentences each); return their words."""
    words, docs, sentences = 0, 0, []
    with path.open("w", encoding="utf8") as out:
        for source in sorted(text_dir.glob("*.txt.gz")):
            with gzip.open(source, "rt", encoding="utf8") as lines:
                for line in lines:
                    sentences.append(line.strip())
                    if len(sentences) == per_doc:
                        text = " ".join(sentences)
                        out.write(json.dumps({"id": f"{source.name[:-7]}-{docs}", "text": text}) + "\n")
                        words += len(text.split())
                        docs, sentences = docs + 1, []
                        if docs == n_docs:
                            return words
    raise SystemExit(f"{text_dir}: only {docs} pseudo-abstracts of {per_doc} sentences, {n_docs} asked")


def annotate(model: str, input_path: Path, output: Path, options: List[str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "spacy_taughtnet", "annotate", model, str(input_path), str(output), "--no-progress", *options],
        check=True, cwd=PROJECT, env={k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"},
    )
    return time.perf_counter() - start


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def report(results: Dict) -> str:
    best_local = max(results["systems"]["local, 1 process"]["docs_per_s"], results["systems"]["local, --n-process 2"]["docs_per_s"])
    ray2 = results["systems"]["Ray, 2 actors"]["docs_per_s"]
    startup = results["ray_startup_s"]
    lines = [
        "# `annotate` on Ray against the local backend",
        "",
        f"Command: `{results['command']}`, on {results['machine']}. Input: {results['docs']:,} pseudo-abstracts "
        f"(10 consecutive sentences of the transfer text each; {results['words']:,} words), JSONL in and out, "
        "the same model for every system (MODEL: a CNN student of `configs/student.cfg`).",
        "",
        "| system | wall time (s) | docs/s | words/s | records identical to local |",
        "|---|---|---|---|---|",
    ]
    for name, row in results["systems"].items():
        lines.append(f"| {name} | {row['seconds']:.1f} | {row['docs_per_s']:,.0f} | {row['words_per_s']:,.0f} | {'yes' if row['identical'] else 'NO'} |")
    ratio = ray2 / best_local
    lines += [
        "",
        f"- {'PASS' if ratio >= 0.9 else 'MISS'}: Ray with 2 actors at {ratio:.2f}x the better local run (target >= 0.9x).",
        f"- {'PASS' if startup < 30 else 'MISS'}: Ray's fixed cost (a 10-document run: start a local Ray, load the model "
        f"in each actor, write) is {startup:.1f} s (target < 30 s); the local backend takes {results['local_startup_s']:.1f} s on the same input.",
        "- Not measured: memory per actor.",
        "",
        "**Projection for PubMed** (36M abstracts; assumes the per-core rate of the 2-actor run, one actor per core, "
        "a shared filesystem, input and output I/O keeping up, and abstracts about as long as these): "
        f"{ray2 / 2:,.0f} docs/s per core gives {36e6 / (ray2 / 2) / 3600:,.0f} core-hours, so "
        f"{36e6 / (ray2 / 2) / 3600 / 16 / 10:,.1f} hours on 10 nodes of 16 cores.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", help="pipeline name or folder (e.g. training/student/model-best)")
    parser.add_argument("text_dir", type=Path, help="folder of transfer text *.txt.gz (e.g. ../shared/unlabeled)")
    parser.add_argument("--docs", type=int, default=8000, help="pseudo-abstracts to annotate (the 81,496 transfer sentences make 8,149)")
    parser.add_argument("--output", type=Path, default=PROJECT / "benchmarks", help="where ray.json and ray.md go")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        words = write_abstracts(args.text_dir, tmp / "abstracts.jsonl", args.docs)
        write_abstracts(args.text_dir, tmp / "small.jsonl", 10)
        startup = {name: annotate(args.model, tmp / "small.jsonl", tmp / f"small-{i}.jsonl", SYSTEMS[name])
                   for i, name in enumerate(("local, 1 process", "Ray, 2 actors"))}
        systems, reference = {}, None
        for i, (name, options) in enumerate(SYSTEMS.items()):
            out = tmp / f"out-{i}.jsonl"
            seconds = annotate(args.model, tmp / "abstracts.jsonl", out, options)
            reference = reference or digest(out)
            systems[name] = {"seconds": round(seconds, 1), "docs_per_s": round(args.docs / seconds, 1),
                             "words_per_s": round(words / seconds), "identical": digest(out) == reference}
            print(f"{name}: {seconds:.1f} s", file=sys.stderr)
    results = {
        "command": f"python scripts/benchmark_ray.py MODEL TRANSFER_TEXT --docs {args.docs}",
        "machine": f"{os.cpu_count()} CPU cores",
        "docs": args.docs, "words": words, "systems": systems,
        "ray_startup_s": round(startup["Ray, 2 actors"], 1), "local_startup_s": round(startup["local, 1 process"], 1),
    }
    (args.output / "ray.json").write_text(json.dumps(results, indent=2) + "\n", encoding="utf8")
    (args.output / "ray.md").write_text(report(results), encoding="utf8")
    print(report(results))


if __name__ == "__main__":
    main()
