"""What the Ray tests (test_ray.py, test_ray_distill.py) share: finding and killing actors."""
import os
import signal
import threading
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, List


def actor_pids(actor_class: str) -> List[int]:
    """The processes of this machine's Ray actors of a class."""
    pids = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if (entry / "cmdline").read_bytes().startswith(f"ray::{actor_class}".encode()):
                    pids.append(int(entry.name))
            except OSError:
                pass
    return pids


def actors_gone(actor_class: str, timeout: float = 60) -> bool:
    """Wait until this machine runs no actor of `actor_class` (ray.kill returns before the
    actor exits), for at most `timeout` seconds; whether none is left."""
    deadline = time.monotonic() + timeout
    while actor_pids(actor_class):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


@contextmanager
def actor_killed_mid_run(actor_class: str, folder: Path, pattern: str, after: int = 2) -> Iterator[Dict[str, int]]:
    """While the body runs, SIGKILL one actor of `actor_class` started meanwhile, once `folder`
    holds `after` outputs matching `pattern`. Yields a dict that then holds the actor's pid and
    how many outputs there were ({} if none was killed)."""
    killed: Dict[str, int] = {}
    older = set(actor_pids(actor_class))  # actors of earlier tests, if any are still going away
    finished = threading.Event()

    def kill_actor() -> None:
        while not finished.is_set():  # until the run ends: a loaded machine starts actors slowly
            done = list(folder.glob(pattern)) if folder.is_dir() else []
            pids = [pid for pid in actor_pids(actor_class) if pid not in older]
            if len(done) >= after and pids:
                os.kill(pids[0], signal.SIGKILL)
                killed.update(pid=pids[0], outputs=len(done))
                return
            time.sleep(0.02)

    killer = threading.Thread(target=kill_actor)
    killer.start()
    try:
        yield killed
    finally:
        finished.set()
        killer.join()
