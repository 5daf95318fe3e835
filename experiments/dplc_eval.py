"""Distribution-preserving compression measured: every objective at every shipped rate, on a test split.

    python -m experiments.dplc_eval --dataset=mnist --out=runs/dplc-mnist-eval
    python -m experiments.dplc_eval --dataset=mnist --weights=runs/dplc/ship-mnist   # an unshipped tree
    python -m experiments.dplc_eval --dataset=mnist --rates=0,8 --images=200         # a quick look
    python -m experiments.dplc_eval --dataset=mnist --feature_accuracy               # the feature network only
    python -m experiments.dplc_eval --dataset=mnist --images=200 --pngs=runs/mnist-test-png  # for compzoo bench

For each (objective, rate): nominal bits (the fixed-rate code), payload and whole-file bpp of real files
(``compzoo compress`` of the first ``--file_images`` test images), MSE and PSNR of the decoder's outputs
against the test images, the sliced Wasserstein distance (Laplacian patches, compzoo.metrics) and the
Fréchet distance in the zoo's classifier features (compzoo/bench/distribution.py, named in every
output), both between the decoded test split and the test split itself. Reference rows: the same
distances from the training split to the test split (the floor sampling noise sets), and the Blau-Michaeli
check: a perfectly distribution-preserving decoder has at most twice the MSE of the MSE-optimal one at
the same rate (MSE ratio against the ``mse`` objective). Writes results.json, results.md, two plots
(distortion and distance against rate) and a picture grid per objective (rows: rates, top row: originals).
The CIFAR-10 originals are the stored JPEGs (quality 75), decoded.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from absl import app, flags
from PIL import Image

from compzoo import bitstream, metrics
from compzoo.bench.distribution import FeatureNetwork
from compzoo.codecs.catalogue import DPLC_OBJECTIVES, DPLC_RATES
from compzoo.codecs.learned import WEIGHTS_ROOT, LearnedCodec
from compzoo.data import pipeline
from experiments.configs import presets

_DATASET = flags.DEFINE_enum("dataset", "mnist", ["mnist", "cifar10"], "data set (its test split is measured)")
_WEIGHTS = flags.DEFINE_string("weights", "", "tree of exports: generator/, OBJECTIVE/rRATE/ (default: shipped)")
_OUT = flags.DEFINE_string("out", "", "output folder (default runs/dplc-DATASET-eval)")
_IMAGES = flags.DEFINE_integer("images", 2000, "test images measured")
_FILE_IMAGES = flags.DEFINE_integer("file_images", 100, "test images coded to real files")
_GRID = flags.DEFINE_integer("grid", 8, "test images in each picture grid")
_RATES = flags.DEFINE_list("rates", [], "rates (code channels) measured (default: every shipped rate)")
_FEATURE_ACCURACY = flags.DEFINE_bool("feature_accuracy", False, "only print the feature network's accuracy")
_PNGS = flags.DEFINE_string("pngs", "", "only write the test images as PNGs here (for compzoo bench --images)")

DATA = {name: {k: presets.DATASETS[name][k] for k in ("source", "path")} for name in ("mnist", "cifar10")}
SIZE = 32


def load_split(dataset: str, split: str, count: int) -> tuple[np.ndarray, np.ndarray]:
  """The first ``count`` records of a split as N×32×32×3 uint8 (MNIST edge-padded, grey replicated), labels."""
  source = pipeline.record_source(dict(DATA[dataset], data_dir=".data/tfds"), split)
  records = [pipeline.center_crop(source[i], SIZE) for i in range(min(count, len(source)))]
  images = np.stack([r["image"] for r in records])
  if images.shape[-1] == 1:
    images = np.repeat(images, 3, axis=-1)
  return images, np.asarray([r["label"] for r in records])


def export_path(root: Path, objective: str, rate: int) -> Path:
  return root / ("generator" if objective == "wgan" and rate == 0 else f"{objective}/r{rate}")


def file_bits(codec: LearnedCodec, images: np.ndarray) -> tuple[float, float]:
  """(mean bits of the whole file, mean bits of its streams) per image."""
  whole, payload = [], []
  for image in images:
    data = codec.compress(image)
    whole.append(8 * len(data))
    payload.append(8 * sum(len(s) for s in bitstream.unpack(data).streams))
  return float(np.mean(whole)), float(np.mean(payload))


def grey(images: np.ndarray, dataset: str) -> np.ndarray:
  return images[..., :1] if dataset == "mnist" else images


def measure(name: str, decoded: np.ndarray, test: np.ndarray, dataset: str, network: FeatureNetwork) -> dict:
  a, b = grey(test, dataset), grey(decoded, dataset)
  mse = float(metrics.mse(a.astype(np.float32), b.astype(np.float32)))
  swd = metrics.sliced_wasserstein(a, b, levels=3, patches_per_image=32)
  return {"name": name, "mse": mse, "psnr": float(10 * np.log10(255.0 ** 2 / max(mse, 1e-10))),
          "swd": float(np.mean(swd)), "fid": network.frechet(a, b)}


def picture_grid(rows: list[np.ndarray], path: Path) -> None:
  """Rows of equally many 32×32 images -> one PNG, 2 pixels between tiles, scaled ×3."""
  count, gap = len(rows[0]), 2
  canvas = np.full((len(rows) * (SIZE + gap), count * (SIZE + gap), 3), 255, np.uint8)
  for r, row in enumerate(rows):
    for c, image in enumerate(row):
      canvas[r * (SIZE + gap):r * (SIZE + gap) + SIZE, c * (SIZE + gap):c * (SIZE + gap) + SIZE] = image
  Image.fromarray(canvas).resize((canvas.shape[1] * 3, canvas.shape[0] * 3), Image.NEAREST).save(path)


def plots(results: list[dict], out: Path, dataset: str, network: str) -> None:
  """distortion_vs_rate.png (MSE) and distance_vs_rate.png (sliced Wasserstein and Fréchet, log scales:
  rate 0 of the MSE codec is two orders above the rest)."""
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  def draw(axis, metric, label, log):
    for objective in DPLC_OBJECTIVES:
      points = sorted((r["bpp_nominal"], r[metric]) for r in results if r.get("objective") == objective)
      axis.plot(*zip(*points), marker="o", label=objective)
    floor = [r for r in results if r["name"] == "train split"]
    if floor and metric != "mse":
      axis.axhline(floor[0][metric], color="grey", linestyle="--", label="train split vs test")
    axis.set_xscale("symlog", linthresh=0.01)
    axis.set_xlim(left=0)
    if log:
      axis.set_yscale("log")
    axis.set_xlabel("rate (nominal bpp)")
    axis.set_ylabel(label)
    axis.legend(fontsize=8)

  figure, axis = plt.subplots(figsize=(6, 4))
  draw(axis, "mse", "MSE (0-255 scale)", False)
  axis.set_title(f"DPLC on {dataset} test: distortion")
  figure.tight_layout()
  figure.savefig(out / "distortion_vs_rate.png", dpi=110)
  plt.close(figure)
  figure, axes = plt.subplots(1, 2, figsize=(11, 4))
  draw(axes[0], "swd", "sliced Wasserstein (Laplacian patches, x1e3)", True)
  draw(axes[1], "fid", f"Fréchet distance, {network.split(' ')[0]}", True)
  figure.suptitle(f"DPLC on {dataset} test: distance of the decoded set to the test set ({network})", fontsize=9)
  figure.tight_layout()
  figure.savefig(out / "distance_vs_rate.png", dpi=110)
  plt.close(figure)


def markdown(results: list[dict], network: str, dataset: str) -> str:
  lines = [f"DPLC on {dataset} (test split); Fréchet distance in {network}; "
           f"{'originals are the stored JPEGs (q75), decoded; ' if dataset == 'cifar10' else ''}"
           "MSE on the 0-255 scale.", "",
           "| objective | rate (channels) | nominal bpp | payload bpp | file bpp | MSE | PSNR (dB) | MSE / MSE of mse | SWD | Fréchet |",
           "|---|---|---|---|---|---|---|---|---|---|"]
  for r in results:
    if "objective" not in r:
      lines.append(f"| {r['name']} | | | | | | | | {r['swd']:.2f} | {r['fid']:.3g} |")
      continue
    ratio = "" if r.get("mse_ratio") is None else f"{r['mse_ratio']:.2f}"
    lines.append(f"| {r['objective']} | {r['rate']} | {r['bpp_nominal']:.4f} | {r['bpp_payload']:.4f} | "
                 f"{r['bpp_file']:.3f} | {r['mse']:.1f} | {r['psnr']:.2f} | {ratio} | {r['swd']:.2f} | {r['fid']:.3g} |")
  return "\n".join(lines) + "\n"


def rates_asked(dataset: str) -> tuple[int, ...]:
  """--rates checked against the shipped ones (all of them by default), before any work."""
  if dataset not in DPLC_RATES:
    raise app.UsageError(f"no dplc-{dataset} rates are declared (compzoo/codecs/catalogue.py: DPLC_RATES)")
  rates = DPLC_RATES[dataset]
  if not _RATES.value:
    return rates
  asked = [int(r) for r in _RATES.value if r.strip().isdigit()]
  if len(asked) != len(_RATES.value) or not set(asked) <= set(rates):
    raise app.UsageError(f"--rates: dplc-{dataset} ships rates {', '.join(map(str, rates))}")
  return tuple(r for r in rates if r in asked)


def main(argv):
  del argv
  dataset = _DATASET.value
  rates = None if _PNGS.value or _FEATURE_ACCURACY.value else rates_asked(dataset)
  test, labels = load_split(dataset, "test", _IMAGES.value)
  if _PNGS.value:
    folder = Path(_PNGS.value)
    folder.mkdir(parents=True, exist_ok=True)
    for index, image in enumerate(test):
      Image.fromarray(image).save(folder / f"{dataset}-test-{index:05d}.png")
    print(f"wrote {len(test)} {SIZE}×{SIZE} PNGs to {folder}")
    return
  network = FeatureNetwork.load(dataset)
  if _FEATURE_ACCURACY.value:
    accuracy = network.accuracy(grey(test, dataset), labels)
    print(json.dumps({"network": network.describe(), "split": "test", "images": len(test), "accuracy": accuracy}))
    return
  root = Path(_WEIGHTS.value) if _WEIGHTS.value else WEIGHTS_ROOT / f"dplc-{dataset}"
  out = Path(_OUT.value or f"runs/dplc-{dataset}-eval")
  out.mkdir(parents=True, exist_ok=True)
  train, _ = load_split(dataset, "train", len(test))
  results = [measure("train split", train, test, dataset, network)]
  grids = {}
  for objective in DPLC_OBJECTIVES:
    grids[objective] = [test[:_GRID.value]]
    for rate in rates:
      path = export_path(root, objective, rate)
      if not path.is_dir():
        print(f"skipping {objective} rate {rate}: no export at {path}")
        continue
      codec = LearnedCodec.from_path(path, name=f"dplc-{dataset}-{objective}:rate={rate}")
      decoded = codec.model.reconstruct_batch(test)
      whole, payload = file_bits(codec, test[:_FILE_IMAGES.value])
      row = measure(codec.name, decoded, test, dataset, network)
      row.update(objective=objective, rate=rate, bpp_nominal=codec.model.nominal_bits / SIZE ** 2,
                 bpp_payload=payload / SIZE ** 2, bpp_file=whole / SIZE ** 2)
      results.append(row)
      grids[objective].append(decoded[:_GRID.value])
      print(json.dumps(row))
  baseline = {r["rate"]: r["mse"] for r in results if r.get("objective") == "mse"}
  for r in results:
    if "objective" in r:
      r["mse_ratio"] = r["mse"] / baseline[r["rate"]] if r["rate"] in baseline else None
  for objective, rows in grids.items():
    if len(rows) > 1:
      picture_grid(rows, out / f"samples-{objective}.png")
  plots(results, out, dataset, network.describe())
  (out / "results.json").write_text(json.dumps({"feature_network": network.describe(), "results": results}, indent=1))
  (out / "results.md").write_text(markdown(results, network.describe(), dataset))
  print((out / "results.md").read_text())


if __name__ == "__main__":
  app.run(main)
