"""Patch codecs: 8×8 blocks coded on bases fitted to photographs, the zoo's classical transform coders.

YCbCr planes (chroma halved) are cut into 8×8 blocks. A *subspace book* (``kind = "subspaces"``) codes each
block as its DC (quantised, predicted from the block to its left) plus, on one of K orthonormal bases of the
63-dimensional zero-mean space, the id of that basis and its first ``dims[k]`` coefficients, quantised with
one step Δ. Which basis a block uses is the encoder's rate-distortion choice (squared error + λ·bits, bits
read from the same tables that code); the decoder only reads the id. The books differ in how their bases
were found (experiments/patch_fit.py): SSC-MP clusters with their dimension from SSC-MP's support sizes
(``patch-ssc``), k-means clusters (``patch-kmeans``), or one global PCA (``patch-pca``, K = 1).
A *cone book* (``kind = "cone"``) codes each block's pixels as non-negative weights on a non-negative
dictionary, found by fully corrective non-negative matching pursuit (``patch-nonneg``): no DC, no sign.

Every symbol goes through ``GaussianTables`` (the hyperprior's ladder, folded for the non-negative weights),
indexed by the shipped scale of its coefficient over Δ; ids go through a counts table. Symbols decode
exactly on any machine (integer tables shipped in compzoo/weights/patch/tables.npz); pixels are float sums
of the bases, equal up to a rare one-level rounding, and the file's check is over the symbols.
"""

from __future__ import annotations

import dataclasses
import functools
import hashlib
import zipfile
from pathlib import Path

import numpy as np

from compzoo import bitstream
from compzoo.codecs.base import Codec
from compzoo.codecs.entries import Choice, Param, ZooEntry
from compzoo.codecs.learned import WEIGHTS_ROOT
from compzoo.entropy.coder import PRECISION, Decoder, Encoder, valid_frequencies
from compzoo.entropy.gaussian import SCALE_LEVELS, GaussianTables, scale_indexes
from compzoo.errors import BitstreamError, UsageError
from compzoo.sparse import fcmp_codes

BOOKS = WEIGHTS_ROOT / "patch"  # COMPZOO_WEIGHTS=DIR reads DIR/patch instead (compzoo/codecs/learned.py)
BLOCK = 8
PLANES = ("luma", "chroma", "chroma")  # the book each of Y, Cb, Cr is coded with
STREAMS_PER_PLANE = 3  # ids, DC, coefficients (a cone book leaves the first two empty)
RD_LAMBDA = 0.13  # λ = RD_LAMBDA·Δ²: near the high-rate slope of a uniform quantiser, 2 ln2·Δ²/12 ≈ 0.116·Δ²
ROUNDING = 1 / 3  # q = sign(c)·floor(|c|/Δ + 1/3): a dead zone, as H.264's intra quantiser
_LARGEST_COST = 4096  # rate estimates clamp |q| here (an escape's cost grows only logarithmically)


# ---------------------------------------------------------------------------------------------- planes and blocks

def to_planes(image: np.ndarray) -> list[np.ndarray]:
  """uint8 H×W×3 RGB -> [Y (H×W), Cb, Cr (⌈H/2⌉×⌈W/2⌉, 2×2 means)], float64 in JPEG's full-range YCbCr."""
  r, g, b = np.moveaxis(image.astype(np.float64), 2, 0)
  luma = 0.299 * r + 0.587 * g + 0.114 * b
  cb = 128.0 - 0.168736 * r - 0.331264 * g + 0.5 * b
  cr = 128.0 + 0.5 * r - 0.418688 * g - 0.081312 * b
  return [luma, _halve(cb), _halve(cr)]


def from_planes(planes, shape) -> np.ndarray:
  """The inverse of ``to_planes`` (chroma doubled by linear interpolation), rounded to uint8."""
  height, width = shape[:2]
  luma = planes[0][:height, :width]
  cb, cr = (_double(p)[:height, :width] - 128.0 for p in planes[1:])
  rgb = np.stack([luma + 1.402 * cr, luma - 0.344136 * cb - 0.714136 * cr, luma + 1.772 * cb], axis=-1)
  return np.clip(np.rint(rgb), 0, 255).astype(np.uint8)


