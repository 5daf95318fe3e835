"""Image understanding from compressed latents (Torfason, Mentzer, Agustsson, Tschannen, Timofte, Van Gool,
ICLR 2018): classification and segmentation read the codec's dequantized latents instead of decoded pixels.

    image ─codec.analyze─> y ─round─> ŷ ──────────────────────────────> head (start = log2 stride): 'latent'
                                       └─codec.synthesize─> x̂ (uint8) ─> head (start = 0): 'rgb'
    image ──────────────────────────────────────────────────────────> head (start = 0): 'original'

One family per task, cut where the latents enter (the paper's cResNet is ResNet without its root and the
stages above the latent resolution):
* ``ResNet``: stage s runs at 1/2^s of the image; a stem convolution maps the input (pixels or latents) to
  stage ``start``'s width, then residual stages down to the last, global mean pooling and the class logits.
* ``UNet`` (compzoo/models/segmenter.py): a U-Net whose level l runs at 1/2^l; levels above ``start`` are dropped, the logits
  come out at 1/2^start and are upsampled bilinearly to the image.
``TaskModel`` holds the codec and a head. Its ``__call__`` is the codec's rate-distortion output (joint
training adds the task term to it), and it codes images through the codec's latent seam, so a jointly
trained model is itself a codec whose files carry its weights id.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
from flax import nnx

from compzoo import quantize as quantizers
from compzoo.errors import UsageError
from compzoo.models import bmshj2018, pad_to_multiple
from compzoo.models.segmenter import UNet
from compzoo.models.latent import LatentCoding, Quantized
from compzoo.pixels import to_signed
from compzoo.rd import RDOutput

ARCHITECTURE = "latent_task"  # the config name of this model (compzoo/models/__init__.py discovers it)

PATHS = ("original", "rgb", "latent")
TASKS = ("classify", "segment")


def _conv(inputs, outputs, rngs, strides=1):
  return nnx.Conv(inputs, outputs, (3, 3), strides=strides, rngs=rngs)


class BasicBlock(nnx.Module):
  """Two 3×3 convolutions with layer norm; a 1×1 projection on the skip when the shape changes."""

  def __init__(self, inputs: int, outputs: int, strides: int, *, rngs: nnx.Rngs):
    self.conv1, self.norm1 = _conv(inputs, outputs, rngs, strides), nnx.LayerNorm(outputs, rngs=rngs)
    self.conv2, self.norm2 = _conv(outputs, outputs, rngs), nnx.LayerNorm(outputs, rngs=rngs)
    self.project = (nnx.Conv(inputs, outputs, (1, 1), strides=strides, rngs=rngs)
                    if strides != 1 or inputs != outputs else None)

  def __call__(self, x):
    skip = x if self.project is None else self.project(x)
    x = jax.nn.relu(self.norm1(self.conv1(x)))
    return jax.nn.relu(skip + self.norm2(self.conv2(x)))


class ResNet(nnx.Module):
  """Stages ``start`` .. len(widths)-1, ``blocks[s]`` residual blocks each (the first halves the resolution,
  except in stage ``start``); ``start`` = 0 on pixels, log2(codec stride) on latents."""

  def __init__(self, inputs: int, classes: int, widths=(16, 32, 64, 128), blocks=(1, 1, 1, 2), start: int = 0, *,
               rngs: nnx.Rngs):
    if not 0 <= start < len(widths):
      raise UsageError(f"resnet start stage {start} outside its {len(widths)} stages")
    self.stem = _conv(inputs, widths[start], rngs)
    self.stem_norm = nnx.LayerNorm(widths[start], rngs=rngs)
    self.blocks = nnx.List()
    previous = widths[start]
    for stage in range(start, len(widths)):
      for i in range(blocks[stage]):
        strides = 2 if stage > start and i == 0 else 1
        self.blocks.append(BasicBlock(previous, widths[stage], strides, rngs=rngs))
        previous = widths[stage]
    self.head = nnx.Linear(previous, classes, rngs=rngs)

  def __call__(self, x):
    x = jax.nn.relu(self.stem_norm(self.stem(x)))
    for block in self.blocks:
      x = block(x)
    return self.head(jnp.mean(x, axis=(1, 2)))


class TaskModel(LatentCoding, nnx.Module):
  """A codec (bmshj2018's factorized-prior autoencoder, ``codec`` its settings) and a task head reading
  the latents, the decoded pixels or the original pixels (``path``)."""

  DECODE_GUARANTEE = "shipped-tables"
  MAX_PIXELS = bmshj2018.FactorizedPriorAutoencoder.MAX_PIXELS

  def __init__(self, task: str, path: str, codec: dict, head: dict, classes: int, *, rngs: nnx.Rngs):
    if task not in TASKS or path not in PATHS:
      raise UsageError(f"latent_task: task must be one of {TASKS} and path one of {PATHS}, got {task!r}, {path!r}")
    self.task, self.path, self.classes = task, path, classes
    self.codec = None if path == "original" else bmshj2018.build(**codec, rngs=rngs)  # originals need none
    self.STRIDE = 1 if self.codec is None else self.codec.STRIDE
    start = int(math.log2(self.STRIDE)) if path == "latent" else 0
    inputs = self.codec.prior.channels if path == "latent" else 3
    family = ResNet if task == "classify" else UNet
    self.head = family(inputs, classes, start=start, **head, rngs=rngs)

  # What the head reads.
  def head_inputs(self, images):
    """The latents (straight-through rounded: exactly the coded values), the decoded pixels (rounded and
    clipped as a decoder writes them) or the original pixels, as the head's float input."""
    images = jnp.asarray(images, jnp.float32)
    if self.path == "original":
      return to_signed(images)
    height, width = images.shape[1:3]
    latents = quantizers.ste_round(self.codec.analyze(pad_to_multiple(images, self.STRIDE)))
    if self.path == "latent":
      return latents
    return self.pixels_to_inputs(self.codec.synthesize(latents)[:, :height, :width])

  @staticmethod
  def pixels_to_inputs(pixels):
    return to_signed(jnp.clip(quantizers.ste_round(pixels), 0, 255))

  def predict(self, inputs, size):
    """Task logits from head inputs (N×classes, or N×H×W×classes for an image of ``size``)."""
    return self.head(inputs) if self.task == "classify" else self.head(inputs, size)

  def classify(self, images, side=None):
    del side
    return self.predict(self.head_inputs(images), images.shape[1:3])

  segment = classify  # the objectives call the method their task names; the head knows which it is

  # The codec: rate-distortion output (joint training) and the latent seam (files of joint models).
  def __call__(self, images, key=None, side=None) -> RDOutput:
    if self.codec is None:
      raise UsageError("a task model on original pixels has no codec to train")
    return self.codec(images, key, side)

  def analyze(self, images):
    return self.codec.analyze(images)

  def quantize(self, y, key=None) -> Quantized:
    return self.codec.quantize(y, key)

  def dequantize(self, symbols):
    return self.codec.dequantize(symbols)

  def synthesize(self, values):
    return self.codec.synthesize(values)

  def coding_tables(self):
    return None if self.codec is None else self.codec.coding_tables()

  def prepare_coding(self, tables):
    return self.codec.prepare_coding(tables)

  def encode_symbols(self, symbols, tables):
    return self.codec.encode_symbols(symbols, tables)

  def decode_symbols(self, streams, shape, tables):
    return self.codec.decode_symbols(streams, shape, tables)

  def min_stream_bits(self, shape, tables) -> float:
    return self.codec.min_stream_bits(shape, tables)


def build(task: str = "classify", path: str = "latent", codec: dict | None = None, head: dict | None = None,
          classes: int = 10, *, rngs: nnx.Rngs) -> TaskModel:
  return TaskModel(task, path, dict(codec or {}), dict(head or {}), classes, rngs=rngs)
