"""Run by tests/test_sharding.py in a fresh process with 8 fake CPU devices (XLA_FLAGS must be set before
jax is imported, so this cannot run inside the pytest process)."""

import sys

import jax
import numpy as np

from compzoo.errors import UsageError
from compzoo.train import mesh as mesh_lib
from compzoo.train.loop import compile_step, new_train_state, place, train_and_evaluate
from train_helpers import tiny_config


def one_step(devices, batch, config):
  objective, train_state = new_train_state(config)
  mesh = mesh_lib.make_mesh(devices)
  graphdef, params = place(train_state, mesh)
  sharded = mesh_lib.shard_batch({"image": batch}, mesh)
  assert len(sharded["image"].sharding.device_set) == len(devices)
  params, step_metrics = compile_step(objective, graphdef, mesh)(params, sharded, jax.random.PRNGKey(3))
  leaves = jax.tree.leaves(params)
  assert all(leaf.sharding.is_fully_replicated for leaf in leaves)
  return float(step_metrics["loss"]), [np.asarray(leaf) for leaf in leaves]


def main(workdir):
  assert jax.device_count() == 8, jax.devices()
  config = tiny_config(batch_size=8)
  batch = np.random.default_rng(0).integers(0, 256, (8, 32, 32, 3), dtype=np.uint8)
  loss_8, params_8 = one_step(jax.devices(), batch, config)
  loss_1, params_1 = one_step(jax.devices()[:1], batch, config)
  np.testing.assert_allclose(loss_8, loss_1, rtol=1e-5)
  worst = max(float(np.max(np.abs(a - b))) for a, b in zip(params_8, params_1))
  assert worst < 1e-5, worst
  print(f"loss 8 devices {loss_8:.6f}, 1 device {loss_1:.6f}; largest parameter difference {worst:.2e}")

  final = train_and_evaluate(tiny_config(steps=4, batch_size=8), workdir, progress=False)
  assert np.isfinite(final["loss"])
  try:
    train_and_evaluate(tiny_config(steps=1, batch_size=6), workdir + "-bad", progress=False)
  except UsageError as e:
    assert "does not split over 8 devices" in str(e)
  else:
    raise AssertionError("a batch of 6 on 8 devices must be refused")
  print("ok")


if __name__ == "__main__":
  main(sys.argv[1])
