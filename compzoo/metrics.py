"""Quality and rate metrics. Images are HxWxC (or NxHxWxC) with values in [0, max_value]."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from compzoo.errors import UsageError

# Wang, Simoncelli, Bovik, "Multi-scale structural similarity for image quality assessment" (2003).
MS_SSIM_WEIGHTS = (0.0448, 0.2856, 0.3001, 0.2363, 0.1333)


def mse(a, b):
  return jnp.mean(jnp.square(jnp.asarray(a, jnp.float32) - jnp.asarray(b, jnp.float32)))


def psnr(a, b, max_value: float = 255.0):
  """In dB; +inf for identical images."""
  error = mse(a, b)
  return jnp.where(error == 0, jnp.inf, 10.0 * jnp.log10(max_value ** 2 / jnp.maximum(error, 1e-30)))


def colour_psnr(a, b, block: int = 8, max_value: float = 255.0):
  """PSNR between the ``block``×``block`` means of two images: colour and brightness fidelity, blind to
  texture (a desaturated or tinted reconstruction scores low however sharp it is). Rows and columns past
  the last whole block are left out; images smaller than one block are compared as a whole."""
  return psnr(block_means(a, block), block_means(b, block), max_value)


def hue_agreement(a, b, block: int = 8) -> float:
  """How well b keeps the hues of a, in [-1, 1]: the cosine between the opponent chroma vectors
  (R - G, (R + G)/2 - B) of their 8×8 block means, weighted by a's chroma. 1: every hue kept; a model
  that renders green as tan or red as orange scores far lower even where its colour PSNR looks fair."""
  def chroma(x):
    m = np.asarray(block_means(x, block), np.float64).reshape(-1, 3)
    return np.stack([m[:, 0] - m[:, 1], (m[:, 0] + m[:, 1]) / 2 - m[:, 2]], axis=-1)

  reference, other = chroma(a), chroma(b)
  weight = np.linalg.norm(reference, axis=-1)
  cosine = (reference * other).sum(-1) / np.maximum(weight * np.linalg.norm(other, axis=-1), 1e-9)
  return float((weight * cosine).sum() / max(weight.sum(), 1e-9))


def block_means(x, block: int = 8):
  """Means of the whole ``block``×``block`` tiles of an H×W×C (or N×H×W×C) image."""
  x = jnp.asarray(x, jnp.float32)
  *lead, h, w, c = x.shape
  bh, bw = min(block, h), min(block, w)
  h, w = h // bh * bh, w // bw * bw
  x = x[..., :h, :w, :]
  return x.reshape(*lead, h // bh, bh, w // bw, bw, c).mean(axis=(-4, -2))


def bpp(num_bytes: int, height: int, width: int) -> float:
  """Bits per pixel."""
  return 8.0 * num_bytes / (height * width)


def bpsp(num_bytes: int, height: int, width: int, channels: int = 3) -> float:
  """Bits per sub-pixel (per colour value): the usual unit of lossless compression."""
  return 8.0 * num_bytes / (height * width * channels)


def _gaussian_kernel(size: int = 11, sigma: float = 1.5):
  x = jnp.arange(size, dtype=jnp.float32) - (size - 1) / 2
  g = jnp.exp(-0.5 * jnp.square(x / sigma))
  return g / g.sum()


def _blur_valid(x, kernel):
  """Separable 'valid' Gaussian filter over H and W of an NHWC batch, channels apart. Written as k shifted,
  weighted sums: on CPUs this is ~10x faster than XLA's single-channel convolution."""
  k = kernel.shape[0]
  _, h, w, _ = x.shape
  rows = sum(kernel[i] * x[:, i:i + h - k + 1] for i in range(k))
  return sum(kernel[i] * rows[:, :, i:i + w - k + 1] for i in range(k))


def _ssim_terms(a, b, max_value, kernel):
  """Per-image, per-channel means of SSIM (luminance*contrast*structure) and of contrast*structure."""
  c1, c2 = (0.01 * max_value) ** 2, (0.03 * max_value) ** 2
  # One blur of the five maps stacked on the channel axis: the same arithmetic per value as five blurs,
  # in a fifth of the operations (which is what compile time grows with).
  blurred = _blur_valid(jnp.concatenate([a, b, a * a, b * b, a * b], axis=-1), kernel)
  mu_a, mu_b, aa, bb, ab = jnp.split(blurred, 5, axis=-1)
  var_a = aa - mu_a ** 2
  var_b = bb - mu_b ** 2
  cov = ab - mu_a * mu_b
  cs = (2 * cov + c2) / (var_a + var_b + c2)
  luminance = (2 * mu_a * mu_b + c1) / (mu_a ** 2 + mu_b ** 2 + c1)
  return jnp.mean(luminance * cs, axis=(1, 2)), jnp.mean(cs, axis=(1, 2))


