"""Lossless coding of semantic label maps: one learned categorical over the classes for each context of
three causal neighbours, west, north and north-east (each a class, or 'outside' beyond the border).

    P(s[y, x] | s[y, x-1], s[y-1, x], s[y-1, x+1])       (K+1)^3 contexts × K classes

Trained like any table of the zoo (the bits are a cross-entropy, differentiable in the logits), coded
with integer tables that exports ship. Why these neighbours: label maps are large flat regions, and a
pixel mostly repeats its west or north neighbour, the north-east one seeing a boundary coming. Why not
north-west: with W, N and NE every neighbour of (y, x) lies on an earlier wavefront t = 2y + x
(t-1, t-2, t-1), so the decoder decodes a whole wavefront at once, 2H + W steps instead of H·W.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from compzoo.entropy.categorical import TABLE_SCALE, grid_logits, pmf_from_grid_logits
from compzoo.entropy.coder import PRECISION, Decoder, Encoder, quantize_pmf
from compzoo.errors import BitstreamError
from compzoo.ops import nats_to_bits


def _neighbours(labels, outside: int, xp):
  """W, N, NE of every pixel of N×H×W maps, ``outside`` beyond the border (numpy or jax.numpy)."""
  padded = xp.pad(labels, ((0, 0), (1, 0), (1, 1)), constant_values=outside)
  height, width = labels.shape[1:]
  west = padded[:, 1:, :width]
  north = padded[:, :height, 1:width + 1]
  north_east = padded[:, :height, 2:]
  return west, north, north_east


class LabelMapModel(nnx.Module):
  """The context table (module docstring) for maps of ``classes`` classes (ids 0 .. classes-1)."""

  def __init__(self, classes: int):
    self.classes = classes
    self.logits = nnx.Param(jnp.zeros(((classes + 1) ** 3, classes)))  # × TABLE_SCALE

  def table(self):
    return grid_logits(TABLE_SCALE * self.logits[...])

  def contexts(self, labels, xp=jnp):
    west, north, north_east = _neighbours(labels, self.classes, xp)
    base = self.classes + 1
    return (west * base + north) * base + north_east

  def bits(self, labels) -> jax.Array:
    """Bits of each N×H×W map (a length-N vector): the training rate of the label maps."""
    labels = jnp.asarray(labels, jnp.int32)
    log_p = jax.nn.log_softmax(self.table(), axis=-1)[self.contexts(labels)]
    return -nats_to_bits(jnp.take_along_axis(log_p, labels[..., None], axis=-1)[..., 0]).sum(axis=(1, 2))

  def coding_table(self) -> np.ndarray:
    return quantize_pmf(pmf_from_grid_logits(np.asarray(self.table())))


def fit(model: LabelMapModel, batches, learning_rate: float = 0.05) -> list[float]:
  """Fits the table alone with Adam, one step per N×H×W batch of maps -> the mean bits per map of each
  step. (Inside SC the table trains with the model, through ``entropy_model_loss``; this is for measuring
  the coder by itself.)"""
  import optax  # here: decoding never needs it

  optimizer = nnx.Optimizer(model, optax.adam(learning_rate), wrt=nnx.Param)

  @nnx.jit
  def step(model, optimizer, maps):
    bits, grads = nnx.value_and_grad(lambda m: m.bits(maps).mean())(model)
    optimizer.update(model, grads)
    return bits

  return [float(step(model, optimizer, jnp.asarray(maps, jnp.int32))) for maps in batches]


def wavefronts(height: int, width: int) -> list[tuple[np.ndarray, np.ndarray]]:
  """(rows, columns) of each wavefront t = 2y + x, in decoding order."""
  fronts = []
  for t in range(2 * (height - 1) + width):
    rows = np.arange(max(0, -(-(t - width + 1) // 2)), min(height - 1, t // 2) + 1)
    fronts.append((rows, t - 2 * rows))
  return fronts


def encode(labels: np.ndarray, table: np.ndarray, classes: int, encoder: Encoder) -> None:
  """Appends an H×W map (ints in [0, classes)) to ``encoder``, wavefront by wavefront."""
  labels = np.asarray(labels, np.int32)
  if labels.size and (labels.min() < 0 or labels.max() >= classes):
    raise ValueError(f"label ids must lie in [0, {classes}), got [{labels.min()}, {labels.max()}]")
  base = classes + 1
  west, north, north_east = (n[0] for n in _neighbours(labels[None], classes, np))
  contexts = (west * base + north) * base + north_east
  order = np.concatenate([rows * labels.shape[1] + columns for rows, columns in wavefronts(*labels.shape)])
  encoder.put_frequencies(labels.reshape(-1)[order], table[contexts.reshape(-1)[order]])


def decode(decoder: Decoder, shape: tuple[int, int], table: np.ndarray, classes: int) -> np.ndarray:
  """The H×W map ``encode`` wrote: each wavefront's contexts come from wavefronts already decoded."""
  height, width = shape
  padded = np.full((height + 1, width + 2), classes, np.int32)  # row 0 and columns 0, W+1: outside
  base = classes + 1
  for rows, columns in wavefronts(height, width):
    west, north, north_east = padded[rows + 1, columns], padded[rows, columns + 1], padded[rows, columns + 2]
    symbols = decoder.get_frequencies(table[(west * base + north) * base + north_east])
    if symbols.size != rows.size:
      raise BitstreamError("label map stream ended early")
    padded[rows + 1, columns + 1] = symbols
  return padded[1:, 1:width + 1]


def min_bits(shape: tuple[int, int], table: np.ndarray) -> float:
  """A lower bound on the bits of any map of ``shape``: every pixel at its likeliest class in any context."""
  return shape[0] * shape[1] * float(PRECISION - np.log2(table.max()))
