"""Context-model autoencoder: "Conditional Probability Models for Deep Image Compression" (Mentzer,
Agustsson, Tschannen, Timofte, Van Gool, CVPR 2018).

    x ──E (÷8, residual)──> z (C channels) ──soft-to-hard, L learned centers──> symbols ──D──> x̂
                        └─> importance y ∈ (0, K) ──> mask: channel group g is coded where y > g
    rate = bits of the importance counts + Σ over coded symbols of -log2 P(symbol | symbols before it)

P comes from a masked 3D CNN over the (channel, height, width) volume of symbols: the training rate is
its cross-entropy, and the coder uses the same network. Masked symbols are zeroed for D, cost no bits and
are not coded; the decoder knows where they are from the importance counts, which are coded first with a
learned table conditioned on their left and upper neighbours. ``prior='factorized'`` replaces the context
model with one learned categorical per channel: the paper's ablation.

Why encoder and decoder agree although one runs a 3D convolution over the whole volume and the other a
wavefront of gathers: the context model computes exactly. Its weights lie on a 2^-8 grid in [-1, 1), its
activations on a 2^-4 grid in [-8, 8) and its inputs on a 2^-2 grid, so every product is a multiple of
2^-12 and every partial sum stays below 2^12 in magnitude: float32 holds them all exactly, in any order of
summation (XLA's convolution, a matmul, TF32 on a GPU). Its logits are then exact multiples of 2^-12, the
coder's tables come from their rounding to 1/16 through an integer table (``pmf_from_grid_logits``), and
the training rate is the cross-entropy under those same rounded logits.

Decoding visits the volume in wavefronts t = 4c + 2h + w: every position a 3x3x3 masked kernel reads has a
smaller t (even through stacked layers), so a wavefront decodes at once. One compiled step per wavefront
computes each layer's activations only at the wavefront's positions from cached activations of earlier
ones (every activation is computed once, as in the encoder's single pass), then the range coder reads the
wavefront's symbols: 4C + 2h + w steps per image instead of one network pass per symbol.
"""

from __future__ import annotations

import functools
import itertools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from compzoo import bitstream
from compzoo.entropy import Decoder, Encoder
from compzoo.entropy.categorical import grid_logits, pmf_from_grid_logits
from compzoo.entropy.tables import CausalContextTable, LearnedTable
from compzoo.errors import UsageError
from compzoo.models.latent import LatentCoding, Quantized
from compzoo.nn import ResidualBlock
from compzoo.ops import nats_to_bits
from compzoo.quantize import LearnedCenters
from compzoo.rd import RDOutput

ARCHITECTURE = "cpm"  # the config name of this model (compzoo/models/__init__.py discovers it)

STRIDE = 8
PRIORS = ("context", "factorized")
WEIGHT_STEP, ACT_STEP, ACT_LIMIT = 2.0**-8, 2.0**-4, 8.0
MAX_FEATURES = 32  # keeps every partial sum of the context model below 2^12 (see the module docstring)
_OFFSETS = list(itertools.product((-1, 0, 1), repeat=3))
TAPS_A = [o for o in _OFFSETS if o < (0, 0, 0)]  # strictly before the centre in (c, h, w) order
TAPS_B = TAPS_A + [(0, 0, 0)]
WAVEFRONT = (4, 2, 1)  # t = 4c + 2h + w is smaller at every tap in TAPS_A


def _on_grid(x, step, low, high):
  """x clipped to [low, high] and rounded to multiples of ``step``, straight-through."""
  x = jnp.clip(x, low, high)
  return x + jax.lax.stop_gradient(jnp.round(x / step) * step - x)