def ssim(a, b, max_value: float = 255.0):
  """Single-scale SSIM (Gaussian window 11, sigma 1.5), per image for a batch."""
  a, b, batched = _as_batch(a, b)
  value = jnp.mean(_ssim_terms(a, b, max_value, _gaussian_kernel())[0], axis=-1)
  return value if batched else value[0]


def ms_ssim(a, b, max_value: float = 255.0, weights=MS_SSIM_WEIGHTS):
  """Multi-scale SSIM, differentiable; per image for a batch.

  Follows Wang et al. 2003 as most codec papers report it (the same convention as TensorFlow's
  ``tf.image.ssim_multiscale``): contrast-structure at the finer scales, full SSIM at the coarsest,
  2x2 average pooling between scales, negative terms clipped to zero. Images must be at least
  11 * 2**(scales-1) pixels on their shorter side (176 for the default 5 scales).
  """
  a, b, batched = _as_batch(a, b)
  kernel = _gaussian_kernel()
  scales = len(weights)
  need = 11 * 2 ** (scales - 1)
  if min(a.shape[1], a.shape[2]) < need:
    raise UsageError(f"ms_ssim with {scales} scales needs images of at least {need}x{need}, got {a.shape[1:3]}")
  factors = []
  for scale in range(scales):
    full, cs = _ssim_terms(a, b, max_value, kernel)
    factors.append(jax.nn.relu(full if scale == scales - 1 else cs))
    if scale < scales - 1:
      a, b = _halve(a), _halve(b)
  per_channel = jnp.prod(jnp.stack(factors, axis=-1) ** jnp.asarray(weights, jnp.float32), axis=-1)
  value = jnp.mean(per_channel, axis=-1)
  return value if batched else value[0]


