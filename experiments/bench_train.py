"""Training throughput and memory of any config: seconds per compiled train step, images per second, and
the step's memory as XLA plans it:

    python -m experiments.bench_train --config=experiments/configs/bmshj2018_factorized.py:cpu --steps=20
    python -m experiments.bench_train --config=experiments/configs/refine.py:cpu-rtrl --steps=5

Times ``--steps`` steps after ``--warmup`` (compilation), on one fixed batch so the number measures the
accelerator, not the input pipeline (configs that train on JPEG copies get them added); prints one JSON
line with the device. ``step_memory_mb`` is the compiled step's arguments + outputs + temporaries
(``memory_analysis()``): the peak a step needs on any backend, repeatable, unlike a process's RSS.
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

  from compzoo.data import pipeline
  from compzoo.train import mesh as mesh_lib
  from compzoo.train.loop import compile_step, new_train_state, place

  config = FLAGS.config
  mesh = mesh_lib.make_mesh()
  objective, train_state = new_train_state(config)
  graphdef, state = place(train_state, mesh)
  step = compile_step(objective, graphdef, mesh)
  rng = np.random.default_rng(0)
  shape = (config.data.batch_size, config.data.crop, config.data.crop, 3)
  records = [{"image": rng.integers(0, 256, shape[1:], dtype=np.uint8)} for _ in range(shape[0])]
  if config.data.get("jpeg_quality"):
    low, high = pipeline.check_qualities(config.data.jpeg_quality)
    records = [pipeline.with_jpeg(r, (low + high) // 2) for r in records]
  batch = mesh_lib.shard_batch({k: np.stack([r[k] for r in records]) for k in records[0]}, mesh)
  key = jax.random.PRNGKey(0)
  memory = compiled_memory(step, state, batch, key)
  for _ in range(FLAGS.warmup):
    state, metrics = step(state, batch, key)
  jax.block_until_ready(metrics)
  start = time.perf_counter()
  for _ in range(FLAGS.steps):
    state, metrics = step(state, batch, key)
  jax.block_until_ready(metrics)
  seconds = time.perf_counter() - start
  print(json.dumps({"config": FLAGS["config"].config_filename, "device": str(jax.devices()[0].device_kind),
                    "devices": jax.device_count(),
                    "batch": shape, "steps_per_s": round(FLAGS.steps / seconds, 3),
                    "seconds_per_step": round(seconds / FLAGS.steps, 4),
                    "images_per_s": round(FLAGS.steps * shape[0] / seconds, 2),
                    "step_memory_mb": memory, "parameters": parameter_count(train_state.model)}))


def compiled_memory(step, state, batch, key):
  """MB of arguments, outputs and temporaries of the compiled step (None where the backend won't say)."""
  try:
    analysis = step.lower(state, batch, key).compile().memory_analysis()
  except Exception:  # backends without the analysis
    return None
  if analysis is None:
    return None
  total = (analysis.argument_size_in_bytes + analysis.output_size_in_bytes + analysis.temp_size_in_bytes
           - analysis.alias_size_in_bytes)
  return round(total / 2**20, 1)


def parameter_count(model) -> int:
  import jax
  from flax import nnx
  return int(sum(leaf.size for leaf in jax.tree.leaves(nnx.state(model, nnx.Param))))


if __name__ == "__main__":
  app.run(main)
