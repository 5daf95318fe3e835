"""The CinC 2017 classification study: CNN and CRNN, with and without augmentation, over seeds (issue #36).

    python -m experiments.ecg_classify --out=runs/ecg-classify        # `make ecg-classify`

Zihlmann et al. (CinC 2017), sized for a 2-core CPU (compzoo/models/ecg_classifier.py). Every run trains on
fold 0 of ``../shared/data/cinc2017`` (labels v3) and is chosen on fold 1, as the paper's code did: the epoch
with the best fold-1 F1 is kept (so fold-1 figures are optimistic by that one choice; no other setting was
tuned on it). Training: Adam 1e-3, batch 20, class-weighted cross-entropy (weight (1 − c) + c·100/frequency
in percent, c = 0.2), one random ``--crop_seconds`` crop of each recording per epoch (shorter ones zero-padded,
their length masked). Augmentation (``bursts+resample``): about 22% of samples zeroed in bursts of 11, and
resampling to a random length in [2/3, 4/3) of the crop (heart rates of 60-120 bpm seen as 40-180).
Metric: the mean F1 of N, A and O (noise left out, the challenge's score), with a 95% bootstrap interval over
fold-1 recordings; per-class F1, confusion matrices and training time. Writes OUT/results.json,
OUT/results.md and each run's chosen export in OUT/RUN/export.
"""

from __future__ import annotations

import itertools
import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags
from flax import nnx

from compzoo import exports, metrics, models
from compzoo.data import ecg
from compzoo.errors import UsageError
from experiments.configs.presets import SHARED_DATA
from experiments.launch import positive_ints

FLAGS = flags.FLAGS
flags.DEFINE_string("out", "runs/ecg-classify", "folder for results.json, results.md and each run's export")
flags.DEFINE_string("data", f"{SHARED_DATA}/cinc2017", "the CinC 2017 folder (dev.npz)")
flags.DEFINE_list("kinds", ["cnn", "crnn"], "architectures")
flags.DEFINE_list("augment", ["none", "bursts+resample"], "augmentation settings")
flags.DEFINE_list("seeds", ["1", "2"], "seeds (initialisation, crops, augmentation)")
flags.DEFINE_integer("epochs", 10, "epochs per run")
flags.DEFINE_integer("batch", 20, "recordings per step")
flags.DEFINE_float("learning_rate", 1e-3, "Adam's learning rate")
flags.DEFINE_float("crop_seconds", 15.0, "seconds of each recording per training step")
flags.DEFINE_integer("width", 8, "channels of the first block (and the growth per block)")
flags.DEFINE_integer("bootstrap", 1000, "bootstrap resamples for the F1 intervals")
flags.DEFINE_integer("max_recordings", 0, "use only the first N recordings of each fold (a quick check; 0: all)")

EVAL_LENGTHS = (9024, 18304)  # fold-1 recordings are padded to the first that holds them: two compiled shapes


def training_batch(signals, labels, order, rng, crop: int, augmented: bool):
  xs = np.zeros((len(order), int(crop * 4 / 3) + 1 if augmented else crop), np.float32)
  lengths = np.zeros(len(order), np.int32)
  for row, i in enumerate(order):
    x = signals[i]
    start = rng.integers(0, max(len(x) - crop, 0) + 1)
    x = x[start:start + crop]
    if augmented:
      x = ecg.augment(x, rng)
    xs[row, :len(x)] = x
    lengths[row] = len(x)
  return xs, lengths, labels[order]


def predict(model, signals) -> np.ndarray:
  """Class probabilities of whole recordings (B, 4), in batches of one padded length each."""
  model.eval()
  forward = nnx.jit(lambda m, x, l: jax.nn.softmax(m(x, l)))
  out = np.zeros((len(signals), len(ecg.CLASSES)), np.float32)
  for size in EVAL_LENGTHS:
    fits = [i for i, x in enumerate(signals) if len(x) <= size and (size == EVAL_LENGTHS[0] or len(x) > EVAL_LENGTHS[0])]
    for batch in (fits[i:i + 32] for i in range(0, len(fits), 32)):
      xs = np.zeros((32, size), np.float32)
      lengths = np.full(32, size, np.int32)
      for row, i in enumerate(batch):
        xs[row, :len(signals[i])] = signals[i]
        lengths[row] = len(signals[i])
      out[batch] = np.asarray(forward(model, xs, lengths))[:len(batch)]
  if any(len(x) > EVAL_LENGTHS[-1] for x in signals):
    raise UsageError(f"recordings longer than {EVAL_LENGTHS[-1]} samples")
  model.train()
  return out


