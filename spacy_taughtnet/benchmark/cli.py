"""`python -m spacy_taughtnet benchmark COMMAND`: each measuring command writes its results to
RESULTS/NAME.json and renders the page (BENCHMARKS.md) again from RESULTS; `report` renders
the page alone. Run from the project folder (the commands read configs/). Each command imports
its module when it runs: this one stays cheap to import."""
from pathlib import Path
from typing import List, Optional

import typer

from ..cli_errors import user_errors

app = typer.Typer(
    name="benchmark",
    help="Benchmarks behind BENCHMARKS.md: each writes benchmarks/NAME.json and renders the page again.",
    no_args_is_help=True,
)

# The commands are declared alike (decorators, typer options, publish the results): the
# duplicates check pairs their declarations by shape; each runs its own benchmark.
RESULTS = typer.Option(Path("benchmarks"), help="Folder of the results files (NAME.json)")
PAGE = typer.Option(Path("BENCHMARKS.md"), help="The page rendered from the results files")
CORPORA = typer.Option(..., help="Corpus folder names, space- or comma-separated")
BATCH_SIZE = typer.Option(256, help="Batch size of the throughput measurements")


def _corpora(corpora: str) -> List[str]:
    from ..workflow import parse_corpora

    return parse_corpora(corpora)


@app.command()
@user_errors
def cnn(
    root: Path = typer.Argument(..., help="Run folder of `spacy project run all`"),
    corpora: str = CORPORA,
    steps: int = typer.Option(10000, help="Training steps of each union-trained system"),
    eval_frequency: int = typer.Option(500),
    batch_size: int = BATCH_SIZE,
    results: Path = RESULTS,
    page: Path = PAGE,
) -> None:
    """CNN default configs: teachers, students, naive union and spaCy's ner; speed, size, memory."""
    from ..evaluate import format_table
    from . import cnn as benchmark
    from .report import publish
    from .tables import print_targets

    measured = benchmark.measure(root, _corpora(corpora), steps, eval_frequency, batch_size)
    benchmark.chart(measured, results / "f1_by_corpus.png")
    publish(measured, results / "cnn.json", page)
    print(format_table(measured["rows"], ("system", "corpus", "precision", "recall", "f1")))
    print_targets(benchmark.targets(measured))


@app.command()
@user_errors
def seeds(
    roots: List[Path] = typer.Argument(..., help="Run folders, one per seed, evaluated (the first is timed for speed; of the others only metrics/ and timings/ are read)"),
    corpora: str = CORPORA,
    commit: Optional[str] = typer.Option(None, help="The commit whose code trained the runs (default: HEAD)"),
    batch_size: int = BATCH_SIZE,
    results: Path = RESULTS,
    page: Path = PAGE,
) -> None:
    """The default `all` over several seeds: teachers and student per seed and on average, the targets."""
    from . import seeds as benchmark
    from .report import publish
    from .tables import print_targets

    measured = benchmark.measure(roots, _corpora(corpora), commit, batch_size)
    benchmark.chart(measured, results / "f1_seeds.png")
    publish(measured, results / "seeds.json", page)
    print_targets(benchmark.targets(measured))


@app.command()
@user_errors
def broad(
    root: Path = typer.Argument(..., help="Run folder of `spacy project run all` over the broad corpora, evaluated"),
    corpora: str = CORPORA,
    naive_steps: int = typer.Option(0, help="Train the naive union baseline (ROOT/benchmark/naive) for N steps if missing, and score it (0: no baseline)"),
    collapse_steps: int = typer.Option(0, help="Train the collapse baseline, spaCy's stock ner on the union (ROOT/benchmark/spacy_ner), for N steps if missing, and score it (0: none)"),
    eval_frequency: int = typer.Option(500, help="Evaluation frequency of the baselines' training"),
    batch_size: int = BATCH_SIZE,
    results: Path = RESULTS,
    page: Path = PAGE,
) -> None:
    """The default model over its six corpora (issue 22), one run: teachers and student per corpus and macro, baselines, speed, wall time, the targets."""
    from . import broad as benchmark
    from .report import publish
    from .tables import print_targets

    measured = benchmark.measure(root, _corpora(corpora), batch_size, naive_steps, eval_frequency, collapse_steps)
    publish(measured, results / "broad.json", page)
    print_targets(benchmark.targets(measured))


