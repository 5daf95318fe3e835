"""Tasks on compressed files (Torfason et al. 2018): the library side of ``compzoo infer``.

A task head is a trained ``latent_task`` model (compzoo/models/latent_tasks.py) shipped under
compzoo/weights/latent-tasks/<task>/<path>-<rate>/ with a ``task.json`` naming the codec whose files it
reads (its zoo name, e.g. ``torfason-ae:rate=mid``) and that codec's weights id. On the latent path a file
is entropy-decoded to its dequantized latents (``LearnedCodec.latents``) and the head reads them: no pixel
is synthesized. ``from_rgb`` decodes the file to pixels first and runs the head trained on decoded pixels.
A file is refused unless its weights id is the one the head was trained on.
"""

from __future__ import annotations

import dataclasses
import functools
import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from compzoo import bitstream, exports
from compzoo.codecs.learned import WEIGHTS_ROOT
from compzoo.data.images import CAMVID_CLASSES, CAMVID_VOID
from compzoo.errors import BitstreamError, UsageError

SIGNAL_TASKS = {"cinc2017": ("normal", "af", "other", "noisy")}  # compzoo/data/ecg.py: CLASS_NAMES
ECG_TASKS_ROOT = WEIGHTS_ROOT / "ecg" / "tasks"  # latent-RATE, decoded-RATE, original (experiments/ecg_latent_tasks.py)
CIFAR10_CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
TASKS = {"cifar10": CIFAR10_CLASSES, "camvid": CAMVID_CLASSES[:CAMVID_VOID]}  # CamVid's void is never predicted
ROOT = WEIGHTS_ROOT / "latent-tasks"
META_FILE = "task.json"


@dataclasses.dataclass
class TaskHead:
  """A shipped task network and the codec files it reads."""

  task: str  # 'cifar10' | 'camvid'
  path: str  # 'latent' (also the jointly trained ones), 'rgb', 'original'
  codec: str  # the zoo name of the codec whose files it reads ('' for 'original')
  codec_weights_id: bytes
  model: nnx.Module  # a TaskModel
  folder: Path

  @property
  def classes(self) -> tuple[str, ...]:
    return TASKS[self.task]

  def probabilities_of_latents(self, latents: np.ndarray, shape) -> np.ndarray:
    """Class probabilities from one image's dequantized latents (h×w×C): (classes,) for CIFAR-10,
    H×W×classes for CamVid (``shape``: the image's H, W)."""
    if self.path != "latent":
      raise UsageError(f"{self.folder} reads pixels, not latents")
    return np.asarray(_probabilities(self.model, jnp.asarray(latents, jnp.float32)[None], tuple(shape[:2])))[0]

  def probabilities_of_pixels(self, image: np.ndarray) -> np.ndarray:
    """Class probabilities from an H×W×3 uint8 image (decoded, or an original for the 'original' head)."""
    if self.path == "latent":
      raise UsageError(f"{self.folder} reads latents, not pixels")
    inputs = self.model.pixels_to_inputs(jnp.asarray(image, jnp.float32)[None])
    return np.asarray(_probabilities(self.model, inputs, tuple(image.shape[:2])))[0]


@functools.partial(nnx.jit, static_argnums=2)
def _probabilities(model, inputs, size):
  return jax.nn.softmax(model.predict(inputs, size), axis=-1)


def heads(task: str) -> list[Path]:
  if task not in TASKS:
    raise UsageError(f"unknown task {task!r}; use one of {', '.join(TASKS)}")
  return sorted(p.parent for p in (ROOT / task).glob(f"*/{META_FILE}"))


def load_head(folder) -> TaskHead:
  folder = Path(folder)
  meta = _meta(folder)
  model = exports.read(folder).model
  return TaskHead(meta["task"], model.path, meta.get("codec", ""), bytes.fromhex(meta.get("codec_weights_id", "")),
                  model, folder)


def head_for(task: str, codec_name: str, from_rgb: bool = False) -> TaskHead:
  """The shipped head of ``task`` that reads files of ``codec_name``: on their latents, or on their decoded
  pixels (``from_rgb``)."""
  want = "rgb" if from_rgb else "latent"
  found = [folder for folder in heads(task) if _meta(folder).get("codec") == codec_name
           and _meta(folder).get("path") == want]
  if not found:
    readable = sorted({_meta(f)["codec"] for f in heads(task) if _meta(f).get("path") == want})
    raise UsageError(f"no {task} network reads {'decoded pixels' if from_rgb else 'latents'} of {codec_name!r} "
                     f"files; it has them for {', '.join(readable) or 'no codec'}")
  return load_head(found[0])


