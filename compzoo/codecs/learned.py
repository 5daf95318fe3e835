"""Learned codecs: a trained model bound to its weights, coding through the model's ``CodingModel`` methods.

Shipped weights live in compzoo/weights/<entry>/[<point>/] (exports: config.json, params.msgpack and, for
models with weight-only coding tables, tables.msgpack; see compzoo/exports.py) and load with no download
and no training code. The entry ``learned`` takes any training workdir or export (``--weights DIR``).
The weights id written into every file hashes the weights and tables, so a file decodes only with the
weights that wrote it. ``COMPZOO_WEIGHTS=DIR`` reads another tree of the same layout instead (candidate
weights before they ship, or stand-ins where the shipped ones were left behind: experiments/gpu_checks.py).
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

import numpy as np

from compzoo import bitstream
from compzoo.codecs.base import Codec, check_image
from compzoo.codecs.entries import Choice, ClassSet, Param, ZooEntry
from compzoo.data.images import CAMVID_CLASSES
from compzoo.errors import BitstreamError, UsageError

SHIPPED_WEIGHTS = Path(__file__).resolve().parent.parent / "weights"
WEIGHTS_ROOT = Path(os.environ.get("COMPZOO_WEIGHTS") or SHIPPED_WEIGHTS)
LEARNED = "learned"  # the entry for a user's own workdir or export


class LearnedCodec(Codec):
  def __init__(self, name: str, model, weights_id: bytes, tables=None, weights_path: Path | None = None,
               retired_ids=(), superseded=None):
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
    self.prepared = model.prepare_coding(tables)  # built once; encoder and decoder share it (entries may set options in it)
    self.last_parts: dict[str, int] = {}

  @classmethod
  def from_path(cls, path, name: str = LEARNED) -> "LearnedCodec":
    from compzoo import exports  # imported here: it imports the model zoo (JAX, Flax)
    export = exports.load(path)
    return cls(name, export.model, export.weights_id, export.tables, Path(path), export.retired_ids,
               export.superseded)

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
      raise UsageError(f"{self.name} has no latent seam (lossless models code pixels, not latents)")
    if not isinstance(source, (bytes, bytearray, memoryview)):
      return self.model.latents_of_image(check_image(source))
    container = bitstream.unpack(bytes(source))
    if container.codec != self.name or container.weights_id != self.weights_id:
      raise BitstreamError(f"file was written by {container.codec!r} with other weights, not by {self.name!r}")
    self.check_container(container, max_pixels)
    latents, check = self.run_decoder(functools.partial(self.model.latents_of_streams, prepared=self.prepared),
                                      container)
    if container.content_check is not None and check != container.content_check:
      raise BitstreamError(f"{self.name}: decoded symbols fail the file's check: encoder and decoder disagree")
    return latents


def shipped(entry: str, point: str = "") -> Path:
  """The shipped export of ``entry`` (one folder per operating point for lossy entries, one for lossless)."""
  path = WEIGHTS_ROOT / entry / point
  if not path.is_dir():
    raise UsageError(f"no shipped weights at {path}; reinstall compzoo or pass a workdir")
  return path


ENTRIES = []  # collected by compzoo/zoo.py


def _learned(name: str, description: str, lossless: bool | None, guarantee: str, **fields) -> None:
  ENTRIES.append(ZooEntry(name=name, description=description, lossless=lossless, kind="learned",
                          guarantee=guarantee, **fields))


def _shipped_entry(name: str, description: str, lossless: bool, guarantee: str, family: str = "") -> None:
  """An entry with one shipped export: a lossless model, or a lossy model trained for one operating point
  (``family`` joins such entries into one RD curve)."""
  _learned(name, description, lossless, guarantee, family=family, checkpoint=f"compzoo/weights/{name}",
           build=lambda canonical: LearnedCodec.from_path(shipped(name), name=canonical))


BMSHJ2018_QUALITIES = (1, 2)
_learned("bmshj2018-factorized",
         "Ballé et al. 2018 factorized-prior autoencoder, MSE-trained on BSDS500 (shipped, small)",
         False, "shipped-tables",
         build=lambda canonical, quality: LearnedCodec.from_path(shipped("bmshj2018-factorized", f"q{quality}"),
                                                                 name=canonical),
         params={"quality": Param(int, BMSHJ2018_QUALITIES[-1], BMSHJ2018_QUALITIES[0], BMSHJ2018_QUALITIES[-1])},
         sweep=tuple({"quality": q} for q in BMSHJ2018_QUALITIES),
         checkpoint="compzoo/weights/bmshj2018-factorized")

for _point, _rate in (("low", "lowest"), ("mid", "middle"), ("high", "highest")):
  _shipped_entry(f"cpm-{_point}", f"Context-model autoencoder (Mentzer et al. 2018), MS-SSIM trained, 3D-CNN "
                 f"context model, importance map; the {_rate} of 3 rates (shipped, small)", False, "exact",
                 family="cpm")

# Distribution-preserving codecs (Tschannen et al. 2018): one entry per objective and data set, its
# points the shipped code widths (rate = code channels; 0: the decoder is a generative model). The wgan
# entry's rate 0 is the WGAN-GP generator that its other points decode with.
DPLC_OBJECTIVES = {"wgan": "two-stage WGAN (WGAN-GP generator, then encoder with the generator frozen)",
                   "wae": "Wasserstein autoencoder (MMD)", "wpp": "Wasserstein++ (WAE + WGAN-GP)",
                   "mse": "MSE autoencoder at the same rates (the baseline that blurs)"}
DPLC_RATES = {"mnist": (0, 2, 4, 8, 16, 64), "cifar10": (0, 4, 16, 64, 128, 256)}


def _dplc_weights(dataset: str, objective: str, rate: int) -> Path:
  if rate not in DPLC_RATES[dataset]:
    raise UsageError(f"dplc-{dataset}-{objective} ships rates {', '.join(map(str, DPLC_RATES[dataset]))} "
                     f"(code channels), not {rate}")
  point = "generator" if objective == "wgan" and rate == 0 else f"{objective}/r{rate}"
  return shipped(f"dplc-{dataset}", point)


for _dataset, _rates in DPLC_RATES.items():
  for _objective, _what in DPLC_OBJECTIVES.items():
    _learned(f"dplc-{_dataset}-{_objective}",
             f"Distribution-preserving lossy compression (Tschannen et al. 2018), {_what}, on "
             f"{'MNIST digits (32x32 grey)' if _dataset == 'mnist' else 'CIFAR-10 (32x32)'}; rate = code channels "
             f"x 4 bits (shipped, small)", False, "shipped-tables", group=f"dplc-{_dataset}",
             checkpoint=f"compzoo/weights/dplc-{_dataset}",
             params={"rate": Param(int, _rates[-1], 0, _rates[-1])}, sweep=tuple({"rate": r} for r in _rates),
             build=functools.partial(lambda canonical, rate, dataset, objective: LearnedCodec.from_path(
                 _dplc_weights(dataset, objective, rate), name=canonical), dataset=_dataset, objective=_objective))

# Generative compression (Agustsson et al. 2019), trained on CamVid street scenes (compzoo/weights/gc, one
# export per point): gc and its MSE-only baseline at C code channels (C·log2(5)/256 bpp nominal, less after
# entropy coding), and sc, which codes the label map and draws the classes it is told to synthesize from the
# map alone. One sc model serves every choice of classes (it was trained on random choices); the choice is
# part of the codec name a file records, so the decoder knows it.
GC_CHANNELS = {"gc": (2, 4, 8), "gc-mse": (2, 4)}
GC_DEFAULT_CHANNELS = 4  # both entries' default: the C that sc codes at, so the three compare at one rate
GC_POINTS = {"gc": "gc", "gc-mse": "mse"}  # compzoo/weights/gc/<point>-c<channels>
SC_CHANNELS = GC_DEFAULT_CHANNELS
SC_SYNTHESIZE = ClassSet(CAMVID_CLASSES, "sky+road+tree")  # the paper's kinds of region: sky, street, vegetation
SC_SWEEP = ("none", "sky", "sky+road", "sky+road+tree")  # more synthesized, fewer bits


def _gc_weights(entry: str, channels: int) -> Path:
  if channels not in GC_CHANNELS[entry]:
    raise UsageError(f"{entry} ships channels {', '.join(map(str, GC_CHANNELS[entry]))}, not {channels}")
  return shipped("gc", f"{GC_POINTS[entry]}-c{channels}")


def _sc_codec(canonical: str, synthesize: str) -> LearnedCodec:
  codec = LearnedCodec.from_path(shipped("gc", f"sc-c{SC_CHANNELS}"), name=canonical)
  codec.model.choose_synthesized(SC_SYNTHESIZE.ids(synthesize))
  return codec


for _entry, _what in (("gc", "least-squares GAN, 3-scale patch discriminator, feature matching and MSE"),
                      ("gc-mse", "the same autoencoder on MSE alone (the baseline that isolates the GAN term)")):
  _channels = GC_CHANNELS[_entry]
  _learned(_entry, f"Generative compression (Agustsson et al. 2019), {_what}; CamVid street scenes, 1/16 "
           f"latents with 5 centres, rate = code channels (shipped, small)", False, "shipped-tables",
           checkpoint="compzoo/weights/gc",
           params={"channels": Param(int, GC_DEFAULT_CHANNELS, _channels[0], _channels[-1])},
           sweep=tuple({"channels": c} for c in _channels),
           build=functools.partial(lambda canonical, channels, entry: LearnedCodec.from_path(
               _gc_weights(entry, channels), name=canonical), entry=_entry))
_learned("sc", f"Selective generative compression (Agustsson et al. 2019) at {SC_CHANNELS} code channels: codes "
         "CamVid's label map (compress --label-map) and synthesizes the classes in synthesize=NAME+NAME from it; "
         "the map's bits count (shipped, small)", False, "shipped-tables", checkpoint="compzoo/weights/gc",
         params={"synthesize": SC_SYNTHESIZE}, sweep=tuple({"synthesize": s} for s in SC_SWEEP), build=_sc_codec)

# Recurrent refinement of JPEG (Ororbia & Mali 2019): the file is jpeg:quality=Q's stream, byte for byte; the
# decoder refines libjpeg's pixels with a network trained by one of five credit rules (compzoo/weights/
# jpeg-refine/<rule>, one network for every quality). The default rule is the one whose network did best.
REFINE_RULES = ("bptt", "tbptt", "sab", "uoro", "rtrl")
REFINE_RULE = Choice(REFINE_RULES, "bptt")
REFINE_QUALITIES = (10, 20, 30, 50)


def _refine_codec(canonical: str, quality: int, rule: str) -> LearnedCodec:
  codec = LearnedCodec.from_path(shipped("jpeg-refine", rule), name=canonical)
  codec.prepared["quality"] = quality  # the encoder's; decoding reads the JPEG's own tables
  return codec


_learned("jpeg-refine", "JPEG (the bytes of jpeg:quality=Q) decoded by a recurrent network that refines libjpeg's "
         "pixels 8x8 block by block in 3 sweeps (Ororbia & Mali 2019); rule=bptt|tbptt|sab|uoro|rtrl picks the "
         "credit rule its network was trained with (shipped, small)", False, "jpeg-bitstream",
         checkpoint="compzoo/weights/jpeg-refine", params={"quality": Param(int, 50, 1, 100), "rule": REFINE_RULE},
         sweep=tuple({"quality": q} for q in REFINE_QUALITIES), build=_refine_codec)

# Inference from compressed latents (Torfason et al. 2018): bmshj2018's factorized prior with 8× downsampling at
# three rates (compzoo/weights/latent-tasks/codec/<rate>), and the codecs trained jointly with a task head on
# their latents (<task>/joint-<rate>: the export holds codec and head; files carry its weights id). The
# task networks that read their files are in compzoo/inference.py (`compzoo infer`).
LATENT_RATES = ("low", "mid", "high")  # rate targets 0.1, 0.33, 0.64 bpp on the training crops
LATENT_TASKS = ("cifar10", "camvid")
_LATENT_RATE = Choice(LATENT_RATES, "mid")
_learned("torfason-ae", "Torfason et al. 2018's compression net: factorized-prior autoencoder, 8x downsampling, "
         "64 latent channels, rate=low|mid|high (near 0.1/0.33/0.64 bpp); `compzoo infer` classifies (CIFAR-10) "
         "and segments (CamVid) its files from their latents (shipped, small)", False, "shipped-tables",
         checkpoint="compzoo/weights/latent-tasks/codec", params={"rate": _LATENT_RATE},
         sweep=tuple({"rate": r} for r in LATENT_RATES),
         build=lambda canonical, rate: LearnedCodec.from_path(shipped("latent-tasks", f"codec/{rate}"), name=canonical))
for _task in LATENT_TASKS:
  _learned(f"torfason-ae-joint-{_task}", f"torfason-ae trained jointly with the {_task} network on its latents "
           "(rate-distortion + task loss, Torfason et al. 2018), rate=low|mid|high (shipped, small)", False,
           "shipped-tables", checkpoint=f"compzoo/weights/latent-tasks/{_task}", params={"rate": _LATENT_RATE},
           sweep=tuple({"rate": r} for r in LATENT_RATES),
           build=functools.partial(lambda canonical, rate, task: LearnedCodec.from_path(
               shipped("latent-tasks", f"{task}/joint-{rate}"), name=canonical), task=_task))

_lossless_entry = functools.partial(_shipped_entry, lossless=True, guarantee="same-backend")
_lossless_entry("l3c", "L3C (Mentzer et al. 2019): hierarchical learned lossless coding, learned auxiliary "
                "representations, 3 network passes (shipped, small)")
_lossless_entry("l3c-rgb", "L3C's RGB baseline: a fixed RGB pyramid instead of learned representations")
_lossless_entry("l3c-rgb-shared", "L3C's RGB-shared baseline: RGB pyramid, one predictor for every scale")
_lossless_entry("pixelcnn", "PixelCNN: per-pixel autoregressive lossless coding, one network pass per pixel "
                "(the slow baseline)")

_learned(LEARNED, "any trained model: -m learned --weights WORKDIR_OR_EXPORT (its guarantee is its model's)",
         None, "", needs_weights=True,
         build=lambda canonical, weights: LearnedCodec.from_path(weights, name=canonical))
