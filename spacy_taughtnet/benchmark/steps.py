"""The project's own commands, run for a benchmark, and the wall time they record."""
import json
import subprocess
import sys
from pathlib import Path
from typing import List, Optional

from ..layout import RunLayout


def run_step(args: List[str]) -> None:
    """`python -m spacy_taughtnet ARGS` in this interpreter, in the working directory."""
    print("$ python -m spacy_taughtnet " + " ".join(args), flush=True)
    subprocess.run([sys.executable, "-m", "spacy_taughtnet", *args], check=True)


def stage_seconds(root: Path, stage: str) -> Optional[float]:
    """The wall time the stage recorded in ROOT/timings/ (None: not timed)."""
    path = RunLayout(root).timings(stage)
    return json.loads(path.read_text())["seconds"] if path.is_file() else None