def _halve(plane):
  padded = np.pad(plane, [(0, plane.shape[0] % 2), (0, plane.shape[1] % 2)], mode="edge")
  return 0.25 * (padded[0::2, 0::2] + padded[1::2, 0::2] + padded[0::2, 1::2] + padded[1::2, 1::2])


def _double(plane):
  """Each sample becomes two along each axis, at 3/4 of itself and 1/4 of its neighbour on that side."""
  for axis in (0, 1):
    before = np.concatenate([np.take(plane, [0], axis), np.take(plane, np.arange(plane.shape[axis] - 1), axis)], axis)
    after = np.concatenate([np.take(plane, np.arange(1, plane.shape[axis]), axis), np.take(plane, [-1], axis)], axis)
    plane = np.stack([0.75 * plane + 0.25 * before, 0.75 * plane + 0.25 * after], axis=axis + 1)
    plane = plane.reshape(plane.shape[:axis] + (-1,) + plane.shape[axis + 2:])
  return plane


def plane_shapes(shape) -> list[tuple[int, int]]:
  height, width = shape[:2]
  half = (-(-height // 2), -(-width // 2))
  return [(height, width), half, half]


def grid(plane_shape) -> tuple[int, int]:
  """Blocks down and across a plane (edge-padded to whole blocks)."""
  return -(-plane_shape[0] // BLOCK), -(-plane_shape[1] // BLOCK)


def to_blocks(plane: np.ndarray) -> np.ndarray:
  """H×W -> (blocks in raster order, 64), the plane edge-padded to whole blocks."""
  rows, columns = grid(plane.shape)
  padded = np.pad(plane, [(0, rows * BLOCK - plane.shape[0]), (0, columns * BLOCK - plane.shape[1])], mode="edge")
  return padded.reshape(rows, BLOCK, columns, BLOCK).transpose(0, 2, 1, 3).reshape(-1, BLOCK * BLOCK)


def from_blocks(blocks: np.ndarray, plane_shape) -> np.ndarray:
  rows, columns = grid(plane_shape)
  plane = blocks.reshape(rows, columns, BLOCK, BLOCK).transpose(0, 2, 1, 3).reshape(rows * BLOCK, columns * BLOCK)
  return plane[:plane_shape[0], :plane_shape[1]]


def dc_differences(q0: np.ndarray) -> np.ndarray:
  """Each block's DC minus its left neighbour's (the first column: minus the block above; the first: itself)."""
  diff = q0.copy()
  diff[:, 1:] -= q0[:, :-1]
  diff[1:, 0] -= q0[:-1, 0]
  return diff


def dc_from_differences(diff: np.ndarray) -> np.ndarray:
  first = np.cumsum(diff[:, 0])
  return np.cumsum(np.concatenate([first[:, None], diff[:, 1:]], axis=1), axis=1)


def quantize(values, step: float) -> np.ndarray:
  return (np.sign(values) * np.floor(np.abs(values) / step + ROUNDING)).astype(np.int64)


# ---------------------------------------------------------------------------------------------- books

@dataclasses.dataclass(frozen=True)
class SubspaceBook:
  """K orthonormal bases of the zero-mean block space and how their coefficients are distributed."""

  bases: np.ndarray  # (K, 63, 64): rows orthonormal and orthogonal to the constant block, by falling variance
  dims: np.ndarray  # (K,) coefficients coded on each basis
  scales: np.ndarray  # (K, 63) coefficients' RMS on training blocks (pixel units), over their block's gain
  gains: np.ndarray  # (G,) what a block may multiply its basis's scales by (its activity, chosen by the encoder)
  id_freqs: np.ndarray  # (1, K·G) integer frequencies of the classes k·G + g (unused when K·G = 1)
  dc_scale: float  # RMS of the DC differences (the DC coefficient is the block sum / 8)

  @property
  def classes(self) -> int:
    return self.bases.shape[0] * len(self.gains)

  def coded_dims(self, full: bool) -> np.ndarray:
    return np.full_like(self.dims, self.bases.shape[1]) if full else self.dims

  def class_indexes(self, step: float) -> np.ndarray:
    """(K, G, 63) ladder indexes of every coefficient of every class at step Δ (float32: the same everywhere)."""
    scales = np.asarray(self.scales, np.float32)[:, None, :] * np.asarray(self.gains, np.float32)[None, :, None]
    return scale_indexes(scales / np.float32(step))


@dataclasses.dataclass(frozen=True)
class ConeBook:
  """A non-negative dictionary of unit-norm blocks (the flat block among them), coded with at most ``steps`` FCMP
  iterations per block."""

  atoms: np.ndarray  # (A, 64) >= 0, unit norm
  scales: np.ndarray  # (A,) weights' RMS on training blocks, over their block's gain
  gains: np.ndarray  # (G,) what a block may multiply the scales by: its class, the encoder's cheapest
  id_freqs: np.ndarray  # (1, G) integer frequencies of the classes (unused when G = 1)
  steps: int

  @property
  def classes(self) -> int:
    return len(self.gains)

  def class_indexes(self, step: float) -> np.ndarray:
    """(G, A) ladder indexes of every weight under every gain at step Δ."""
    scales = np.asarray(self.scales, np.float32)[None, :] * np.asarray(self.gains, np.float32)[:, None]
    return scale_indexes(scales / np.float32(step))


def cone_classes(book: ConeBook, q: np.ndarray, step: float) -> np.ndarray:
  """Each block's gain: the one whose tables code its weights ``q`` (blocks, A) in the fewest bits."""
  indexes = book.class_indexes(step)
  bits = np.stack([np.sum(_bits(indexes[g], q, folded=True), axis=1) for g in range(book.classes)], axis=1)
  if book.classes > 1:
    bits = bits + (PRECISION - np.log2(book.id_freqs[0]))
  return np.argmin(bits, axis=1)


def save_books(path: Path, kind: str, books: dict) -> None:
  """``books``: {"luma": book, "chroma": book} of one kind -> one .npz (what experiments/patch_fit.py ships)."""
  arrays = {"kind": np.array(kind)}
  for plane, book in books.items():
    for field in dataclasses.fields(book):
      value = np.asarray(getattr(book, field.name))
      arrays[f"{plane}/{field.name}"] = value.astype(np.float32) if value.dtype == np.float64 else value
  np.savez(path, **arrays)


def load_books(path: Path) -> tuple[str, dict]:
  """A shipped .npz -> (kind, {"luma": book, "chroma": book}), validated; a missing or malformed file is a
  one-line UsageError."""
  arrays = _read_npz(path, "book")
  kind = str(arrays.get("kind", ""))
  cls = {"subspaces": SubspaceBook, "cone": ConeBook}.get(kind)
  if cls is None:
    raise UsageError(f"patch codec book {path} is of unknown kind {kind!r}")
  books = {}
  for plane in ("luma", "chroma"):
    try:
      fields = {f.name: arrays[f"{plane}/{f.name}"] for f in dataclasses.fields(cls)}
    except KeyError as e:
      raise UsageError(f"patch codec book {path} lacks {e.args[0]}") from None
    try:
      books[plane] = _checked(cls(**fields))
    except (TypeError, ValueError) as e:
      raise UsageError(f"patch codec book {path} ({plane}): {e}") from None
  return kind, books


def _read_npz(path: Path, what: str) -> dict:
  """Every array of a shipped .npz (no pickles), or a one-line UsageError for a missing or damaged file."""
  try:
    with np.load(path, allow_pickle=False) as data:
      return {key: data[key] for key in data.files}
  except (OSError, ValueError, EOFError, zipfile.BadZipFile) as e:
    raise UsageError(f"patch codec {what} {path} cannot be read: {e}") from None


def _checked(book):
  """The book with its arrays in the types coding uses; ValueError (or TypeError) says what is wrong."""
  numbers = {f.name: np.asarray(getattr(book, f.name)) for f in dataclasses.fields(book)}
  if any(not np.issubdtype(v.dtype, np.number) or not np.isfinite(v).all() for v in numbers.values()):
    raise ValueError("every array must hold finite numbers")
  if isinstance(book, SubspaceBook):
    if book.bases.ndim != 3 or book.bases.shape[1:] != (BLOCK * BLOCK - 1, BLOCK * BLOCK):
      raise ValueError(f"bases must be (K, 63, 64), got {book.bases.shape}")
    k, d, _ = book.bases.shape
    if book.dims.shape != (k,) or book.scales.shape != (k, d) or np.ndim(book.dc_scale) != 0:
      raise ValueError("bases, dims, scales and dc_scale disagree in shape")
    if book.dims.min() < 1 or book.dims.max() > d or book.scales.min() <= 0 or book.dc_scale <= 0:
      raise ValueError("dims, scales or dc_scale out of range")
    book = dataclasses.replace(book, dims=book.dims.astype(np.int64), dc_scale=float(book.dc_scale))
  else:
    if book.atoms.ndim != 2 or book.atoms.shape[1] != BLOCK * BLOCK or book.scales.shape != book.atoms.shape[:1]:
      raise ValueError("atoms and scales disagree in shape")
    if np.ndim(book.steps) != 0 or book.atoms.min() < 0 or book.scales.min() <= 0 or int(book.steps) < 1:
      raise ValueError("atoms must be non-negative, scales positive and steps a number >= 1")
    book = dataclasses.replace(book, steps=int(book.steps))
  if book.gains.ndim != 1 or book.gains.size < 1 or not (book.gains > 0).all():
    raise ValueError("gains must be a non-empty vector of positive numbers")
  if book.classes > 1 and (book.id_freqs.shape != (1, book.classes) or not valid_frequencies(book.id_freqs)):
    raise ValueError(f"its class table is not {book.classes} {PRECISION}-bit integer frequencies")
  return dataclasses.replace(book, id_freqs=np.asarray(book.id_freqs, np.float32))


@functools.lru_cache(maxsize=8)
def coding_tables(folder: Path, folded: bool) -> GaussianTables:
  """The ladder tables shipped beside the books (``folder``/tables.npz), validated, never rebuilt."""
  path = folder / "tables.npz"
  key = "folded" if folded else "signed"
  arrays = _read_npz(path, "tables")
  if f"{key}/radii" not in arrays or f"{key}/freqs" not in arrays:
    raise UsageError(f"patch codec tables {path} cannot be read: no {key} tables")
  radii, freqs = arrays[f"{key}/radii"], arrays[f"{key}/freqs"]
  if radii.shape != (SCALE_LEVELS,) or not np.issubdtype(radii.dtype, np.integer) or freqs.ndim != 1:
    raise UsageError(f"patch codec tables {path} are malformed")
  widths = radii + 2 if folded else 2 * radii + 2
  if radii.min() < 1 or freqs.size != widths.sum():
    raise UsageError(f"patch codec tables {path} are malformed")
  rows = np.split(freqs, np.cumsum(widths)[:-1])
  return GaussianTables.from_arrays({"radii": radii, "freqs": rows}, folded=folded)


def save_tables(path: Path) -> None:
  arrays = {}
  for key, folded in (("signed", False), ("folded", True)):
    tables = GaussianTables.build(folded=folded)
    arrays[f"{key}/radii"], arrays[f"{key}/freqs"] = tables.radii, np.concatenate(tables.freqs)
  np.savez(path, **arrays)


@functools.lru_cache(maxsize=2)
def _costs(folded: bool) -> np.ndarray:
  """Encoder-side rate estimates: from freshly built tables, so fitting needs no shipped ones."""
  return GaussianTables.build(folded).bit_costs(_LARGEST_COST)


def _bits(indexes, symbols, folded=False):
  return _costs(folded)[indexes, np.clip(symbols, -_LARGEST_COST, _LARGEST_COST) + _LARGEST_COST]


# ---------------------------------------------------------------------------------------------- coding one plane

_CHUNK = 2048  # blocks weighed at once: bounds the (blocks, K, 63) arrays of the choice to a few tens of MB


def encode_subspaces(book: SubspaceBook, blocks: np.ndarray, step: float, full: bool = False):
  """-> (classes k·G + g, quantised DCs, each block's coefficient symbols): each block takes the basis k and
  gain g of least squared error + λ·bits."""
  parts = [_encode_chunk(book, blocks[i:i + _CHUNK], step, full) for i in range(0, len(blocks), _CHUNK)]
  if not parts:
    return np.zeros(0, np.int64), np.zeros(0, np.int64), []
  return (np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]),
          [c for p in parts for c in p[2]])


def _encode_chunk(book: SubspaceBook, blocks: np.ndarray, step: float, full: bool):
  dims = book.coded_dims(full)
  q0 = np.rint(blocks.sum(axis=1) / BLOCK / step).astype(np.int64)
  residual = blocks - blocks.mean(axis=1, keepdims=True)
  coefficients = np.einsum("kdp,np->nkd", book.bases, residual)
  used = np.arange(book.bases.shape[1]) < dims[:, None]  # (K, 63)
  q = quantize(coefficients, step) * used
  lost = np.sum(residual**2, axis=1)[:, None] - np.sum(coefficients**2 * used, axis=2)
  error = lost + np.sum((coefficients - q * step)**2 * used, axis=2)
  indexes = book.class_indexes(step)
  bits = np.stack([np.sum(_bits(indexes[:, g], q) * used, axis=2) for g in range(len(book.gains))], axis=2)
  if book.classes > 1:
    bits = bits + (PRECISION - np.log2(book.id_freqs[0])).reshape(bits.shape[1:])
  cost = error[:, :, None] + RD_LAMBDA * step**2 * bits
  classes = np.argmin(cost.reshape(len(blocks), -1), axis=1)
  bases = classes // len(book.gains)
  chosen = q[np.arange(len(classes)), bases]
  return classes, q0, [chosen[n, :dims[k]] for n, k in enumerate(bases)]


def reconstruct_subspaces(book: SubspaceBook, classes, q0, coefficients, step: float) -> np.ndarray:
  blocks = np.repeat((q0 * step / BLOCK)[:, None], BLOCK * BLOCK, axis=1).astype(np.float64)
  bases = classes // len(book.gains)
  for k in np.unique(bases):
    where = np.nonzero(bases == k)[0]
    chosen = np.stack([coefficients[n] for n in where])
    blocks[where] += (chosen * step) @ book.bases[k, :chosen.shape[1]]
  return blocks


class _PlaneCoder:
  """One plane: the encoder's symbols (``choose``), their streams and back (``encode`` / ``decode``), and the pixels
  they stand for (``pixels``, shared by the decoder and ``PatchCodec.reconstruct``). Symbols are (classes, q) for a
  cone book and (classes, DCs, each block's coefficients) for a subspace book."""

  def __init__(self, book, step: float, full: bool, signed: GaussianTables, folded: GaussianTables):
    self.book, self.step, self.full = book, step, full
    self.signed, self.folded = signed, folded

  def choose(self, plane: np.ndarray) -> tuple:
    blocks = to_blocks(plane)
    if isinstance(self.book, ConeBook):
      # A block stops once its residual is as small as the quantiser's own noise (Δ/√12 a pixel): further atoms
      # would cost bits to fit what rounding undoes.
      weights = fcmp_codes(self.book.atoms.T, blocks.T, self.book.steps, tol=self.step * BLOCK / np.sqrt(12)).T
      q = np.floor(weights / self.step + 0.5).astype(np.int64)
      return cone_classes(self.book, q, self.step), q
    return encode_subspaces(self.book, blocks, self.step, self.full)

  def pixels(self, symbols: tuple, plane_shape) -> np.ndarray:
    if isinstance(self.book, ConeBook):
      _, q = symbols
      return from_blocks((q * self.step) @ self.book.atoms, plane_shape)
    return from_blocks(reconstruct_subspaces(self.book, *symbols, self.step), plane_shape)

  def encode(self, symbols: tuple, plane_shape) -> tuple[list[bytes], list[np.ndarray]]:
    """-> (streams, the symbols as the file's check covers them)."""
    if isinstance(self.book, ConeBook):
      classes, q = symbols
      data = self.folded.encode(q, self.book.class_indexes(self.step)[classes])
      return [self._encode_classes(classes), b"", data], [classes, q]
    ids, q0, coefficients = symbols
    diff = dc_differences(q0.reshape(grid(plane_shape)))
    dc_data = self.signed.encode(diff, np.full(diff.shape, self._dc_index()))
    flat = np.concatenate(coefficients) if coefficients else np.zeros(0, np.int64)
    ac_data = self.signed.encode(flat, self._ac_indexes(ids))
    return [self._encode_classes(ids), dc_data, ac_data], [ids, diff.reshape(-1), flat]

  def _encode_classes(self, classes) -> bytes:
    if self.book.classes == 1:
      return b""
    encoder = Encoder()
    encoder.put_table(classes, self.book.id_freqs[0])
    return encoder.finish()

  def _decode_classes(self, data: bytes, count: int) -> np.ndarray:
    if self.book.classes == 1:
      _expect_empty(data, "class")
      return np.zeros(count, np.int64)
    return Decoder(data).get_table(count, self.book.id_freqs[0]).astype(np.int64)  # K·G symbols: every one a class

  def decode(self, streams, plane_shape) -> tuple[tuple, list[np.ndarray]]:
    """-> (symbols, the symbols as the file's check covers them)."""
    rows, columns = grid(plane_shape)
    ids = self._decode_classes(streams[0], rows * columns)
    if isinstance(self.book, ConeBook):
      _expect_empty(streams[1], "DC")
      q = self.folded.decode(streams[2], self.book.class_indexes(self.step)[ids]).astype(np.int64)
      return (ids, q), [ids, q]
    diff = self.signed.decode(streams[1], np.full((rows, columns), self._dc_index())).astype(np.int64)
    flat = self.signed.decode(streams[2], self._ac_indexes(ids)).astype(np.int64)
    dims = self.book.coded_dims(self.full)[ids // len(self.book.gains)]
    coefficients = np.split(flat, np.cumsum(dims)[:-1])
    return (ids, dc_from_differences(diff).reshape(-1), coefficients), [ids, diff.reshape(-1), flat]

  def _dc_index(self) -> int:
    return int(scale_indexes(np.float32(self.book.dc_scale) / np.float32(self.step)))

  def _ac_indexes(self, classes) -> np.ndarray:
    dims = self.book.coded_dims(self.full)
    table = self.book.class_indexes(self.step)
    gains = len(self.book.gains)
    return np.concatenate([table[c // gains, c % gains, :dims[c // gains]] for c in classes]) if len(classes) else (
        np.zeros(0, np.int64))

  def min_bits(self, plane_shape) -> float:
    """The fewest bits this plane's streams can hold: every block at its cheapest class, with its DC and every
    coefficient at its likeliest symbol."""
    tables = self.folded if isinstance(self.book, ConeBook) else self.signed
    floor = PRECISION - np.log2([f.max() for f in tables.freqs])  # per ladder table
    per_class = floor[self.book.class_indexes(self.step)]  # (K, G, 63) or (G, A)
    if isinstance(self.book, ConeBook):
      per_block = per_class.sum(axis=-1).min()
    else:
      kept = np.arange(per_class.shape[-1]) < self.book.coded_dims(self.full)[:, None, None]
      per_block = (per_class * kept).sum(axis=-1).min() + floor[self._dc_index()]
    if self.book.classes > 1:
      per_block += PRECISION - np.log2(self.book.id_freqs.max())
    return float(np.prod(grid(plane_shape)) * per_block)


class PatchCodec(Codec):
  """Three planes, each coded by ``_PlaneCoder`` with its book; the weights id hashes the books and tables."""

  guarantee = "shipped-tables"

  def __init__(self, name: str, path: Path, step: float, full: bool = False):
    super().__init__(name, lossless=False)
    path = Path(path)
    self.kind, self.books = load_books(path)
    # Decoding holds a few float64 copies of every plane's blocks: 2**25 pixels (e.g. 8192×4096) is ~2 GB. A cone
    # book holds ~97 weights a block (as int64 and float64) where a subspace book holds 64 values: 2**23 for it.
    self.max_pixels = 1 << 23 if self.kind == "cone" else 1 << 25
    signed, folded = coding_tables(path.parent, False), coding_tables(path.parent, True)
    self.weights_id = hashlib.blake2b(path.read_bytes() + (path.parent / "tables.npz").read_bytes(),
                                      digest_size=bitstream.WEIGHTS_ID_BYTES).digest()
    self.coders = [_PlaneCoder(self.books[plane], step, full, signed, folded) for plane in PLANES]

  def encode_streams(self, image):
    streams, checked = [], []
    for coder, plane in zip(self.coders, to_planes(image)):
      data, coded = coder.encode(coder.choose(plane), plane.shape)
      streams += data
      checked += coded
    return streams, _symbols_check(checked)

  def reconstruct(self, image) -> np.ndarray:
    """The image the encoder expects the decoder to return (what a file round trip must equal)."""
    image = np.asarray(image)
    return from_planes([coder.pixels(coder.choose(plane), plane.shape)
                        for coder, plane in zip(self.coders, to_planes(image))], image.shape)

  def decode_streams(self, streams, shape):
    bitstream.expect_streams(streams, STREAMS_PER_PLANE * len(PLANES), self.name)
    planes, checked = [], []
    for i, (coder, plane_shape) in enumerate(zip(self.coders, plane_shapes(shape))):
      symbols, coded = coder.decode(streams[i * STREAMS_PER_PLANE:(i + 1) * STREAMS_PER_PLANE], plane_shape)
      planes.append(coder.pixels(symbols, plane_shape))
      checked += coded
    return from_planes(planes, shape), _symbols_check(checked)

  def check_claim(self, streams, shape):
    bits = 8 * sum(len(s) for s in streams) + 64 * len(streams)  # a range coder's last word
    need = sum(coder.min_bits(plane_shape) for coder, plane_shape in zip(self.coders, plane_shapes(shape)))
    if bits < need:
      raise BitstreamError(f"{self.name}: {sum(len(s) for s in streams)} payload bytes cannot hold a "
                           f"{shape[1]}x{shape[0]} image (at least {need / 8:.0f} bytes)")


def _expect_empty(data: bytes, what: str) -> None:
  if data:
    raise BitstreamError(f"patch codec: this book codes no {what} stream, but the file holds {len(data)} bytes of one")


def _symbols_check(symbols) -> int:
  return bitstream.crc32(np.concatenate([np.asarray(s, np.int64).reshape(-1) for s in symbols]))


# ---------------------------------------------------------------------------------------------- zoo entries

ENTRIES = []  # collected by compzoo/zoo.py
STEPS = (112, 80, 56, 40, 28, 20, 14, 10)  # about 0.15 to 2 bpp on Kodak


def _entry(name, description, book_file, extra=None, steps=STEPS):
  params = {"step": Param(float, 20.0, 1.0, 255.0), **(extra or {})}

  def build(canonical, step, dims="support"):
    return PatchCodec(canonical, BOOKS / book_file, step, full=dims == "full")
  ENTRIES.append(ZooEntry(name, description, False, build, params, tuple({"step": s} for s in steps),
                          kind="fitted", family=name, declared_guarantee="shipped-tables"))


_entry("patch-ssc", "8×8 YCbCr blocks on SSC-MP subspaces' PCA bases (dims: SSC-MP support sizes, or full)",
       "ssc.npz", {"dims": Choice(("support", "full"), "support")})
_entry("patch-kmeans", "8×8 YCbCr blocks on k-means clusters' PCA bases (the control for SSC-MP's clusters)",
       "kmeans.npz")
_entry("patch-pca", "8×8 YCbCr blocks on one global PCA basis (the control for any clustering)", "pca.npz")
_entry("patch-nonneg", "8×8 YCbCr blocks as FCMP weights on a non-negative dictionary (no sign, no DC)",
       "nonneg.npz", steps=STEPS[::2])  # a block's pursuit runs up to 32 NNLS fits: the slowest encoder here