@app.command("results")
@user_errors
def results_(
    roots: List[Path] = typer.Argument(..., help="Run folders of `all`, one per seed, evaluated (the first holding a student model is timed for speed; of the others only metrics/ and timings/ are read)"),
    corpora: str = CORPORA,
    baselines: Path = typer.Option(Path("benchmarks/broad.json"), help="The results of `benchmark broad` holding the baselines"),
    paper_root: Optional[Path] = typer.Option(None, help="Run folder of `all` over the paper's three corpora (NCBI-disease-IOB BC5CDR-chem-IOB BC2GM-IOB), evaluated: the all_paper block"),
    commit: Optional[str] = typer.Option(None, help="The commit whose code trained the runs (default: HEAD)"),
    batch_size: int = BATCH_SIZE,
    results: Path = RESULTS,
    page: Path = PAGE,
) -> None:
    """The default model over several seeds, its baselines and the paper's corpora in one file (results.json), every target."""
    from . import results as benchmark
    from .report import publish
    from .tables import print_targets

    measured = benchmark.measure(roots, _corpora(corpora), baselines, paper_root, commit, batch_size)
    publish(measured, results / "results.json", page)
    print_targets(benchmark.targets(measured))


@app.command()
@user_errors
def transformers(
    root: Path = typer.Argument(..., help="Run folder of `spacy project run all` with the transformer configs"),
    corpora: str = CORPORA,
    cnn_root: Optional[Path] = typer.Option(None, help="Run folder of the CNN default `all` run, for comparison"),
    steps: int = typer.Option(10000, help="Training steps of each CNN student (the CNN default's)"),
    eval_frequency: int = typer.Option(500),
    batch_size: int = BATCH_SIZE,
    speed_docs: int = typer.Option(1000, help="Words/s over the first N docs of each test split (0: all)"),
    results: Path = RESULTS,
    page: Path = PAGE,
) -> None:
    """Transformer teachers and student against CNN students distilled from the same teachers."""
    from ..evaluate import format_table
    from . import transformers as benchmark
    from .report import publish
    from .tables import print_targets

    measured = benchmark.measure(root, cnn_root, _corpora(corpora), steps, eval_frequency, batch_size, speed_docs)
    publish(measured, results / "transformers.json", page)
    print(format_table(measured["rows"], ("system", "corpus", "precision", "recall", "f1")))
    print_targets(benchmark.targets(measured))


@app.command()
@user_errors
def teachers(
    run: Path = typer.Argument(..., help="Run folder with corpus/ and the taughtnet_ner teachers/"),
    out: Path = typer.Argument(..., help="This benchmark's folder (the teachers it trains, cached rows, OUT/results.json)"),
    corpora: str = typer.Option("NCBI-disease-IOB BC5CDR-chem-IOB BC2GM-IOB",
                                help="The corpora, in label order; the first also gets a beam_ner and the two-teacher arm"),
    steps: int = typer.Option(3000, help="Training steps of each teacher (as RUN's)"),
    joint_teacher: Optional[Path] = typer.Option(None, help=(
        "A probabilistic multi-type pipeline (labels: the corpora's types), e.g. a taughtnet_ner student, to "
        "repeat arm (v) with: the union ner is one-hot, where the rule and the split barely differ")),
    students: bool = typer.Option(False, "--students", help="Also train and test the two students"),
    student_steps: int = typer.Option(3000),
    report: bool = typer.Option(False, "--report", help="Also write RESULTS/teachers.json and render the page"),
    results: Path = RESULTS,
    page: Path = PAGE,
) -> None:
    """Teachers beyond taughtnet_ner: stock ner, beam_ner, two of one type merged, multi-type teachers."""
    from . import teachers as benchmark
    from .report import publish, write_results

    measured = benchmark.measure(run, out, _corpora(corpora), steps, joint_teacher, student_steps if students else None)
    write_results(measured, out / "results.json")
    print("\n".join(benchmark.section(measured)))
    if report:
        publish(measured, results / "teachers.json", page)


