"""A small image classifier: the feature network of the zoo's Fréchet distance, trained here.

No pretrained network can be downloaded, so distribution distances for generative codecs are measured in
the penultimate features of a classifier that the zoo trains on the same data set and ships
(``compzoo/weights/features/<dataset>``; ``compzoo.bench.distribution`` loads it). Three stages of two
3×3 convolutions with layer norm and 2× pooling, then a ``features``-wide embedding and the class logits.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import nnx

from compzoo.pixels import to_signed

ARCHITECTURE = "classifier"  # the config name of this model (compzoo/models/__init__.py discovers it)


class ImageClassifier(nnx.Module):
  def __init__(self, channels: int = 3, classes: int = 10, width: int = 32, features: int = 128, *,
               rngs: nnx.Rngs):
    widths = [channels, width, 2 * width, 4 * width]
    self.channels = channels
    self.convs = nnx.List()
    self.norms = nnx.List()
    for i, o in zip(widths, widths[1:]):
      self.convs.append(nnx.List([nnx.Conv(i, o, (3, 3), rngs=rngs), nnx.Conv(o, o, (3, 3), rngs=rngs)]))
      self.norms.append(nnx.List([nnx.LayerNorm(o, rngs=rngs), nnx.LayerNorm(o, rngs=rngs)]))
    self.embed = nnx.Linear(widths[-1], features, rngs=rngs)
    self.head = nnx.Linear(features, classes, rngs=rngs)

  def features(self, images):
    """N×H×W×C in [0, 255] -> N×features: the embedding distances are measured in."""
    x = to_signed(images)
    for convs, norms in zip(self.convs, self.norms):
      for conv, norm in zip(convs, norms):
        x = jax.nn.relu(norm(conv(x)))
      x = nnx.max_pool(x, (2, 2), strides=(2, 2))
    return jax.nn.relu(self.embed(jnp.mean(x, axis=(1, 2))))

  def classify(self, images, side=None):
    """Class logits (N × classes)."""
    del side
    return self.head(self.features(images))


def build(channels: int = 3, classes: int = 10, width: int = 32, features: int = 128, *,
          rngs: nnx.Rngs) -> ImageClassifier:
  return ImageClassifier(channels, classes, width, features, rngs=rngs)
