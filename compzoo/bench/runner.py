"""Runs any set of codecs over a set of images, one record per (codec, image)."""

from __future__ import annotations

import dataclasses
import time
from typing import Callable, Mapping

import jax
import numpy as np
from tqdm import tqdm

from compzoo import metrics, zoo
from compzoo.errors import UsageError

_ms_ssim = jax.jit(metrics.ms_ssim)
_MS_SSIM_MIN_SIDE = 11 * 2 ** (len(metrics.MS_SSIM_WEIGHTS) - 1)


@dataclasses.dataclass
class BenchRecord:
  codec: str  # the name as given, parameters included
  image: str
  bytes: int
  bpp: float
  bpsp: float
  psnr: float | None  # None when the decoded image is exact (PSNR is infinite)
  ms_ssim: float | None  # None for images too small for 5 scales
  colour_psnr: float | None  # PSNR of the 8×8 block means (metrics.colour_psnr); None when exact
  exact: bool
  encode_s: float
  decode_s: float
  parts: dict | None = None  # learned codecs: bpsp per coded part (L3C: per scale) or per stream


def measure(codec_spec: str, codec, name: str, image: np.ndarray, side: Mapping | None = None
            ) -> tuple[BenchRecord, np.ndarray]:
  """One round trip: its record, and the decoded image. ``side``: the side data the codec takes (an SC
  codec's label map), which the file then holds and bpp counts."""
  start = time.perf_counter()
  data = codec.compress(image, **(side or {}))
  encode_s = time.perf_counter() - start
  height, width, channels = image.shape
  parts = {part: bits / (height * width * channels) for part, bits in getattr(codec, "last_parts", {}).items()}
  start = time.perf_counter()
  decoded = codec.decompress(data)
  decode_s = time.perf_counter() - start
  exact = bool(np.array_equal(decoded, image))
  if exact:
    psnr, quality, colour = None, 1.0, None
  else:
    psnr = float(metrics.psnr(image, decoded))
    quality = float(_ms_ssim(image, decoded)) if min(height, width) >= _MS_SSIM_MIN_SIDE else None
    colour = float(metrics.colour_psnr(image, decoded))
  record = BenchRecord(codec_spec, name, len(data), metrics.bpp(len(data), height, width),
                       metrics.bpsp(len(data), height, width, channels), psnr, quality, colour, exact,
                       encode_s, decode_s, parts or None)
  return record, decoded


def expand_sweeps(specs: list[str]) -> list[str]:
  """Bare lossy names expand to their sweep of operating points, family and group names ('cpm',
  'dplc-mnist') to every member's; 'NAME:key=value' expands the sweep with those parameters fixed unless it
  sets a swept one ('jpeg:quality=5' stays as given)."""
  names = []
  for spec in specs:
    if ":" in spec:
      names += zoo.expand_sweep(spec)
      continue
    for entry in zoo.group(spec) or [zoo.get(spec)]:
      names += zoo.sweep_names(entry)
  return names


def run_bench(codec_specs: list, images: Mapping[str, np.ndarray], progress: bool = True,
              on_decoded: Callable[[BenchRecord, np.ndarray], None] | None = None,
              label_maps: Mapping[str, np.ndarray] | None = None) -> list[BenchRecord]:
  """Builds every codec first (so a bad name fails before any work), then measures each image.
  A spec is a zoo name or an already built ``Codec`` (a model loaded from a workdir). ``on_decoded``
  sees every record with its decoded image (the picture grid keeps crops of them). ``label_maps`` (by
  image name) go to the codecs that take one; such a codec without them is a usage error."""
  codecs = [(spec, zoo.make_codec(spec)) if isinstance(spec, str) else (spec.name, spec) for spec in codec_specs]
  for spec, codec in codecs:
    if "label_map" in codec.side_inputs:
      missing = sorted(set(images) - set(label_maps or {}))
      if missing:
        raise UsageError(f"{spec} codes each image with its label map: pass --label-maps (none for {missing[0]})")
  side = lambda codec, name: {"label_map": label_maps[name]} if "label_map" in codec.side_inputs else {}
  records = []
  # disable=None: the bar shows on a terminal only, not in logs
  with tqdm(total=len(codecs) * len(images), disable=None if progress else True, unit="image",
            dynamic_ncols=True) as bar:
    for spec, codec in codecs:
      _warm_up(codec, {name: (image, side(codec, name)) for name, image in images.items()})
      for name, image in images.items():
        bar.set_description(f"{spec} {name}")
        record, decoded = measure(spec, codec, name, image, side(codec, name))
        records.append(record)
        if on_decoded:
          on_decoded(record, decoded)
        bar.update()
  return records


def _warm_up(codec, images) -> None:
  """``images``: {name: (image, side data)}. One untimed round trip per distinct image shape, so timings exclude one-off compilation (learned
  codecs compile their transforms per shape) and first-call library set-up."""
  seen = set()
  for image, side in images.values():
    if image.shape not in seen:
      seen.add(image.shape)
      codec.decompress(codec.compress(image, **side))
