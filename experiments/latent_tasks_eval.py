"""Classification and segmentation from compressed latents against decoded pixels (Torfason et al. 2018).

    python -m experiments.latent_tasks_eval --task=cifar10 --out=runs/lt-eval
    python -m experiments.latent_tasks_eval --task=camvid --out=runs/lt-eval

For each rate of the shipped torfason-ae (and of the codec trained jointly with the task), every test image
(CIFAR-10: the 10,000 test photos, JPEG-decoded originals; CamVid: the 233 test frames) is compressed to a
real file. Rows: the task network on the originals; on the files' decoded pixels (``rgb``, the network
trained on that codec's decoded pixels); on their latents, entropy-decoded only (``latent``); and on the
latents of the jointly trained codec (``joint``). Columns: file bpp, top-1 accuracy or mean IoU over the
11 classes (void ignored), GFLOPs per image from XLA's cost analysis of the compiled computation (the
synthesis transform counted for ``rgb``; entropy decoding, which all paths share, not counted), and the
decoded images' PSNR and SSIM (CIFAR-10, 32 pixels: too small for MS-SSIM's 5 scales) or MS-SSIM
(CamVid). The shipped heads are used, as ``compzoo infer`` uses them. Writes TASK.json and TASK.md.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from absl import app, flags
from flax import nnx

from compzoo import inference, metrics, zoo
from compzoo.codecs.catalogue import LATENT_RATES
from compzoo.data import pipeline
from compzoo.data.images import CAMVID_VOID
from compzoo.models import segmenter
from experiments.configs import presets

_TASK = flags.DEFINE_enum("task", "cifar10", list(inference.TASKS), "task")
_OUT = flags.DEFINE_string("out", "runs/lt-eval", "output folder")
_LIMIT = flags.DEFINE_integer("limit", 0, "use only the first N test images (0: all)")
_BATCH = 100


def test_records(task: str, limit: int) -> list[dict]:
  source = pipeline.record_source(presets.data(task, 0, 1), "test")
  count = len(source) if not limit else min(limit, len(source))
  return [source[i] for i in range(count)]


def cost_flops(function, *args) -> float:
  """FLOPs of one call, from XLA's cost analysis of the compiled computation."""
  analysis = jax.jit(function).lower(*args).compile().cost_analysis()
  analysis = analysis[0] if isinstance(analysis, (list, tuple)) else analysis
  return float(analysis["flops"])


def head_flops(head: inference.TaskHead, codec, shape) -> dict:
  """GFLOPs per image: the head alone, and for heads on decoded pixels the synthesis transform too."""
  graphdef, state = nnx.split(head.model)
  size = tuple(shape[:2])
  run = lambda state, x: nnx.merge(graphdef, state).predict(x, size)
  latents = None if codec is None else jnp.asarray(codec.latents(np.zeros(shape, np.uint8)))[None]
  if head.path == "latent":
    return {"head": cost_flops(run, state, latents) / 1e9, "synthesis": 0.0}
  result = {"head": cost_flops(run, state, jnp.zeros((1, *size, 3))) / 1e9, "synthesis": 0.0}
  if codec is not None:
    c_graphdef, c_state = nnx.split(codec.model)
    synthesize = lambda state, y: nnx.merge(c_graphdef, state).synthesize(y)
    result["synthesis"] = cost_flops(synthesize, c_state, latents) / 1e9
  return result


class Scorer:
  """Top-1 accuracy or mIoU of a head's probabilities over the test set."""

  def __init__(self, task: str):
    self.task, self.correct, self.count = task, 0, 0
    self.counts = np.zeros((CAMVID_VOID, CAMVID_VOID), np.int64)

  def add(self, probabilities: np.ndarray, record: dict) -> None:
    if self.task == "cifar10":
      self.correct += int(np.argmax(probabilities) == int(record["label"]))
      self.count += 1
    else:
      labels = np.asarray(record["label_map"]).reshape(probabilities.shape[:2])
      self.counts += metrics.confusion(np.argmax(probabilities, -1), labels, CAMVID_VOID, CAMVID_VOID)

  def score(self) -> float:
    return self.correct / max(self.count, 1) if self.task == "cifar10" else segmenter.mean_iou(self.counts)[0]


