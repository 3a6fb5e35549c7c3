"""Atomic writes: a step that fails, or is killed, leaves no half-written output behind.

An output is written under a temporary name beside it, `.NAME.<random>.tmp`, and renamed
onto NAME when complete. A process killed with SIGKILL cannot delete its temporary path, so
each new write of NAME first removes the `.NAME.*.tmp` left beside it: two processes must not
write one output at once.
"""
import os
import re
import shutil
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator, List, Union


def remove_path(path: Path) -> None:
    """Remove a file, link or folder."""
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    elif path.exists() or path.is_symlink():
        path.unlink()


def stale_temporaries(path: Union[str, Path]) -> List[Path]:
    """The temporary paths of earlier, killed writes of `path` (tempfile's 8 random characters
    between `.NAME.` and `.tmp`, so the temporaries of `NAME.spacy` are not those of `NAME`)."""
    path = Path(path)
    if not path.parent.is_dir():
        return []
    pattern = re.compile(rf"\.{re.escape(path.name)}\.[a-z0-9_]{{8}}\.tmp")
    return sorted(p for p in path.parent.iterdir() if pattern.fullmatch(p.name))


def is_same_file(output: Union[str, Path], input_path: Union[str, Path]) -> bool:
    """Whether writing `output` would write over `input_path`: the same path once resolved
    (`..`, symlinks, a folder not made yet) or the same file by another name (a hard link)."""
    if os.path.realpath(output) == os.path.realpath(input_path):
        return True
    return os.path.exists(output) and os.path.exists(input_path) and os.path.samefile(output, input_path)


def remove_stale_temporaries(path: Union[str, Path]) -> None:
    for stale in stale_temporaries(path):
        remove_path(stale)


def replace_dir(source: Path, target: Path) -> None:
    """Move the folder `source` onto `target`, replacing a folder there as a whole: the old one
    is renamed aside first, so `target` is at every moment the old folder, absent, or the new."""
    aside = None
    if target.exists():
        aside = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent))
        os.replace(target, aside / target.name)
    os.replace(source, target)
    if aside is not None:
        shutil.rmtree(aside)


@contextmanager
def atomic_path(path: Union[str, Path], *, is_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside `path`; move it onto `path` only if the block succeeds.

    With is_dir=True the temporary path is an empty directory and an existing
    directory at `path` is replaced as a whole. Temporary paths of earlier killed writes
    of `path` are removed first.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    if is_dir:
        tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, (0o777 if is_dir else 0o666) & ~umask)
        if is_dir:
            replace_dir(tmp, path)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            remove_path(tmp)
