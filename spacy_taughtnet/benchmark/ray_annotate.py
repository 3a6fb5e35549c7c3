"""`annotate` throughput: the local backend (1 and 2 processes) against Ray (1 and 2 actors).

Input: pseudo-abstracts of 10 consecutive sentences of the transfer text (a folder of
*.txt.gz), as JSONL. Every system annotates the same input with the same model through
`python -m spacy_taughtnet annotate`; the records must be identical. Ray's fixed cost (starting
a local Ray, loading the model in each actor) is the wall time on a 10-document input. Peak
memory: each process's VmHWM (Linux), read from /proc every half second while it runs: the
annotate process itself, its nlp.pipe workers, and each Ray actor (the processes
`ray::ShardAnnotator`); VmHWM only grows, so the last reading is the peak up to half a second
before the process ends. Ray itself is imported only by the annotate processes.
"""
import gzip
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Tuple

from ..digests import file_digest
from ..errors import ConfigError
from .speed import vm_hwm_mb

SYSTEMS = {
    "local, 1 process": [],
    "local, --n-process 2": ["--n-process", "2"],
    "Ray, 1 actor": ["--backend", "ray", "--num-actors", "1", "--cpus-per-actor", "1"],
    "Ray, 2 actors": ["--backend", "ray", "--num-actors", "2", "--cpus-per-actor", "1"],
}
SENTENCES_PER_DOC = 10
STARTUP_DOCS = 10
PUBMED_ABSTRACTS = 36e6
# targets: Ray's throughput against the better local run, its fixed cost, its memory per actor
THROUGHPUT_TARGET, STARTUP_TARGET_S, MEMORY_TARGET = 0.9, 30, 1.3


def write_abstracts(text_dir: Path, path: Path, n_docs: int, per_doc: int = SENTENCES_PER_DOC) -> int:
    """Write n_docs pseudo-abstracts (per_doc consecutive sentences each) as JSONL; return their words."""
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
    raise ConfigError(f"{text_dir}: only {docs} pseudo-abstracts of {per_doc} sentences, {n_docs} asked")


def helper_processes(parent: int) -> Dict[int, str]:
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


def time_annotate(model: str, input_path: Path, output: Path, options: List[str]) -> Tuple[float, Dict[str, List[float]]]:
    """The wall time of one annotate command, and the peak memory (MB) of its processes by
    role: "process" (the command itself), "worker" and "actor"."""
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "spacy_taughtnet", "annotate", model, str(input_path), str(output), "--no-progress", *options],
        env={k: v for k, v in os.environ.items() if k != "RAY_ADDRESS"},
    )
    roles, peaks = {proc.pid: "process"}, {}
    while proc.poll() is None:
        roles.update(helper_processes(proc.pid))
        for pid in roles:
            peak = vm_hwm_mb(pid)
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


def measure(model: str, text_dir: Path, n_docs: int, model_description: str) -> Dict:
    """Every system on the same pseudo-abstracts, and the fixed cost on a 10-document input;
    the results as benchmarks/ray.json holds them."""
    load_before = os.getloadavg()[0]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        words = write_abstracts(text_dir, tmp / "abstracts.jsonl", n_docs)
        write_abstracts(text_dir, tmp / "small.jsonl", STARTUP_DOCS)
        startup = {name: time_annotate(model, tmp / "small.jsonl", tmp / f"small-{i}.jsonl", SYSTEMS[name])[0]
                   for i, name in enumerate(("local, 1 process", "Ray, 2 actors"))}
        systems, reference = {}, None
        for i, (name, options) in enumerate(SYSTEMS.items()):
            out = tmp / f"out-{i}.jsonl"
            seconds, peaks = time_annotate(model, tmp / "abstracts.jsonl", out, options)
            reference = reference or file_digest(out)
            systems[name] = {"seconds": round(seconds, 1), "docs_per_s": round(n_docs / seconds, 1),
                             "words_per_s": round(words / seconds), "identical": file_digest(out) == reference, "peak_rss_mb": peaks}
            print(f"{name}: {seconds:.1f} s, peak memory (MB): {memory_cell(peaks)}", file=sys.stderr)
    return {
        "command": f"python -m spacy_taughtnet benchmark ray MODEL TRANSFER_TEXT --docs {n_docs}",
        "machine": f"{os.cpu_count()} CPU cores", "model": model_description,
        "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)],
        "docs": n_docs, "words": words, "systems": systems,
        "ray_startup_s": round(startup["Ray, 2 actors"], 1), "local_startup_s": round(startup["local, 1 process"], 1),
    }


