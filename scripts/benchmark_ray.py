"""annotate throughput: the local backend (1 and 2 processes) against Ray (1 and 2 actors).

Input: pseudo-abstracts of 10 consecutive sentences of the transfer text (a folder of
*.txt.gz, e.g. ../shared/unlabeled), as JSONL. Every system annotates the same input with
the same model through `python -m spacy_taughtnet annotate`; the records must be identical.
Ray's fixed cost (starting a local Ray, loading the model in each actor) is the wall time on
a 10-document input. Peak memory: each process's VmHWM (Linux), read from /proc every half
second while it runs: the annotate process itself, its nlp.pipe workers, and each Ray actor
(the processes `ray::ShardAnnotator`); VmHWM only grows, so the last reading is the peak up to
half a second before the process ends. Writes benchmarks/ray.json and benchmarks/ray.md, then
reassemble BENCHMARKS.md with `python scripts/benchmark.py assemble`.

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
from typing import Dict, List, Optional, Tuple

from spacy_taughtnet.atomic import atomic_path

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


def peak_rss_mb(pid: int) -> Optional[float]:
    """A process's peak resident memory so far (VmHWM), None once it is gone."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def helpers(parent: int) -> Dict[int, str]:
    """pid -> "worker" (an nlp.pipe worker: a forked child of the annotate process, with its
    command line, unlike the Ray services a local Ray starts) or "actor" (a Ray annotating actor)."""
    found = {}
    try:
        command = Path(f"/proc/{parent}/cmdline").read_bytes()
    except OSError:
        return found
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            cmdline = (entry / "cmdline").read_bytes()
            if cmdline.startswith(b"ray::ShardAnnotator"):
                found[int(entry.name)] = "actor"
            elif cmdline == command and int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1]) == parent:
                found[int(entry.name)] = "worker"
        except (OSError, ValueError, IndexError):
            pass
    return found


def annotate(model: str, input_path: Path, output: Path, options: List[str]) -> Tuple[float, Dict[str, List[float]]]:
    """The wall time of one annotate command, and the peak memory (MB) of its processes by
    role: "process" (the command itself), "worker" and "actor"."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "spacy_taughtnet", "annotate", model, str(input_path), str(output), "--no-progress", *options],
        cwd=PROJECT, env={k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"},
    )
    roles, peaks = {proc.pid: "process"}, {}
    while proc.poll() is None:
        roles.update(helpers(proc.pid))
        for pid in roles:
            peak = peak_rss_mb(pid)
            if peak is not None:
                peaks[pid] = peak
        time.sleep(0.5)
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise subprocess.CalledProcessError(proc.returncode, proc.args)
    by_role: Dict[str, List[float]] = {}
    for pid, peak in sorted(peaks.items()):
        by_role.setdefault(roles[pid], []).append(round(peak, 1))
    return seconds, by_role


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def memory_cell(peaks: Dict[str, List[float]]) -> str:
    names = {"process": "process", "worker": "workers", "actor": "actors"}
    return "; ".join(f"{names[role]} {', '.join(f'{mb:,.0f}' for mb in peaks[role])}" for role in names if role in peaks)


def report(results: Dict) -> str:
    best_local = max(results["systems"]["local, 1 process"]["docs_per_s"], results["systems"]["local, --n-process 2"]["docs_per_s"])
    ray2 = results["systems"]["Ray, 2 actors"]["docs_per_s"]
    startup = results["ray_startup_s"]
    local_mb = results["systems"]["local, 1 process"]["peak_rss_mb"]["process"][0]
    actor_mb = max(mb for name in ("Ray, 1 actor", "Ray, 2 actors") for mb in results["systems"][name]["peak_rss_mb"]["actor"])
    lines = [
        "# `annotate` on Ray against the local backend",
        "",
        f"Command: `{results['command']}`, on {results['machine']}; 1-minute load average {results['load_average'][0]:.1f} "
        f"before the run (other jobs; 0 on an idle machine), {results['load_average'][1]:.1f} after it. "
        f"Input: {results['docs']:,} pseudo-abstracts "
        f"(10 consecutive sentences of the transfer text each; {results['words']:,} words), JSONL in and out, "
        f"the same model for every system (MODEL: {results['model']}).",
        "",
        "| system | wall time (s) | docs/s | words/s | records identical to local | peak memory (MB) |",
        "|---|---|---|---|---|---|",
    ]
    for name, row in results["systems"].items():
        lines.append(f"| {name} | {row['seconds']:.1f} | {row['docs_per_s']:,.0f} | {row['words_per_s']:,.0f} | "
                     f"{'yes' if row['identical'] else 'NO'} | {memory_cell(row['peak_rss_mb'])} |")
    ratio = ray2 / best_local
    lines += [
        "",
        f"- {'PASS' if ratio >= 0.9 else 'MISS'}: Ray with 2 actors at {ratio:.2f}x the better local run (target >= 0.9x).",
        f"- {'PASS' if startup < 30 else 'MISS'}: Ray's fixed cost (a 10-document run: start a local Ray, load the model "
        f"in each actor, write) is {startup:.1f} s (target < 30 s); the local backend takes {results['local_startup_s']:.1f} s on the same input.",
        f"- {'PASS' if actor_mb <= 1.3 * local_mb else 'MISS'}: memory per actor at most {actor_mb:,.0f} MB, "
        f"{actor_mb / local_mb:.2f}x the {local_mb:,.0f} MB of one local process on the same input and model (target <= 1.3x). "
        "Peak memory is each process's VmHWM; an actor's includes Ray's worker runtime, and the annotate process of a Ray "
        "run (the driver) loads the model once for the manifest and reads the input.",
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
    parser.add_argument("--model-description", default="a CNN student of `configs/student.cfg`", help="what MODEL is, for the report")
    args = parser.parse_args()
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        words = write_abstracts(args.text_dir, tmp / "abstracts.jsonl", args.docs)
        write_abstracts(args.text_dir, tmp / "small.jsonl", 10)
        startup = {name: annotate(args.model, tmp / "small.jsonl", tmp / f"small-{i}.jsonl", SYSTEMS[name])[0]
                   for i, name in enumerate(("local, 1 process", "Ray, 2 actors"))}
        systems, reference = {}, None
        for i, (name, options) in enumerate(SYSTEMS.items()):
            out = tmp / f"out-{i}.jsonl"
            seconds, peaks = annotate(args.model, tmp / "abstracts.jsonl", out, options)
            reference = reference or digest(out)
            systems[name] = {"seconds": round(seconds, 1), "docs_per_s": round(args.docs / seconds, 1),
                             "words_per_s": round(words / seconds), "identical": digest(out) == reference, "peak_rss_mb": peaks}
            print(f"{name}: {seconds:.1f} s, peak memory (MB): {memory_cell(peaks)}", file=sys.stderr)
    results = {
        "command": f"python scripts/benchmark_ray.py MODEL TRANSFER_TEXT --docs {args.docs}",
        "machine": f"{os.cpu_count()} CPU cores", "model": args.model_description,
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "docs": args.docs, "words": words, "systems": systems,
        "ray_startup_s": round(startup["Ray, 2 actors"], 1), "local_startup_s": round(startup["local, 1 process"], 1),
    }
    with atomic_path(args.output / "ray.json") as tmp:
        tmp.write_text(json.dumps(results, indent=2) + "\n", encoding="utf8")
    with atomic_path(args.output / "ray.md") as tmp:
        tmp.write_text(report(results), encoding="utf8")
    print(report(results))


if __name__ == "__main__":
    main()
