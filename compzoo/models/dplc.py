"""Distribution-preserving lossy compression: "Deep Generative Models for Distribution-Preserving Lossy
Compression" (Tschannen, Agustsson, Lucic, NeurIPS 2018).

    x ──E (÷16)──> y ──L levels──> code (code_channels × h/16 × w/16 symbols) ──┐
                                                   noise u ~ U(-1, 1)^noise_dim ─┴─B (MLP)──> z ──G──> x̂
    rate 0 (code_channels=0): z ~ N(0, I), and G alone is a generative model

The rate is set by the architecture (code_channels · h/16 · w/16 · log2 L bits, the paper's fixed-rate
code), not by a rate term: the objectives (compzoo/train/adversarial.py) differ only in what they ask of
the decoder's output distribution. The code is entropy coded with one learned categorical per code
position (trained by ``entropy_model_loss``, never by the encoder's gradient), whose integer tables
exports ship, so a file codes below the nominal rate when the code is predictable. The noise u (or z at
rate 0) is drawn from a 32-bit seed stored in the file: the encoder takes it from the image's CRC32, so
compressing an image twice gives the same file, and decoding a file always gives the same picture.

``discriminator`` is the WGAN critic (layer norm, no batch norm, as WGAN-GP needs); it is training-only.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from compzoo import bitstream
from compzoo.entropy import Decoder, Encoder
from compzoo.entropy.tables import LearnedTable
from compzoo.errors import BitstreamError, UsageError
from compzoo.models.latent import SEED_BYTES, LatentCoding, Quantized, file_key, seed_of_stream, seed_stream
from compzoo.nn import leaky_conv_stack
from compzoo.pixels import from_tanh, to_signed
from compzoo.rd import RDOutput

ARCHITECTURE = "dplc"  # the config name of this model (compzoo/models/__init__.py discovers it)

STRIDE = 16


class DCGANGenerator(nnx.Module):
  """DCGAN-style: z -> 4×4×(f·2^(n-1)) -> n stride-2 transposed convolutions -> size×size×channels."""

  def __init__(self, latent_dim: int, size: int, channels: int, features: int, *, rngs: nnx.Rngs):
    ups = int(math.log2(size // 4))
    widths = [features * 2 ** (ups - 1 - i) for i in range(ups)] + [channels]
    self.start = widths[0]
    self.project = nnx.Linear(latent_dim, 16 * widths[0], rngs=rngs)
    self.norms = nnx.List([nnx.LayerNorm(w, rngs=rngs) for w in widths[:-1]])
    self.ups = nnx.List([nnx.ConvTranspose(i, o, (4, 4), strides=2, rngs=rngs) for i, o in zip(widths, widths[1:])])

  def __call__(self, z):
    x = self.project(z).reshape(z.shape[0], 4, 4, self.start)
    for norm, up in zip(self.norms, self.ups):
      x = up(jax.nn.relu(norm(x)))
    return from_tanh(x)


class Critic(nnx.Module):
  """Stride-2 convolutions with layer norm over each feature map, then one linear output (a WGAN critic
  or a GAN discriminator). Returns (scores (N,), intermediate features) as the adversarial objectives ask."""

  def __init__(self, size: int, channels: int, features: int, *, rngs: nnx.Rngs):
    downs = int(math.log2(size // 4))
    widths = [channels] + [features * 2 ** i for i in range(downs)]
    self.convs = nnx.List([nnx.Conv(i, o, (4, 4), strides=2, rngs=rngs) for i, o in zip(widths, widths[1:])])
    self.norms = nnx.List([nnx.LayerNorm(w, reduction_axes=(1, 2, 3), rngs=rngs) for w in widths[2:]])
    self.score = nnx.Linear(16 * widths[-1], 1, rngs=rngs)

  def __call__(self, images, side=None):
    del side
    x, features = leaky_conv_stack(to_signed(images), self.convs, self.norms)
    return self.score(x.reshape(x.shape[0], -1))[:, 0], features


class CodeEncoder(nnx.Module):
  """Image -> y (N, h/16, w/16, code_channels) in (-1, 1). The code is layer-normalised over each image's
  code before the tanh: without it an MSE-trained binary code drifts to one sign everywhere (the tanh
  saturates, its gradient dies, and the decoder learns the mean image), as the first MSE runs did."""

  def __init__(self, channels: int, features: int, code_channels: int, *, rngs: nnx.Rngs):
    widths = [channels, features, 2 * features, 4 * features]
    self.convs = nnx.List([nnx.Conv(i, o, (4, 4), strides=2, rngs=rngs) for i, o in zip(widths, widths[1:])])
    self.out = nnx.Conv(widths[-1], code_channels, (4, 4), strides=2, rngs=rngs)
    self.norm = nnx.LayerNorm(code_channels, reduction_axes=(1, 2, 3), rngs=rngs)

  def __call__(self, images):
    x = to_signed(images)
    for conv in self.convs:
      x = jax.nn.leaky_relu(conv(x), 0.2)
    return jnp.tanh(self.norm(self.out(x)))


class Mapping(nnx.Module):
  """B: the flattened code and noise -> z."""

  def __init__(self, inputs: int, latent_dim: int, hidden: int, *, rngs: nnx.Rngs):
    self.hidden = nnx.List([nnx.Linear(inputs, hidden, rngs=rngs), nnx.Linear(hidden, hidden, rngs=rngs)])
    self.out = nnx.Linear(hidden, latent_dim, rngs=rngs)

  def __call__(self, x):
    for layer in self.hidden:
      x = jax.nn.relu(layer(x))
    return self.out(x)


class DistributionPreservingCodec(LatentCoding, nnx.Module):
  """E, B, G and the code's tables (see the module docstring); fixed image size, 1 (grey) or 3 channels.
  Codes through the latent seam (compzoo/models/latent.py): its symbols are the code and the seed, its
  latents the code's level values, and what synthesis reads is z = B(code values, noise from the seed)."""

  DECODE_GUARANTEE = "shipped-tables"
  STRIDE = STRIDE
  MAX_PIXELS = None

  def __init__(self, size: int = 32, channels: int = 3, code_channels: int = 0, levels: int = 2,
               latent_dim: int = 64, noise_dim: int = 16, features: int = 32, *, rngs: nnx.Rngs):
    if size < 16 or size & (size - 1):
      raise UsageError(f"dplc takes square images of a power-of-two size >= 16, got {size}")
    if channels not in (1, 3) or levels < 2 or code_channels < 0:
      raise UsageError(f"dplc: channels must be 1 or 3, levels >= 2, code_channels >= 0 "
                       f"(got {channels}, {levels}, {code_channels})")
    self.size, self.channels, self.levels = size, channels, levels
    self.latent_dim, self.noise_dim = latent_dim, noise_dim
    self.code_shape = (size // STRIDE, size // STRIDE, code_channels)
    self.positions = int(np.prod(self.code_shape))
    self.generator = DCGANGenerator(latent_dim, size, channels, features, rngs=rngs)
    if self.positions:
      self.encoder = CodeEncoder(channels, features, code_channels, rngs=rngs)
      self.mapping = Mapping(self.positions + noise_dim, latent_dim, max(128, 2 * latent_dim), rngs=rngs)
      self.code_logits = nnx.Param(jnp.zeros((self.positions, levels)))
    # One learned categorical per code position. Its logits are used unscaled (scale 1, not TABLE_SCALE):
    # that is how the shipped weights were trained, so it stays part of their meaning.
    self.code_table = LearnedTable(levels, scale=1.0)
    self.discriminator = Critic(size, channels, features, rngs=rngs)

  @property
  def image_shape(self) -> tuple[int, int]:
    """The only image size this model codes (codecs expose it: ``Codec.image_shape``)."""
    return self.size, self.size

  @property
  def nominal_bits(self) -> float:
    """Bits per image of the fixed-rate code, before entropy coding."""
    return self.positions * math.log2(self.levels)

  def __call__(self, images, key=None, side=None) -> RDOutput:
    """images: N×size×size×channels in [0, 255]. ``key`` set: training (fresh noise; prior samples at rate
    0); unset: evaluation with fixed noise."""
    del side
    count = images.shape[0]
    key = jax.random.PRNGKey(0) if key is None else key
    if not self.positions:
      reconstruction = self.generator(self.prior_sample(key, count))
      return RDOutput(reconstruction, {"code": jnp.zeros(count)}, self.size * self.size)
    quantized = self.quantize(self.analyze(images))
    reconstruction = self.generator(self._mapped(quantized.values, self.noise(key, count)))
    bits = self._code_bits(quantized.symbols["code"])
    return RDOutput(reconstruction, {"code": jax.lax.stop_gradient(bits)}, self.size * self.size,
                    entropy_model_loss=jnp.mean(bits) / (self.size * self.size))

  # Pieces the objectives use (compzoo/train/adversarial.py: WAE and Wasserstein++).
  def prior_sample(self, key, count: int):
    return jax.random.normal(key, (count, self.latent_dim))

  def noise(self, key, count: int):
    return jax.random.uniform(key, (count, self.noise_dim), minval=-1.0, maxval=1.0)

  def encode(self, images, key):
    """z = B(E(x), u): what the decoder's generator reads (at rate 0, a prior sample)."""
    if not self.positions:
      return self.prior_sample(key, images.shape[0])
    return self._mapped(self.quantize(self.analyze(images)).values, self.noise(key, images.shape[0]))

  def sample(self, key, count: int):
    """G(z), z from the prior: the generative model the decoder is at rate 0."""
    return self.generator(self.prior_sample(key, count))

  def _mapped(self, values, noise):
    return self.mapping(jnp.concatenate([values.reshape(values.shape[0], -1), noise], axis=-1))

  def _code_bits(self, code):
    flat = code.reshape(code.shape[0], -1)
    return self.code_table.bits(self.code_logits[...], flat, jnp.arange(self.positions)).sum(axis=1)

  # The latent seam (compzoo/models/latent.py).
  def analyze(self, images):
    """N×size×size×(channels, or 3 for a grey model: it reads the rounded channel mean) -> y in (-1, 1)."""
    images = jnp.asarray(images, jnp.float32)
    if self.channels == 1 and images.shape[-1] == 3:
      images = jnp.round(jnp.mean(images, axis=-1, keepdims=True))
    if not self.positions:
      return jnp.zeros((images.shape[0],) + self.code_shape)
    return self.encoder(images)

  def quantize(self, y) -> Quantized:
    """y in (-1, 1) -> values on L evenly spaced levels (straight-through) and the integer code. The seed,
    the file's other symbol, is the image's CRC32 (``symbols_of_images``): no function of y."""
    steps = self.levels - 1
    symbols = {"code": jnp.clip(jnp.round((y + 1.0) * 0.5 * steps), 0, steps).astype(jnp.int32)}
    return Quantized(y + jax.lax.stop_gradient(self.latent_values(symbols) - y), symbols)

  def latent_values(self, symbols):
    return symbols["code"].astype(jnp.float32) * (2.0 / (self.levels - 1)) - 1.0

  def dequantize(self, symbols):
    """The code and seed -> z, the generator's input: B(code values, noise) or, at rate 0, a prior sample."""
    keys = jax.vmap(file_key)(symbols["seed"][:, 0])
    if not self.positions:
      return jax.vmap(lambda key: self.prior_sample(key, 1)[0])(keys)
    noise = jax.vmap(lambda key: self.noise(key, 1)[0])(keys)
    return self._mapped(self.latent_values(symbols), noise)

  def synthesize(self, z):
    """z -> N×size×size×3 (a grey model's channel repeated)."""
    pixels = self.generator(z)
    return jnp.repeat(pixels, 3, axis=-1) if self.channels == 1 else pixels

  def symbols_of_images(self, images: np.ndarray) -> dict:
    """The code, and the seed the encoder stores: the image's CRC32, so one image always makes one file."""
    self._check_shape(images.shape[1:])
    symbols = super().symbols_of_images(images)
    symbols["seed"] = np.asarray([[bitstream.crc32(np.ascontiguousarray(i).tobytes())] for i in images], np.uint32)
    return symbols

  def content_check(self, symbols) -> int:
    """The file's check: CRC32 of the seed's bytes and the code (the layout files have always carried)."""
    return bitstream.crc32(seed_stream(symbols) + np.asarray(symbols["code"], np.int32).tobytes())

  # Coding (CodingModel through LatentCoding): a 32-bit seed stream, then the code stream.
  def coding_tables(self) -> dict:
    if not self.positions:
      return {}
    return {"code": self.code_table.integer_table(self.code_logits[...])}

  def prepare_coding(self, tables) -> dict:
    if not self.positions:
      return {}
    return {"code": self.code_table.checked(tables, "code", self.positions, "dplc")}

  def _check_shape(self, shape, error=UsageError):
    if tuple(shape[:2]) != (self.size, self.size):
      grey = " (grey digits: the three channels equal)" if self.channels == 1 else ""
      raise error(f"this dplc model codes {self.size}×{self.size} images{grey}; got {shape[1]}×{shape[0]}")

  def encode_symbols(self, symbols, prepared):
    streams = [seed_stream(symbols)]
    if self.positions:
      encoder = Encoder()
      LearnedTable.encode(encoder, np.asarray(symbols["code"]).ravel(), prepared["code"], np.arange(self.positions))
      streams.append(encoder.finish())
    return streams

  def decode_symbols(self, streams, shape, prepared):
    self._check_shape(shape, BitstreamError)
    bitstream.expect_streams(streams, 1 + bool(self.positions), "dplc", {0: SEED_BYTES})
    code = np.zeros(self.positions, np.int32)
    if self.positions:
      code = LearnedTable.decode(Decoder(streams[1]), prepared["code"], np.arange(self.positions))
    return {"code": code.reshape(self.code_shape), "seed": seed_of_stream(streams[0])}

  def min_stream_bits(self, shape, prepared) -> float:
    """No stream holds an image of another size; otherwise the seed and each position's likeliest symbol."""
    if tuple(shape[:2]) != (self.size, self.size):
      return float("inf")
    if not self.positions:
      return 8 * SEED_BYTES
    return 8 * SEED_BYTES + float(LearnedTable.floor_bits(prepared["code"]).sum())


def build(size: int = 32, channels: int = 3, code_channels: int = 0, levels: int = 2, latent_dim: int = 64,
          noise_dim: int = 16, features: int = 32, *, rngs: nnx.Rngs) -> DistributionPreservingCodec:
  return DistributionPreservingCodec(size, channels, code_channels, levels, latent_dim, noise_dim, features,
                                     rngs=rngs)
