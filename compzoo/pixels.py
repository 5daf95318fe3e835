"""The pixel conventions networks share, spelt once: 0-255 pixels to [-1, 1] and a tanh back to 0-255.

``to_signed`` is x·(2/255) − 1 in float32 elementwise operations, the same on NumPy and JAX arrays: the lossless
models' files (L3C, PixelCNN) depend on its exact arithmetic, so it must not be respelt (as x/127.5 − 1, say).
"""

import jax.numpy as jnp
import numpy as np

STEP = np.float32(2.0 / 255.0)


def to_signed(pixels):
  """0-255 pixels (any integer or float type) -> float32 in [-1, 1]; NumPy in, NumPy out."""
  xp = np if isinstance(pixels, np.ndarray) else jnp
  return xp.asarray(pixels).astype(xp.float32) * STEP - xp.float32(1.0)


def from_tanh(x):
  """A generator's last activations -> pixels in [0, 255]: (tanh(x) + 1)·127.5."""
  return (jnp.tanh(x) + 1.0) * 127.5
