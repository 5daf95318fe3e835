"""AF classification from compressed ECG files (Torfason et al.'s protocol on CinC 2017, issue #36).

    python -m experiments.ecg_latent_tasks --out=runs        # `make ecg-tasks`

For each rate of the lossy ECG codec (``--codecs``: exports of experiments/ecg_lossy.py) three CRNNs
(compzoo/models/ecg_classifier.py), one recipe: on the original signals, on the codec's decoded signals, and on
its latents (the file's entropy-decoded symbols: no synthesis). Each trains on fold 0 minus the seeded hold-out
of experiments/ecg_lossless.py and is chosen there; fold 1 is only reported: every recording goes through
real files (compress, then the file's latents or its decoded signal). Reports the challenge F1 (mean of N, A,
O) with 95% bootstrap intervals and the FLOPs per 30-s recording (XLA's count of the compiled functions:
decoded = synthesis + classifier, latent = head alone), and writes OUT/ecg-tasks/results.json and results.md,
and each head's export in OUT/ecg-tasks-PATH-RATE/export (OUT/ecg-tasks-original/export), the run names
`ship_weights --family=ecg` reads; an export's config names the codec weights id its head was trained on.
"""

from __future__ import annotations

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
from compzoo.codecs.learned import LearnedSignalCodec
from compzoo.data import ecg
from compzoo.errors import UsageError
from experiments.configs.presets import SHARED_DATA

FLAGS = flags.FLAGS
flags.DEFINE_string("out", "runs", "results in OUT/ecg-tasks, heads in OUT/ecg-tasks-PATH[-RATE]/export")
flags.DEFINE_string("data", f"{SHARED_DATA}/cinc2017", "the CinC 2017 folder (dev.npz)")
flags.DEFINE_list("codecs", ["mid=runs/ecg-mid/export"], "RATE=EXPORT of the lossy ECG codec")
flags.DEFINE_list("paths", ["original", "decoded", "latent"], "which inputs the heads read")
flags.DEFINE_integer("epochs", 12, "epochs per head")
flags.DEFINE_integer("batch", 20, "recordings per step")
flags.DEFINE_float("crop_seconds", 15.0, "seconds of each recording per training step")
flags.DEFINE_integer("width", 8, "the classifier's first width")
flags.DEFINE_integer("choice_recordings", 200, "fold-0 recordings held out to choose epochs on")
flags.DEFINE_integer("seed", 1, "initialisation and crop seed")
flags.DEFINE_integer("max_recordings", 0, "use only the first N recordings of each set (a quick check; 0: all)")

PAD = 18432  # every recording fits (the longest is 18,286 samples): one compiled shape per path


def padded_batch(items, lengths, size):
  """Rows (signals (T,) or latents (P, C)) zero-padded to ``size`` along their first axis."""
  shape = (len(items), size) + np.asarray(items[0]).shape[1:]
  out = np.zeros(shape, np.float32)
  for row, item in enumerate(items):
    out[row, :len(item)] = item
  return out, np.asarray(lengths, np.int32)