class MaskedConv3D(nnx.Module):
  """3x3x3 convolution over (channel, height, width) that reads only the taps it is given, with weights
  on the exact grid. ``kernel`` holds one (in, out) matrix per tap."""

  def __init__(self, taps, in_features: int, out_features: int, *, rngs: nnx.Rngs):
    self.taps = tuple(taps)
    std = np.sqrt(2.0 / (len(self.taps) * in_features))
    self.kernel = nnx.Param(std * jax.random.normal(rngs.params(), (len(self.taps), in_features, out_features)))
    self.bias = nnx.Param(jnp.zeros((out_features,)))

  def weights(self):
    return (_on_grid(self.kernel[...], WEIGHT_STEP, -1.0, 1.0 - WEIGHT_STEP),
            _on_grid(self.bias[...], WEIGHT_STEP, -ACT_LIMIT, ACT_LIMIT))

  def __call__(self, x):
    """x: N×C×H×W×F, zero outside the volume."""
    kernel, bias = self.weights()
    full = jnp.zeros((27,) + kernel.shape[1:], kernel.dtype)
    full = full.at[jnp.asarray([_OFFSETS.index(t) for t in self.taps])].set(kernel)
    out = jax.lax.conv_general_dilated(x, full.reshape((3, 3, 3) + kernel.shape[1:]), (1, 1, 1),
                                       [(1, 1)] * 3, dimension_numbers=("NDHWC", "DHWIO", "NDHWC"))
    return out + bias


class ContextModel(nnx.Module):
  """Masked 3D CNN: symbols (value and coded flag per position) -> logits over the L centers.

  conv A, then a residual block of two conv B, then conv B to logits (receptive field: 4 taps deep).
  ``_wavefront_step`` repeats this recipe layer by layer on gathered neighbourhoods.
  """

  def __init__(self, levels: int, features: int = 24, *, rngs: nnx.Rngs):
    if not 1 <= features <= MAX_FEATURES:
      raise UsageError(f"context features must be in [1, {MAX_FEATURES}] for exact coding, got {features}")
    self.first = MaskedConv3D(TAPS_A, 2, features, rngs=rngs)
    self.res1 = MaskedConv3D(TAPS_B, features, features, rngs=rngs)
    self.res2 = MaskedConv3D(TAPS_B, features, features, rngs=rngs)
    self.out = MaskedConv3D(TAPS_B, features, levels, rngs=rngs)

  def layers(self) -> tuple[MaskedConv3D, ...]:
    return self.first, self.res1, self.res2, self.out

  def __call__(self, volume):
    a1 = _hidden(self.first(volume))
    a2 = _hidden(self.res1(a1))
    a3 = _residual(a1, self.res2(a2))
    return self.out(a3)


def _hidden(x):
  return _on_grid(jax.nn.relu(x), ACT_STEP, 0.0, ACT_LIMIT - ACT_STEP)


def _residual(skip, x):
  return _on_grid(skip + x, ACT_STEP, -ACT_LIMIT, ACT_LIMIT - ACT_STEP)


class ImportanceModel(nnx.Module):
  """P(count at (h, w) | count to its left, count above): a causal-context learned table (K+2 contexts
  per neighbour: the K+1 counts and 'outside'), coded wavefront by wavefront (compzoo/entropy/tables.py)."""

  def __init__(self, groups: int):
    self.groups = groups
    self.coder = CausalContextTable(groups + 1, ((0, -1), (-1, 0)))  # left, up
    self.logits = nnx.Param(jnp.zeros((groups + 2, groups + 2, groups + 1)))  # × TABLE_SCALE

  def bits(self, counts):
    return self.coder.bits(self.logits[...], counts)


class FactorizedPrior(nnx.Module):
  """The ablation: one learned categorical over the L centers per channel, no context."""

  def __init__(self, channels: int, levels: int):
    self.table = LearnedTable(levels)
    self.logits = nnx.Param(jnp.zeros((channels, levels)))  # × TABLE_SCALE

  def __call__(self, volume_shape):
    """-> logits broadcast to N×C×H×W×L."""
    n, c, h, w = volume_shape
    return jnp.broadcast_to(self.table.logits(self.logits[...])[None, :, None, None], (n, c, h, w, self.table.levels))


