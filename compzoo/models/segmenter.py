"""A small U-Net for semantic segmentation, trained here: it measures what generative codecs keep of a
scene (mIoU of its predictions on decoded images against the true label maps) and, pooled, gives the
features of the Fréchet distance on scene data sets (no pretrained network can be downloaded).

Three stages of two 3×3 convolutions with layer norm, 2× max pooling between them, a bottleneck stage,
then nearest upsampling with skip connections back to full resolution and a 1×1 convolution to the class
logits. Any image size: inputs are edge-padded to a multiple of 8 and the logits cropped back.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from compzoo.data.images import CAMVID_VOID
from compzoo.errors import UsageError
from compzoo.models import pad_to_multiple
from compzoo.pixels import to_signed

ARCHITECTURE = "segmenter"  # the config name of this model (compzoo/models/__init__.py discovers it)

DEPTH = 3  # poolings: inputs are padded to a multiple of 2**DEPTH


class Stage(nnx.Module):
  """Two 3×3 convolutions, each with layer norm and ReLU."""

  def __init__(self, inputs: int, outputs: int, *, rngs: nnx.Rngs):
    self.convs = nnx.List([nnx.Conv(inputs, outputs, (3, 3), rngs=rngs), nnx.Conv(outputs, outputs, (3, 3), rngs=rngs)])
    self.norms = nnx.List([nnx.LayerNorm(outputs, rngs=rngs), nnx.LayerNorm(outputs, rngs=rngs)])

  def __call__(self, x):
    for conv, norm in zip(self.convs, self.norms):
      x = jax.nn.relu(norm(conv(x)))
    return x


class UNet(nnx.Module):
  """The U-Net, written once: levels ``start`` .. ``depth`` (level l: 1/2^l of the image, width·2^l features;
  the last is the bottleneck); logits at level ``start``, upsampled bilinearly by 2^start. Inputs are
  edge-padded to a multiple of 2^(depth - start) and the logits cropped back. latent_tasks cuts it where
  a codec's latents enter (``start`` = log2 stride); the segmenter is the whole of it."""

  def __init__(self, inputs: int, classes: int, width: int = 16, depth: int = 4, start: int = 0, *,
               rngs: nnx.Rngs):
    if not 0 <= start < depth:
      raise UsageError(f"U-Net start level {start} must lie below its depth {depth}")
    widths = [width * 2 ** level for level in range(start, depth + 1)]
    self.start, self.depth = start, depth
    self.downs = nnx.List([Stage(i, o, rngs=rngs) for i, o in zip([inputs] + widths[:-2], widths[:-1])])
    self.bottom = Stage(widths[-2], widths[-1], rngs=rngs)
    self.ups = nnx.List([Stage(widths[i + 1] + widths[i], widths[i], rngs=rngs) for i in reversed(range(len(widths) - 1))])
    self.head = nnx.Conv(widths[0], classes, (1, 1), rngs=rngs)

  def _padded(self, x):
    return pad_to_multiple(x, 2 ** (self.depth - self.start))

  def _encode(self, x):
    """-> (the bottleneck, the skips of each level)."""
    skips = []
    for stage in self.downs:
      x = stage(x)
      skips.append(x)
      x = nnx.max_pool(x, (2, 2), strides=(2, 2))
    return self.bottom(x), skips

  def __call__(self, x, size):
    """x: N×h×w×inputs at level ``start``; ``size``: the image's (H, W) -> N×H×W×classes logits."""
    height, width = x.shape[1:3]
    x, skips = self._encode(self._padded(x))
    for stage, skip in zip(self.ups, reversed(skips)):
      x = jnp.repeat(jnp.repeat(x, 2, axis=1), 2, axis=2)
      x = stage(jnp.concatenate([x, skip], axis=-1))
    logits = self.head(x)[:, :height, :width]
    if self.start:
      scale = 2 ** self.start
      logits = jax.image.resize(logits, (logits.shape[0], height * scale, width * scale, logits.shape[-1]), "linear")
    return logits[:, :size[0], :size[1]]


class Segmenter(UNet):
  """The whole U-Net on RGB pixels, ``DEPTH`` poolings deep."""

  def __init__(self, classes: int = CAMVID_VOID, width: int = 16, *, rngs: nnx.Rngs):
    super().__init__(3, classes, width, DEPTH, rngs=rngs)
    self.classes, self.channels = classes, 3

  def segment(self, images, side=None):
    """N×H×W×3 in [0, 255], any H and W -> N×H×W×classes logits."""
    del side
    return self(to_signed(images), images.shape[1:3])

  def features(self, images):
    """N×H×W×3 -> N×(8·width): the bottleneck, averaged over positions (the Fréchet distance's space)."""
    return jnp.mean(self._encode(self._padded(to_signed(images)))[0], axis=(1, 2))


@nnx.jit
def _predict(model, images):
  return jnp.argmax(model.segment(images), axis=-1).astype(jnp.int32)


def predict(model: Segmenter, images: np.ndarray) -> np.ndarray:
  """Class ids (N×H×W) of images of any size."""
  return np.asarray(_predict(model, jnp.asarray(images)))


def mean_iou(counts: np.ndarray) -> tuple[float, np.ndarray]:
  """(mIoU over the classes present in the labels, IoU per class with NaN for absent ones)."""
  true_positive = np.diag(counts).astype(np.float64)
  union = counts.sum(0) + counts.sum(1) - true_positive
  present = counts.sum(1) > 0
  iou = np.where(present, true_positive / np.maximum(union, 1), np.nan)
  return float(np.nanmean(iou)), iou


def build(classes: int = CAMVID_VOID, width: int = 16, *, rngs: nnx.Rngs) -> Segmenter:
  return Segmenter(classes, width, rngs=rngs)
