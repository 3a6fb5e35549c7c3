"""`python ray_reaper.py NAME=VALUE`: run beside a local Ray that its parent, a driver, starts
(ray_cluster.local_ray_reaped), with the driver's end of a pipe as stdin. Once that pipe
closes (the driver is done, or dead, even by SIGKILL) it kills the local Ray's processes.

The kernel kills Ray's raylet and GCS with their driver, but not the agents that the raylet
starts: they wait a minute for the dead GCS before they exit. So while the driver lives,
this notes the processes under the driver's children whose environment holds NAME=VALUE
(the raylet, the GCS: the local Ray), with their start times, and kills the ones still
there at the end. The agents' own environment cannot mark them: their process title
(setproctitle) overwrites it.

Run by path, with the standard library only: it starts in a few hundredths of a second.
"""
import os
import select
import signal
import sys
from collections import defaultdict
from pathlib import Path
from typing import Dict, List, Tuple

_POLL_SECONDS = 0.5


def _processes() -> Dict[int, Tuple[int, str]]:
    """pid -> (parent pid, start time) of every live process."""
    found = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                fields = (proc / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # ended meanwhile
                continue
            if fields[0] != "Z":
                found[int(proc.name)] = (int(fields[1]), fields[19])
    return found


def _marked(pid: int, entry: bytes) -> bool:
    try:
        return entry in Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return False


def local_ray(driver: int, entry: bytes) -> Dict[int, str]:
    """pid -> start time of the driver's children that hold `entry` and of their descendants."""
    processes = _processes()
    children: Dict[int, List[int]] = defaultdict(list)
    for pid, (parent, _) in processes.items():
        children[parent].append(pid)
    todo = [pid for pid in children[driver] if _marked(pid, entry)]
    found = {}
    while todo:
        pid = todo.pop()
        found[pid] = processes[pid][1]
        todo.extend(children[pid])
    return found


def main() -> None:
    entry, driver = sys.argv[1].encode(), os.getppid()
    noted: Dict[int, str] = {}
    while not select.select([sys.stdin], [], [], _POLL_SECONDS)[0]:  # the driver writes nothing: readable at its end
        noted.update(local_ray(driver, entry))
    processes = _processes()
    for pid, start in noted.items():
        if pid in processes and processes[pid][1] == start:  # the same process, not a new one with its pid
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:  # ended meanwhile
                pass


if __name__ == "__main__":
    main()