def run(kind: str, augmented: bool, seed: int, train, valid, out: Path) -> dict:
  config = {"name": "ecg_classifier", "kind": kind, "width": FLAGS.width}
  model = models.build(config, seed=seed)
  optimizer = nnx.Optimizer(model, optax.adam(FLAGS.learning_rate), wrt=nnx.Param)
  weights = jnp.asarray(ecg.class_weights(train.labels))

  @nnx.jit
  def step(model, optimizer, x, lengths, y, key):
    def loss_fn(m):
      logits = m(x, lengths, nnx.Rngs(dropout=key))
      losses = optax.softmax_cross_entropy_with_integer_labels(logits, y) * weights[y]
      return jnp.sum(losses) / jnp.sum(weights[y])
    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss

  rng = np.random.default_rng(seed)
  crop = int(FLAGS.crop_seconds * ecg.RATE)
  best, history, start = None, [], time.time()
  for epoch in range(1, FLAGS.epochs + 1):
    order = rng.permutation(len(train))
    batches = [order[i:i + FLAGS.batch] for i in range(0, len(order) - FLAGS.batch + 1, FLAGS.batch)]
    losses = [float(step(model, optimizer, *training_batch(train.signals, train.labels, batch, rng, crop, augmented),
                         jax.random.key(seed * 100003 + epoch * 1009 + i)))
              for i, batch in enumerate(batches)]
    predicted = np.argmax(predict(model, valid.signals), axis=1)
    score = ecg.challenge_f1(valid.labels, predicted)
    history.append({"epoch": epoch, "loss": float(np.mean(losses)), "f1": score, "seconds": time.time() - start})
    print(f"{kind} augment={augmented} seed={seed} epoch {epoch}: loss {np.mean(losses):.4f} F1 {score:.4f}", flush=True)
    if best is None or score > best["f1"]:
      best = {"epoch": epoch, "f1": score, "predicted": predicted}
      exports.write(out / "export", {"model": config, "command": "python -m experiments.ecg_classify",
                                     "epoch": epoch, "fold1_f1": score}, model)
  predicted = best.pop("predicted")
  return {"kind": kind, "augment": augmented, "seed": seed, **best,
          "interval": metrics.bootstrap_interval(ecg.challenge_f1, valid.labels, predicted, FLAGS.bootstrap),
          "per_class_f1": dict(zip(ecg.CLASSES, metrics.f1_scores(valid.labels, predicted, len(ecg.CLASSES)).round(4).tolist())),
          "confusion": metrics.confusion(predicted, valid.labels, len(ecg.CLASSES)).tolist(), "train_seconds": time.time() - start, "history": history,
          "predicted": predicted.tolist()}


def table(results) -> str:
  lines = ["| network | augmentation | seed | F1 (N, A, O) | 95% interval | F1 N | F1 A | F1 O | F1 ~ | epoch | train min |",
           "|" + "---|" * 11]
  for r in results:
    f = r["per_class_f1"]
    lines.append(f"| {r['kind']} | {'bursts+resample' if r['augment'] else 'none'} | {r['seed']} | {r['f1']:.4f} | "
                 f"{r['interval'][0]:.3f}-{r['interval'][1]:.3f} | {f['N']:.3f} | {f['A']:.3f} | {f['O']:.3f} | "
                 f"{f['~']:.3f} | {r['epoch']} | {r['train_seconds'] / 60:.1f} |")
  return "\n".join(lines)


def main(argv):
  del argv
  kinds = FLAGS.kinds
  if not kinds or any(k not in ("cnn", "crnn") for k in kinds):
    raise UsageError(f"--kinds takes cnn and crnn, got {','.join(kinds)}")
  if not FLAGS.augment or any(a not in ("none", "bursts+resample") for a in FLAGS.augment):
    raise UsageError(f"--augment takes none and bursts+resample, got {','.join(FLAGS.augment)}")
  if FLAGS.epochs < 1 or FLAGS.batch < 1 or FLAGS.width < 1 or FLAGS.crop_seconds <= 0:
    raise UsageError("--epochs, --batch, --width and --crop_seconds must be positive")
  seeds = positive_ints("seeds", FLAGS.seeds)
  out = Path(FLAGS.out)
  out.mkdir(parents=True, exist_ok=True)
  recordings = ecg.cinc2017(FLAGS.data)
  train, valid = recordings.fold(0), recordings.fold(1)
  if FLAGS.max_recordings:
    train, valid = (part.subset(np.arange(min(FLAGS.max_recordings, len(part)))) for part in (train, valid))
  results_path = out / "results.json"
  results = json.loads(results_path.read_text())["runs"] if results_path.exists() else []
  done = {(r["kind"], r["augment"], r["seed"]) for r in results}
  for seed, kind, augmentation in itertools.product(seeds, kinds, FLAGS.augment):  # every setting once, then again
    augmented = augmentation != "none"
    if (kind, augmented, seed) in done:  # a rerun continues where a stopped one ended
      continue
    name = f"{kind}-{'aug' if augmented else 'plain'}-s{seed}"
    results.append(run(kind, augmented, seed, train, valid, out / name))
    results_path.write_text(json.dumps({"runs": results, "fold1_labels": valid.labels.tolist(),
                                        "width": FLAGS.width, "epochs": FLAGS.epochs}, indent=1) + "\n")
    (out / "results.md").write_text(table(results) + "\n")
  print(table(results))


if __name__ == "__main__":
  from experiments.launch import run as launch

  app.run(lambda argv: launch(lambda: main(argv)))