@app.command()
@user_errors
def ray(
    model: str = typer.Argument(..., help="Pipeline name or folder (e.g. training/student/model-best)"),
    text_dir: Path = typer.Argument(..., help="Folder of transfer text *.txt.gz (e.g. ROOT/transfer/text)"),
    docs: int = typer.Option(8000, help="Pseudo-abstracts to annotate (the 81,496 transfer sentences make 8,149)"),
    model_description: str = typer.Option("a CNN student of `configs/student.cfg`", help="What MODEL is, for the page"),
    results: Path = RESULTS,
    page: Path = PAGE,
) -> None:
    """`annotate` throughput and memory: the local backend (1 and 2 processes) against Ray (1 and 2 actors)."""
    from . import ray_annotate as benchmark
    from .report import publish

    measured = benchmark.measure(model, text_dir, docs, model_description)
    publish(measured, results / "ray.json", page)
    print("\n".join(benchmark.section(measured)))


@app.command("compare-ner")
@user_errors
def compare_ner(
    corpus: Path = typer.Argument(..., help="Corpus folder with train.tsv, devel.tsv, test.tsv"),
    steps: int = typer.Option(3000),
    results: Path = RESULTS,
    page: Path = PAGE,
) -> None:
    """Single-type NER on one corpus: taughtnet_ner against spaCy's stock ner, same tok2vec and budget."""
    from ..evaluate import format_table
    from . import compare_ner as benchmark
    from .report import publish

    measured = benchmark.measure(corpus, steps)
    publish(measured, results / "compare_ner.json", page)
    print(format_table(measured["rows"], benchmark.COLUMNS))


@app.command()
@user_errors
def overlaps(
    root: Path = typer.Argument(..., help="Run folder of `spacy project run all` whose student has per-type heads"),
    corpora: str = CORPORA,
    split: str = typer.Option("dev", help="The split scored: dev (choose on devel) or test"),
    broad: bool = typer.Option(False, "--broad", help="The broad model's run: write overlaps_broad.json"),
    results: Path = RESULTS,
    page: Path = PAGE,
) -> None:
    """How doc.ents is chosen where per-type heads overlap: each rule on the same student."""
    from . import overlaps as benchmark
    from .report import publish

    measured = benchmark.measure(root, _corpora(corpora), split)
    if broad:
        measured["command"] += " --broad"
    publish(measured, results / ("overlaps_broad.json" if broad else "overlaps.json"), page)
    print("\n".join(benchmark.section(measured)))


@app.command("head-targets")
@user_errors
def head_targets(
    root: Path = typer.Argument(..., help="Run folder whose corpora's devel splits are scored"),
    models: List[Path] = typer.Argument(..., help="Students (saved pipelines) trained alike but for head_targets"),
    corpora: str = CORPORA,
    results: Path = RESULTS,
    page: Path = PAGE,
) -> None:
    """Per-type heads' teacher targets on devel: each student's span group and doc.ents."""
    from . import head_targets as benchmark
    from .report import publish

    measured = benchmark.measure(root, models, _corpora(corpora))
    publish(measured, results / "head_targets.json", page)
    print("\n".join(benchmark.section(measured)))


@app.command()
@user_errors
def merges(
    root: Path = typer.Argument(..., help="Run folder whose corpora's devel splits are scored"),
    arms: List[Path] = typer.Argument(..., help="Run folders, each with its student and the distributions it learnt from, distilled with another merge"),
    corpora: str = CORPORA,
    results: Path = RESULTS,
    page: Path = PAGE,
) -> None:
    """How teachers of one type merge, on devel: each arm's student's span group and doc.ents."""
    from . import merges as benchmark
    from .report import publish

    measured = benchmark.measure(root, arms, _corpora(corpora))
    publish(measured, results / "merges.json", page)
    print("\n".join(benchmark.section(measured)))


@app.command()
@user_errors
def report(results: Path = RESULTS, page: Path = PAGE) -> None:
    """Render the page from the results files alone (runs no benchmark)."""
    from .report import write_report

    write_report(results, page)
    typer.echo(f"{results}/*.json -> {page}")
