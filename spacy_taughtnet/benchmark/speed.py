"""Speed, memory and size: words/s of pipelines run one after another (in a fresh process, so
that its peak memory is theirs), `annotate` throughput, the aggregation's time, size on disk."""
import multiprocessing
import resource
import time
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Union

# throughput: each model's fastest of this many passes over the docs
SPEED_PASSES = 3
WARM_UP_DOCS = 200


def time_pipelines(model_paths: Sequence[str], docbins: Sequence[str], batch_size: int, *, limit: int = 0,
                   repeats: int = SPEED_PASSES) -> Dict:
    """Words/s of running the pipelines one after another over the first `limit` docs of
    each DocBin (0: all): each pipeline's fastest of `repeats` passes, as timeit does, since a
    shared machine only ever slows a pass down. Also the words and the seconds summed."""
    import spacy
    from spacy.tokens import Doc

    from ..corpora import read_docbin

    pipelines = [spacy.load(path) for path in model_paths]
    words = [[t.text for t in doc] for path in docbins for doc in read_docbin(path, pipelines[0].vocab)[: limit or None]]
    seconds = 0.0
    for nlp in pipelines:
        docs = [Doc(nlp.vocab, words=w) for w in words]
        list(nlp.pipe(docs[:WARM_UP_DOCS], batch_size=batch_size))
        passes = []
        for _ in range(repeats):
            start = time.perf_counter()
            for _ in nlp.pipe(docs, batch_size=batch_size):
                pass
            passes.append(time.perf_counter() - start)
        seconds += min(passes)
    n_words = sum(len(w) for w in words)
    return {"words": n_words, "seconds": seconds, "words_per_second": n_words / seconds}


def _time_in_this_process(model_paths, docbins, batch_size, limit, threads, repeats, queue) -> None:
    """throughput's child: threads > 0 caps torch's threads; adds this process's peak RSS."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    result = time_pipelines(model_paths, docbins, batch_size, limit=limit, repeats=repeats)
    queue.put({**result, "peak_rss_mb": vm_hwm_mb() or resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024})


def throughput(model_paths: List[Path], docbins: List[Path], batch_size: int, limit: int = 0, threads: int = 0,
               repeats: int = SPEED_PASSES) -> Dict:
    """time_pipelines in a fresh (spawned) process, with that process's peak resident memory."""
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    process = context.Process(target=_time_in_this_process, args=(
        [str(p) for p in model_paths], [str(p) for p in docbins], batch_size, limit, threads, repeats, queue))
    process.start()
    result = queue.get()
    process.join()
    return result


def vm_hwm_mb(pid: Union[int, str] = "self") -> Optional[float]:
    """A process's peak resident memory so far (VmHWM, Linux); None where there is none (another
    system, or the process is gone). ru_maxrss of a spawned process starts from its parent's
    peak, so it is only the fallback."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def annotate_throughput(model: Path, docbins: List[Path], batch_size: int, work: Path) -> Dict:
    """Docs/s and words/s of `annotate` (plain text in, JSONL out) with 1 and 2 processes."""
    from ..annotate import annotate_file, load_pipeline
    from ..corpora import read_docbin

    nlp = load_pipeline(str(model))
    texts = [doc.text for path in docbins for doc in read_docbin(path, nlp.vocab)]
    n_words = sum(len(text.split()) for text in texts)
    source = work / "annotate_input.txt"
    source.write_text("\n".join(texts) + "\n", encoding="utf8")
    out = {}
    for n_process in (1, 2):
        target = work / f"annotate_{n_process}.jsonl"
        start = time.perf_counter()
        annotate_file(nlp, source, target, batch_size=batch_size, n_process=n_process, overwrite=True, progress=False)
        seconds = time.perf_counter() - start
        out[str(n_process)] = {"docs_per_second": len(texts) / seconds, "words_per_second": n_words / seconds, "seconds": seconds}
    out["docs"], out["words"] = len(texts), n_words
    return out


def aggregation_seconds(n_tokens: int = 1_000_000, k: int = 3) -> float:
    """Wall time of aggregate_distributions for n_tokens from k teachers (best of 3)."""
    import numpy

    from ..aggregate import aggregate_distributions

    rng = numpy.random.default_rng(0)
    teachers = [rng.dirichlet(numpy.ones(3), size=n_tokens).astype(numpy.float32) for _ in range(k)]
    times = []
    for _ in range(3):
        start = time.perf_counter()
        aggregate_distributions(teachers)
        times.append(time.perf_counter() - start)
    return min(times)


def size_mb(paths: List[Path]) -> float:
    """The files under the folders, in MiB."""
    return sum(f.stat().st_size for p in paths for f in p.rglob("*") if f.is_file()) / 2**20


def run_words_per_second(root: Path, corpora: Sequence[str], batch_size: int) -> Dict[str, float]:
    """Words/s of a run folder's student, and of its teachers one after another, over the
    corpora's test splits (throughput: fresh processes, each model's fastest pass)."""
    from ..layout import RunLayout

    layout = RunLayout(root)
    tests = [layout.corpus(c, "test") for c in corpora]
    return {"student": throughput([layout.student_model], tests, batch_size)["words_per_second"],
            "teachers": throughput(layout.teacher_models(corpora), tests, batch_size)["words_per_second"]}