def _halve(x):
  """2x2 average pooling; an odd last row/column is first repeated (symmetric padding)."""
  n, h, w, c = x.shape
  x = jnp.pad(x, ((0, 0), (0, h % 2), (0, w % 2), (0, 0)), mode="symmetric")
  n, h, w, c = x.shape
  return x.reshape(n, h // 2, 2, w // 2, 2, c).mean(axis=(2, 4))


def _as_batch(a, b):
  a, b = jnp.asarray(a, jnp.float32), jnp.asarray(b, jnp.float32)
  if a.shape != b.shape:
    raise UsageError(f"images differ in shape: {a.shape} vs {b.shape}")
  if a.ndim == 3:
    return a[None], b[None], False
  if a.ndim != 4:
    raise UsageError(f"expected HxWxC or NxHxWxC images, got shape {a.shape}")
  return a, b, True


def sliced_wasserstein(a, b, levels: int = 4, patch: int = 7, patches_per_image: int = 128,
                       directions: int = 512, repeats: int = 4, seed: int = 0) -> list[float]:
  """Sliced Wasserstein distance between two image sets, per Laplacian-pyramid level (finest first).

  A distribution distance that needs no pretrained network (Karras et al., "Progressive Growing of
  GANs", 2018, appendix D), for generative codecs whose outputs should look like real images rather
  than match them pixel for pixel. Random ``patch``x``patch`` neighbourhoods are drawn from every level of each
  image's Laplacian pyramid, each set's descriptors are normalised per colour channel, and the 1-D Wasserstein
  distances along random unit directions are averaged. Returned values are scaled by 1e3, as usually reported.
  ``a`` and ``b``: NxHxWxC arrays (uint8 or float in [0, 255]); both sets give the same number of patches.
  """
  rng = np.random.default_rng(seed)
  sets = [np.asarray(x, np.float32) for x in (a, b)]
  count = min(len(sets[0]), len(sets[1]))
  pyramids = [_laplacian_pyramid(x[:count], levels) for x in sets]
  distances = []
  for level in range(levels):
    height, width = pyramids[0][level].shape[1:3]
    if min(height, width) < patch:
      raise UsageError(f"images too small for {levels} pyramid levels with {patch}x{patch} patches")
    rows = rng.integers(0, height - patch + 1, (count, patches_per_image))
    cols = rng.integers(0, width - patch + 1, (count, patches_per_image))
    descriptors = [_normalize(_patches(p[level], rows, cols, patch), p[level].shape[3]) for p in pyramids]
    total = 0.0
    for _ in range(repeats):
      dirs = rng.standard_normal((descriptors[0].shape[1], directions)).astype(np.float32)
      dirs /= np.linalg.norm(dirs, axis=0, keepdims=True)
      projected = [np.sort(d @ dirs, axis=0) for d in descriptors]
      total += float(np.mean(np.abs(projected[0] - projected[1])))
    distances.append(1e3 * total / repeats)
  return distances


_BINOMIAL = np.array([1, 4, 6, 4, 1], np.float32) / 16


def _blur(x):
  x = np.pad(x, ((0, 0), (2, 2), (2, 2), (0, 0)), mode="reflect")
  x = sum(w * x[:, i:i + x.shape[1] - 4] for i, w in enumerate(_BINOMIAL))
  return sum(w * x[:, :, i:i + x.shape[2] - 4] for i, w in enumerate(_BINOMIAL))


def _laplacian_pyramid(x, levels):
  pyramid = []
  for _ in range(levels - 1):
    low = _blur(x)[:, ::2, ::2]
    up = np.zeros_like(x)
    up[:, ::2, ::2] = low
    pyramid.append(x - 4 * _blur(up))
    x = low
  return pyramid + [x]


def _patches(images, rows, cols, size):
  offsets = np.arange(size)
  r = (rows[..., None, None] + offsets[:, None])[..., None]  # (n, k, size, 1, 1)
  c = (cols[..., None, None] + offsets[None, :])[..., None]
  n = np.arange(images.shape[0])[:, None, None, None, None]
  return images[n, r, c, np.arange(images.shape[3])].reshape(-1, size * size * images.shape[3])


def _normalize(descriptors, num_channels):
  """Zero mean, unit variance per colour channel over all of a set's patches."""
  channels = descriptors.reshape(descriptors.shape[0], -1, num_channels)
  channels = (channels - channels.mean(axis=(0, 1))) / (channels.std(axis=(0, 1)) + 1e-8)
  return channels.reshape(descriptors.shape[0], -1)


def frechet_distance(features_a, features_b) -> float:
  """Fréchet distance between Gaussians fitted to two feature sets (N×D each): |mu_a - mu_b|^2 +
  tr(S_a + S_b - 2 (S_a S_b)^(1/2)) (Heusel et al. 2017's FID, in whatever features are given: the zoo
  measures it in its own classifiers' features, compzoo/bench/distribution.py). The matrix square root's
  trace comes from the eigenvalues of S_a^(1/2) S_b S_a^(1/2), symmetric, so no complex parts arise."""
  a, b = (np.asarray(f, np.float64) for f in (features_a, features_b))
  if a.ndim != 2 or a.shape[1:] != b.shape[1:] or min(len(a), len(b)) < 2:
    raise UsageError(f"frechet_distance takes two N×D feature sets with N >= 2, got {a.shape} and {b.shape}")
  mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
  cov_a, cov_b = np.cov(a, rowvar=False), np.cov(b, rowvar=False)
  values, vectors = np.linalg.eigh(cov_a)
  root_a = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T
  cross = np.linalg.eigvalsh(root_a @ cov_b @ root_a)
  return float(np.sum((mean_a - mean_b) ** 2) + np.trace(cov_a) + np.trace(cov_b)
               - 2.0 * np.sum(np.sqrt(np.clip(cross, 0, None))))


def f1_scores(labels, predicted, classes: int) -> np.ndarray:
  """Per-class F1 of integer predictions (0 for a class neither predicted nor present)."""
  labels, predicted = np.asarray(labels), np.asarray(predicted)
  scores = []
  for c in range(classes):
    tp = np.sum((predicted == c) & (labels == c))
    denominator = np.sum(predicted == c) + np.sum(labels == c)
    scores.append(2 * tp / denominator if denominator else 0.0)
  return np.array(scores)


def confusion(predicted, labels, classes: int, ignore: int | None = None) -> np.ndarray:
  """classes×classes counts (rows: true class) of integer predictions; items labelled ``ignore`` are left out
  (CamVid's void pixels)."""
  predicted, labels = np.asarray(predicted), np.asarray(labels)
  keep = labels != ignore if ignore is not None else np.ones(labels.shape, bool)
  return np.bincount(labels[keep].astype(np.int64) * classes + predicted[keep], minlength=classes ** 2).reshape(
      classes, classes)


def bootstrap_interval(score, labels, predicted, resamples: int = 1000, seed: int = 0) -> tuple[float, float]:
  """95% percentile interval of ``score(labels, predicted)`` over resamplings of the items with replacement."""
  labels, predicted = np.asarray(labels), np.asarray(predicted)
  rng = np.random.default_rng(seed)
  draws = [score(labels[i], predicted[i]) for i in (rng.integers(0, len(labels), len(labels)) for _ in range(resamples))]
  return float(np.percentile(draws, 2.5)), float(np.percentile(draws, 97.5))
