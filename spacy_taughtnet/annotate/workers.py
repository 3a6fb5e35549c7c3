"""The worker processes of nlp.pipe(n_process=N): they die with their parent, and if one of
them dies the parent fails with a WorkerError instead of waiting for it for ever.

spaCy forks its workers inside nlp.pipe and keeps them to itself, so while a WorkerGuard is
active a hook registered with os.register_at_fork runs in each child forked:
- prctl(PR_SET_PDEATHSIG, SIGKILL) makes the kernel kill the worker when its parent dies,
  even by SIGKILL (a worker whose parent died before the call exits at once);
- the worker reports its pid to the guard's watchdog thread through a pipe.
The watchdog looks at each worker with waitid(WNOWAIT), which leaves it to spaCy to reap.
When one has died (a signal, or a non-zero exit) it kills the others: each holds a copy of
every worker's result pipe, so the parent, reading the dead worker's pipe, would otherwise
wait for ever; once they are gone that read fails (EOFError) and `failure` names the dead
worker.

While a guard is active in the main thread, SIGINT and SIGTERM, if this process handles them
in Python (SIGINT raises KeyboardInterrupt), first kill the workers, then run that handler:
otherwise nlp.pipe, stopped by the handler's exception, would join workers blocked on full
result pipes that the others still hold open, and wait for ever. (Without a Python handler
the signal ends this process, and the kernel the workers.)

This needs Linux and multiprocessing's "fork" start method (Linux's default up to Python
3.13); elsewhere the guard does nothing and nlp.pipe behaves as spaCy's own.
"""
import ctypes
import multiprocessing
import os
import select
import signal
import struct
import sys
import threading
from typing import Any, Callable, Dict, List, Optional, Tuple

from ..errors import WorkerError

_PR_SET_PDEATHSIG = 1
_POLL_SECONDS = 0.1
_PID = struct.Struct("i")
_STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)

_active: Optional["WorkerGuard"] = None  # the guard whose hook runs in forked children
_hook_registered = False


def _after_fork_in_child() -> None:
    global _active
    guard, _active = _active, None  # a worker's own children are not workers
    if guard is not None:
        guard._enrol_this_worker()


def _how_it_ended(pid: int) -> Optional[str]:
    """How our child `pid` died; None while it runs, if it exited with 0, or if it was reaped
    (no longer our child). The child is not reaped."""
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return None
    if info is None:
        return None
    if info.si_code == os.CLD_EXITED:
        return f"exit code {info.si_status}" if info.si_status else None
    try:
        name = signal.Signals(info.si_status).name
    except ValueError:  # a real-time signal
        name = "a signal"
    return f"killed by {name}, signal {info.si_status}"


def _running(pid: int) -> bool:
    """Whether `pid` is our child and has not ended (so the pid cannot be another process)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is None
    except ChildProcessError:
        return False


class WorkerGuard:
    """Active around an nlp.pipe(n_process=N) loop; see the module docstring."""

    def __init__(self) -> None:
        self.enabled = sys.platform.startswith("linux") and multiprocessing.get_start_method() == "fork"
        self.parent = os.getpid()
        self.dead: Optional[Tuple[int, str]] = None  # (pid, how it died) of the first dead worker
        self._workers: List[int] = []
        self._prctl: Optional[Callable[..., int]] = None
        self._read = self._write = -1
        self._stop = threading.Event()
        self._stopping = False  # a stop signal came: kill every worker, also one enrolled later
        self._thread: Optional[threading.Thread] = None
        self._handlers: Dict[int, Any] = {}  # the Python handlers of the stop signals replaced

    def __enter__(self) -> "WorkerGuard":
        global _active, _hook_registered
        if not self.enabled:
            return self
        if _active is not None:
            raise RuntimeError("one WorkerGuard at a time")
        if not _hook_registered:
            os.register_at_fork(after_in_child=_after_fork_in_child)
            _hook_registered = True
        self._prctl = ctypes.CDLL(None, use_errno=True).prctl  # loaded here, not in each child
        self._read, self._write = os.pipe()
        self._thread = threading.Thread(target=self._watch, name="annotate-worker-watchdog", daemon=True)
        self._thread.start()
        if threading.current_thread() is threading.main_thread():  # only it may set handlers
            for signum in _STOP_SIGNALS:
                handler = signal.getsignal(signum)
                if callable(handler):
                    self._handlers[signum] = handler
                    signal.signal(signum, self._on_stop_signal)
        _active = self
        return self

    def __exit__(self, *exc: Any) -> None:
        global _active
        if not self.enabled:
            return
        _active = None
        for signum, handler in self._handlers.items():
            signal.signal(signum, handler)
        self._stop.set()
        self._thread.join()
        os.close(self._read)
        os.close(self._write)

    def failure(self, n_process: int, err: Exception) -> WorkerError:
        """The error to raise for `err`, raised by nlp.pipe reading a worker's results that
        ended early: the worker that died and how, if the watchdog saw it before spaCy reaped
        it (not when all the workers died at once)."""
        if self.dead is None:
            return WorkerError(f"the worker processes of --n-process {n_process} ended before sending all their results ({type(err).__name__}: {err})")
        pid, how = self.dead
        return WorkerError(f"worker process {pid} of --n-process {n_process} died ({how}: the out-of-memory killer, or another process?)")

    def _on_stop_signal(self, signum: int, frame: Any) -> None:
        self._stopping = True
        self._kill_workers()
        self._handlers[signum](signum, frame)

    def _enrol_this_worker(self) -> None:  # in the child, right after the fork
        self._prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != self.parent:  # the parent died before prctl
            os._exit(1)
        os.write(self._write, _PID.pack(os.getpid()))
        os.close(self._read)
        os.close(self._write)

    def _watch(self) -> None:
        pending = b""
        while not self._stop.is_set():
            if select.select([self._read], [], [], _POLL_SECONDS)[0]:
                pending += os.read(self._read, 4096)
                whole = len(pending) - len(pending) % _PID.size
                self._workers.extend(pid for (pid,) in _PID.iter_unpack(pending[:whole]))
                pending = pending[whole:]
            if self._stopping:
                self._kill_workers()
                continue
            for pid in self._workers:
                how = _how_it_ended(pid)
                if how is not None:
                    self.dead = (pid, how)
                    self._kill_workers()
                    return

    def _kill_workers(self) -> None:
        for pid in list(self._workers):  # a copy: the watchdog thread may add to the list meanwhile
            if _running(pid):
                os.kill(pid, signal.SIGKILL)