def train_head(inputs: str, train_items, train_lengths, train_labels, choice, out: Path, channels: int,
               reads: dict) -> nnx.Module:
  """A CRNN on signals or latents, trained on crops, the epoch with the best hold-out F1 kept (and exported)."""
  config = {"name": "ecg_classifier", "kind": "crnn", "width": FLAGS.width, "inputs": inputs,
            "latent_channels": channels}
  model = models.build(config, seed=FLAGS.seed)
  optimizer = nnx.Optimizer(model, optax.adam(1e-3), wrt=nnx.Param)
  weights = jnp.asarray(ecg.class_weights(train_labels))
  stride = 16 if inputs == "latents" else 1
  crop = int(FLAGS.crop_seconds * ecg.RATE) // 16 * 16

  @nnx.jit
  def step(model, optimizer, x, lengths, y, key):
    def loss_fn(m):
      losses = optax.softmax_cross_entropy_with_integer_labels(m(x, lengths, nnx.Rngs(dropout=key)), y) * weights[y]
      return jnp.sum(losses) / jnp.sum(weights[y])
    loss, grads = nnx.value_and_grad(loss_fn)(model)
    optimizer.update(model, grads)
    return loss

  rng = np.random.default_rng(FLAGS.seed)
  best = None
  for epoch in range(1, FLAGS.epochs + 1):
    order = rng.permutation(len(train_items))
    model.train()
    for i, batch in enumerate(order[j:j + FLAGS.batch] for j in range(0, len(order) - FLAGS.batch + 1, FLAGS.batch)):
      items, lengths = [], []
      for k in batch:
        length = train_lengths[k]
        start = rng.integers(0, max(length - crop, 0) // 16 + 1) * 16
        take = min(crop, length - start)
        items.append(train_items[k][start // stride:(start + take + stride - 1) // stride])
        lengths.append(take)
      x, lengths = padded_batch(items, lengths, crop // stride)
      step(model, optimizer, x, lengths, train_labels[batch], jax.random.key(FLAGS.seed * 1000003 + epoch * 1009 + i))
    score = ecg.challenge_f1(choice[2], predict(model, choice[0], choice[1], stride))
    print(f"{inputs} head epoch {epoch}: hold-out F1 {score:.4f}", flush=True)
    if best is None or score > best:
      best = score
      exports.write(out / "export", {"model": config, "command": "python -m experiments.ecg_latent_tasks",
                                     "epoch": epoch, "holdout_f1": score, **reads}, model)
  return exports.read(out / "export").model


def predict(model, items, lengths, stride: int) -> np.ndarray:
  model.eval()
  forward = nnx.jit(lambda m, x, l: jnp.argmax(m(x, l), axis=-1))
  out = []
  for start in range(0, len(items), 32):
    x, l = padded_batch(items[start:start + 32] + [items[0]] * (32 - len(items[start:start + 32])),
                        list(lengths[start:start + 32]) + [lengths[0]] * (32 - len(items[start:start + 32])),
                        PAD // stride)
    out.append(np.asarray(forward(model, x, l))[:len(items[start:start + 32])])
  model.train()
  return np.concatenate(out)


def flops(module: nnx.Module, method, *args) -> float:
  """XLA's floating-point operation count of ``method(module, *args)``, compiled."""
  graphdef, state = nnx.split(module)
  compiled = jax.jit(lambda state, *a: method(nnx.merge(graphdef, state), *a)).lower(state, *args).compile()
  analysis = compiled.cost_analysis()
  analysis = analysis[0] if isinstance(analysis, (list, tuple)) else analysis
  return float(analysis.get("flops", float("nan")))


def main(argv):
  del argv
  unknown = sorted(set(FLAGS.paths) - {"original", "decoded", "latent"})
  if unknown or not FLAGS.paths:
    raise UsageError(f"--paths takes original, decoded and latent, got {','.join(FLAGS.paths)}")
  codecs = {}
  for spec in FLAGS.codecs:
    rate, sep, path = spec.partition("=")
    if not sep or not exports.is_export(path):
      raise UsageError(f"--codecs takes RATE=EXPORT_FOLDER, got {spec!r}")
    export = exports.read(path)
    codecs[rate] = LearnedSignalCodec(f"ecg:rate={rate}", export.model, export.weights_id, export.tables, Path(path))
  recordings = ecg.cinc2017(FLAGS.data)
  fold0 = recordings.fold(0)
  # The codecs' own hold-out (seed 0): no head is chosen on recordings its codec trained on either.
  kept, held = ecg.hold_out(list(range(len(fold0))), FLAGS.choice_recordings, 0)
  train, choice = fold0.subset(np.array(kept)), fold0.subset(np.array(held))
  valid = recordings.fold(1)
  if FLAGS.max_recordings:
    train, choice, valid = (part.subset(np.arange(min(FLAGS.max_recordings, len(part)))) for part in (train, choice, valid))
  out = Path(FLAGS.out)
  results, start = [], time.time()
  for rate, codec in codecs.items():
    model = codec.model
    views = {}  # path -> (train items, choice items, fold-1 items from real files), stride
    if "original" in FLAGS.paths and "original" not in {r["path"] for r in results}:
      views["original"] = (train.signals, choice.signals, valid.signals, 1)
    files = [codec.compress(x) for x in valid.signals]  # fold 1 through real files
    bits = [8 * len(f) / len(x) for f, x in zip(files, valid.signals)]
    if "decoded" in FLAGS.paths:
      decode = lambda xs: [codec.decompress(codec.compress(x)).samples[:, 0] for x in xs]
      views["decoded"] = (decode(train.signals), decode(choice.signals),
                          [codec.decompress(f).samples[:, 0] for f in files], 1)
    if "latent" in FLAGS.paths:
      latents = lambda xs: [model.symbols_of_signal(x[:, None])[0].astype(np.float32) for x in xs]
      views["latent"] = (latents(train.signals), latents(choice.signals),
                         [codec.latents(f)[0].astype(np.float32) for f in files], 16)
    for path, (train_items, choice_items, valid_items, stride) in views.items():
      inputs = "latents" if path == "latent" else "signal"
      name = "ecg-tasks-original" if path == "original" else f"ecg-tasks-{path}-{rate}"
      reads = {} if path == "original" else {"task": "cinc2017", "path": path, "codec": codec.name,
                                             "codec_weights_id": codec.weights_id.hex()}
      head = train_head(inputs, train_items, [len(x) for x in train.signals], train.labels,
                        (choice_items, [len(x) for x in choice.signals], choice.labels), out / name,
                        model.prior.channels, reads)
      predicted = predict(head, valid_items, [len(x) for x in valid.signals], stride)
      head.eval()
      if inputs == "latents":
        path_flops = flops(head, lambda m, x, l: m(x, l), jnp.zeros((1, 9024 // 16, model.prior.channels)),
                           jnp.array([9000]))
      else:
        path_flops = flops(head, lambda m, x, l: m(x, l), jnp.zeros((1, 9024)), jnp.array([9000]))
        if path == "decoded":  # the synthesis the decoder runs first (one 9,216-sample bucket)
          path_flops += flops(model, lambda m, y: m.synthesize(y), jnp.zeros((1, 9216 // 16, model.prior.channels)))
      f1 = ecg.challenge_f1(valid.labels, predicted)
      results.append({"rate": "-" if path == "original" else rate, "path": path, "f1": f1,
                      "interval": metrics.bootstrap_interval(ecg.challenge_f1, valid.labels, predicted, 1000),
                      "per_class_f1": dict(zip(ecg.CLASSES, metrics.f1_scores(valid.labels, predicted, 4).round(4).tolist())),
                      "flops_per_30s": path_flops, "bits_per_sample": None if path == "original" else float(np.mean(bits)),
                      "minutes": (time.time() - start) / 60})
      print(json.dumps(results[-1]), flush=True)
      (out / "ecg-tasks").mkdir(parents=True, exist_ok=True)
      (out / "ecg-tasks" / "results.json").write_text(json.dumps({"runs": results}, indent=1) + "\n")
  lines = ["| path | rate | bits/sample (fold 1, files) | F1 (N, A, O) | 95% interval | F1 A | MFLOPs per 30 s |", "|---|---|---|---|---|---|---|"]
  for r in results:
    bps = "-" if r["bits_per_sample"] is None else f"{r['bits_per_sample']:.3f}"
    lines.append(f"| {r['path']} | {r['rate']} | {bps} | {r['f1']:.4f} | {r['interval'][0]:.3f}-{r['interval'][1]:.3f} | "
                 f"{r['per_class_f1']['A']:.3f} | {r['flops_per_30s'] / 1e6:.1f} |")
  (out / "ecg-tasks" / "results.md").write_text("\n".join(lines) + "\n")
  print("\n".join(lines))


if __name__ == "__main__":
  from experiments.launch import run

  app.run(lambda argv: run(lambda: main(argv)))
