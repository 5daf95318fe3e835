"""L3C: practical full-resolution learned lossless image compression (Mentzer, Agustsson, Tschannen,
Timofte, Van Gool, CVPR 2019).

    x ──E(1)──> z(1) ──E(2)──> z(2) ──E(3)──> z(3)        each E halves the resolution
    p(x | f(1))  <──D(1)── z(1), f(2)  <──D(2)── z(2), f(3)  <──D(3)── z(3) ~ uniform

Each z(s) has C channels quantized to L levels at the fixed centers linspace(-1, 1, L) with soft-to-hard
quantization (hard values forward, soft gradients backward). D(s) turns z(s) and the features f(s+1) of
the scale above into features f(s) at the finer resolution and the parameters of a discretized logistic
mixture for the scale below: over 256 levels with the R -> G -> B coupling for x, over the L levels for
z(s-1). Training minimises the bits of all scales; coding needs one pass of D per scale, coarsest first.

``auxiliary='rgb'`` is the paper's RGB baseline: z(s) is a fixed pyramid (2x2 means of the scale below,
rounded to 256 levels) instead of learned representations; ``shared_predictor`` uses one D for every
scale (the paper's "RGB Shared"), which only makes sense when every scale is RGB.

Coding (``encode_image`` / ``decode_image``) splits large images into tiles of at most ``TILE`` pixels a
side, as the official code's crops do, so memory stays bounded; each tile is edge-padded to a multiple of
2^scales, its latents are all coded, and only its real pixels are. Encoder and decoder compute every
table with the same compiled per-scale function on the same integer symbols (see WORKSPACE.md).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from compzoo import bitstream
from compzoo.entropy import Decoder, DiscretizedLogisticMixture, Encoder, Uniform
from compzoo.errors import UsageError
from compzoo.models import pad_to_multiple
from compzoo.nn import ResidualBlock
from compzoo.pixels import to_signed
from compzoo.quantize import soft_to_hard
from compzoo.rd import RDOutput

ARCHITECTURE = "l3c"  # the config name of this model (compzoo/models/__init__.py discovers it)

TILE = 1024  # largest tile side while coding: 2000x1500 (4 tiles) peaked at 1.7 GB (experiments/codec_memory.py)
AUXILIARY = ("learned", "rgb")
PIXEL_LEVELS = 256


class _Trunk(nnx.Module):
  """conv, then residual blocks with a skip around them (EDSR): the body shared by E and D."""

  def __init__(self, features: int, blocks: int, *, rngs: nnx.Rngs):
    self.blocks = nnx.List([ResidualBlock(features, rngs=rngs) for _ in range(blocks)])
    self.after = nnx.Conv(features, features, (3, 3), rngs=rngs)

  def __call__(self, h):
    skip = h
    for block in self.blocks:
      h = block(h)
    return skip + self.after(h)


class ScaleEncoder(nnx.Module):
  """E(s): halves the resolution and maps to C channels (before quantization)."""

  def __init__(self, in_channels: int, features: int, blocks: int, out_channels: int, *, rngs: nnx.Rngs):
    self.down = nnx.Conv(in_channels, features, (5, 5), strides=2, rngs=rngs)
    self.trunk = _Trunk(features, blocks, rngs=rngs)
    self.to_latent = nnx.Conv(features, out_channels, (1, 1), rngs=rngs)

  def __call__(self, x):
    return self.to_latent(self.trunk(self.down(x)))


class ScalePredictor(nnx.Module):
  """D(s): (z(s), f(s+1)) -> features f(s) at twice the resolution, and mixture parameters from them."""

  def __init__(self, in_channels: int, features: int, blocks: int, out_channels: int, *, rngs: nnx.Rngs):
    self.head = nnx.Conv(in_channels, features, (3, 3), rngs=rngs)
    self.trunk = _Trunk(features, blocks, rngs=rngs)
    self.up = nnx.ConvTranspose(features, features, (3, 3), strides=2, rngs=rngs)
    self.to_params = nnx.Conv(features, out_channels, (1, 1), rngs=rngs)

  def __call__(self, z_values, features_above=None):
    h = self.head(z_values)
    if features_above is not None:
      h = h + features_above
    f = self.up(self.trunk(h))
    return f, self.to_params(f)


class L3C(nnx.Module):
  """Same backend only: every table comes from float network outputs, which two backends (CPU and GPU,
  or CPUs with other vector units) need not compute bit-identically; the container's image check then
  turns a mismatch into a ``BitstreamError``."""

  LOSSLESS = True
  DECODE_GUARANTEE = "same-backend"
  CODING_REVISION = 2  # 2: windowed integer tables built on the device (issue #19); files of 1 are refused
  CODES_PARTS = True  # encode_image(..., parts=) says where the bits of its one stream go

  def __init__(self, features: int = 64, blocks: int = 8, latent_channels: int = 5, levels: int = 25,
               components: int = 10, scales: int = 3, sigma: float = 2.0, auxiliary: str = "learned",
               shared_predictor: bool = False, *, rngs: nnx.Rngs):
    if auxiliary not in AUXILIARY:
      raise UsageError(f"auxiliary must be one of {AUXILIARY}, got {auxiliary!r}")
    if shared_predictor and auxiliary != "rgb":
      raise UsageError("shared_predictor needs auxiliary='rgb': every scale must hold the same kind of symbols")
    if scales < 1:
      raise UsageError(f"scales must be >= 1, got {scales}")
    self.scales = scales
    self.learned = auxiliary == "learned"
    self.sigma = sigma
    self.aux_channels = latent_channels if self.learned else 3
    aux_levels = levels if self.learned else PIXEL_LEVELS
    self.pixel_model = DiscretizedLogisticMixture(PIXEL_LEVELS, components, rgb_coupling=True)
    self.aux_model = DiscretizedLogisticMixture(aux_levels, components, rgb_coupling=not self.learned)
    self.top_model = Uniform(aux_levels)
    if self.learned:
      self.encoders = nnx.List([
          ScaleEncoder(3 if s == 0 else latent_channels, features, blocks, latent_channels, rngs=rngs)
          for s in range(scales)])
    out = lambda s: (3 * self.pixel_model.num_params if s == 0
                     else self.aux_channels * self.aux_model.num_params)
    count = 1 if shared_predictor else scales
    self.predictors = nnx.List([ScalePredictor(self.aux_channels, features, blocks, out(s), rngs=rngs)
                                for s in range(count)])

  # Training and evaluation: every scale at once.

  def __call__(self, images, key=None, side=None):
    """images: N×H×W×3 integers in [0, 255], H and W multiples of 2^scales. -> RDOutput (bits per scale)."""
    del key, side  # soft-to-hard quantization is deterministic
    maps, _ = self.bit_maps(images)
    return RDOutput(None, {name: m.sum(axis=(1, 2, 3)) for name, m in maps.items()}, images.shape[1] * images.shape[2])

  def bit_maps(self, images):
    """-> ({'x': bits N×H×W×3 (R, G|R, B|R,G), 'z1': N×H/2×W/2×C, ..., 'zS': the uniform top scale}, the
    pixel mixture's parameters N×H×W×3×P): where the bits go, scale by scale and channel by channel."""
    images = jnp.asarray(images, jnp.float32)
    self._check_shape(images.shape[1:3])
    symbols = self._pyramid(images)
    bits, f = {}, None
    for s in reversed(range(self.scales)):
      f, params = self._predict(s, self.aux_model.values(symbols[s + 1]), f)
      model = self.pixel_model if s == 0 else self.aux_model
      bits["x" if s == 0 else f"z{s}"] = model.bits(symbols[s], params)
    bits[f"z{self.scales}"] = self.top_model.bits(symbols[-1])
    return bits, params

  def _pyramid(self, images):
    """[x, z(1), ..., z(S)] as symbols (floats holding integers; learned ones carry soft gradients)."""
    symbols = [images]
    values = to_signed(images)
    for s in range(self.scales):
      if self.learned:
        centers = jnp.linspace(-1.0, 1.0, self.aux_model.levels)
        values, index = soft_to_hard(self.encoders[s](values), centers, self.sigma)
        # Exactly the integer index forward; the soft assignment's gradient backward.
        sym = index.astype(jnp.float32) + (values - jax.lax.stop_gradient(values)) * (self.aux_model.levels - 1) / 2
      else:
        n, h, w, c = symbols[-1].shape
        sym = jnp.round(symbols[-1].reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4)))
        sym = jax.lax.stop_gradient(sym)
      symbols.append(sym)
    return symbols

  def _predict(self, s: int, z_values, features_above):
    predictor = self.predictors[0 if len(self.predictors) == 1 else s]
    f, params = predictor(z_values, features_above)
    channels = 3 if s == 0 else self.aux_channels
    return f, params.reshape(params.shape[:3] + (channels, -1))

  def _check_shape(self, hw):
    multiple = 2 ** self.scales
    if hw[0] % multiple or hw[1] % multiple:
      raise UsageError(f"L3C needs height and width divisible by {multiple}, got {tuple(hw)}")

  # Coding: a Codec (compzoo/codecs/learned.py) calls these. One stream holds every tile and scale.

  def prepare_coding(self, tables=None):
    return None

  def min_stream_bits(self, shape, prepared=None) -> float:
    """The uniform top scale alone costs C log2(L) bits per position of every tile."""
    multiple = 2 ** self.scales
    rows, cols = (sum(-(-(cut.stop - cut.start) // multiple) for cut in _cuts(n)) for n in shape[:2])
    return rows * cols * self.aux_channels * float(self.top_model.bits(0))

  def encode_image(self, image: np.ndarray, prepared=None, parts: dict | None = None):
    """``parts``: filled with the stream's bits per scale ('x', 'z1', ..., summed over tiles)."""
    encoder = Encoder()
    parts = {} if parts is None else parts

    def code(name, put):
      before = encoder.bits()
      put()
      parts[name] = parts.get(name, 0) + encoder.bits() - before

    for rows, cols in tiles(image.shape[:2]):
      tile = image[rows, cols]
      symbols = [tile] + [np.asarray(z)[0] for z in _analyze(self, pad_to_multiple(tile, 2 ** self.scales)[None])]
      code(f"z{self.scales}", lambda: self.top_model.encode_to(encoder, symbols[-1]))
      f = None
      for s in reversed(range(self.scales)):
        f, params = _predict_scale(self, s, symbols[s + 1][None], f)
        if s == 0:
          code("x", lambda: self.pixel_model.encode_to(encoder, tile, _crop(params, tile.shape)))
        else:
          code(f"z{s}", lambda: self.aux_model.encode_to(encoder, symbols[s], np.asarray(params)[0]))
    return [encoder.finish()], None  # lossless: the container checks the image itself

  def decode_image(self, streams, shape, prepared=None):
    bitstream.expect_streams(streams, 1, "L3C")
    multiple = 2 ** self.scales
    decoder = Decoder(streams[0])
    image = np.zeros(shape, np.uint8)
    for rows, cols in tiles(shape[:2]):
      height, width = rows.stop - rows.start, cols.stop - cols.start
      top_hw = (-(-height // multiple), -(-width // multiple))
      z = self.top_model.decode_from(decoder, top_hw + (self.aux_channels,))
      f = None
      for s in reversed(range(self.scales)):
        f, params = _predict_scale(self, s, z[None], f)
        if s == 0:
          image[rows, cols] = self.pixel_model.decode_from(decoder, (height, width, 3),
                                                           _crop(params, (height, width)))
        else:
          params = np.asarray(params)[0]
          z = self.aux_model.decode_from(decoder, params.shape[:3], params)
    return image, None


@nnx.jit
def _analyze(model: L3C, images):
  """-> integer symbols [z(1), ..., z(S)] of a padded batch (encoder side only)."""
  return [jnp.round(z).astype(jnp.int32) for z in model._pyramid(images.astype(jnp.float32))[1:]]


@functools.partial(nnx.jit, static_argnums=1)
def _predict_scale(model: L3C, s: int, z_symbols, features_above):
  """One pass of D(s+1) from integer symbols: the function both encoder and decoder call."""
  return model._predict(s, model.aux_model.values(z_symbols), features_above)


def tiles(hw) -> list[tuple[slice, slice]]:
  """Near-equal tiles of at most TILE pixels a side, row-major; a pure function of the image size."""
  return [(r, c) for r in _cuts(hw[0]) for c in _cuts(hw[1])]


def _cuts(n: int) -> list[slice]:
  count = -(-n // TILE)
  edges = [round(i * n / count) for i in range(count + 1)]
  return [slice(a, b) for a, b in zip(edges[:-1], edges[1:])]


def _crop(params, hw) -> np.ndarray:
  return np.ascontiguousarray(np.asarray(params)[0, :hw[0], :hw[1]])


def build(*, rngs: nnx.Rngs, **settings) -> L3C:
  return L3C(**settings, rngs=rngs)
