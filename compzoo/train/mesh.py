"""Device mesh and shardings: data parallel over a 'data' axis, parameters replicated.

The same code runs on one CPU, one GPU, eight fake CPU devices (tests) or many hosts: each host feeds its
own slice of the global batch and ``jax.make_array_from_process_local_data`` assembles the global array.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from compzoo.errors import UsageError

DATA_AXIS = "data"


def initialize_distributed(coordinator: str | None = None, num_processes: int | None = None,
                           process_id: int | None = None) -> None:
  """Multi-host start; with no arguments JAX discovers the cluster (TPU pods, SLURM, ...)."""
  jax.distributed.initialize(coordinator_address=coordinator, num_processes=num_processes, process_id=process_id)


def make_mesh(devices=None) -> Mesh:
  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def check_batch_size(global_batch: int, mesh: Mesh) -> int:
  """-> this host's share of the global batch; refuses sizes that do not split evenly."""
  devices = mesh.devices.size
  if global_batch % devices:
    raise UsageError(f"batch size {global_batch} does not split over {devices} devices; use a multiple of {devices}")
  return global_batch // jax.process_count()


def shard_batch(local_batch: dict, mesh: Mesh) -> dict:
  sharding = batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in local_batch.items()}
