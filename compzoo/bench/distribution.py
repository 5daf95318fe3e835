"""Distribution distances for generative codecs, in networks trained here (nothing is downloaded).

``FeatureNetwork.load('mnist' | 'cifar10' | 'camvid')`` loads the zoo's shipped network for that data set
(classifiers; CamVid's segmentation U-Net; compzoo/weights/features/<name>, trained by
experiments/configs/feature_net.py); ``frechet(real, fake)``
is the Fréchet distance in its penultimate features (metrics.frechet_distance). Report it with the
network's name and weights id beside every figure: the numbers are only comparable within one network.
``sliced_wasserstein`` (compzoo.metrics) needs no network at all.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import jax.numpy as jnp
import numpy as np
from flax import nnx

from compzoo import exports, metrics
from compzoo.errors import UsageError

FEATURES_ROOT = Path(__file__).resolve().parent.parent / "weights" / "features"


@nnx.jit
def _features(model, images):
  return model.features(images)


@nnx.jit
def _logits(model, images):
  return model.classify(images)


@dataclasses.dataclass
class FeatureNetwork:
  name: str
  model: nnx.Module
  weights_id: str  # hex

  @classmethod
  def load(cls, name: str, path=None) -> "FeatureNetwork":
    path = Path(path) if path else FEATURES_ROOT / name
    if not path.is_dir():
      known = ", ".join(sorted(p.name for p in FEATURES_ROOT.iterdir())) if FEATURES_ROOT.is_dir() else "none"
      raise UsageError(f"no feature network {name!r} at {path} (shipped: {known})")
    export = exports.load(path)
    return cls(name, export.model, export.weights_id.hex())

  @property
  def channels(self) -> int:
    return self.model.channels

  def features(self, images, batch: int = 500) -> np.ndarray:
    """N×H×W×C uint8 (C = 3 is averaged to grey for a grey network) -> N×D float features."""
    return self._batched(_features, images, batch)

  def accuracy(self, images, labels, batch: int = 500) -> float:
    logits = self._batched(_logits, images, batch)
    return float(np.mean(np.argmax(logits, -1) == np.asarray(labels)))

  def _batched(self, function, images, batch):
    images = np.asarray(images)
    if images.ndim != 4:
      raise UsageError(f"feature networks take N×H×W×C images, got shape {images.shape}")
    if images.shape[-1] == 3 and self.channels == 1:
      images = np.round(images.astype(np.float32).mean(axis=-1, keepdims=True))
    if images.shape[-1] != self.channels:
      raise UsageError(f"feature network {self.name!r} reads {self.channels}-channel images, got {images.shape[-1]}")
    parts = [np.asarray(function(self.model, jnp.asarray(images[i:i + batch], jnp.float32)))
             for i in range(0, len(images), batch)]
    return np.concatenate(parts)

  def frechet(self, real, fake) -> float:
    """Fréchet distance between two image sets in this network's features."""
    return metrics.frechet_distance(self.features(real), self.features(fake))

  def describe(self) -> str:
    kind = "segmenter" if hasattr(self.model, "segment") else "classifier"
    return f"{kind}-{self.name} (weights {self.weights_id[:12]})"
