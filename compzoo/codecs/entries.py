"""How a codec module declares its zoo entries: ``ZooEntry`` records with typed ``Param`` s.

Codec modules list their entries as data (``ENTRIES``) and import nothing above them; ``compzoo/zoo.py``
collects them, parses names and builds codecs. So imports point one way (zoo -> codec modules -> base),
and a codec is built once with its canonical name.
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Callable, Mapping

from compzoo.errors import UsageError

# What a learned entry promises about decoding a file on another machine (``compzoo models`` / ``info``).
# "Exact" is about the bitstream: the symbols decode exactly, as the file's symbol check proves. The
# pixels are the synthesis transform's float output of those symbols, rounded: another backend (another
# vector ISA) may round a rare pixel one level the other way (experiments/cross_process_decode.py).
GUARANTEES = {
    "exact": "exact on any backend: symbols decode exactly (tables from integer arithmetic on the weights); "
             "pixels are the float synthesis, equal up to a rare one-level rounding",
    "shipped-tables": "exact on any backend: symbols decode exactly (integer coding tables ship inside the "
                      "weights); pixels are the float synthesis, equal up to a rare one-level rounding",
    "jpeg-bitstream": "exact on any backend: the stream is a baseline JPEG, which libjpeg's integer inverse DCT "
                      "decodes to the same pixels everywhere (the file's check proves it); the refinement on "
                      "top is float, equal up to a rare one-level rounding",
    "integer": "exact on any backend: integer operations only (first differences, byte planes, a general-purpose "
               "compressor)",
    "same-backend": "same backend only: tables come from float network outputs; another backend gives a "
                    "BitstreamError, never a wrong image",
}


@dataclasses.dataclass(frozen=True)
class Param:
  """A codec parameter: its type, default and inclusive range."""

  kind: type
  default: float
  low: float
  high: float

  def parse(self, key: str, raw) -> int | float:
    try:
      value = self.kind(raw)
    except (TypeError, ValueError):
      raise UsageError(f"parameter {key}={raw!r}: expected {self.kind.__name__}") from None
    if not self.low <= value <= self.high:
      raise UsageError(f"parameter {key}={value} outside [{self.low}, {self.high}]")
    return value


@dataclasses.dataclass(frozen=True)
class Points:
  """An integer parameter naming one of the shipped points (qualities, code channels, rates)."""

  points: tuple[int, ...]
  default: int
  noun: str  # 'rates': the error says "ships rates 0, 2, 4"
  unit: str = ""  # '(code channels)' after the list

  def parse(self, key: str, raw) -> int:
    try:
      value = int(raw)
    except (TypeError, ValueError):
      raise UsageError(f"parameter {key}={raw!r}: expected int") from None
    if value not in self.points:
      unit = f" ({self.unit})" if self.unit else ""
      raise UsageError(f"parameter {key}={value}: ships {self.noun} {', '.join(map(str, self.points))}{unit}, "
                       f"not {value}")
    return value

  def values(self) -> tuple[int, ...]:
    return self.points


@dataclasses.dataclass(frozen=True)
class Choice:
  """A codec parameter naming one of a few options (jpeg-refine's ``rule``: which training's weights)."""

  names: tuple[str, ...]
  default: str

  def parse(self, key: str, raw) -> str:
    value = str(raw).strip().lower()
    if value not in self.names:
      raise UsageError(f"parameter {key}={raw!r}: expected one of {', '.join(self.names)}")
    return value

  def values(self) -> tuple[str, ...]:
    return self.names


@dataclasses.dataclass(frozen=True)
class ClassSet:
  """A codec parameter naming a set of classes: ``NAME+NAME...`` or ``none`` (``+``, since ``,`` separates
  codecs in ``-m``). Parsed to its canonical spelling, in class-id order, so one choice has one codec name
  (the name a file records, which is how the decoder learns the choice)."""

  names: tuple[str, ...]
  default: str

  def parse(self, key: str, raw) -> str:
    raw = str(raw).strip().lower()
    chosen = set() if raw == "none" else set(raw.split("+"))
    unknown = sorted(chosen - set(self.names))
    if unknown or "" in chosen:
      raise UsageError(f"parameter {key}={raw!r}: expected 'none' or class names joined by '+' from "
                       f"{', '.join(self.names)}")
    return "+".join(name for name in self.names if name in chosen) or "none"

  def for_model(self, canonical: str) -> tuple[int, ...]:
    """What a model's ``prepare_coding`` takes for this option: the class ids."""
    return self.ids(canonical)

  def ids(self, canonical: str) -> tuple[int, ...]:
    chosen = canonical.split("+")
    return tuple(i for i, name in enumerate(self.names) if name in chosen)

  @property
  def default_ids(self) -> tuple[int, ...]:
    return self.ids(self.default)


@dataclasses.dataclass(frozen=True)
class ZooEntry:
  name: str
  description: str
  declared_lossless: bool | None  # None: decided by the weights (the 'learned' entry); see ``traits``
  build: Callable[..., "object"]  # build(name, **params) -> Codec named ``name`` (canonical)
  params: Mapping[str, Param | Choice | ClassSet] = dataclasses.field(default_factory=dict)
  sweep: tuple[Mapping[str, float], ...] = ()  # operating points for rate-distortion curves
  checkpoint: str | None = None  # repo-relative path of shipped weights, for learned codecs
  kind: str = "classic"
  family: str = ""  # entries that are the points of one RD curve (one checkpoint each) share a family
  group: str = ""  # entries benchmarked together under one name, each its own curve (dplc-mnist's objectives)
  declared_guarantee: str = ""  # the 'learned' entry: none of its own
  needs_weights: bool = False  # built from a user's workdir or export (``--weights DIR``)
  modality: str = "image"  # what its codec compresses: 'image' (uint8 H×W×3) or 'signal' (int16 samples)
  # Shipped learned entries: () -> (lossless, guarantee), read from the model class of the default export,
  # only when asked (listing the zoo imports no model).
  traits: Callable[[], tuple[bool, str]] | None = None

  def __post_init__(self):
    if ":" in self.name or "," in self.name:
      raise UsageError(f"zoo entry name {self.name!r} may not contain ':' or ','")
    if self.modality not in ("image", "signal"):
      raise UsageError(f"zoo entry {self.name!r}: modality must be 'image' or 'signal', not {self.modality!r}")

  @functools.cached_property
  def _traits(self) -> tuple[bool | None, str]:
    if self.traits is None:
      return self.declared_lossless, self.declared_guarantee
    lossless, guarantee = self.traits()
    if guarantee not in GUARANTEES:
      raise UsageError(f"the model of zoo entry {self.name!r} states no known decode guarantee ({guarantee!r})")
    return lossless, guarantee

  @property
  def lossless(self) -> bool | None:
    return self._traits[0]

  @property
  def guarantee(self) -> str:
    return self._traits[1]

  def curve(self) -> str:
    """The RD curve this entry's points belong to: its family, else its own name."""
    return self.family or self.name

  def mode(self) -> str:
    return {True: "lossless", False: "lossy", None: "either"}[self.lossless]
