"""Recurrent iterative refinement of JPEG (Ororbia & Mali, "Learned neural iterative decoding for lossy
image compression systems", DCC 2019; the credit-rule study of Mali, Ororbia, Kifer & Giles, 2022).

The bitstream is a baseline JPEG, untouched (``jpeg-refine:quality=Q`` files hold the bytes of
``jpeg:quality=Q``); the decoder is a recurrent network that refines libjpeg's pixels block by block:

    JPEG bytes ─libjpeg─> pixels ──8×8 patches, raster order, K sweeps──> refined pixels
    step (patch p, sweep k):  reads  own state (sweep k-1), above + left (sweep k), below + right (k-1)
                              sees   the 16×16 window of JPEG pixels around p, the quantization's coarseness
                              writes a new state for p; outputs p's pixels = JPEG's + a correction

Patches are the 8×8 luma DCT blocks, so a step's window holds its block and half of each neighbour's (the
blocking and ringing it corrects live there). The window passes four 3×3 valid convolutions down to an 8×8
map of features (receptive field 9×9: the block's pixels and 4 beyond each edge); the quantization enters
as two constant channels and beside the state (log2 of the mean luma and chroma steps, read from the
file's tables, so one network serves every quality; a ``quality_input=False`` model is the ablation). The
state update is gated, h = (1 - u)·h_own + u·tanh(W z), with z = [pooled features, the five read states,
quality]; the correction is a 1×1 convolution of the features modulated by the state (FiLM), and starts at
zero, so an untrained decoder returns JPEG's pixels exactly.

In training, a crop's K·N steps (N patches) run in raster order as one recurrence over N slots
(compzoo/nn/recurrence.py), which is what the credit rules differ on. An optional SAB memory keeps the
state of every ``memory_stride``-th step; entries become visible when their sweep is over. The decoder
runs the same steps wavefront by wavefront: within a sweep, the patches of one anti-diagonal depend only on
the previous diagonal and the previous sweep, so each diagonal is one batched call (K·(rows + cols - 1)
calls, not K·rows·cols), with the window features of all patches computed once.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from compzoo import bitstream, jpeg
from compzoo.errors import UsageError
from compzoo.nn.recurrence import Memory, Unroll, gather_slots, sparse_attention

ARCHITECTURE = "refine"  # the config name of this model (compzoo/models/__init__.py discovers it)

PATCH = jpeg.BLOCK
MARGIN = 4
WINDOW = PATCH + 2 * MARGIN
READS = 5  # own, above, left, below, right
DEFAULT_QUALITY = 50


def patch_grid(rows: int, cols: int) -> tuple[np.ndarray, np.ndarray]:
  """[N, 5] slot indices each patch reads (own, above, left, below, right; -1 outside) and [N, 2] (row, col)."""
  row, col = np.divmod(np.arange(rows * cols), cols)
  index = lambda r, c: np.where((r >= 0) & (r < rows) & (c >= 0) & (c < cols), r * cols + c, -1)
  reads = np.stack([index(row, col), index(row - 1, col), index(row, col - 1), index(row + 1, col),
                    index(row, col + 1)], axis=1)
  return reads.astype(np.int32), np.stack([row, col], axis=1)


def windows(images, rows: int, cols: int):
  """[B, H, W, 3] (H = 8·rows, W = 8·cols) -> [B, N, 16, 16, 3]: each patch with a 4-pixel margin (edge
  padding at the image border, as at decoding). A window is 2×2 blocks of the padded image's 8×8 grid."""
  padded = jnp.pad(images, ((0, 0), (MARGIN, MARGIN), (MARGIN, MARGIN), (0, 0)), mode="edge")
  b, c = images.shape[0], images.shape[-1]
  blocks = padded.reshape(b, rows + 1, PATCH, cols + 1, PATCH, c)
  tall = jnp.concatenate([blocks[:, :-1], blocks[:, 1:]], axis=2)  # [b, rows, 16, cols + 1, 8, c]
  square = jnp.concatenate([tall[:, :, :, :-1], tall[:, :, :, 1:]], axis=4)  # [b, rows, 16, cols, 16, c]
  return square.transpose(0, 1, 3, 2, 4, 5).reshape(b, rows * cols, WINDOW, WINDOW, c)


def patches(images, rows: int, cols: int):
  """[B, H, W, C] -> [B, N, 8, 8, C] in raster order."""
  b, _, _, c = images.shape
  grid = images.reshape(b, rows, PATCH, cols, PATCH, c).transpose(0, 1, 3, 2, 4, 5)
  return grid.reshape(b, rows * cols, PATCH, PATCH, c)


def unpatch(grid, rows: int, cols: int):
  """[N, 8, 8, C] -> [8·rows, 8·cols, C]."""
  c = grid.shape[-1]
  return grid.reshape(rows, cols, PATCH, PATCH, c).transpose(0, 2, 1, 3, 4).reshape(rows * PATCH, cols * PATCH, c)


