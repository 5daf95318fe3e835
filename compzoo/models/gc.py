"""Global generative compression (GC): "Generative Adversarial Networks for Extreme Learned Image
Compression" (Agustsson, Tschannen, Mentzer, Timofte, Van Gool, ICCV 2019).

    x ──E (÷16)──> w (C channels) ──5 centres {-2, -1, 0, 1, 2}──> ŵ ──┐
                             noise v (optional, seeded by the file) ───┴─G──> x̂
    E: c7s1-f, d2f, d4f, d8f, d16f, c3s1-C      G: c3s1-16f, R residual blocks, u8f, u4f, u2f, uf, c7s1-3

Convolutions use reflection padding and instance norm, as in the paper (its sizes: f = 60, 9 blocks).
The rate is set by C: C·log2(5)/256 bits per pixel nominal, before entropy coding; the objective
(compzoo/train/adversarial.py, GAN with the least-squares loss, feature matching and an MSE term) has no
rate term. The symbols are entropy coded with one learned categorical per channel (trained by
``entropy_model_loss``, never through the encoder), whose integer tables exports ship.

``discriminator`` is the multi-scale patch discriminator (the image at 3 scales, each C64-C128-C256-C512,
instance norm after the first layer); it is training-only.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from compzoo import bitstream
from compzoo.entropy import Decoder, Encoder
from compzoo.entropy.label_map import LabelMapModel
from compzoo.entropy.tables import LearnedTable
from compzoo.errors import UsageError
from compzoo.models import pad_to_multiple
from compzoo.models.latent import SEED_BYTES, LatentCoding, Quantized, file_key, seed_of_stream, seed_stream
from compzoo.nn import leaky_conv_stack
from compzoo.pixels import from_tanh, to_signed
from compzoo.quantize import soft_to_hard
from compzoo.rd import RDOutput

ARCHITECTURE = "gc"  # the config name of this model (compzoo/models/__init__.py discovers it)

STRIDE = 16
CENTERS = (-2.0, -1.0, 0.0, 1.0, 2.0)
CODE_TABLE = LearnedTable(len(CENTERS))  # one categorical over the centres per code channel


def _instance_norm(features: int, rngs: nnx.Rngs) -> nnx.GroupNorm:
  return nnx.GroupNorm(features, num_groups=None, group_size=1, epsilon=1e-5, rngs=rngs)


class ConvBlock(nnx.Module):
  """Reflection-padded convolution, then instance norm and ReLU (``norm=False``: the convolution alone).
  A convolution that instance norm follows has no bias: the norm would remove it (its gradient is 0)."""

  def __init__(self, inputs: int, outputs: int, kernel: int, stride: int = 1, norm: bool = True,
               bias: bool | None = None, *, rngs: nnx.Rngs):
    self.pad = kernel // 2
    self.conv = nnx.Conv(inputs, outputs, (kernel, kernel), strides=stride, padding="VALID",
                         use_bias=not norm if bias is None else bias, rngs=rngs)
    self.norm = _instance_norm(outputs, rngs) if norm else None

  def __call__(self, x):
    if self.pad:
      x = jnp.pad(x, ((0, 0), (self.pad, self.pad), (self.pad, self.pad), (0, 0)), mode="reflect")
    x = self.conv(x)
    return x if self.norm is None else jax.nn.relu(self.norm(x))


class UpBlock(nnx.Module):
  """u_k: 3×3 transposed convolution with stride 2, instance norm, ReLU."""

  def __init__(self, inputs: int, outputs: int, *, rngs: nnx.Rngs):
    self.conv = nnx.ConvTranspose(inputs, outputs, (3, 3), strides=2, use_bias=False, rngs=rngs)
    self.norm = _instance_norm(outputs, rngs)

  def __call__(self, x):
    return jax.nn.relu(self.norm(self.conv(x)))


class InstanceNormResidualBlock(nnx.Module):
  """x + IN(conv(ReLU(IN(conv(x))))), reflection padding (the paper's generator blocks)."""

  def __init__(self, channels: int, *, rngs: nnx.Rngs):
    self.first = ConvBlock(channels, channels, 3, rngs=rngs)
    self.second = ConvBlock(channels, channels, 3, norm=False, bias=False, rngs=rngs)
    self.norm = _instance_norm(channels, rngs)

  def __call__(self, x):
    return x + self.norm(self.second(self.first(x)))


class Encoder16(nnx.Module):
  """c7s1-f, d2f, d4f, d8f, d16f, c3s1-out: full resolution to 1/16 (images, or one-hot label maps)."""

  def __init__(self, inputs: int, features: int, outputs: int, *, rngs: nnx.Rngs):
    widths = [features * 2 ** i for i in range(5)]
    self.first = ConvBlock(inputs, widths[0], 7, rngs=rngs)
    self.downs = nnx.List([ConvBlock(i, o, 3, 2, rngs=rngs) for i, o in zip(widths, widths[1:])])
    self.out = ConvBlock(widths[-1], outputs, 3, norm=False, rngs=rngs)

  def __call__(self, x):
    x = self.first(x)
    for down in self.downs:
      x = down(x)
    return self.out(x)


class ResidualGenerator(nnx.Module):
  def __init__(self, inputs: int, features: int, blocks: int, *, rngs: nnx.Rngs):
    widths = [features * 2 ** i for i in range(4, -1, -1)]  # 16f, 8f, 4f, 2f, f
    self.first = ConvBlock(inputs, widths[0], 3, rngs=rngs)
    self.blocks = nnx.List([InstanceNormResidualBlock(widths[0], rngs=rngs) for _ in range(blocks)])
    self.ups = nnx.List([UpBlock(i, o, rngs=rngs) for i, o in zip(widths, widths[1:])])
    self.out = ConvBlock(widths[-1], 3, 7, norm=False, rngs=rngs)

  def __call__(self, x):
    x = self.first(x)
    for block in self.blocks:
      x = block(x)
    for up in self.ups:
      x = up(x)
    return from_tanh(self.out(x))


class PatchDiscriminator(nnx.Module):
  """C_f, C_2f, C_4f (4×4, stride 2), C_8f (stride 1), then a 1-channel 4×4 convolution: a logit per patch.
  Leaky ReLU 0.2; instance norm on every layer but the first. Returns (logits, features of each layer)."""

  def __init__(self, inputs: int, features: int, *, rngs: nnx.Rngs):
    widths = [inputs] + [features * 2 ** i for i in range(4)]
    self.convs = nnx.List([nnx.Conv(i, o, (4, 4), strides=2 if index < 3 else 1, use_bias=not index, rngs=rngs)
                           for index, (i, o) in enumerate(zip(widths, widths[1:]))])
    self.norms = nnx.List([_instance_norm(w, rngs) for w in widths[2:]])
    self.out = nnx.Conv(widths[-1], 1, (4, 4), rngs=rngs)

  def __call__(self, x):
    x, features = leaky_conv_stack(x, self.convs, self.norms)
    return self.out(x)[..., 0], features


class MultiScaleDiscriminator(nnx.Module):
  """One patch discriminator per scale (the image, then 2× average-pooled each time), as in pix2pixHD and
  the paper; a conditional one (SC) also reads the one-hot label map at each scale. Returns (a list of
  per-scale logit maps, every layer's features of every scale) for the GAN objective."""

  def __init__(self, features: int, scales: int = 3, label_classes: int = 0, *, rngs: nnx.Rngs):
    self.label_classes = label_classes
    self.scales = nnx.List([PatchDiscriminator(3 + label_classes, features, rngs=rngs) for _ in range(scales)])

  def min_side(self) -> int:
    """The smallest crop whose coarsest scale still has 2×2 maps where instance norm acts (on 1×1 maps it
    outputs zeros, and that scale's discriminator would learn nothing)."""
    return 16 * 2 ** (len(self.scales) - 1)

  def __call__(self, images, side=None):
    if min(images.shape[1:3]) < self.min_side():
      raise UsageError(f"a {len(self.scales)}-scale discriminator needs crops of at least {self.min_side()} "
                       f"pixels a side, got {images.shape[2]}×{images.shape[1]}")
    x = to_signed(images)
    if self.label_classes:
      x = jnp.concatenate([x, jax.nn.one_hot(side["label_map"], self.label_classes)], axis=-1)
    logits, features = [], []
    for index, discriminator in enumerate(self.scales):
      if index:
        x = nnx.avg_pool(x, (3, 3), strides=(2, 2), padding="SAME")
      scale_logits, scale_features = discriminator(x)
      logits.append(scale_logits)
      features.extend(scale_features)
    return logits, features


def seed_of_symbols(code):
  """A 32-bit seed from the integer code, computed the same way in JAX on every backend (integer
  arithmetic only): the encoder stores it, so an image always gives one file, and the decoder reads it."""
  flat = code.reshape(code.shape[0], -1).astype(jnp.uint32)
  weights = (jnp.arange(flat.shape[1], dtype=jnp.uint32) * jnp.uint32(2654435761)) | jnp.uint32(1)
  return jnp.sum(flat * weights + jnp.uint32(0x9E3779B9), axis=1, dtype=jnp.uint32)


class GenerativeCompression(LatentCoding, nnx.Module):
  """E, G and the code's tables (module docstring). Any image size: images are edge-padded to a multiple
  of 16 and the decoder crops; symbols are exact on every backend (shipped integer tables), the float
  generator may round a rare pixel one level differently on another backend."""

  DECODE_GUARANTEE = "shipped-tables"
  STRIDE = STRIDE
  MAX_PIXELS = 1 << 24  # the generator's activations at 16.8 MP already take several GB

  def __init__(self, code_channels: int = 8, features: int = 60, blocks: int = 9, noise_channels: int = 0,
               discriminator_features: int = 64, sigma: float = 1.0, *, rngs: nnx.Rngs,
               extra_inputs: int = 0, label_classes: int = 0):
    if code_channels < 1 or noise_channels < 0 or features < 1 or blocks < 0:
      raise UsageError(f"gc: code_channels >= 1, noise_channels >= 0, features >= 1, blocks >= 0 "
                       f"(got {code_channels}, {noise_channels}, {features}, {blocks})")
    self.code_channels, self.noise_channels, self.sigma = code_channels, noise_channels, sigma
    self.levels = len(CENTERS)
    self.encoder = Encoder16(3, features, code_channels, rngs=rngs)
    self.generator = ResidualGenerator(code_channels + extra_inputs + noise_channels, features, blocks, rngs=rngs)
    self.code_logits = nnx.Param(jnp.zeros((code_channels, self.levels)))  # × TABLE_SCALE
    self.discriminator = MultiScaleDiscriminator(discriminator_features, label_classes=label_classes, rngs=rngs)

  def nominal_bpp(self) -> float:
    """Bits per pixel of the fixed-rate code before entropy coding: C·log2(5)/16²."""
    return self.code_channels * math.log2(self.levels) / STRIDE ** 2

  def __call__(self, images, key=None, side=None) -> RDOutput:
    del side
    height, width = images.shape[1:3]
    if height % STRIDE or width % STRIDE:
      raise UsageError(f"gc trains on crops whose sides are multiples of {STRIDE}, got {width}×{height}")
    quantized = self.quantize(self.analyze(images))
    values = self._with_noise(quantized.values, quantized.symbols.get("seed"), key)
    bits = self._code_bits(quantized.symbols["code"])
    pixels = height * width
    return RDOutput(self.generator(values), {"code": jax.lax.stop_gradient(bits)}, pixels,
                    entropy_model_loss=jnp.mean(bits) / pixels)

  # The latent seam (compzoo/models/latent.py).
  def analyze(self, images):
    return self.encoder(to_signed(images))

  def quantize(self, y) -> Quantized:
    values, symbols = soft_to_hard(y, jnp.asarray(CENTERS), self.sigma)
    symbols = {"code": symbols.astype(jnp.int32)}
    if self.noise_channels:
      symbols["seed"] = seed_of_symbols(symbols["code"])[:, None]
    return Quantized(values, symbols)

  def dequantize(self, symbols):
    return self._with_noise(jnp.asarray(CENTERS)[symbols["code"]], symbols.get("seed"), None)

  def latent_values(self, symbols):
    """The code's centre values (h×w×C): the latents of a file, as ``quantize(y).values`` are an image's
    (the generator's other inputs, noise and SC's label features, are not latents)."""
    return jnp.asarray(CENTERS)[symbols["code"]]

  def synthesize(self, values):
    return self.generator(values)

  def _with_noise(self, values, seeds, key):
    """ŵ with the noise channels: drawn from ``key`` in training, else from each image's seed."""
    if not self.noise_channels:
      return values
    shape = values.shape[1:3] + (self.noise_channels,)
    if key is not None:
      noise = jax.random.uniform(key, (values.shape[0],) + shape, minval=-1.0, maxval=1.0)
    else:
      keys = jax.vmap(file_key)(seeds[:, 0])
      noise = jax.vmap(lambda k: jax.random.uniform(k, shape, minval=-1.0, maxval=1.0))(keys)
    return jnp.concatenate([values, noise], axis=-1)

  def _position_bits(self, code):
    """Bits of each symbol of an N×h×w×C code under its channel's table."""
    return CODE_TABLE.bits(self.code_logits[...], code, jnp.arange(self.code_channels))

  def _code_bits(self, code):
    return self._position_bits(code).sum(axis=(1, 2, 3))

  # Coding (CodingModel through LatentCoding): a seed stream when there is noise, then the code stream.
  def coding_tables(self) -> dict:
    return {"code": CODE_TABLE.integer_table(self.code_logits[...])}

  def prepare_coding(self, tables) -> dict:
    return {"code": CODE_TABLE.checked(tables, "code", self.code_channels, "gc")}

  def encode_symbols(self, symbols, prepared):
    code = np.asarray(symbols["code"])  # h × w × C
    streams = [_encode_code(code, np.ones(code.shape[:2], bool), prepared["code"])]
    if self.noise_channels:
      streams.insert(0, seed_stream(symbols))
    return streams

  def decode_symbols(self, streams, shape, prepared):
    bitstream.expect_streams(streams, 1 + bool(self.noise_channels), "gc", {0: SEED_BYTES} if self.noise_channels else None)
    symbols = {"code": _decode_code(streams[-1], np.ones(self.latent_shape(shape), bool), prepared["code"])}
    if self.noise_channels:
      symbols["seed"] = seed_of_stream(streams[0])
    return symbols

  def min_stream_bits(self, shape, prepared) -> float:
    height, width = self.latent_shape(shape)
    per_position = float(LearnedTable.floor_bits(prepared["code"]).sum())
    return height * width * per_position + 8 * SEED_BYTES * bool(self.noise_channels)


class SelectiveCompression(GenerativeCompression):
  """SC: GC whose generator also reads the semantic label map, which the file holds (coded losslessly with
  compzoo/entropy/label_map.py, its bits counted in the rate). Latent cells whose 16×16 block holds only
  classes in ``synthesize`` are zeroed and not coded: the decoder knows them from the label map and draws
  those regions from it alone. In training each class is synthesized with probability 1/2 per image, so
  one model codes any choice of classes; coding uses ``synthesized_classes`` (the config's ``synthesize``,
  or ``choose_synthesized``: the zoo entry ``sc:synthesize=NAME+NAME`` sets it from the codec name that
  every file records).

  The generator reads [masked ŵ, F(s) (the one-hot label map through its own ÷16 encoder), the mask,
  noise]; the discriminator is conditioned on the one-hot label map."""

  SIDE_INPUTS = ("label_map",)

  def __init__(self, label_classes: int = 12, synthesize=(0, 3, 5), label_features: int = 8,
               code_channels: int = 8, features: int = 60, blocks: int = 9, noise_channels: int = 0,
               discriminator_features: int = 64, sigma: float = 1.0, *, rngs: nnx.Rngs):
    if label_classes < 2:
      raise UsageError(f"sc needs label_classes >= 2, got {label_classes}")
    super().__init__(code_channels, features, blocks, noise_channels, discriminator_features, sigma, rngs=rngs,
                     extra_inputs=label_features + 1, label_classes=label_classes)
    self.label_classes = label_classes
    self.choose_synthesized(synthesize)
    self.label_encoder = Encoder16(label_classes, max(features // 2, 1), label_features, rngs=rngs)
    self.label_model = LabelMapModel(label_classes)

  def choose_synthesized(self, classes) -> None:
    """Sets the classes coding synthesizes (``synthesized_classes``; ``synthesize()`` is G's)."""
    classes = tuple(sorted({int(c) for c in classes}))
    if not all(0 <= c < self.label_classes for c in classes):
      raise UsageError(f"sc: synthesized classes must lie in [0, {self.label_classes}), got {classes}")
    self.synthesized_classes = classes

  def synthesized_mask(self, count: int, key=None):
    """count × classes booleans: the shipped choice (``synthesized_classes``), or with a key each class
    w.p. 1/2."""
    if key is not None:
      return jax.random.bernoulli(key, 0.5, (count, self.label_classes))
    chosen = jnp.zeros(self.label_classes, bool)
    if self.synthesized_classes:
      chosen = chosen.at[jnp.asarray(self.synthesized_classes, jnp.int32)].set(True)
    return jnp.broadcast_to(chosen, (count, self.label_classes))

  def coded_cells(self, labels, synthesized):
    """N×h×w in {0, 1}: 1 where the 16×16 block holds a pixel of a class that is not synthesized."""
    preserved = ~jnp.take_along_axis(synthesized, labels.reshape(labels.shape[0], -1), axis=1).reshape(labels.shape)
    n, height, width = labels.shape
    blocks = preserved.reshape(n, height // STRIDE, STRIDE, width // STRIDE, STRIDE)
    return blocks.any(axis=(2, 4)).astype(jnp.float32)

  def _inputs(self, values, coded, labels, seeds, key):
    one_hot = jax.nn.one_hot(labels, self.label_classes) * 2.0 - 1.0
    inputs = jnp.concatenate([values * coded[..., None], self.label_encoder(one_hot), coded[..., None]], axis=-1)
    return self._with_noise(inputs, seeds, key)

  def __call__(self, images, key=None, side=None) -> RDOutput:
    if side is None or "label_map" not in side:
      raise UsageError("sc trains on records with label maps (e.g. CamVid's paired_folders source)")
    labels = jnp.asarray(side["label_map"], jnp.int32)
    height, width = images.shape[1:3]
    if height % STRIDE or width % STRIDE:
      raise UsageError(f"sc trains on crops whose sides are multiples of {STRIDE}, got {width}×{height}")
    mask_key, noise_key = jax.random.split(key) if key is not None else (None, None)
    coded = self.coded_cells(labels, self.synthesized_mask(images.shape[0], mask_key))
    quantized = self.quantize(self.analyze(images))
    inputs = self._inputs(quantized.values, coded, labels, quantized.symbols.get("seed"), noise_key)
    code_bits = (self._position_bits(quantized.symbols["code"]) * coded[..., None]).sum(axis=(1, 2, 3))
    label_bits = self.label_model.bits(labels)
    pixels = height * width
    bits = {"code": jax.lax.stop_gradient(code_bits), "labels": jax.lax.stop_gradient(label_bits)}
    return RDOutput(self.generator(inputs), bits, pixels, entropy_model_loss=jnp.mean(code_bits + label_bits) / pixels)

  # Coding: the label map stream, the code stream (coded cells only), and a seed stream with noise.
  def coding_tables(self) -> dict:
    return {**super().coding_tables(), "labels": self.label_model.coding_table()}

  def prepare_coding(self, tables, synthesize=None) -> dict:
    """``synthesize``: the class ids to synthesize (the zoo entry's option, part of the codec name a file
    records); None keeps the model's."""
    if synthesize is not None:
      self.choose_synthesized(synthesize)
    return {**super().prepare_coding(tables), "labels": self.label_model.checked_table(tables, "sc")}

  # Through the latent seam, SC's symbols are the code (zero where not coded), the H×W label map and, with
  # noise, the seed: LatentCoding's decode_image and pixels_of_symbols serve SC as they serve GC.
  def dequantize(self, symbols):
    code, labels = symbols["code"], symbols["labels"]
    labels = jnp.pad(labels, ((0, 0), (0, STRIDE * code.shape[1] - labels.shape[1]),
                              (0, STRIDE * code.shape[2] - labels.shape[2])), mode="edge")
    coded = self.coded_cells(labels, self.synthesized_mask(code.shape[0]))
    return self._inputs(jnp.asarray(CENTERS)[code], coded, labels, symbols.get("seed"), None)

  def _check_labels(self, labels) -> np.ndarray:
    labels = np.asarray(labels, np.int32)
    if labels.size and labels.max() >= self.label_classes:
      raise UsageError(f"this sc model knows {self.label_classes} classes (ids 0-{self.label_classes - 1}); "
                       f"the label map has id {labels.max()}")
    return labels

  def _coded(self, labels) -> np.ndarray:
    """h×w booleans: the latent cells an H×W label map leaves coded (it is edge-padded as the image is)."""
    padded = pad_to_multiple(labels[..., None], STRIDE)[..., 0]
    return np.asarray(_coded_cells(self, jnp.asarray(padded)[None]))[0] > 0

  def sc_symbols(self, image, label_map) -> dict:
    """What an SC file holds for an image and its label map (see ``dequantize``)."""
    labels = self._check_labels(label_map)
    symbols = self.symbols_of_image(image)
    symbols["code"] = np.where(self._coded(labels)[..., None], symbols["code"], 0)
    return {**symbols, "labels": labels}

  def encode_image(self, image, prepared, label_map=None):
    if label_map is None:
      raise UsageError("sc codes an image with its label map (compzoo compress --label-map)")
    symbols = self.sc_symbols(image, label_map)
    return self.encode_symbols(symbols, prepared), self.content_check(symbols)

  def encode_symbols(self, symbols, prepared):
    encoder = Encoder()
    self.label_model.coder.encode(encoder, symbols["labels"], prepared["labels"])
    streams = [encoder.finish(), _encode_code(symbols["code"], self._coded(symbols["labels"]), prepared["code"])]
    if self.noise_channels:
      streams.append(seed_stream(symbols))
    return streams

  def decode_symbols(self, streams, shape, prepared):
    bitstream.expect_streams(streams, 2 + bool(self.noise_channels), "sc", {2: SEED_BYTES} if self.noise_channels else None)
    labels = self.label_model.coder.decode(Decoder(streams[0]), tuple(shape[:2]), prepared["labels"])
    symbols = {"code": _decode_code(streams[1], self._coded(labels), prepared["code"]), "labels": labels}
    if self.noise_channels:
      symbols["seed"] = seed_of_stream(streams[2])
    return symbols

  def reconstruct(self, image, label_map=None):
    """What decoding this image's file gives (the label map is coded losslessly, so it is used as given)."""
    return self.pixels_of_symbols(self.sc_symbols(image, label_map), image.shape)

  def min_stream_bits(self, shape, prepared) -> float:
    """The label map is always coded; the code may be empty (everything synthesized)."""
    return self.label_model.coder.min_bits(tuple(shape[:2]), prepared["labels"]) + 8 * SEED_BYTES * bool(self.noise_channels)


@nnx.jit
def _coded_cells(model, labels):
  return model.coded_cells(labels, model.synthesized_mask(labels.shape[0]))


def _code_rows(table: np.ndarray, coded: np.ndarray) -> np.ndarray:
  """The table row (its channel) of every coded symbol of an h×w×C code, in ``code[coded]`` order."""
  return np.broadcast_to(np.arange(table.shape[0]), coded.shape + (table.shape[0],))[coded]


def _encode_code(code: np.ndarray, coded: np.ndarray, table: np.ndarray) -> bytes:
  """The code stream: the symbols of the coded cells (h×w booleans), every channel under its table."""
  encoder = Encoder()
  CODE_TABLE.encode(encoder, np.asarray(code)[coded], table, _code_rows(table, coded))
  return encoder.finish()


def _decode_code(stream: bytes, coded: np.ndarray, table: np.ndarray) -> np.ndarray:
  """The h×w×C code ``_encode_code`` wrote; cells not coded are 0."""
  code = np.zeros(coded.shape + (table.shape[0],), np.int32)
  code[coded] = CODE_TABLE.decode(Decoder(stream), table, _code_rows(table, coded)).reshape(-1, table.shape[0])
  return code


def build(code_channels: int = 8, features: int = 60, blocks: int = 9, noise_channels: int = 0,
          discriminator_features: int = 64, sigma: float = 1.0, label_classes: int = 0, synthesize=(0, 3, 5),
          label_features: int = 8, *, rngs: nnx.Rngs) -> GenerativeCompression:
  """GC, or SC when ``label_classes`` is set."""
  if label_classes:
    return SelectiveCompression(label_classes, synthesize, label_features, code_channels, features, blocks,
                                noise_channels, discriminator_features, sigma, rngs=rngs)
  return GenerativeCompression(code_channels, features, blocks, noise_channels, discriminator_features, sigma,
                               rngs=rngs)
