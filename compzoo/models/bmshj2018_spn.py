"""bmshj2018-factorized with a sum-product synthesis (StrassenNets, Tschannen et al. 2018, on the decoder side).

The analysis transform and the factorized prior are a shipped bmshj2018-factorized point's, unchanged, so a file's
coded symbols are that point's. Only g_s differs: each 5×5 stride-2 transposed convolution becomes a sub-pixel
convolution (a 3×3 convolution at the coarse resolution to 4·C channels, then ``depth_to_space``: exactly the same
function class, ``subpixel_kernel``), written as a ``SumProdConv`` whose W_b and W_c are ternary. Warm-started
from the plain decoder (``SumProdConv.load_plain``: a ``terms``-term ternary expansion of its kernels) and then
fine-tuned with the encoder and prior frozen (experiments/strassen_decoder.py), it multiplies ``terms`` × 4C times
per coarse position instead of 25·C_in·C; the IGDNs stay as they are.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from flax import nnx

from compzoo.errors import UsageError
from compzoo.models.bmshj2018 import STAGES, FactorizedPriorAutoencoder
from compzoo.nn import GDN, depth_to_space, sumprod

ARCHITECTURE = "bmshj2018_factorized_spn"


class SubpixelStage(nnx.Module):
  """A ×2 upsampling: a 3×3 sum-product convolution to 4·outputs channels, then the pixel shuffle."""

  def __init__(self, inputs: int, outputs: int, terms: int, mode: str, *, rngs: nnx.Rngs):
    self.conv = sumprod.SumProdConv(inputs, 4 * outputs, 3, terms * 4 * outputs, 1, rngs=rngs, mode=mode)

  def __call__(self, x):
    return depth_to_space(self.conv(x), 2)


class FactorizedPriorSpn(FactorizedPriorAutoencoder):
  """The shipped autoencoder with ``synthesis`` replaced by sub-pixel sum-product stages (IGDN between them)."""

  def __init__(self, channels: int = 128, latent: int = 192, stages: int = STAGES, terms: int = 1,
               mode: str = "frozen", *, rngs: nnx.Rngs):
    super().__init__(channels, latent, stages, rngs=rngs)
    widths = [latent] + [channels] * (stages - 1) + [3]
    layers = []
    for index in range(stages):
      layers.append(SubpixelStage(widths[index], widths[index + 1], terms, mode, rngs=rngs))
      if index < stages - 1:
        layers.append(GDN(widths[index + 1], inverse=True))
    self.synthesis = nnx.Sequential(*layers)


def build(channels: int = 128, latent: int = 192, stages: int = STAGES, terms: int = 1, mode: str = "frozen", *,
          rngs: nnx.Rngs) -> FactorizedPriorSpn:
  return FactorizedPriorSpn(channels, latent, stages, terms, mode, rngs=rngs)


def subpixel_kernel(deconv: nnx.ConvTranspose) -> tuple[np.ndarray, np.ndarray]:
  """The 3×3 kernel (3×3×C_in×4·C_out, channels in ``depth_to_space`` order) and bias of the sub-pixel
  convolution that computes exactly what a 5×5 (or smaller) stride-2 'SAME' transposed convolution does, read from
  its responses to unit impulses; refused if the response does not fit in 3×3 coarse taps."""
  kernel = np.asarray(deconv.kernel[...])
  size, inputs, outputs = kernel.shape[0], kernel.shape[2], kernel.shape[3]
  if deconv.strides not in (2, (2, 2)) or size > 5 or deconv.padding != "SAME":
    raise UsageError(f"subpixel_kernel takes a stride-2 'SAME' transposed convolution of kernel ≤ 5, got "
                     f"{kernel.shape}, strides {deconv.strides}, padding {deconv.padding}")
  centre, side = 3, 7
  impulses = np.zeros((inputs, side, side, inputs), np.float32)
  impulses[np.arange(inputs), centre, centre, np.arange(inputs)] = 1.0
  bias = np.asarray(deconv.bias[...]) if deconv.bias is not None else np.zeros(outputs, np.float32)
  response = np.asarray(deconv(jnp.asarray(impulses))) - bias  # inputs × 14 × 14 × outputs
  sub = np.zeros((3, 3, inputs, 2, 2, outputs), np.float32)
  for u, v, a, b in np.ndindex(3, 3, 2, 2):
    sub[u, v, :, a, b, :] = response[:, 2 * (centre - (u - 1)) + a, 2 * (centre - (v - 1)) + b, :]
  if not np.isclose(np.abs(sub).sum(), np.abs(response).sum(), rtol=1e-5):
    raise UsageError("the transposed convolution reaches beyond 3×3 coarse taps")
  return sub.reshape(3, 3, inputs, 4 * outputs), np.tile(bias, 4)


def load_teacher(model: FactorizedPriorSpn, teacher: FactorizedPriorAutoencoder, terms: int) -> FactorizedPriorSpn:
  """``model`` with the teacher's analysis, prior and IGDNs, and each stage the ``terms``-term ternary expansion of
  the teacher's transposed convolution: the fine-tuning's start."""
  nnx.update(model.analysis, nnx.state(teacher.analysis))
  nnx.update(model.prior, nnx.state(teacher.prior))
  for mine, theirs in zip(model.synthesis.layers, teacher.synthesis.layers):
    if isinstance(mine, GDN):
      nnx.update(mine, nnx.state(theirs))
    else:
      mine.conv.load_plain(*subpixel_kernel(theirs), terms=terms)
  return model


def synthesis_ops(synthesis: nnx.Sequential, latent_height: int, latent_width: int) -> sumprod.OpCount:
  """Every operation of a bmshj2018 synthesis (transposed convolutions, or sub-pixel sum-product stages) and its
  IGDNs, for latents of latent_height × latent_width: per decoded image."""
  total, height, width = sumprod.OpCount(), latent_height, latent_width
  for layer in synthesis.layers:
    if isinstance(layer, GDN):
      total += sumprod.gdn_ops(height, width, layer.beta_root.shape[0])
    elif isinstance(layer, SubpixelStage):
      total += layer.conv.ops(height, width)
      height, width = 2 * height, 2 * width
    elif isinstance(layer, nnx.ConvTranspose):
      size, _, inputs, outputs = layer.kernel.shape
      total += sumprod.transposed_conv_ops(height, width, size, 2, inputs, outputs, layer.bias is not None)
      height, width = 2 * height, 2 * width
    else:
      raise UsageError(f"synthesis_ops does not count {type(layer).__name__}")
  return total
