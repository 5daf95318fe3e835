"""Learned codecs: a trained model bound to its weights, coding through the model's ``CodingModel`` methods.

The zoo entries of shipped weights are made here from the records of compzoo/codecs/catalogue.py (one per
weights folder); their losslessness and decode guarantee are read from the model class, when asked.

Shipped weights live in compzoo/weights/<entry>/[<point>/] (exports: config.json, params.msgpack and, for
models with weight-only coding tables, tables.msgpack; see compzoo/exports.py) and load with no download
and no training code. The entry ``learned`` takes any training workdir or export (``--weights DIR``).
The weights id written into every file hashes the weights and tables, so a file decodes only with the
weights that wrote it. ``COMPZOO_WEIGHTS=DIR`` reads another tree of the same layout instead (candidate
weights before they ship, or stand-ins where the shipped ones were left behind: experiments/gpu_checks.py).
"""

from __future__ import annotations

import functools
import json
import os
from pathlib import Path

import numpy as np

from compzoo import bitstream
from compzoo.codecs import catalogue
from compzoo.codecs.base import Codec, SignalCodec, check_image
from compzoo.codecs.entries import ZooEntry
from compzoo.errors import BitstreamError, UsageError

SHIPPED_WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
WEIGHTS_ROOT = Path(os.environ.get("COMPZOO_WEIGHTS") or SHIPPED_WEIGHTS)
LEARNED = "learned"  # the entry for a user's own workdir or export


class LearnedCodec(Codec):
  def __init__(self, name: str, model, weights_id: bytes, tables=None, weights_path: Path | None = None,
               retired_ids=(), superseded=None, options=None):
    for method in ("prepare_coding", "encode_image", "decode_image", "min_stream_bits"):
      if not hasattr(model, method):
        raise UsageError(f"model {type(model).__name__} cannot code images: it has no {method}()")
    super().__init__(name, bool(model.LOSSLESS))
    self.model = model
    self.weights_id = weights_id
    self.retired_ids = tuple(retired_ids)
    self.superseded = dict(superseded or {})  # {id: description} of weights this entry shipped before
    self.weights_path = weights_path  # the export it was loaded from
    self.guarantee = model.DECODE_GUARANTEE
    self.max_pixels = getattr(model, "MAX_PIXELS", None)
    self.side_inputs = tuple(getattr(model, "SIDE_INPUTS", ()))
    self.image_shape = getattr(model, "image_shape", None)
    self.inner_format = getattr(model, "INNER_FORMAT", None)
    if tables is None and getattr(model, "coding_tables", lambda: None)() is not None:
      raise UsageError(f"{weights_path or name}: the export has no coding tables (tables.msgpack); they are built "
                       "once when a model is exported and never rebuilt by a decoder: export the model again")
    # Built once; encoder and decoder share it. ``options``: the entry's coding options (jpeg-refine's quality,
    # sc's synthesized classes), passed in, never patched on afterwards.
    self.prepared = model.prepare_coding(tables, **(options or {}))
    self.last_parts: dict[str, int] = {}

  @classmethod
  def from_path(cls, path, name: str = LEARNED, options=None) -> "LearnedCodec | LearnedSignalCodec":
    """The codec of an export or workdir: a ``LearnedSignalCodec`` when its model codes signals."""
    from compzoo import exports  # imported here: it imports the model zoo (JAX, Flax)
    export = exports.load(path)
    if getattr(export.model, "MODALITY", "image") == "signal":
      if options:
        raise UsageError(f"{name}: signal models take no coding options, got {sorted(options)}")
      return LearnedSignalCodec(name, export.model, export.weights_id, export.tables, Path(path),
                                export.superseded)
    return cls(name, export.model, export.weights_id, export.tables, Path(path), export.retired_ids,
               export.superseded, options)

  def encode_streams(self, image: np.ndarray, **side):
    """Also keeps ``last_parts``: the bits of the image just coded, per part the model names (L3C: per
    scale) or else per stream."""
    parts = {}
    if getattr(self.model, "CODES_PARTS", False):
      side = dict(side, parts=parts)
    streams, check = self.model.encode_image(image, self.prepared, **side)
    self.last_parts = parts or {f"stream {i}": 8 * len(stream) for i, stream in enumerate(streams)}
    return streams, check

  def decode_streams(self, streams, shape):
    return self.model.decode_image(streams, shape, self.prepared)

  def check_claim(self, streams, shape):
    needed = self.model.min_stream_bits(shape, self.prepared)
    have = 8 * sum(len(s) for s in streams)
    if have < 0.99 * needed - 64:  # the slack covers the range coder's rounding, never a real file
      raise BitstreamError(f"{self.name}: {have} bits of streams cannot hold a {shape[1]}x{shape[0]} image "
                           f"(it needs at least {needed:.0f})")

  def latents(self, source, max_pixels: int | None = None) -> np.ndarray:
    """The dequantized latents (h×w×C floats) of an image (uint8 H×W×3) or of a compressed file (bytes):
    what a task head on compressed representations reads. A file is entropy-decoded only (no pixel is
    synthesized) after the checks ``decompress`` makes, and its symbols must pass the file's check."""
    if not hasattr(self.model, "latents_of_image"):
      raise UsageError(f"{self.name} has no latent seam: it codes pixels (lossless models) or a JPEG (jpeg-refine), not latents")
    if not isinstance(source, (bytes, bytearray, memoryview)):
      return self.model.latents_of_image(check_image(source))
    container = bitstream.unpack(bytes(source))
    if container.is_signal:
      raise BitstreamError(f"{self.name} codes images, and this file holds a signal")
    if container.codec != self.name or container.weights_id != self.weights_id:
      raise BitstreamError(f"file was written by {container.codec!r} with other weights, not by {self.name!r}")
    self.check_container(container, max_pixels)
    return checked_latents(self, functools.partial(self.model.latents_of_streams, prepared=self.prepared), container)