def evaluate_codec(task, records, codec, heads: dict) -> list[dict]:
  """Table rows for the heads {path name: head} over every test record, through one real file of ``codec``
  per record (None: the originals): the file is written once and read by every head."""
  started = time.perf_counter()
  scorers, bits, psnrs, ssims = {name: Scorer(task) for name in heads}, [], [], []
  for record in records:
    image = np.asarray(record["image"])
    if codec is None:
      for name, head in heads.items():
        scorers[name].add(head.probabilities_of_pixels(image), record)
      continue
    payload = codec.compress(image)
    bits.append(8 * len(payload) / (image.shape[0] * image.shape[1]))
    decoded = codec.decompress(payload)
    psnrs.append(float(metrics.psnr(image, decoded)))
    ssims.append(float(metrics.ssim(image, decoded) if task == "cifar10" else metrics.ms_ssim(image, decoded)))
    latents = codec.latents(payload)
    for name, head in heads.items():
      scorers[name].add(head.probabilities_of_pixels(decoded) if head.path == "rgb"
                        else head.probabilities_of_latents(latents, image.shape), record)
  shape = np.asarray(records[0]["image"]).shape
  seconds = round(time.perf_counter() - started, 1)
  rows = []
  for name, head in heads.items():
    flops = head_flops(head, codec, shape)
    row = {"path": name, "codec": codec.name if codec else "original", "score": scorers[name].score(),
           "gflops": flops["head"] + flops["synthesis"], "gflops_synthesis": flops["synthesis"],
           "bpp": float(np.mean(bits)) if bits else None, "psnr": float(np.mean(psnrs)) if psnrs else None,
           "ssim" if task == "cifar10" else "ms_ssim": float(np.mean(ssims)) if ssims else None,
           "images": len(records), "seconds_all_heads": seconds}
    print(json.dumps(row), flush=True)
    rows.append(row)
  return rows


def main(argv):
  del argv
  task = _TASK.value
  records = test_records(task, _LIMIT.value)
  rows = evaluate_codec(task, records, None, {"original": inference.load_head(inference.ROOT / task / "original")})
  for rate in LATENT_RATES:
    codec = zoo.make_codec(f"torfason-ae:rate={rate}")
    joint = zoo.make_codec(f"torfason-ae-joint-{task}:rate={rate}")
    rows += evaluate_codec(task, records, codec, {"rgb": inference.head_for(task, codec.name, from_rgb=True),
                                                  "latent": inference.head_for(task, codec.name)})
    rows += evaluate_codec(task, records, joint, {"joint": inference.head_for(task, joint.name)})
  out = Path(_OUT.value)
  out.mkdir(parents=True, exist_ok=True)
  (out / f"{task}.json").write_text(json.dumps(rows, indent=1) + "\n")
  (out / f"{task}.md").write_text(markdown(task, rows))
  print(markdown(task, rows))


def markdown(task: str, rows: list[dict]) -> str:
  score = "top-1 accuracy" if task == "cifar10" else "mIoU (11 classes)"
  quality = "SSIM" if task == "cifar10" else "MS-SSIM"
  lines = [f"| input | codec | bpp | {score} | GFLOPs/image (synthesis) | PSNR | {quality} |", "|---|---|---|---|---|---|---|"]
  fmt = lambda v, f: "—" if v is None else format(v, f)
  for row in rows:
    lines.append(f"| {row['path']} | {row['codec']} | {fmt(row['bpp'], '.3f')} | {row['score']:.3f} | "
                 f"{row['gflops']:.4f} ({row['gflops_synthesis']:.4f}) | {fmt(row['psnr'], '.2f')} | "
                 f"{fmt(row.get('ssim', row.get('ms_ssim')), '.4f')} |")
  return "\n".join(lines) + "\n"


if __name__ == "__main__":
  app.run(main)
