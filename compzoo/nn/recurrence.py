"""Recurrences over slots: the shape every recurrent model in the zoo gives its unroll, so that the credit
rules (compzoo/train/credit.py) can train it and its decoder can run it.

A recurrence keeps ``slots`` state vectors of ``width`` numbers. Step t reads the slots ``reads[t]`` (-1: a
zero state), computes one new state with the model's ``update``, and writes it to slot ``writes[t]``; the
model's ``readout`` turns that state into the step's output. A plain RNN is one slot read and written at
every step. The refinement decoder (compzoo/models/refine.py) keeps one slot per image patch and reads the
patch's own and its four neighbours' states, so a step touches a handful of the slots: RTRL carries the
influence of the parameters on every slot but updates only the written one, which is what makes it
affordable.

``Memory`` is the attention read of sparse attentive backtracking (Ke et al., NeurIPS 2018): the state of
every ``stride``-th step is kept, and each step adds to its new state a sparse top-k dot-product read of the
kept states that are visible to it (those of earlier blocks of ``block`` steps; block 1: every earlier
entry). It has no parameters, so a model with a memory has the size of one without.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from compzoo.errors import UsageError


@dataclasses.dataclass(frozen=True)
class Memory:
  stride: int
  topk: int
  block: int = 1

  def __post_init__(self):
    if self.stride < 1 or self.topk < 1 or self.block < 1:
      raise UsageError(f"memory stride, topk and block must be positive, got {self}")

  def entries(self, steps: int) -> int:
    """How many states a sequence of ``steps`` keeps."""
    return steps // self.stride

  def kept(self, t):
    """Whether step t's state is kept, and its entry: steps stride-1, 2·stride-1, ... (works on arrays)."""
    return (t + 1) % self.stride == 0, t // self.stride

  def visible(self, t, entries: int):
    """Entries step t may read: kept at steps before the start of t's block."""
    kept_at = (jnp.arange(entries) + 1) * self.stride - 1
    return kept_at < (t // self.block) * self.block


@dataclasses.dataclass
class Unroll:
  """A batch as a recurrence: what ``model.unroll(batch)`` returns.

  ``inputs`` and ``targets`` (and ``baseline``, the output a step would give without the network, if there
  is one) are pytrees of [batch, steps, ...] arrays; ``reads`` [steps, R], ``writes`` [steps] and
  ``stages`` [steps] (which refinement stage, or time step, each step belongs to: per-stage losses and
  'last-stage' training read it) are numpy integers, the same for every record of the batch.
  """

  inputs: Any
  targets: Any
  reads: np.ndarray
  writes: np.ndarray
  stages: np.ndarray
  slots: int
  width: int
  memory: Memory | None = None
  baseline: Any = None

  @property
  def steps(self) -> int:
    return len(self.writes)


def gather_slots(slots: jax.Array, indices) -> jax.Array:
  """slots[indices] along axis 0, with index -1 giving zeros (a neighbour outside the image)."""
  indices = jnp.asarray(indices)
  picked = jnp.take(slots, jnp.maximum(indices, 0), axis=0)
  mask = (indices >= 0).reshape(indices.shape + (1,) * (slots.ndim - 1))
  return jnp.where(mask, picked, jnp.zeros_like(picked))


def sparse_attention(query: jax.Array, memory: jax.Array, visible: jax.Array, topk: int) -> jax.Array:
  """Sum of memory rows weighted by a softmax over the ``topk`` highest visible scores <query, row>/sqrt(d)
  (zero weight elsewhere, so gradients reach only the chosen rows); zeros when nothing is visible.
  query [..., d] (a step's state, or a wavefront's), memory [M, d], visible [..., M] bool."""
  if memory.shape[0] == 0:
    return jnp.zeros_like(query)
  scores = query @ memory.T / np.sqrt(query.shape[-1])
  scores = jnp.where(visible, scores, -jnp.inf)
  # The barrier keeps XLA from fusing the sort into each of its small consumers below, which on the CPU
  # redid it several times per call (a Kodak image decoded in 30 s instead of 1).
  top, chosen = jax.lax.optimization_barrier(jax.lax.top_k(scores, min(topk, memory.shape[0])))
  valid = jnp.isfinite(top)
  best = jnp.where(valid[..., :1], top[..., :1], 0.0)  # top_k sorts: the first score is the largest visible one
  weights = jnp.where(valid, jnp.exp(jnp.where(valid, top - best, 0.0)), 0.0)
  total = jnp.sum(weights, axis=-1, keepdims=True)
  weights = weights / jnp.where(total > 0, total, 1.0)  # nothing visible: zeros (and finite derivatives)
  return jnp.einsum("...k,...kd->...d", weights, jnp.take(memory, chosen, axis=0))