class LearnedSignalCodec(SignalCodec):
  """A trained signal model bound to its weights: ``encode_signal`` / ``decode_signal`` on int16 samples ×
  channels, the same weights id, claim check and sample limit (``MAX_PIXELS`` counts samples) as images."""

  def __init__(self, name: str, model, weights_id: bytes, tables=None, weights_path: Path | None = None,
               superseded=None):
    for method in ("prepare_coding", "encode_signal", "decode_signal", "min_stream_bits"):
      if not hasattr(model, method):
        raise UsageError(f"model {type(model).__name__} cannot code signals: it has no {method}()")
    super().__init__(name, bool(model.LOSSLESS))
    self.model, self.weights_id, self.weights_path = model, weights_id, weights_path
    self.superseded = dict(superseded or {})
    self.guarantee = model.DECODE_GUARANTEE
    self.max_pixels = getattr(model, "MAX_PIXELS", None)
    self.prepared = model.prepare_coding(tables)

  def encode_streams(self, signal):
    return self.model.encode_signal(signal.samples, self.prepared)

  def decode_streams(self, streams, shape, sample_rate):
    return self.model.decode_signal(streams, shape, self.prepared)

  def check_claim(self, streams, shape):
    needed = self.model.min_stream_bits(shape, self.prepared)
    have = 8 * sum(len(s) for s in streams)
    if have < 0.99 * needed - 64:
      raise BitstreamError(f"{self.name}: {have} bits of streams cannot hold {shape[0]} samples × {shape[1]} "
                           f"channels (they need at least {needed:.0f})")

  def latents(self, data: bytes, max_samples: int | None = None) -> np.ndarray:
    """A file's latents (channels × positions × C integers), entropy-decoded only (no synthesis), after the
    checks ``decompress`` makes; they must pass the file's symbol check. For a classifier on the file."""
    if not hasattr(self.model, "latents_of_streams"):
      raise UsageError(f"{self.name} codes samples, not latents")
    container = bitstream.unpack(bytes(data))
    if container.codec != self.name or not container.is_signal:
      raise BitstreamError(f"file was written by {container.codec!r}, not by {self.name!r}")
    self.check_weights_id(container)
    self.check_container(container, max_samples)
    return checked_latents(self, functools.partial(self.model.latents_of_streams, tables=self.prepared), container)


def checked_latents(codec, decode, container: bitstream.Container):
  """``decode(streams, shape) -> (latents, symbol check)`` through ``codec.run_decoder``; the latents only if
  their check is the file's (image and signal codecs' ``latents`` alike)."""
  latents, check = codec.run_decoder(decode, container)
  if container.content_check is not None and check != container.content_check:
    raise BitstreamError(f"{codec.name}: decoded symbols fail the file's check: encoder and decoder disagree")
  return latents


def shipped(entry: str, point: str = "") -> Path:
  """The shipped export of ``entry`` (one folder per operating point for lossy entries, one for lossless)."""
  path = WEIGHTS_ROOT / entry / point
  if not path.is_dir():
    raise UsageError(f"no shipped weights at {path}; reinstall compzoo or pass a workdir")
  return path


ENTRIES = []  # collected by compzoo/zoo.py


def _traits(folder: Path) -> tuple[bool, str]:
  """(lossless, decode guarantee) of the model an export folder builds, from its class: no weights loaded."""
  from compzoo import exports, models  # here: listing the zoo imports no model

  config = json.loads((folder / exports.CONFIG_FILE).read_text())
  model = models.model_class(config["model"])
  return bool(model.LOSSLESS), model.DECODE_GUARANTEE


def one_entry_per_architecture(modality: str = "image") -> dict[str, str]:
  """{model architecture: the first shipped entry (at its default point) that builds it}: what harnesses
  that must meet every kind of model once (fuzzing, the latent seam's tests) walk; image models, or
  ``modality='signal'``'s."""
  seen = {}
  for record in catalogue.FAMILIES:
    entry = record.entries[0]
    if entry.modality != modality:
      continue
    defaults = {k: p.parse(k, p.default) for k, p in entry.params.items()}
    config = json.loads((shipped(record.folder, entry.folder(defaults)) / "config.json").read_text())
    seen.setdefault(config["model"]["name"], entry.name)
  return seen


def _catalogue_entry(record: catalogue.Family, entry: catalogue.Entry) -> ZooEntry:
  def build(canonical, **params):
    options = {k: getattr(entry.params[k], "for_model", lambda v: v)(params[k]) for k in entry.options}
    return LearnedCodec.from_path(shipped(record.folder, entry.folder(params)), name=canonical, options=options)

  defaults = {k: p.parse(k, p.default) for k, p in entry.params.items()}
  return ZooEntry(name=entry.name, description=entry.description, declared_lossless=None, build=build,
                  params=dict(entry.params), sweep=entry.sweep, checkpoint=f"compzoo/weights/{record.folder}",
                  kind="learned", family=entry.family, group=entry.group, modality=entry.modality,
                  traits=lambda: _traits(shipped(record.folder, entry.folder(defaults))))


for _record in catalogue.FAMILIES:
  ENTRIES.extend(_catalogue_entry(_record, _entry) for _entry in _record.entries)

ENTRIES.append(ZooEntry(name=LEARNED, description="any trained model: -m learned --weights WORKDIR_OR_EXPORT (its "
                        "guarantee is its model's)", declared_lossless=None, kind="learned", needs_weights=True,
                        build=lambda canonical, weights: LearnedCodec.from_path(weights, name=canonical)))