@functools.cache
def _meta(folder: Path) -> dict:
  """A head folder's task.json, read once."""
  try:
    return json.loads((folder / META_FILE).read_text())
  except (OSError, ValueError) as e:
    raise UsageError(f"{folder}: no readable {META_FILE}: {e}") from None


@dataclasses.dataclass
class Inference:
  head: TaskHead
  probabilities: np.ndarray  # (classes,) or H×W×classes
  decoded_pixels: bool

  def top(self) -> tuple[str, float]:
    """The most probable class and its probability (classification)."""
    best = int(np.argmax(self.probabilities))
    return self.head.classes[best], float(self.probabilities[best])

  def label_map(self) -> np.ndarray:
    """H×W uint8 class ids (segmentation)."""
    return np.argmax(self.probabilities, axis=-1).astype(np.uint8)


@dataclasses.dataclass
class SignalHead:
  """A shipped classifier of ECG files: on a lossy codec's latents, or on its decoded signals."""

  task: str
  path: str  # 'latent' | 'decoded'
  codec_weights_id: bytes
  model: nnx.Module  # an ecg_classifier
  folder: Path

  @property
  def classes(self) -> tuple[str, ...]:
    return SIGNAL_TASKS[self.task]


def signal_head(task: str, codec_name: str, decoded: bool) -> SignalHead:
  """The shipped head of ``task`` for files of ``codec_name`` ('ecg:rate=mid'): on latents or decoded signals."""
  path = "decoded" if decoded else "latent"
  name, _, rate = codec_name.partition(":rate=")
  folder = ECG_TASKS_ROOT / f"{path}-{rate}"
  if name != "ecg" or not exports.is_export(folder):
    have = sorted(p.name for p in ECG_TASKS_ROOT.glob(f"{path}-*")) if ECG_TASKS_ROOT.is_dir() else []
    raise UsageError(f"no {task} network reads {'decoded signals' if decoded else 'latents'} of {codec_name!r} "
                     f"files; shipped: {', '.join(have) or 'none'} (files of ecg:rate=R)")
  export = exports.read(folder)
  return SignalHead(task, path, bytes.fromhex(export.config.get("codec_weights_id", "")), export.model, folder)


def _infer_signal(payload: bytes, task: str, decoded: bool, max_samples: int | None) -> Inference:
  from compzoo import zoo

  container = bitstream.unpack(payload)
  if not container.is_signal:
    raise UsageError(f"--task {task} classifies ECG files; this file holds an image ({container.codec})")
  head = signal_head(task, container.codec, decoded)
  if container.weights_id != head.codec_weights_id:
    raise BitstreamError(f"file written by {container.codec} with weights {container.weights_id.hex()}, not the "
                         f"weights {head.codec_weights_id.hex()} that the {task} network was trained on")
  codec = zoo.make_codec(container.codec)
  length = np.array([container.shape[0]], np.int32)
  if decoded:
    inputs = codec.decompress(payload, max_samples=max_samples).samples[:, :1].T.astype(np.float32)
  else:
    inputs = codec.latents(payload, max_samples=max_samples)[:1].astype(np.float32)
  head.model.eval()
  probabilities = np.asarray(jax.nn.softmax(nnx.jit(lambda m, x, l: m(x, l))(head.model, inputs, length)))[0]
  return Inference(head, probabilities, decoded)


def infer(payload: bytes, task: str, from_rgb: bool = False, max_pixels: int | None = None) -> Inference:
  """Runs ``task`` on a compressed file: from its latents, or (``from_rgb``) from its decoded pixels (for
  ECG files: decoded signal; ``max_pixels`` bounds its samples × channels)."""
  from compzoo import zoo  # the registry imports every codec module

  if task in SIGNAL_TASKS:
    return _infer_signal(payload, task, from_rgb, max_pixels)
  container = bitstream.unpack(payload)
  if container.is_signal:
    raise UsageError(f"--task {task} reads images; this file holds a signal ({container.codec})")
  head = head_for(task, container.codec, from_rgb)
  if container.weights_id != head.codec_weights_id:
    raise BitstreamError(f"file written by {container.codec} with weights {container.weights_id.hex()}, not the "
                         f"weights {head.codec_weights_id.hex()} that the {task} network was trained on")
  codec = zoo.make_codec(container.codec)
  if from_rgb:
    return Inference(head, head.probabilities_of_pixels(codec.decompress(payload, max_pixels=max_pixels)), True)
  latents = codec.latents(payload, max_pixels=max_pixels)
  return Inference(head, head.probabilities_of_latents(latents, container.shape), False)
