"""Lossless coding of semantic label maps: one learned categorical over the classes for each context of
three causal neighbours, west, north and north-east (each a class, or 'outside' beyond the border).

    P(s[y, x] | s[y, x-1], s[y-1, x], s[y-1, x+1])       (K+1)^3 contexts × K classes

A ``CausalContextTable`` of the latent-codec layer (compzoo/entropy/tables.py): trained like any learned
table of the zoo (the bits are a cross-entropy, differentiable in the logits), coded with integer tables
that exports ship. Why these neighbours: label maps are large flat regions, and a pixel mostly repeats its
west or north neighbour, the north-east one seeing a boundary coming. Why not north-west: with W, N and NE
every neighbour of (y, x) lies on an earlier wavefront t = 2y + x, so the decoder decodes a whole wavefront
at once, 2H + W steps instead of H·W.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from compzoo.entropy.tables import CausalContextTable

NEIGHBOURS = ((0, -1), (-1, 0), (-1, 1))  # W, N, NE


class LabelMapModel(nnx.Module):
  """The context table (module docstring) for maps of ``classes`` classes (ids 0 .. classes-1); ``coder``
  codes a map with a shipped table (``encode(encoder, labels, table)``, ``decode``, ``min_bits``)."""

  def __init__(self, classes: int):
    self.classes = classes
    self.coder = CausalContextTable(classes, NEIGHBOURS)
    self.logits = nnx.Param(jnp.zeros((self.coder.rows, classes)))  # × TABLE_SCALE

  def bits(self, labels) -> jax.Array:
    """Bits of each N×H×W map (a length-N vector): the training rate of the label maps."""
    return self.coder.bits(self.logits[...], labels).sum(axis=(1, 2))

  def coding_table(self) -> np.ndarray:
    return self.coder.table.integer_table(self.logits[...])

  def checked_table(self, tables, owner: str) -> np.ndarray:
    return self.coder.table.checked(tables, "labels", self.coder.rows, owner)


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
