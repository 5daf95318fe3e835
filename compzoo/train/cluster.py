"""Multi-process runs (``jax.distributed``): start the processes together, notice when one of them is gone,
and stop together.

JAX's multi-controller runtime has every process run the same program; the collectives of a step block until
every process joins them. A process that dies would leave the others blocked for good (gloo's collectives on
the CPU wait without bound), and the coordination service's own reaction to a missed heartbeat is to abort
every process with a C++ stack trace. So a run starts in JAX's *recoverable* mode and a ``Watchdog`` thread in
every process asks the coordination service, twice a second, which processes are alive and which have failed:

* a process that raises an error publishes it under ``compzoo/failed/<id>`` before it leaves, and the
  others stop with ``error: process 1 of 2 failed: ...``;
* a process that is killed, crashes hard or loses its host stops sending heartbeats, and after
  ``timeout_s`` the others stop with ``error: process 1 of 2 stopped responding ...``.

Both exit with status 1 (the survivors cannot unblock their collectives, so the watchdog ends the process).
Process 0 hosts the coordination service: when it is the one that dies, JAX itself terminates the others at
once, with its own message ("Terminating process because the JAX distributed service detected fatal errors").
Because recoverable mode drops JAX's shutdown barrier, ``finish`` orders the end itself: a barrier, then the
other processes disconnect, then process 0 (which must outlive them) shuts the service down.
"""

from __future__ import annotations

import dataclasses
import os
import sys
import threading
import time

import jax

from compzoo.errors import UsageError

FAILED_PREFIX = "compzoo/failed/"
POLL_S = 0.5


@dataclasses.dataclass(frozen=True)
class ClusterSpec:
  """How to join a run. All of coordinator, num_processes and process_id, or none of them: then JAX
  discovers the cluster (SLURM, TPU pods, Open MPI, Kubernetes jobs, ...)."""
  coordinator: str | None = None
  num_processes: int | None = None
  process_id: int | None = None
  timeout_s: int = 100  # heartbeats missed this long mean a dead process; also the connect and barrier waits

  def __post_init__(self):
    given = [value is not None for value in (self.coordinator, self.num_processes, self.process_id)]
    if any(given) and not all(given):
      raise UsageError("give the coordinator address, the number of processes and the process id together, "
                       "or none of them to let JAX discover the cluster")
    if self.num_processes is not None and not 0 <= self.process_id < self.num_processes:
      raise UsageError(f"process id {self.process_id} is not in 0 ... {self.num_processes - 1}")
    if self.timeout_s < 1:
      raise UsageError(f"the timeout must be at least 1 second, got {self.timeout_s}")