class RefineDecoder(nnx.Module):
  """The recurrent refinement network (module docstring)."""

  LOSSLESS = False
  DECODE_GUARANTEE = "jpeg-bitstream"
  INNER_FORMAT = "jpeg"  # the file's stream is a JPEG: its frame header is checked before libjpeg runs
  MAX_PIXELS = 1 << 25  # window features take 64·features bytes a pixel: 4 GB at 2^25 pixels, features 16

  def __init__(self, features: int = 16, width: int = 16, stages: int = 3, memory_stride: int = 0,
               memory_topk: int = 4, quality_input: bool = True, *, rngs: nnx.Rngs):
    if features < 1 or width < 1 or stages < 1 or memory_stride < 0 or memory_topk < 1:
      raise UsageError(f"refine: features, width, stages, memory_topk >= 1 and memory_stride >= 0 (got "
                       f"{features}, {width}, {stages}, {memory_topk}, {memory_stride})")
    self.features, self.width, self.stages = features, width, stages
    self.memory_stride, self.memory_topk, self.quality_input = memory_stride, memory_topk, quality_input
    conv = functools.partial(nnx.Conv, kernel_size=(3, 3), padding="VALID", rngs=rngs)
    self.encoder = nnx.List([conv(5, features)] + [conv(features, features) for _ in range(3)])
    self.gates = nnx.Linear(2 * features + READS * width + 2, 2 * width, rngs=rngs)
    self.film = nnx.Linear(width, 2 * features, kernel_init=nnx.initializers.zeros_init(), rngs=rngs)
    self.out = nnx.Conv(features, 3, (1, 1), kernel_init=nnx.initializers.zeros_init(), rngs=rngs)

  # The recurrence (compzoo/nn/recurrence.py): what training unrolls and decoding runs in wavefronts.
  def memory(self, patch_count: int) -> Memory | None:
    return Memory(self.memory_stride, self.memory_topk, patch_count) if self.memory_stride else None

  def window_features(self, window, quality):
    """[B, 16, 16, 3] JPEG pixels (0-255), [B, 2] quality -> [B, 8, 8, features]."""
    quality = quality if self.quality_input else jnp.zeros_like(quality)
    planes = jnp.broadcast_to(quality[:, None, None, :], window.shape[:3] + (2,))
    x = jnp.concatenate([(window - 128.0) / 64.0, planes], axis=-1)
    for layer in self.encoder[:-1]:
      x = jax.nn.relu(layer(x))
    return self.encoder[-1](x)

  def cell(self, reads, features, quality):
    """New states [B, width] from the read states [B, 5, width] and the window features."""
    quality = quality if self.quality_input else jnp.zeros_like(quality)
    pooled = jnp.concatenate([jnp.mean(features, axis=(1, 2)), jnp.max(features, axis=(1, 2))], axis=-1)
    z = jnp.concatenate([pooled, reads.reshape(reads.shape[0], -1), quality], axis=-1)
    gate, candidate = jnp.split(self.gates(z), 2, axis=-1)
    gate = jax.nn.sigmoid(gate)
    return (1.0 - gate) * reads[:, 0] + gate * jnp.tanh(candidate)

  def correct(self, state, features, base):
    """The patch's pixels [B, 8, 8, 3]: JPEG's ``base`` plus a correction read from the features under the
    state's modulation."""
    scale, shift = jnp.split(self.film(state), 2, axis=-1)
    hidden = jax.nn.relu(features * (1.0 + scale[:, None, None]) + shift[:, None, None])
    return base + 16.0 * self.out(hidden)

  def update(self, reads, inputs):
    features = self.window_features(inputs["window"], inputs["quality"])
    return self.cell(reads, features, inputs["quality"]), features

  def readout(self, state, features, inputs):
    return self.correct(state, features, inputs["window"][:, MARGIN:-MARGIN, MARGIN:-MARGIN])

  def unroll(self, batch) -> Unroll:
    """A batch (``image``: originals, ``jpeg``: their JPEG pixels, ``jpeg_quality``: [B, 2], crops a
    multiple of 8) as K sweeps of N patch steps in raster order."""
    images = jnp.asarray(batch["image"], jnp.float32)
    decoded = jnp.asarray(batch["jpeg"], jnp.float32)
    b, height, width, _ = images.shape
    if height % PATCH or width % PATCH:
      raise UsageError(f"refine trains on crops a multiple of {PATCH} pixels, got {height}x{width}")
    rows, cols = height // PATCH, width // PATCH
    count = rows * cols
    reads, _ = patch_grid(rows, cols)
    tile = lambda x: jnp.tile(x, (1, self.stages) + (1,) * (x.ndim - 2))
    window = tile(windows(decoded, rows, cols))
    quality = jnp.broadcast_to(jnp.asarray(batch["jpeg_quality"], jnp.float32)[:, None], (b, self.stages * count, 2))
    return Unroll(inputs={"window": window, "quality": quality}, targets=tile(patches(images, rows, cols)),
                  reads=np.tile(reads, (self.stages, 1)), writes=np.tile(np.arange(count, dtype=np.int32), self.stages),
                  stages=np.repeat(np.arange(self.stages), count), slots=count, width=self.width,
                  memory=self.memory(count), baseline=tile(patches(decoded, rows, cols)))

  # Decoding: the same steps, a wavefront at a time.
  def refine(self, decoded: np.ndarray, quality: np.ndarray) -> np.ndarray:
    """JPEG pixels (uint8 H×W×3, any size) and quality features -> refined float pixels H×W×3."""
    height, width = decoded.shape[:2]
    padded = np.pad(decoded, ((0, -height % PATCH), (0, -width % PATCH), (0, 0)), mode="edge")
    rows, cols = padded.shape[0] // PATCH, padded.shape[1] // PATCH
    graphdef, state = nnx.split(self)
    refined = _refine_fn(graphdef, rows, cols)(state, jnp.asarray(padded, jnp.float32),
                                               jnp.asarray(quality, jnp.float32))
    return np.asarray(refined)[:height, :width]

  def _wavefronts(self, features, quality, base, rows: int, cols: int):
    """All K sweeps over [N, 8, 8, F] window features: the last sweep's pixels [N, 8, 8, 3]."""
    count = rows * cols
    reads, where = patch_grid(rows, cols)
    lanes = min(rows, cols)
    diagonals = rows + cols - 1
    order = np.full((self.stages * diagonals, lanes), count, np.int32)  # count: an idle lane
    for stage in range(self.stages):
      for d in range(diagonals):
        members = np.flatnonzero(where.sum(axis=1) == d)
        order[stage * diagonals + d, :len(members)] = members
    stage_of = np.repeat(np.arange(self.stages), diagonals)
    memory = self.memory(count)
    entries = memory.entries(self.stages * count) if memory else 0
    reads = jnp.asarray(np.concatenate([reads, np.full((1, READS), -1, np.int32)]))  # the idle lane reads zeros
    features = jnp.concatenate([features, jnp.zeros_like(features[:1])])
    base = jnp.concatenate([base, jnp.zeros_like(base[:1])])

    def wave(carry, plan):
      slots, kept, pixels = carry
      members, stage = plan
      active = members < count
      state = self.cell(gather_slots(slots, reads[members]), features[members],
                        jnp.broadcast_to(quality, (lanes, 2)))
      t = stage * count + members
      if memory is not None:  # a wavefront lies in one sweep: it sees the entries of the sweeps before
        visible = memory.visible(stage * count, entries)
        new_kept, state = state, state + sparse_attention(state, kept[:entries], visible, memory.topk)
        is_kept, entry = memory.kept(t)
        kept = kept.at[jnp.where(is_kept & active, entry, entries)].set(new_kept)
      pixels = pixels.at[members].set(self.correct(state, features[members], base[members]))
      return (slots.at[members].set(state), kept, pixels), None

    init = (jnp.zeros((count + 1, self.width)), jnp.zeros((entries + 1, self.width)), jnp.zeros_like(base))
    (_, _, pixels), _ = jax.lax.scan(wave, init, (jnp.asarray(order), jnp.asarray(stage_of)))
    return pixels[:count]

  # CodingModel: the stream is the JPEG itself.
  def coding_tables(self):
    return None

  def prepare_coding(self, tables, quality: int = DEFAULT_QUALITY) -> dict:
    """The encoder's JPEG quality (the zoo entry's option, from the codec name); decoding needs nothing."""
    return {"quality": quality}

  def encode_image(self, image, prepared):
    data = jpeg.encode(image, prepared["quality"])
    return [data], bitstream.crc32(jpeg.decode(data))  # the check: libjpeg's pixels, before refinement

  def decode_image(self, streams, shape, prepared):
    bitstream.expect_streams(streams, 1, "jpeg-refine")
    decoded = jpeg.decode(streams[0], shape, codec="jpeg-refine")
    check = bitstream.crc32(decoded)
    quality = jpeg.quality_features(jpeg.quantization_tables(streams[0]))
    return np.clip(np.round(self.refine(decoded, quality)), 0, 255).astype(np.uint8), check

  def min_stream_bits(self, shape, prepared) -> float:
    """A JPEG spends at least one bit on every 8×8 luma block (its DC difference)."""
    return -(-shape[0] // PATCH) * -(-shape[1] // PATCH)


@functools.lru_cache(maxsize=8)
def _refine_fn(graphdef, rows: int, cols: int):
  """Jitted decoding for one padded size: window features of every patch at once, then the wavefronts."""
  def run(state, padded, quality):
    model = nnx.merge(graphdef, state)
    cut = windows(padded[None], rows, cols)[0]
    quality = jnp.broadcast_to(quality, (cut.shape[0], 2))
    one = lambda window, q: model.window_features(window[None], q[None])[0]  # lax.map vmaps it over chunks
    features = jax.lax.map(lambda pair: one(*pair), (cut, quality), batch_size=1024)
    base = patches(padded[None], rows, cols)[0]
    pixels = model._wavefronts(features, quality[0], base, rows, cols)
    return unpatch(pixels, rows, cols)

  return jax.jit(run)


def build(features: int = 16, width: int = 16, stages: int = 3, memory_stride: int = 0, memory_topk: int = 4,
          quality_input: bool = True, *, rngs: nnx.Rngs) -> RefineDecoder:
  return RefineDecoder(features, width, stages, memory_stride, memory_topk, quality_input, rngs=rngs)
