"""Trains ecg-lossless, the learned lossless ECG codec (compzoo/models/ecg_lossless.py), on CinC 2017 (issue #36).

    python -m experiments.ecg_lossless --out=runs/ecg-lossless        # `make ecg-lossless`

Training reads fold 0 of ``../shared/data/cinc2017`` minus ``--choice_recordings`` of it held out (a seeded
sample): checkpoints are chosen on those, never on fold 1, which the codec is then reported on
(`make bench-ecg`). Each step draws ``--batch`` crops of ``--crop`` samples from random recordings, each with
the ``window`` samples before it (zeros before a recording starts, as coding sees them), and minimises the mean
bits per sample. Every ``--eval_every`` steps the choice set's bits per sample are measured (whole recordings,
ideal code length); the best export is kept in OUT/export. Writes OUT/metrics.csv and OUT/result.json.
"""

from __future__ import annotations

import csv
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags
from flax import nnx

from compzoo import exports, models
from compzoo.data import ecg
from compzoo.errors import UsageError
from experiments.configs.presets import SHARED_DATA

FLAGS = flags.FLAGS
flags.DEFINE_string("out", "runs/ecg-lossless", "run folder: metrics.csv, result.json, export/")
flags.DEFINE_string("data", f"{SHARED_DATA}/cinc2017", "the CinC 2017 folder (dev.npz)")
flags.DEFINE_integer("steps", 6000, "training steps")
flags.DEFINE_integer("batch", 16, "crops per step")
flags.DEFINE_integer("crop", 1024, "samples predicted per crop")
flags.DEFINE_float("learning_rate", 2e-3, "Adam's peak learning rate (cosine decay)")
flags.DEFINE_integer("features", 48, "hidden channels")
flags.DEFINE_integer("components", 4, "logistic mixture components")
flags.DEFINE_integer("choice_recordings", 200, "fold-0 recordings held out to choose checkpoints on")
flags.DEFINE_integer("eval_every", 500, "steps between evaluations on the choice set")
flags.DEFINE_float("max_hours", 0.0, "stop after this many hours (0: no limit)")
flags.DEFINE_integer("seed", 0, "data, hold-out and initialisation seed")
flags.DEFINE_string("evaluate", "", "instead of training: an export's ideal code length on fold 1, pooled and per "
                    "recording (OUT/fold1.json); real files: `make bench-ecg`")

EVAL_CHUNK = 4096  # samples predicted per evaluation call: one compiled shape for recordings of any length


def model_config() -> dict:
  return {"name": "ecg_lossless", "features": FLAGS.features, "components": FLAGS.components}


def recording_bits(model, signals: list) -> np.ndarray:
  """The bits each of ``signals`` costs: the model's code length, each sample capped as files cap it
  (``EcgLossless.bits``). Real files add the container and the range coder's tail (`make bench-ecg`)."""
  bits = jax.jit(lambda m, chunks: m.bits(chunks))
  return np.array([float(np.sum(np.asarray(bits(model, chunks)) * mask))
                   for chunks, mask in (ecg.context_chunks(x, model.window, EVAL_CHUNK) for x in signals)])


def bits_per_sample(model, signals: list) -> float:
  """Ideal code length of ``signals`` under ``model``, pooled over all their samples."""
  return float(recording_bits(model, signals).sum() / sum(len(x) for x in signals))


def train(model, signals, choice, out: Path) -> dict:
  schedule = optax.cosine_decay_schedule(FLAGS.learning_rate, max(FLAGS.steps, 1), alpha=0.02)
  optimizer = nnx.Optimizer(model, optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule)), wrt=nnx.Param)

  @nnx.jit
  def step(model, optimizer, batch):
    loss, grads = nnx.value_and_grad(lambda m: jnp.mean(m.bits(batch)))(model)
    optimizer.update(model, grads)
    return loss

  rng = np.random.default_rng(FLAGS.seed)
  best = {"choice_bits_per_sample": float("inf"), "step": 0}
  start, losses = time.time(), []
  with open(out / "metrics.csv", "w", newline="") as handle:
    log = csv.writer(handle)
    log.writerow(["step", "train_bits_per_sample", "choice_bits_per_sample", "hours"])
    for i in range(1, FLAGS.steps + 1):
      losses.append(float(step(model, optimizer, ecg.context_crops(signals, model.window, FLAGS.crop, FLAGS.batch, rng))))
      hours = (time.time() - start) / 3600
      last = i == FLAGS.steps or (FLAGS.max_hours and hours > FLAGS.max_hours)
      if i % FLAGS.eval_every == 0 or last:
        score = bits_per_sample(model, choice)
        log.writerow([i, f"{np.mean(losses):.4f}", f"{score:.4f}", f"{hours:.3f}"])
        handle.flush()
        print(f"step {i}: train {np.mean(losses):.4f} choice {score:.4f} bits/sample ({hours:.2f} h)", flush=True)
        losses = []
        if score < best["choice_bits_per_sample"]:
          best = {"choice_bits_per_sample": score, "step": i}
          exports.write(out / "export", {"model": model_config(), "command": "python -m experiments.ecg_lossless",
                                         "step": i, "choice_bits_per_sample": score}, model)
      if last:
        break
  return {**best, "steps": i, "hours": (time.time() - start) / 3600}


def main(argv):
  del argv
  if FLAGS.steps < 1 or FLAGS.batch < 1 or FLAGS.crop < 1 or FLAGS.eval_every < 1:
    raise UsageError("--steps, --batch, --crop and --eval_every must be positive")
  out = Path(FLAGS.out)
  out.mkdir(parents=True, exist_ok=True)
  if FLAGS.evaluate:
    valid = ecg.cinc2017(FLAGS.data).fold(1).signals
    bits = recording_bits(exports.read(FLAGS.evaluate).model, valid)
    lengths = np.array([len(x) for x in valid])
    result = {"export": FLAGS.evaluate, "recordings": len(valid), "pooled_bits_per_sample": float(bits.sum() / lengths.sum()),
              "mean_bits_per_sample": float(np.mean(bits / lengths)),
              "note": "code length capped per sample at 72 bits as files cap it; no container (real files: + 53-58 "
                      "bytes of container and the coder's tail)"}
    (out / "fold1.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))
    return
  signals, choice = ecg.hold_out(ecg.cinc2017(FLAGS.data).fold(0).signals, FLAGS.choice_recordings, FLAGS.seed)
  model = models.build(model_config(), seed=FLAGS.seed)
  result = train(model, signals, choice, out)
  result.update(config=model_config(), train_recordings=len(signals), choice_recordings=len(choice))
  (out / "result.json").write_text(json.dumps(result, indent=1) + "\n")
  print(json.dumps(result))


if __name__ == "__main__":
  from experiments.launch import run

  app.run(lambda argv: run(lambda: main(argv)))