def memory_cell(peaks: Dict[str, List[float]]) -> str:
    names = {"process": "process", "worker": "workers", "actor": "actors"}
    return "; ".join(f"{names[role]} {', '.join(f'{mb:,.0f}' for mb in peaks[role])}" for role in names if role in peaks)


def run_lines(run: Dict) -> List[str]:
    """A run's command, conditions and its table of systems (peak memory where measured)."""
    memory = all("peak_rss_mb" in row for row in run["systems"].values())
    load = run.get("load_average")
    lines = [
        f"Command: `{run['command']}`, on {run['machine']}"
        + (f"; 1-minute load average {load[0]:.1f} before the run (other jobs; 0 on an idle machine), {load[1]:.1f} after it" if load else "")
        + f". Input: {run['docs']:,} pseudo-abstracts ({SENTENCES_PER_DOC} consecutive sentences of the transfer text each; "
        f"{run['words']:,} words), JSONL in and out, the same model for every system (MODEL: {run['model']}).",
        "",
        "| system | wall time (s) | docs/s | words/s | records identical to local |" + (" peak memory (MB) |" if memory else ""),
        "|---|---|---|---|---|" + ("---|" if memory else ""),
    ]
    for name, row in run["systems"].items():
        lines.append(f"| {name} | {row['seconds']:.1f} | {row['docs_per_s']:,.0f} | {row['words_per_s']:,.0f} | "
                     f"{'yes' if row['identical'] else 'NO'} |" + (f" {memory_cell(row['peak_rss_mb'])} |" if memory else ""))
    return lines


def memory_target(run: Dict) -> str:
    """The bullet of the memory target: Ray's peak per actor against one local process."""
    local_mb = run["systems"]["local, 1 process"]["peak_rss_mb"]["process"][0]
    actor_mb = max(mb for name in ("Ray, 1 actor", "Ray, 2 actors") for mb in run["systems"][name]["peak_rss_mb"]["actor"])
    return (f"- {'PASS' if actor_mb <= MEMORY_TARGET * local_mb else 'MISS'}: memory per actor at most {actor_mb:,.0f} MB, "
            f"{actor_mb / local_mb:.2f}x the {local_mb:,.0f} MB of one local process on the same input and model "
            f"(target <= {MEMORY_TARGET:g}x). Peak memory is each process's VmHWM; an actor's includes Ray's worker runtime, "
            "and the annotate process of a Ray run (the driver) loads the model once for the manifest and reads the input.")


def section(results: Dict) -> List[str]:
    """The markdown of benchmarks/ray.json. Its `memory_run`, where there is one, is a run whose
    peak memory is reported, not its throughput (another model, another load)."""
    systems = results["systems"]
    best_local = max(systems["local, 1 process"]["docs_per_s"], systems["local, --n-process 2"]["docs_per_s"])
    ray2, startup = systems["Ray, 2 actors"]["docs_per_s"], results["ray_startup_s"]
    ratio = ray2 / best_local
    lines = [
        "## `annotate` on Ray against the local backend", "",
        *run_lines(results), "",
        f"- {'PASS' if ratio >= THROUGHPUT_TARGET else 'MISS'}: Ray with 2 actors at {ratio:.2f}x the better local run "
        f"(target >= {THROUGHPUT_TARGET:g}x).",
        f"- {'PASS' if startup < STARTUP_TARGET_S else 'MISS'}: Ray's fixed cost (a {STARTUP_DOCS}-document run: start a local Ray, "
        f"load the model in each actor, write) is {startup:.1f} s (target < {STARTUP_TARGET_S} s); the local backend takes "
        f"{results['local_startup_s']:.1f} s on the same input.",
    ]
    memory_run = results.get("memory_run", results)
    if all("peak_rss_mb" in row for row in memory_run["systems"].values()):
        lines.append(memory_target(memory_run) + (" Measured in the memory run below." if memory_run is not results else ""))
    per_core = ray2 / 2
    lines += [
        "",
        f"**Projection for PubMed** ({PUBMED_ABSTRACTS / 1e6:.0f}M abstracts; assumes the per-core rate of the 2-actor run, one actor per core, "
        "a shared filesystem, input and output I/O keeping up, and abstracts about as long as these): "
        f"{per_core:,.0f} docs/s per core gives {PUBMED_ABSTRACTS / per_core / 3600:,.0f} core-hours, so "
        f"{PUBMED_ABSTRACTS / per_core / 3600 / 16 / 10:,.1f} hours on 10 nodes of 16 cores.",
    ]
    if memory_run is not results:
        lines += ["", "### Memory run", "",
                  "Peak memory does not depend on the machine's load, throughput does: this run's throughput is not the table's above.", "",
                  *run_lines(memory_run)]
    return lines