class Analysis(nnx.Module):
  def __init__(self, features: int, blocks: int, out_channels: int, *, rngs: nnx.Rngs):
    conv = lambda i, o: nnx.Conv(i, o, (5, 5), strides=2, rngs=rngs)
    self.down1, self.down2 = conv(3, features // 2), conv(features // 2, features)
    self.blocks = nnx.List([ResidualBlock(features, rngs=rngs) for _ in range(blocks)])
    self.down3 = conv(features, out_channels)

  def __call__(self, x):
    h = self.down2(jax.nn.relu(self.down1(x)))
    for block in self.blocks:
      h = block(h)
    return self.down3(h)


class Synthesis(nnx.Module):
  def __init__(self, features: int, blocks: int, in_channels: int, *, rngs: nnx.Rngs):
    deconv = lambda i, o: nnx.ConvTranspose(i, o, (5, 5), strides=2, rngs=rngs)
    self.up1 = deconv(in_channels, features)
    self.blocks = nnx.List([ResidualBlock(features, rngs=rngs) for _ in range(blocks)])
    self.up2, self.up3 = deconv(features, features // 2), deconv(features // 2, 3)

  def __call__(self, z):
    h = self.up1(z)
    for block in self.blocks:
      h = block(h)
    return self.up3(jax.nn.relu(self.up2(h)))


class ContextModelAutoencoder(LatentCoding, nnx.Module):
  """Codes exactly on any backend: the context model's arithmetic is exact (module docstring), and the
  importance and factorized tables come from grid logits of the weights through an integer lookup
  (exports ship them as integer frequencies all the same)."""

  DECODE_GUARANTEE = "exact"
  STRIDE = STRIDE
  MAX_PIXELS = 1 << 24  # 16.8 MP: decoding caches 3 activations per symbol (~2.5 GB here); larger needs tiling

  def __init__(self, features: int = 64, blocks: int = 3, channels: int = 32, groups: int = 8,
               levels: int = 6, sigma: float = 1.0, context_features: int = 24, prior: str = "context",
               *, rngs: nnx.Rngs):
    if prior not in PRIORS:
      raise UsageError(f"prior must be one of {PRIORS}, got {prior!r}")
    if groups < 1 or channels % groups:
      raise UsageError(f"channels ({channels}) must split into groups ({groups}) of equal size")
    if not 2 <= levels <= 9:
      raise UsageError(f"levels must be in [2, 9] (inputs on the exact grid), got {levels}")
    self.channels, self.groups, self.levels, self.prior = channels, groups, levels, prior
    self.encoder = Analysis(features, blocks, channels + 1, rngs=rngs)
    self.decoder = Synthesis(features, blocks, channels, rngs=rngs)
    self.centers = LearnedCenters(levels, -2.0, 2.0, sigma)
    self.importance = ImportanceModel(groups)
    if prior == "context":
      self.context = ContextModel(levels, context_features, rngs=rngs)
    else:
      self.factorized = FactorizedPrior(channels, levels)

  def __call__(self, images, key=None, side=None) -> RDOutput:
    """images: N×H×W×3 in [0, 255], H and W multiples of 8. Soft-to-hard quantization is deterministic,
    so ``key`` is unused: training and evaluation see the same hard symbols."""
    del key, side
    images = jnp.asarray(images, jnp.float32)
    if images.shape[1] % STRIDE or images.shape[2] % STRIDE:
      raise UsageError(f"the context-model autoencoder needs sides divisible by {STRIDE}, got {images.shape[1:3]}")
    features = self.analyze(images)
    values, symbols = self.centers(features[..., :self.channels])
    soft_mask, hard_mask = self._masks(features[..., self.channels])
    mask = soft_mask + jax.lax.stop_gradient(hard_mask - soft_mask)  # hard forward, ramp backward
    reconstruction = self.synthesize(values * mask)
    # The rate model sees exact symbol values; their gradient flows back through the soft quantization.
    symbol_values = _symbol_values(symbols, self.levels) + (values - jax.lax.stop_gradient(values))
    latent_bits = self._latent_bits(symbols, symbol_values * hard_mask, hard_mask, mask)
    counts = self._counts(hard_mask)
    importance_bits = self.importance.bits(counts).sum(axis=(1, 2))
    # As in the paper, the entropy models minimise their cross-entropy at every step, while the
    # autoencoder sees only beta * max(H - H_t, 0) (the rate-distortion loss).
    fit = self._latent_bits(symbols, *(jax.lax.stop_gradient(a) for a in (symbol_values * hard_mask, hard_mask, mask)))
    num_pixels = images.shape[1] * images.shape[2]
    return RDOutput(reconstruction, {"latent": latent_bits, "importance": importance_bits}, num_pixels,
                    entropy_model_loss=jnp.mean(fit + importance_bits) / num_pixels)

  def _latent_bits(self, symbols, values, coded, weight):
    """Bits of the coded symbols under the context model (or the factorized prior), per image."""
    volume = _to_volume(values, coded)
    logits = self.context(volume) if self.prior == "context" else self.factorized(volume.shape[:4])
    log_p = jax.nn.log_softmax(grid_logits(logits), axis=-1)
    symbol_bits = -nats_to_bits(jnp.take_along_axis(log_p, jnp.moveaxis(symbols, -1, 1)[..., None], axis=-1))
    return (symbol_bits[..., 0] * jnp.moveaxis(weight, -1, 1)).sum(axis=(1, 2, 3))

  def _masks(self, importance):
    """Importance y = 1 + (K-1)·sigmoid(.) per position -> (soft ramp, hard 0/1) masks over the C channels:
    group g (C/K channels) is on where y > g. The first group is always on: early in training the hinge
    on the rate (and a decoder that cannot yet use its input) otherwise switch every channel off, and
    with no channel on there is no gradient left to switch them back."""
    y = 1.0 + (self.groups - 1) * jax.nn.sigmoid(importance)[..., None]
    g = jnp.arange(self.groups, dtype=jnp.float32)
    soft = jnp.clip(y - g, 0.0, 1.0)
    hard = (y > g).astype(jnp.float32)
    repeat = lambda m: jnp.repeat(m, self.channels // self.groups, axis=-1)
    return repeat(soft), repeat(hard)

  def _counts(self, hard_mask):
    """...×C hard mask -> ... counts of coded groups (read off the first channel of each group)."""
    return hard_mask[..., ::self.channels // self.groups].sum(axis=-1).astype(jnp.int32)

  def mask_from_counts(self, counts):
    """H×W counts of coded groups (numpy or JAX) -> H×W×C boolean mask (what the decoder rebuilds)."""
    return counts[..., None] > np.arange(self.channels) // (self.channels // self.groups)

  # The latent seam (compzoo/models/latent.py): coding, evaluation and heads on latents share it.

  def analyze(self, images):
    """N×H×W×3 in [0, 255] -> N×h×w×(C+1): C latent channels and the importance channel."""
    return self.encoder(jnp.asarray(images, jnp.float32) / 255.0 - 0.5)

  def quantize(self, y, key=None) -> Quantized:
    """Nearest learned center and the hard importance mask; masked symbols are 0 and are not coded."""
    del key
    _, symbols = self.centers(y[..., :self.channels])
    _, hard = self._masks(y[..., self.channels])
    symbols = {"symbols": jnp.where(hard > 0, symbols, 0).astype(jnp.int32), "counts": self._counts(hard)}
    return Quantized(self.dequantize(symbols), symbols)  # exactly the decoder's values

  def dequantize(self, symbols):
    mask = self.mask_from_counts(symbols["counts"]).astype(jnp.float32)
    return self.centers.dequantize(symbols["symbols"]) * mask

  def synthesize(self, values):
    return (self.decoder(values) + 0.5) * 255.0

  # Coding: a Codec (compzoo/codecs/learned.py) calls these. One stream: importance counts, then symbols.

  def coding_tables(self) -> dict:
    """Integer frequency rows (see quantize_pmf): the importance table, and the factorized prior's."""
    tables = {"importance": self.importance.coder.table.integer_table(self.importance.logits[...])}
    if self.prior == "factorized":
      tables["factorized"] = self.factorized.table.integer_table(self.factorized.logits[...])
    return tables

  def prepare_coding(self, tables) -> dict:
    """Checks the shipped tables; they are used as they are, never recomputed."""
    importance = self.importance.coder
    prepared = {"importance": importance.table.checked(tables, "importance", importance.rows, "cpm")}
    if self.prior == "factorized":
      prepared["factorized"] = self.factorized.table.checked(tables, "factorized", self.channels, "cpm")
    return prepared

  def encode_symbols(self, symbols, tables):
    counts, symbols = symbols["counts"], symbols["symbols"]
    encoder = Encoder()
    self.importance.coder.encode(encoder, counts, tables["importance"])
    volume = np.moveaxis(symbols, -1, 0)  # C×H×W
    coded = np.moveaxis(self.mask_from_counts(counts), -1, 0)
    if self.prior == "context":
      logits = np.asarray(_context_logits(self, volume[None], coded[None]))[0]
      order = _wavefront_plan(volume.shape).order
      order = order[coded.reshape(-1)[order]]
      encoder.put(volume.reshape(-1)[order], pmf_from_grid_logits(logits.reshape(-1, self.levels)[order]))
    else:
      LearnedTable.encode(encoder, volume[coded], tables["factorized"], _channel_index(coded))
    return [encoder.finish()]

  def decode_symbols(self, streams, shape, tables):
    bitstream.expect_streams(streams, 1, "cpm")
    decoder = Decoder(streams[0])
    counts = self.importance.coder.decode(decoder, self.latent_shape(shape), tables["importance"])
    coded = np.moveaxis(self.mask_from_counts(counts), -1, 0)
    if self.prior == "context":
      volume = _decode_wavefronts(self, decoder, coded)
    else:
      volume = np.zeros(coded.shape, np.int32)
      volume[coded] = LearnedTable.decode(decoder, tables["factorized"], _channel_index(coded))
    return {"counts": counts, "symbols": np.moveaxis(volume, 0, -1)}

  def min_stream_bits(self, shape, tables) -> float:
    """Every position codes an importance count: at least its likeliest count's bits in any context."""
    return self.importance.coder.min_bits(self.latent_shape(shape), tables["importance"])


def _channel_index(coded) -> np.ndarray:
  """The channel of each coded position of a C×H×W volume, in numpy's boolean-index (raster) order."""
  return np.broadcast_to(np.arange(coded.shape[0])[:, None, None], coded.shape)[coded]


def _symbol_values(symbols, levels):
  """Symbol index (numpy or JAX) -> the context model's exact input (multiples of 1/4 around zero)."""
  return (symbols.astype(jnp.float32) - (levels - 1) / 2.0) * 0.5


def _to_volume(values, coded):
  """N×H×W×C values and 0/1 flags -> N×C×H×W×2 context-model input."""
  return jnp.stack([jnp.moveaxis(values, -1, 1), jnp.moveaxis(coded, -1, 1)], axis=-1)


@nnx.jit
def _context_logits(model, volume, coded):
  """The encoder's single masked pass: N×C×H×W symbols and flags -> N×C×H×W×L exact logits."""
  coded = coded.astype(jnp.float32)
  return model.context(jnp.stack([_symbol_values(volume, model.levels) * coded, coded], axis=-1))


class _Plan:
  """The wavefront schedule of a C×H×W volume and its flat indices into zero-padded activation buffers."""

  def __init__(self, shape):
    c, h, w = shape
    cc, hh, ww = (a.ravel() for a in np.meshgrid(*(np.arange(n) for n in shape), indexing="ij"))
    t = WAVEFRONT[0] * cc + WAVEFRONT[1] * hh + WAVEFRONT[2] * ww
    self.order = np.lexsort((hh, cc, t))
    self.bounds = np.searchsorted(t[self.order], np.arange(1, t.max() + 1)) if t.size else np.zeros(0, int)
    self.strides = ((h + 2) * (w + 2), w + 2, 1)
    self.rows = (c + 1) * (h + 2) * (w + 2) + 1  # +1: a scratch row that padding entries write to
    buffer_index = ((cc + 1) * self.strides[0] + (hh + 1) * self.strides[1] + ww + 1)
    self.steps = np.split(self.order, self.bounds)
    # Each wavefront's buffer indices, padded with the scratch row to a power of two (at least 64), so a
    # handful of compiled step shapes serve every wavefront.
    self.index = []
    for step in self.steps:
      width = max(64, 1 << max(0, int(len(step) - 1).bit_length()))
      self.index.append(np.concatenate([buffer_index[step], np.full(width - len(step), self.rows - 1)]).astype(np.int32))

  def offsets(self, taps):
    return np.asarray([sum(o * s for o, s in zip(tap, self.strides)) for tap in taps], np.int32)


@functools.lru_cache(maxsize=8)
def _wavefront_plan(shape) -> _Plan:
  return _Plan(tuple(int(n) for n in shape))


def _decode_wavefronts(model, decoder, coded) -> np.ndarray:
  """Decodes the C×H×W symbol volume wavefront by wavefront (see the module docstring)."""
  return run_wavefronts(model, coded, lambda logits: decoder.get(pmf_from_grid_logits(logits)))


def run_wavefronts(model, coded, read) -> np.ndarray:
  """Walks the wavefronts of a C×H×W volume whose coded positions are ``coded``: for each wavefront,
  ``read(logits of its coded positions)`` returns their symbols, which the next wavefronts then see.
  -> the C×H×W symbols (0 where not coded)."""
  plan = _wavefront_plan(coded.shape)
  layers = [layer.weights() for layer in model.context.layers()]
  offsets = (jnp.asarray(plan.offsets(TAPS_A)), jnp.asarray(plan.offsets(TAPS_B)))
  features = layers[0][0].shape[-1]
  buffers = (jnp.zeros((plan.rows, 2)),) + tuple(jnp.zeros((plan.rows, features)) for _ in range(3))
  flat_coded = coded.reshape(-1)
  volume = np.zeros(coded.size, np.int32)
  previous = plan.index[0]
  written = np.zeros((len(previous), 2), np.float32)
  for step, positions in zip(plan.steps, plan.index):
    buffers, logits = _wavefront_step(layers, offsets, buffers, previous, written, positions)
    here = flat_coded[step]
    if here.any():
      volume[step[here]] = read(np.asarray(logits)[:len(step)][here])
    written = np.zeros((len(positions), 2), np.float32)
    written[:len(step), 0] = _symbol_values(volume[step], model.levels) * here
    written[:len(step), 1] = here
    previous = positions
  return volume.reshape(coded.shape)


@functools.partial(jax.jit, donate_argnums=(2,))
def _wavefront_step(layers, offsets, buffers, previous, written, positions):
  """Writes the previous wavefront's decoded inputs, then runs every layer at this wavefront's positions
  from cached activations; -> (buffers, logits of the positions)."""
  inputs, act1, act2, act3 = buffers
  inputs = inputs.at[previous].set(written)
  taps_a, taps_b = offsets

  def layer(weights, buffer, taps):
    kernel, bias = weights
    return jnp.einsum("mtf,tfo->mo", buffer[positions[:, None] + taps[None]], kernel) + bias

  a1 = _hidden(layer(layers[0], inputs, taps_a))
  act1 = act1.at[positions].set(a1)
  a2 = _hidden(layer(layers[1], act1, taps_b))
  act2 = act2.at[positions].set(a2)
  a3 = _residual(a1, layer(layers[2], act2, taps_b))
  act3 = act3.at[positions].set(a3)
  return (inputs, act1, act2, act3), layer(layers[3], act3, taps_b)


def build(*, rngs: nnx.Rngs, **settings) -> ContextModelAutoencoder:
  return ContextModelAutoencoder(**settings, rngs=rngs)
