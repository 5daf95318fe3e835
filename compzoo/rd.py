"""The one model contract every method returns, and the losses that read only it.

A model's forward pass returns an ``RDOutput``: its reconstruction (None for lossless models, whose
distortion is zero by construction), the bits of each stream it would code, and free-form extras for
logging. Rate-distortion, lossless and (later) adversarial objectives read this structure and nothing else,
so a new method plugs into the shared trainer by returning it.
"""

from __future__ import annotations

from typing import Any

import flax.struct
import jax
import jax.numpy as jnp

from compzoo import metrics
from compzoo.errors import UsageError


@flax.struct.dataclass
class RDOutput:
  reconstruction: jax.Array | None  # NHWC in [0, 255], or None for lossless models
  bits: dict[str, jax.Array]  # per stream: total bits of each image in the batch, shape (N,)
  num_pixels: int = flax.struct.field(pytree_node=False)  # pixels per image (H * W)
  extras: dict[str, Any] = flax.struct.field(default_factory=dict)
  # Added to every rate-distortion loss: the entropy models' own cross-entropy, computed on inputs whose
  # gradient is stopped, so those models always fit their symbols even while a rate target hinge is slack.
  entropy_model_loss: jax.Array | float = 0.0

  def total_bits(self) -> jax.Array:
    return sum(self.bits.values())

  def bpp(self) -> jax.Array:
    """Mean over the batch of bits per pixel, all streams together."""
    return jnp.mean(self.total_bits()) / self.num_pixels


def distortion(target, reconstruction, kind: str = "mse", ms_ssim_scales: int = 5,
               mse_weight: float = 0.0, colour_weight: float = 0.0) -> jax.Array:
  """Mean over the batch: 'mse' on the [0, 255] scale, or 'ms_ssim' as
  1 - MS-SSIM + mse_weight * MSE/255² + colour_weight * MSE(8×8 block means)/255².

  Fewer MS-SSIM scales (the first weights, renormalised) let training use crops smaller than the 176
  pixels five scales need. MS-SSIM charges a colour or brightness error 6-24 times less per unit of MSE
  than a texture error (docs/cpm.md: "Why the cpm models lost their colour"), so a rate-constrained model
  trained on it alone spends no bits on colour. The block-mean term (the bench's colour check as a loss:
  a low-pass MSE) anchors colour and brightness and leaves texture to MS-SSIM; the full MSE term is the
  other common remedy, at some cost in MS-SSIM."""
  if kind == "mse":
    return metrics.mse(target, reconstruction)
  if kind == "ms_ssim":
    weights = metrics.MS_SSIM_WEIGHTS[:ms_ssim_scales]
    weights = tuple(w / sum(weights) for w in weights)
    ms_ssim = jnp.mean(metrics.ms_ssim(target, reconstruction, weights=weights))
    colour = metrics.mse(metrics.block_means(target), metrics.block_means(reconstruction))
    return 1.0 - ms_ssim + (mse_weight * metrics.mse(target, reconstruction) + colour_weight * colour) / 255.0**2
  raise UsageError(f"unknown distortion {kind!r}; use 'mse' or 'ms_ssim'")


def rate_distortion_loss(output: RDOutput, target, lmbda: float, kind: str = "mse",
                         rate_target: float | None = None, beta: float = 1.0, ms_ssim_scales: int = 5,
                         mse_weight: float = 0.0, colour_weight: float = 0.0):
  """rate + lambda * distortion, rate in bpp; with ``rate_target`` the rate term becomes
  beta * max(bpp - rate_target, 0) (Mentzer et al. 2018). Returns (loss, metrics dict)."""
  rate = output.bpp()
  dist = distortion(target, output.reconstruction, kind, ms_ssim_scales, mse_weight, colour_weight)
  rate_term = rate if rate_target is None else beta * jnp.maximum(rate - rate_target, 0.0)
  loss = rate_term + lmbda * dist + output.entropy_model_loss
  return loss, {"loss": loss, "bpp": rate, "distortion": dist, **_per_stream_bpp(output)}


def lossless_loss(output: RDOutput, channels: int = 3):
  """Negative log-likelihood in bits per sub-pixel over all streams, and each stream's share of it
  (``bpsp/<stream>``, e.g. L3C's scales). Returns (loss, metrics dict)."""
  loss = output.bpp() / channels
  per_stream = {f"bpsp/{name}": jnp.mean(bits) / (output.num_pixels * channels) for name, bits in output.bits.items()}
  return loss, {"loss": loss, "bpsp": loss, **per_stream}


def _per_stream_bpp(output: RDOutput) -> dict[str, jax.Array]:
  return {f"bpp/{name}": jnp.mean(bits) / output.num_pixels for name, bits in output.bits.items()}
