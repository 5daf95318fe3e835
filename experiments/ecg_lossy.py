"""Trains the learned lossy ECG codec at three rates (compzoo/models/ecg_lossy.py) on CinC 2017 (issue #36).

    python -m experiments.ecg_lossy --out=runs        # `make ecg-lossy`: runs/ecg-low, ecg-mid, ecg-high

Each rate is one λ of the loss bits per sample + λ · MSE (mV²), trained on fold 0 minus ``--choice_recordings``
held out (the same seeded hold-out as experiments/ecg_lossless.py); the export with the lowest loss on the
held-out recordings is kept in OUT/ecg-RATE/export, never chosen on fold 1, which it is reported on
(`make bench-ecg`). Each run writes metrics.csv and result.json (bits per sample, PRD, SNR on the hold-out).
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

from compzoo import exports, models, signals
from compzoo.data import ecg
from compzoo.errors import UsageError
from experiments.configs.presets import SHARED_DATA

FLAGS = flags.FLAGS
flags.DEFINE_string("out", "runs", "runs go to OUT/ecg-RATE")
flags.DEFINE_string("data", f"{SHARED_DATA}/cinc2017", "the CinC 2017 folder (dev.npz)")
flags.DEFINE_list("rates", ["low", "mid", "high"], "rates to train (λ from LAMBDAS)")
flags.DEFINE_integer("steps", 4000, "training steps per rate")
flags.DEFINE_integer("batch", 8, "crops per step")
flags.DEFINE_integer("crop", 1024, "samples per crop (a multiple of 16)")
flags.DEFINE_float("learning_rate", 1e-3, "Adam's peak learning rate (cosine decay)")
flags.DEFINE_integer("channels", 8, "latent channels")
flags.DEFINE_integer("features", 32, "hidden channels of the transforms")
flags.DEFINE_integer("choice_recordings", 200, "fold-0 recordings held out to choose exports on")
flags.DEFINE_integer("eval_every", 500, "steps between evaluations on the held-out recordings")
flags.DEFINE_integer("seed", 0, "data, hold-out and initialisation seed")
flags.DEFINE_string("plot", "", "instead of training: plot one fold-1 recording per class beside its reconstruction "
                    "at each rate (real files of OUT/ecg-RATE/export) into this PNG")
flags.DEFINE_float("plot_seconds", 4.0, "seconds shown of each recording")

EVAL_CHUNK = 2688  # samples: a multiple of 16 below the shortest recording (2,714)
LAMBDAS = {"low": 600.0, "mid": 2400.0, "high": 9600.0}  # per mV² of MSE, against bits per sample


def evaluate(model, choice: list) -> dict:
  """Bits per sample (ideal, rounded latents), MSE, PRD and SNR on the held-out recordings, cut into chunks of
  ``EVAL_CHUNK`` samples (every whole chunk of each; one compiled shape): pooled bits and MSE, mean PRD and SNR
  over chunks."""
  chunks = np.stack([x[i:i + EVAL_CHUNK] for x in choice for i in range(0, len(x) - EVAL_CHUNK + 1, EVAL_CHUNK)])
  forward = nnx.jit(lambda m, x: m(x))
  bits, squares, prds, snrs = [], [], [], []
  for start in range(0, len(chunks), 16):
    batch = chunks[start:start + 16]
    rows = len(batch)
    rate, decoded = forward(model, np.pad(batch, ((0, 16 - rows), (0, 0))).astype(np.float32))
    decoded = np.clip(np.round(np.asarray(decoded)[:rows]), -32768, 32767)
    bits += np.asarray(rate)[:rows].tolist()
    squares += np.mean(((decoded - batch) / 1000.0) ** 2, axis=1).tolist()
    prds += [signals.prd(x, y) for x, y in zip(batch, decoded)]
    snrs += [signals.snr_db(x, y) for x, y in zip(batch, decoded)]
  return {"bits_per_sample": float(np.mean(bits)), "mse_mv2": float(np.mean(squares)), "prd": float(np.mean(prds)),
          "snr_db": float(np.mean(snrs))}


def train_rate(rate: str, train, choice, out: Path) -> dict:
  config = {"name": "ecg_lossy", "channels": FLAGS.channels, "features": FLAGS.features}
  model = models.build(config, seed=FLAGS.seed)
  lam = LAMBDAS[rate]
  schedule = optax.cosine_decay_schedule(FLAGS.learning_rate, FLAGS.steps, alpha=0.05)
  optimizer = nnx.Optimizer(model, optax.chain(optax.clip_by_global_norm(1.0), optax.adam(schedule)), wrt=nnx.Param)

  @nnx.jit
  def step(model, optimizer, x, key):
    def loss_fn(m):
      bits, decoded = m(x, key)
      mse = jnp.mean(((decoded - x) / 1000.0) ** 2)
      return jnp.mean(bits) + lam * mse, (jnp.mean(bits), mse)
    (loss, (bits, mse)), grads = nnx.value_and_grad(loss_fn, has_aux=True)(model)
    optimizer.update(model, grads)
    return loss, bits, mse

  rng = np.random.default_rng(FLAGS.seed)
  best, start = None, time.time()
  out.mkdir(parents=True, exist_ok=True)
  with open(out / "metrics.csv", "w", newline="") as handle:
    log = csv.writer(handle)
    log.writerow(["step", "loss", "bits_per_sample", "mse_mv2", "choice_bits_per_sample", "choice_prd", "choice_snr_db"])
    window = []
    for i in range(1, FLAGS.steps + 1):
      x = ecg.context_crops(train, 0, FLAGS.crop, FLAGS.batch, rng).astype(np.float32)
      window.append([float(v) for v in step(model, optimizer, x, jax.random.key(FLAGS.seed * 7919 + i))])
      if i % FLAGS.eval_every == 0 or i == FLAGS.steps:
        score = evaluate(model, choice)
        objective = score["bits_per_sample"] + lam * score["mse_mv2"]  # the training loss, on held-out recordings
        mean = np.mean(window, axis=0)
        log.writerow([i, *(f"{v:.5f}" for v in mean), f"{score['bits_per_sample']:.4f}", f"{score['prd']:.3f}",
                      f"{score['snr_db']:.2f}"])
        handle.flush()
        window = []
        print(f"{rate} step {i}: train {mean[1]:.3f} b/s mse {mean[2]:.2e}; held-out {score['bits_per_sample']:.3f} "
              f"b/s PRD {score['prd']:.2f}% SNR {score['snr_db']:.2f} dB", flush=True)
        if best is None or objective < best["choice_loss"]:
          best = {"step": i, "choice_loss": objective, **{f"choice_{k}": v for k, v in score.items()}}
          exports.write(out / "export", {"model": config, "command": "python -m experiments.ecg_lossy",
                                         "rate": rate, "lambda": lam, "step": i}, model)
  return {"rate": rate, "lambda": lam, **best, "hours": (time.time() - start) / 3600}


def plot(path: str) -> None:
  """One fold-1 recording per class (the first of each), ``--plot_seconds`` from its middle, the original in
  black and each rate's decoded file over it; each panel names bits per sample and PRD of the whole file."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt
  from compzoo.codecs.learned import LearnedSignalCodec

  codecs = {}
  for rate in LAMBDAS:
    export = exports.read(Path(FLAGS.out) / f"ecg-{rate}" / "export")
    codecs[rate] = LearnedSignalCodec(f"ecg:rate={rate}", export.model, export.weights_id, export.tables)
  valid = ecg.cinc2017(FLAGS.data).fold(1)
  picks = [int(np.flatnonzero(valid.labels == c)[0]) for c in range(len(ecg.CLASSES))]
  figure, axes = plt.subplots(len(picks), len(codecs), figsize=(5 * len(codecs), 2.2 * len(picks)), squeeze=False)
  show = int(FLAGS.plot_seconds * ecg.RATE)
  for row, i in enumerate(picks):
    x = valid.signals[i]
    start = max(len(x) // 2 - show // 2, 0)
    t = np.arange(start, start + show) / ecg.RATE
    for column, (rate, codec) in enumerate(codecs.items()):
      data = codec.compress(x)
      y = codec.decompress(data).samples[:, 0]
      ax = axes[row, column]
      ax.plot(t, x[start:start + show] / 1000, color="black", linewidth=0.8, label="original")
      ax.plot(t, y[start:start + show] / 1000, color="tab:red", linewidth=0.8, alpha=0.8, label=f"ecg:rate={rate}")
      ax.set_title(f"{valid.names[i]} ({ecg.CLASS_NAMES[valid.labels[i]]}), {rate}: "
                   f"{signals.bits_per_sample(len(data), codec.decompress(data)):.2f} b/s, PRD {signals.prd(x, y):.1f}%",
                   fontsize=8)
      ax.tick_params(labelsize=7)
      if row == len(picks) - 1:
        ax.set_xlabel("seconds", fontsize=8)
      if column == 0:
        ax.set_ylabel("mV", fontsize=8)
  axes[0, 0].legend(fontsize=7, loc="upper right")
  figure.tight_layout()
  figure.savefig(path, dpi=110)
  print(f"wrote {path}")


def main(argv):
  del argv
  if FLAGS.plot:
    return plot(FLAGS.plot)
  unknown = sorted(set(FLAGS.rates) - set(LAMBDAS))
  if unknown or not FLAGS.rates:
    raise UsageError(f"--rates takes {', '.join(LAMBDAS)}, got {','.join(FLAGS.rates)}")
  if FLAGS.steps < 1 or FLAGS.batch < 1 or FLAGS.crop < 16 or FLAGS.crop % 16 or FLAGS.eval_every < 1:
    raise UsageError("--steps, --batch and --eval_every must be positive and --crop a positive multiple of 16")
  recordings = ecg.cinc2017(FLAGS.data)
  train, choice = ecg.hold_out(recordings.fold(0).signals, FLAGS.choice_recordings, FLAGS.seed)
  for rate in FLAGS.rates:
    result = train_rate(rate, train, choice, Path(FLAGS.out) / f"ecg-{rate}")
    (Path(FLAGS.out) / f"ecg-{rate}" / "result.json").write_text(json.dumps(result, indent=1) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
  from experiments.launch import run

  app.run(lambda argv: run(lambda: main(argv)))
