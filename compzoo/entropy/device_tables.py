"""Integer frequency tables built inside jitted functions, for models whose tables come from network outputs.

``coder.quantize_pmf`` builds tables on the host from float rows, with operations that are exact on every
machine; that is what models with a cross-backend guarantee need. Models that are same-backend anyway (their
float rows already differ between backends: L3C, PixelCNN) gain nothing from it and pay for it: every row
travels to the host as floats and is quantized by numpy. ``frequencies`` does the same job on the device, in
the compiled function that computes the rows, so encoder and decoder (same compiled function, same inputs)
get identical integer tables: integer sums are exact in any order, and every float operation runs in the same
program on the same values.
"""

from __future__ import annotations

import jax.numpy as jnp

from compzoo.entropy.coder import PRECISION

_TOTAL = 1 << PRECISION


def frequencies(pmf):
  """(n, m) probabilities -> (n, m) float32 integers >= 1 that sum to exactly 2**24 per row (the contract of
  ``coder.quantize_pmf``). Rows are normalised (a full table whose window was cut out holds little mass);
  NaN, inf and negative entries count as 0.
  What rounding leaves over goes to the last entry (an escape, or the top level): a few units in 2**24 for a
  row that sums to 1, so no argmax pass is needed; a row without mass puts it all there."""
  m = pmf.shape[-1]
  p = jnp.where(jnp.isfinite(pmf) & (pmf > 0), pmf, 0.0).astype(jnp.float32)
  total = jnp.sum(p, axis=-1, keepdims=True)
  p = p / jnp.where(total > 0, total, 1.0)
  # One unit each for free, the rest in proportion, scaled a hair low: the sum never overshoots 2**24.
  freq = jnp.floor(p * ((_TOTAL - m) * (1.0 - 2.0**-20))).astype(jnp.int32) + 1
  remainder = _TOTAL - jnp.sum(freq, axis=-1, keepdims=True)  # integers: exact in any order
  freq = freq + jnp.where(jnp.arange(m)[None, :] == m - 1, remainder, 0)
  return freq.astype(jnp.float32)
