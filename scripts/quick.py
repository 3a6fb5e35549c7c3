"""Run the whole workflow, then package and evaluate-package, on a small sample of each
corpus, in a copy of the project under --dest (so it never touches a full run). Both wheels,
the model's and the plugin's, end up in DEST/packages/wheels.

The sample and budget (--limit sentences per file, --transfer-limit transfer sentences per
source, --pretrain-epochs, --teacher-steps, --student-steps) make it a check that everything works, in minutes;
its scores mean little.
"""
import argparse
import shutil
import subprocess
import sys
from pathlib import Path

PROJECT_FILES = ("project.yml", "configs", "scripts", "assets/.gitattributes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--corpora", required=True)
    parser.add_argument("--corpora-dir", default="", help="local corpus folders (default: assets/ if it holds them, else download)")
    parser.add_argument("--dest", type=Path, default=Path("quick"))
    parser.add_argument("--limit", type=int, default=300)
    parser.add_argument("--transfer-dir", default="", help="a folder of prebuilt transfer text (*.txt.gz); empty: fetch the sources")
    parser.add_argument("--transfer-sources", default="", help="transfer sources, space-separated (default: the project's)")
    parser.add_argument("--transfer-limit", type=int, default=100)
    parser.add_argument("--pretrain-epochs", type=int, default=1, help="passes of the pretrain step (0: off, and the teachers and the student start from no weights)")
    parser.add_argument("--teacher-steps", type=int, default=300)
    parser.add_argument("--student-steps", type=int, default=400)
    parser.add_argument("--eval-frequency", type=int, default=50)
    parser.add_argument("--name", default="taughtnet_bio_quick")
    parser.add_argument("--package-env", choices=("current", "fresh"), default="current",
                        help="evaluate-package installs the model into this environment (seconds) or a fresh venv (minutes, needs the package index)")
    parser.add_argument("--var", action="append", default=[], metavar="KEY=VALUE",
                        help="another project var, e.g. --var teacher_config=teacher_trf.cfg (repeatable)")
    args = parser.parse_args()
    for var in args.var:
        if "=" not in var:
            parser.error(f"--var {var!r}: expected KEY=VALUE")
    project = Path(__file__).resolve().parent.parent
    for name in PROJECT_FILES:
        source, target = project / name, args.dest / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target, dirs_exist_ok=True)
        else:
            shutil.copyfile(source, target)
    corpora = args.corpora.replace(",", " ").split()
    corpora_dir = args.corpora_dir
    if not corpora_dir and all((project / "assets" / c / "test.tsv").is_file() for c in corpora):
        corpora_dir = str(project / "assets")
    overrides = [
        "--vars.corpora", " ".join(corpora),
        "--vars.corpora_dir", str(Path(corpora_dir).resolve()) if corpora_dir else "",
        "--vars.limit", str(args.limit),
        "--vars.transfer_dir", str(Path(args.transfer_dir).resolve()) if args.transfer_dir else "",
        "--vars.transfer_limit", str(args.transfer_limit),
        "--vars.pretrain_epochs", str(args.pretrain_epochs),
        "--vars.teacher_max_steps", str(args.teacher_steps),
        "--vars.student_max_steps", str(args.student_steps),
        "--vars.eval_frequency", str(args.eval_frequency),
        "--vars.student_eval_frequency", str(args.eval_frequency),
        "--vars.name", args.name,
        "--vars.package_env", args.package_env,
    ]
    if args.transfer_sources:
        overrides += ["--vars.transfer_sources", args.transfer_sources]
    if args.pretrain_epochs == 0:
        overrides += ["--vars.init_tok2vec", ""]
    for var in args.var:
        key, value = var.split("=", 1)
        overrides += [f"--vars.{key}", value]
    for workflow_or_command in ("all", "package", "evaluate-package"):
        command = [sys.executable, "-m", "spacy", "project", "run", workflow_or_command, ".", *overrides]
        print(f"$ (cd {args.dest}; {' '.join(command)})", flush=True)
        # weasel checks deps relative to the working directory: run inside the copy.
        subprocess.run(command, check=True, cwd=args.dest)


if __name__ == "__main__":
    main()
