"""Device mesh and shardings: data parallel over a 'data' axis, parameters replicated.

The same code runs on one CPU, one GPU, eight fake CPU devices (tests) or several processes (hosts; see
cluster.py): each process feeds its own rows of the global batch and ``jax.make_array_from_process_local_data``
assembles the global array.
"""

from __future__ import annotations

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding, PartitionSpec

from compzoo.errors import UsageError

DATA_AXIS = "data"


def make_mesh(devices=None) -> Mesh:
  devices = jax.devices() if devices is None else devices
  return Mesh(np.asarray(devices), (DATA_AXIS,))


def replicated(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec())


def batch_sharding(mesh: Mesh) -> NamedSharding:
  return NamedSharding(mesh, PartitionSpec(DATA_AXIS))


def check_batch_size(global_batch: int, mesh: Mesh) -> None:
  """Refuses global batch sizes that do not split evenly over the mesh's devices."""
  devices = mesh.devices.size
  if global_batch % devices:
    raise UsageError(f"batch size {global_batch} does not split over {devices} devices; use a multiple of {devices}")


def shard_batch(local_batch: dict, mesh: Mesh) -> dict:
  """This process's rows of a batch -> the global batch, split over the 'data' axis."""
  sharding = batch_sharding(mesh)
  return {k: jax.make_array_from_process_local_data(sharding, np.asarray(v)) for k, v in local_batch.items()}


def replicate(tree, mesh: Mesh):
  """Host values that every process holds alike (an evaluation batch) -> arrays replicated over the mesh."""
  sharding = replicated(mesh)
  return jax.tree.map(lambda value: jax.make_array_from_process_local_data(sharding, np.asarray(value)), tree)


def agree(flag: bool) -> bool:
  """Process 0's ``flag`` in every process: decisions that end a loop (a wall-clock budget) must be the same
  everywhere, or the processes that go on wait for the others forever."""
  if jax.process_count() == 1:
    return flag
  from jax.experimental import multihost_utils
  return bool(multihost_utils.broadcast_one_to_all(np.asarray(flag)))
