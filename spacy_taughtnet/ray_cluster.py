"""Ray for `annotate --backend ray` (annotate/ray_backend.py) and `distill-teachers --backend
ray` (distill_ray.py): which backends there are, where the actors run and what each asks for
(RayOptions), the cluster they run on (an existing one, or a local Ray started for the run
that goes with its driver: ray_reaper.py), and the one pool that sends the jobs to the
actors and retries a job whose actor died (run_pool).

Ray is an optional extra: this module does not import it at the top, so the CLI takes the
Ray options' defaults from here without it. Each backend's entry function (annotate_ray,
dump_distributions_ray) first calls require_ray(command), which names the command when Ray
is missing; the functions below import Ray once that has passed.
"""
import os
import socket
import subprocess
import sys
import uuid
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, Iterator, Optional, Sequence

from .errors import ConfigError, RayBackendError

# Where annotate and distill-teachers run: this process, or Ray actors.
BACKENDS = ("local", "ray")
DEFAULT_CPUS_PER_ACTOR = 1.0
DEFAULT_GPUS_PER_ACTOR = 0.0
# annotate's documents per shard, within one input file: one part file each, the unit of resuming
DEFAULT_SHARD_RECORDS = 1000
# An actor that dies (a killed process, a lost node) is restarted this many times, and the
# job it was running is retried on it; beyond that the run fails and a rerun resumes it.
MAX_RESTARTS = 4
_LOCAL_RAY_MARK = "SPACY_TAUGHTNET_LOCAL_RAY"  # how the variable that marks a local Ray's processes begins


def check_backend(backend: str) -> None:
    """Refuse a backend that is not one of BACKENDS (annotate's and distill-teachers' --backend)."""
    if backend not in BACKENDS:
        raise ConfigError(f"--backend must be {' or '.join(BACKENDS)}, got {backend!r}")


def require_ray(command: str) -> Any:
    """The ray module; RayBackendError naming `command` (annotate, distill-teachers) if Ray is
    not installed."""
    try:
        import ray
    except ImportError:
        raise RayBackendError(f'{command} --backend ray needs Ray, an optional extra: pip install "spacy-taughtnet[ray]"') from None
    return ray


@dataclass(frozen=True)
class RayOptions:
    """Where the actors run and what each asks for (--address, --num-actors, --cpus-per-actor,
    --gpus-per-actor of `annotate` and `distill-teachers`).

    address: an existing cluster (`auto`, HOST:PORT, ray://...); None: $RAY_ADDRESS (set by
    `ray job submit`), else a local Ray started for the run. num_actors: None for as many as
    the cluster holds. cpus_per_actor: fractional allowed (2 actors of 0.5 CPU on 2 cores)."""

    address: Optional[str] = None
    num_actors: Optional[int] = None
    cpus_per_actor: float = DEFAULT_CPUS_PER_ACTOR
    gpus_per_actor: float = DEFAULT_GPUS_PER_ACTOR

    def __post_init__(self) -> None:
        if self.num_actors is not None and self.num_actors < 1:
            raise ConfigError(f"--num-actors must be at least 1, got {self.num_actors}")
        if not self.cpus_per_actor > 0:  # NaN fails too
            raise ConfigError(f"--cpus-per-actor must be positive, got {self.cpus_per_actor}")
        if not self.gpus_per_actor >= 0:
            raise ConfigError(f"--gpus-per-actor must be 0 or more, got {self.gpus_per_actor}")

    @property
    def cluster_address(self) -> Optional[str]:
        return self.address or os.environ.get("RAY_ADDRESS") or None

    def actor_options(self) -> Dict[str, Any]:
        """Each actor's Ray options: its resources and its restarts."""
        return {
            "num_cpus": self.cpus_per_actor,
            "num_gpus": self.gpus_per_actor,
            "max_restarts": MAX_RESTARTS,
            "max_task_retries": MAX_RESTARTS,
        }


def check_reachable(address: Optional[str]) -> None:
    """Raise RayBackendError at once if a HOST:PORT address does not accept connections (Ray
    itself retries for minutes). `auto` and `ray://` addresses are left to ray.init."""
    host, _, port = (address or "").rpartition(":")
    if not host or not port.isdigit() or "://" in address:
        return
    try:
        socket.create_connection((host, int(port)), timeout=10).close()
    except OSError as err:
        raise RayBackendError(
            f"cannot connect to the Ray cluster at {address!r}: {err.strerror or err}; start it with `ray start --head`, "
            "or leave out --address to start a local Ray"
        ) from None


