"""Bjøntegaard delta rate: how many percent more or fewer bits one codec needs than an anchor at equal
quality, averaged over the quality range both curves cover (VCEG-M33, with the piecewise-cubic
interpolation of VCEG-AL22 instead of one global cubic, which misbehaves on 3-4 points)."""

from __future__ import annotations

import numpy as np


def ms_ssim_db(value: float) -> float:
  """MS-SSIM on the decibel scale codec papers use for BD-rates: -10 log10(1 - MS-SSIM)."""
  return float(-10.0 * np.log10(max(1.0 - value, 1e-10)))


def bd_rate(anchor, test) -> float | None:
  """anchor, test: (bpp, quality) points, quality increasing with rate. -> percent rate change of
  ``test`` against ``anchor`` (negative: ``test`` saves bits), or None when the curves share no quality
  range or either has fewer than 2 distinct points."""
  from scipy.interpolate import PchipInterpolator

  curves = []
  for points in (anchor, test):
    points = sorted({(float(q), float(r)) for r, q in points if r > 0})
    quality = np.asarray([q for q, _ in points])
    if len(points) < 2 or np.any(np.diff(quality) <= 0):
      return None
    curves.append((quality, np.log(np.asarray([r for _, r in points]))))
  low = max(c[0][0] for c in curves)
  high = min(c[0][-1] for c in curves)
  if high <= low:
    return None
  mean_log_rate = [PchipInterpolator(q, log_r).integrate(low, high) / (high - low) for q, log_r in curves]
  return float((np.exp(mean_log_rate[1] - mean_log_rate[0]) - 1.0) * 100.0)
