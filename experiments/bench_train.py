"""Training throughput of any config, in images per second of the compiled train step:

    python -m experiments.bench_train --config=experiments/configs/bmshj2018_factorized.py:cpu --steps=20

Times ``--steps`` steps after ``--warmup`` (compilation), on one fixed batch so the number measures the
accelerator, not the input pipeline; prints one JSON line with the device.
"""

import json
import time

from absl import app, flags, logging
from ml_collections import config_flags

FLAGS = flags.FLAGS
config_flags.DEFINE_config_file("config", None, "Config file (experiments/configs/NAME.py[:variant]).")
flags.DEFINE_integer("steps", 20, "Timed steps.")
flags.DEFINE_integer("warmup", 3, "Untimed steps first (compilation).")
flags.mark_flags_as_required(["config"])


def main(argv):
  del argv
  logging.set_verbosity(logging.WARNING)
  import jax
  import numpy as np

  from compzoo.train import mesh as mesh_lib
  from compzoo.train.loop import compile_step, new_train_state, place

  config = FLAGS.config
  mesh = mesh_lib.make_mesh()
  objective, train_state = new_train_state(config)
  graphdef, state = place(train_state, mesh)
  step = compile_step(objective, graphdef, mesh)
  rng = np.random.default_rng(0)
  shape = (config.data.batch_size, config.data.crop, config.data.crop, 3)
  batch = mesh_lib.shard_batch({"image": rng.integers(0, 256, shape, dtype=np.uint8)}, mesh)
  key = jax.random.PRNGKey(0)
  for _ in range(FLAGS.warmup):
    state, metrics = step(state, batch, key)
  jax.block_until_ready(metrics)
  start = time.perf_counter()
  for _ in range(FLAGS.steps):
    state, metrics = step(state, batch, key)
  jax.block_until_ready(metrics)
  seconds = time.perf_counter() - start
  print(json.dumps({"device": str(jax.devices()[0].device_kind), "devices": jax.device_count(),
                    "batch": shape, "steps_per_s": round(FLAGS.steps / seconds, 3),
                    "images_per_s": round(FLAGS.steps * shape[0] / seconds, 2)}))


if __name__ == "__main__":
  app.run(main)
