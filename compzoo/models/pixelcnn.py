"""A small PixelCNN (van den Oord et al. 2016; PixelCNN++ output, Salimans et al. 2017): the per-pixel
autoregressive baseline L3C is timed against.

Every convolution is a masked 2x3 kernel over the row above and the current row; the current row sees
only pixels to the left (type A, first layer) or also the centre (type B). Convolutions are unpadded on an
input zero-padded by R = ``layers`` rows above and R columns each side, so pixel (i, j) depends on exactly
the window of rows i-R..i and columns j-R..j+R, its own pixel and those right of it zeroed. The output is a
discretized logistic mixture over 256 levels with the R -> G -> B coupling.

Coding runs that one window function once per pixel, in raster order, on both sides: the decoder must (it
needs the pixels before), and the encoder does the same so both compute identical tables. That is the
point of this baseline: H*W network passes where L3C needs three.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from compzoo import bitstream
from compzoo.entropy import PRECISION, Decoder, DiscretizedLogisticMixture, Encoder
from compzoo.pixels import to_signed
from compzoo.rd import RDOutput

ARCHITECTURE = "pixelcnn"  # the config name of this model (compzoo/models/__init__.py discovers it)


class MaskedConv(nnx.Module):
  """Unpadded masked 2x3 convolution: (H, W) -> (H - 1, W - 2)."""

  def __init__(self, in_channels: int, out_channels: int, include_centre: bool, *, rngs: nnx.Rngs):
    init = nnx.initializers.lecun_normal()
    self.kernel = nnx.Param(init(rngs.params(), (2, 3, in_channels, out_channels), jnp.float32))
    self.bias = nnx.Param(jnp.zeros((out_channels,), jnp.float32))
    self.include_centre = include_centre

  def __call__(self, x):
    mask = np.ones((2, 3, 1, 1), np.float32)
    mask[1, 2] = 0.0  # right of the centre, current row
    if not self.include_centre:
      mask[1, 1] = 0.0
    kernel = self.kernel[...] * mask
    y = jax.lax.conv_general_dilated(x, kernel, (1, 1), "VALID", dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y + self.bias[...]


class PixelCNN(nnx.Module):
  """Same backend only (tables come from float network outputs, as for L3C)."""

  LOSSLESS = True
  DECODE_GUARANTEE = "same-backend"
  CODING_REVISION = 2  # 2: integer tables built on the device (issue #19); files of 1 are refused
  # One network pass per pixel: about 2 ms a pixel on 2 CPU cores, so 1 MP decodes in about half an hour.
  # Larger files are refused before any work.
  MAX_PIXELS = 1 << 20

  def __init__(self, features: int = 64, layers: int = 6, components: int = 10, *, rngs: nnx.Rngs):
    self.radius = layers
    self.pixel_model = DiscretizedLogisticMixture(256, components, rgb_coupling=True)
    self.first = MaskedConv(3, features, include_centre=False, rngs=rngs)
    self.rest = nnx.List([MaskedConv(features, features, include_centre=True, rngs=rngs)
                          for _ in range(layers - 1)])
    self.hidden = nnx.Conv(features, features, (1, 1), rngs=rngs)
    self.to_params = nnx.Conv(features, 3 * self.pixel_model.num_params, (1, 1), rngs=rngs)

  def __call__(self, images, key=None, side=None) -> RDOutput:
    """images: N×H×W×3 integers in [0, 255] -> RDOutput with the bits of every pixel."""
    del key, side
    images = jnp.asarray(images, jnp.float32)
    r = self.radius
    padded = jnp.pad(to_signed(images), ((0, 0), (r, 0), (r, r), (0, 0)))
    params = self._params(padded)
    bits = self.pixel_model.bits(images, params).sum(axis=(1, 2, 3))
    return RDOutput(None, {"x": bits}, images.shape[1] * images.shape[2])

  def _params(self, padded):
    """Padded (N, H+R, W+2R, 3) values -> mixture parameters (N, H, W, 3, P)."""
    h = jax.nn.relu(self.first(padded))
    for conv in self.rest:
      h = h[:, 1:, 1:-1] + jax.nn.relu(conv(h))
    params = self.to_params(jax.nn.relu(self.hidden(h)))
    return params.reshape(params.shape[:3] + (3, -1))

  # Coding: one window per pixel, raster order, on both sides.

  def min_stream_bits(self, shape, prepared=None) -> float:
    """Every sub-pixel costs at least what its likeliest value can cost under a 24-bit table, whose other
    255 entries hold at least 1 each."""
    return shape[0] * shape[1] * 3 * -float(np.log2(1.0 - 255.0 / (1 << PRECISION)))

  def prepare_coding(self, tables=None):
    graphdef, state = nnx.split(self)
    return jax.jit(lambda state, window: nnx.merge(graphdef, state)._window_params(window)), state

  def _window_params(self, window):
    """(R+1, 2R+1, 3) values, the pixel and those right of it not yet known -> its (1, 3, P) parameters."""
    r = self.radius
    known = np.ones((r + 1, 2 * r + 1, 1), np.float32)
    known[r, r:] = 0.0
    return self._params((window * known)[None])[0, 0]

  def encode_image(self, image: np.ndarray, prepared):
    window_params, state = prepared
    canvas = self._canvas(image.shape)
    canvas[self.radius:, self.radius:-self.radius] = _values(image)
    encoder = Encoder()
    for i, j in np.ndindex(*image.shape[:2]):
      params = np.asarray(window_params(state, self._window(canvas, i, j)))
      self.pixel_model.encode_to(encoder, image[i, j][None], params)
    return [encoder.finish()], None

  def decode_image(self, streams, shape, prepared):
    bitstream.expect_streams(streams, 1, "pixelcnn")
    window_params, state = prepared
    decoder = Decoder(streams[0])
    canvas = self._canvas(shape)
    image = np.zeros(shape, np.uint8)
    r = self.radius
    for i, j in np.ndindex(*shape[:2]):
      params = np.asarray(window_params(state, self._window(canvas, i, j)))
      pixel = self.pixel_model.decode_from(decoder, (1, 3), params)[0]
      image[i, j] = pixel
      canvas[r + i, r + j] = _values(pixel)
    return image, None

  def _canvas(self, shape):
    r = self.radius
    return np.zeros((shape[0] + r, shape[1] + 2 * r, 3), np.float32)

  def _window(self, canvas, i, j):
    r = self.radius
    return canvas[i:i + r + 1, j:j + 2 * r + 1]


def _values(pixels) -> np.ndarray:
  """Pixels -> network inputs in [-1, 1], in float32 whatever the integer type (encoder and decoder hold
  different ones), so both sides feed identical windows."""
  return to_signed(np.asarray(pixels))


def build(*, rngs: nnx.Rngs, **settings) -> PixelCNN:
  return PixelCNN(**settings, rngs=rngs)