class Cluster:
  """This process's membership of a multi-process run: constructing it joins the run, ``finish`` leaves."""

  def __init__(self, spec: ClusterSpec):
    self.spec = spec
    # CPU collectives across processes need gloo (the default has none); accelerators ignore this setting.
    jax.config.update("jax_cpu_collectives_implementation", "gloo")
    jax.config.update("jax_enable_recoverability", True)
    # JAX aborts with a C++ stack trace when the processes fail to meet in time; this timer says why first.
    timer = threading.Timer(spec.timeout_s, _connect_timed_out, args=(spec,))
    timer.daemon = True
    timer.start()
    try:
      jax.distributed.initialize(spec.coordinator, spec.num_processes, spec.process_id,
                                 initialization_timeout=spec.timeout_s + 10, heartbeat_timeout_seconds=spec.timeout_s,
                                 shutdown_timeout_seconds=spec.timeout_s)
    except (ValueError, RuntimeError) as e:  # no cluster found, or initialised twice
      raise UsageError(f"cannot join a multi-process run: {e} (JAX finds SLURM, TPU pods, Open MPI and Kubernetes "
                       "jobs by itself; elsewhere give --coordinator_address, --num_processes and --process_id)") from None
    finally:
      timer.cancel()
    self.index, self.count = jax.process_index(), jax.process_count()
    self.watchdog = Watchdog(self)
    self.watchdog.start()

  @property
  def client(self):
    from jax._src import distributed  # the coordination client JAX keeps; no public handle exists
    return distributed.global_state.client

  def peers(self) -> list[int]:
    return [i for i in range(self.count) if i != self.index]

  def live_peers(self) -> set[int]:
    return set(self.client.get_live_nodes(list(range(self.count)))) - {self.index}

  def failures(self) -> dict[int, str]:
    """Errors other processes published before leaving: {process id: message}."""
    return {int(key.rsplit("/", 1)[-1]): value for key, value in self.client.key_value_dir_get(FAILED_PREFIX)}

  def finish(self, error: str | None = None) -> None:
    """Leaves the run. ``error``: this process failed (published for the others, no barrier: they may be
    blocked in a step). Otherwise every process meets at a barrier first."""
    if error is None:
      try:
        self.client.wait_at_barrier("compzoo/finish", self.spec.timeout_s * 1000)
      except Exception as e:  # noqa: BLE001 (a process never arrived; the watchdog may already be ending this one)
        error = f"the others did not finish within {self.spec.timeout_s} s: {str(e).splitlines()[0]}"
    if error is not None:
      try:
        self.client.key_value_set(f"{FAILED_PREFIX}{self.index}", error)
      except Exception:  # noqa: BLE001 (the coordinator is gone: nobody is left to tell)
        pass
    self.watchdog.stop()
    if self.index == 0:
      self.wait_for_peers_to_leave()
    jax.distributed.shutdown()

  def wait_for_peers_to_leave(self) -> None:
    """Process 0 hosts the coordination service: leaving before the others would abort them."""
    deadline = time.monotonic() + self.spec.timeout_s
    while time.monotonic() < deadline:
      try:
        if not self.live_peers():
          return
      except Exception:  # the service is going away: nothing left to wait for
        return
      time.sleep(POLL_S / 5)


def _connect_timed_out(spec: ClusterSpec) -> None:
  where = f"the coordinator at {spec.coordinator}" if spec.coordinator else "the coordinator JAX discovered"
  print(f"error: the run's processes did not all connect to {where} within {spec.timeout_s} s (is every "
        "process started, with the same --num_processes, and can it reach process 0?)", file=sys.stderr, flush=True)
  os._exit(1)


class Watchdog(threading.Thread):
  """Ends this process with a one-line error once another process of the run has failed or died."""

  def __init__(self, cluster: Cluster):
    super().__init__(name="compzoo-watchdog", daemon=True)
    self.cluster = cluster
    self._stopped = threading.Event()

  def stop(self) -> None:
    self._stopped.set()
    self.join()

  def run(self) -> None:
    while not self._stopped.wait(POLL_S):
      problem = self.check()
      if problem and not self._stopped.is_set():
        self.abort(problem)

  def check(self) -> str | None:
    cluster = self.cluster
    try:
      failures = {i: message for i, message in cluster.failures().items() if i != cluster.index}
      missing = set(cluster.peers()) - cluster.live_peers()
    except Exception as e:  # noqa: BLE001 (any RPC failure means the coordinator is unreachable)
      return f"lost the coordinator (process 0): {str(e).splitlines()[0]}"
    lines = [f"process {i} of {cluster.count} failed: {failures[i]}" if i in failures else
             f"process {i} of {cluster.count} stopped responding (killed, crashed, or its host is unreachable; "
             f"heartbeat timeout {cluster.spec.timeout_s} s)" for i in sorted(missing | set(failures))]
    return "; ".join(lines) or None

  def abort(self, problem: str) -> None:
    print(f"error: {problem}; stopping process {self.cluster.index} too. Start all processes again to resume "
          "from the last checkpoint.", file=sys.stderr, flush=True)
    sys.stdout.flush()
    if self.cluster.index == 0:  # let the others notice and leave before the service goes
      self.cluster.wait_for_peers_to_leave()
    else:  # disconnect, so that process 0 need not wait for a missed heartbeat (the main thread may be stuck)
      leaving = threading.Thread(target=self.cluster.client.shutdown, daemon=True)
      leaving.start()
      leaving.join(timeout=2)
    os._exit(1)