@contextmanager
def connected(address: Optional[str]) -> Iterator[None]:
    """Connected to the Ray cluster at `address`, or to a local Ray started here (no address),
    stopped at the end and killed with this process (local_ray_reaped), unless this process
    is connected already."""
    import ray

    if ray.is_initialized():
        yield
        return
    with nullcontext() if address else local_ray_reaped():
        try:
            if address:
                ray.init(address=address, include_dashboard=False, log_to_driver=False)
            else:
                ray.init(num_cpus=os.cpu_count(), include_dashboard=False, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as err:
            where = f"the Ray cluster at {address!r}" if address else "a local Ray"
            first = (str(err).strip().splitlines() or [type(err).__name__])[0]
            raise RayBackendError(f"cannot connect to {where}: {first}") from None
        try:
            yield
        finally:
            ray.shutdown()


@contextmanager
def local_ray_reaped() -> Iterator[None]:
    """Around the start and the run of a local Ray: the processes this one starts meanwhile
    carry an environment variable of a name of their own, by which ray_reaper.py, started
    here, finds the local Ray, and kills what is left of it once this process is done, or
    dead."""
    name = f"{_LOCAL_RAY_MARK}_{uuid.uuid4().hex}"
    reaper = subprocess.Popen(
        [sys.executable, "-I", str(Path(__file__).with_name("ray_reaper.py")), f"{name}=1"],
        stdin=subprocess.PIPE, start_new_session=True,  # not stopped by a Ctrl-C to this process's group
    )
    os.environ[name] = "1"
    try:
        yield
    finally:
        del os.environ[name]
        reaper.stdin.close()
        reaper.wait()


def actors_to_start(options: RayOptions) -> int:
    """options.num_actors, or as many as the cluster's CPUs (GPUs, for GPU actors) hold; an
    error if the cluster cannot hold them (their jobs would wait for ever)."""
    import ray

    resources = ray.cluster_resources()
    cpus, gpus = resources.get("CPU", 0.0), resources.get("GPU", 0.0)
    fit = int(cpus // options.cpus_per_actor + 1e-9)
    if options.gpus_per_actor > 0:
        fit = min(fit, int(gpus // options.gpus_per_actor + 1e-9))
    n = options.num_actors if options.num_actors is not None else fit
    if n < 1 or n > fit:
        raise RayBackendError(
            f"the Ray cluster ({cpus:g} CPUs, {gpus:g} GPUs) cannot hold {max(n, 1)} actors of {options.cpus_per_actor:g} CPUs "
            f"and {options.gpus_per_actor:g} GPUs; lower --num-actors, --cpus-per-actor or --gpus-per-actor"
        )
    return n


class PoolActor:
    """Base of the actors of run_pool: a subclass loads its models in __init__ (after this
    one's), which `ready` waits for."""

    def __init__(self, use_gpu: bool) -> None:
        if use_gpu:
            import spacy

            spacy.require_gpu()  # the GPU Ray gave this actor (CUDA_VISIBLE_DEVICES)

    def ready(self) -> bool:
        return True


def run_pool(
    actor_class: type,
    args: Sequence[Any],
    options: RayOptions,
    jobs: Iterable[Any],
    submit: Callable[[Any, Any], Any],
    on_result: Callable[[Any], None],
    *,
    cannot_start: Callable[[str], Exception],
    failed: Callable[[str], Exception],
) -> None:
    """On the cluster of `options` (connected), start its actors (actors_to_start) of
    actor_class, a PoolActor built with (use_gpu, *args), and once each is ready send each of
    `jobs`, as it is drawn, to a free actor (submit(actor, job) starts its task); pass each
    task's result to on_result as it comes. An actor that dies is restarted and its task
    retried (MAX_RESTARTS). The actors are killed at the end, also on failure. An actor that
    cannot start raises cannot_start(the first line of the Ray error); a task that fails,
    failed(its first line)."""
    import ray
    from ray.util import ActorPool

    with connected(options.cluster_address):
        remote = ray.remote(actor_class).options(**options.actor_options())
        actors = [remote.remote(options.gpus_per_actor > 0, *args) for _ in range(actors_to_start(options))]
        try:
            try:
                ray.get([actor.ready.remote() for actor in actors])  # each has loaded its models
            except ray.exceptions.RayActorError as err:
                raise cannot_start(first_line(err)) from None
            pool = ActorPool(actors)

            def collect() -> None:
                try:
                    result = pool.get_next_unordered()
                except ray.exceptions.RayError as err:
                    raise failed(first_line(err)) from None
                on_result(result)

            for job in jobs:
                while not pool.has_free():
                    collect()
                pool.submit(submit, job)
            while pool.has_next():
                collect()
        finally:
            for actor in actors:
                ray.kill(actor)


def first_line(err: BaseException) -> str:
    """The most telling line of a Ray error: the user error raised in the actor, if any."""
    import ray

    cause = getattr(err, "cause", None) or getattr(err, "error", None)
    if isinstance(cause, BaseException) and not isinstance(cause, ray.exceptions.RayError):
        err = cause
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    for line in reversed(lines):
        if "Error:" in line:
            return line
    return lines[0] if lines else type(err).__name__
