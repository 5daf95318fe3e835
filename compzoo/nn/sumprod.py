"""Sum-product layers with a multiplication budget (StrassenNets: Tschannen, Khanna & Anandkumar, ICML 2018).

A product C = A·B is written as a 2-layer sum-product network, vec(C) = W_c[(W_b vec(B)) ⊙ (W_a vec(A))], whose
hidden width r is the number of multiplications; W_a, W_b, W_c are ternary ({-1, 0, 1} times one scale), so
applying them costs additions only. In a layer, A is the weight: W_a vec(A) is learned directly as a vector ã of r
numbers, and y = W_c (ã ⊙ (W_b x)).

Weights train in one of three ``MODES`` (the paper's schedule): ``"full"`` precision, then ``"ternary"`` (TWN
ternarisation, straight-through), then ``"frozen"`` (W_b, W_c fixed at their ternary values while ã and the rest
train). ``OpCount`` counts multiplications and additions exactly, for these layers and for plain ones, so plain and
sum-product networks are counted alike.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from compzoo.errors import UsageError

MODES = ("full", "ternary", "frozen")
TWN_THRESHOLD = 0.7  # a weight is non-zero when |w| > 0.7·mean|w| (Li & Liu's ternary weight networks)
SCALE_LIMIT = 100.0  # ã is clipped to [0, 100], as the official code does


def ternary_levels(w) -> tuple[np.ndarray, float]:
  """TWN: w ≈ α·t with t = sign(w) where |w| > 0.7·mean|w| (else 0) and α the mean |w| of those -> (t, α)."""
  w = np.asarray(w)  # in the weights' own dtype, as ``ternarize`` thresholds them
  magnitude = np.abs(w)
  kept = magnitude > TWN_THRESHOLD * magnitude.mean()
  alpha = float(magnitude[kept].mean()) if kept.any() else 0.0
  return (np.sign(w) * kept).astype(np.int8), alpha


def ternarize(w):
  """α·t of ``ternary_levels`` in the forward pass, the identity in the backward one (straight-through)."""
  magnitude = jnp.abs(w)
  kept = magnitude > TWN_THRESHOLD * jnp.mean(magnitude)
  alpha = jnp.sum(magnitude * kept) / jnp.maximum(jnp.sum(kept), 1)
  return w + jax.lax.stop_gradient(alpha * jnp.sign(w) * kept - w)


def round_ternary(w):
  """w rounded into {-1, 0, 1} with no scale, straight-through: for exact integer algorithms (Strassen's)."""
  return w + jax.lax.stop_gradient(jnp.clip(jnp.round(w), -1, 1) - w)


def ternary_penalty(w):
  """Σ w²(w² − 1)²: zero exactly at -1, 0 and 1, so an annealed weight on it pulls a full-precision solution
  along its symmetries to a ternary one."""
  return jnp.sum(jnp.square(w) * jnp.square(jnp.square(w) - 1.0))


@dataclasses.dataclass(frozen=True)
class OpCount:
  """Multiplications and additions (per sample), and parameters."""

  multiplications: int = 0
  additions: int = 0
  parameters: int = 0

  def __add__(self, other: "OpCount") -> "OpCount":
    if not isinstance(other, OpCount):
      return NotImplemented
    return OpCount(self.multiplications + other.multiplications, self.additions + other.additions,
                   self.parameters + other.parameters)

  def __radd__(self, other) -> "OpCount":
    return self if other == 0 else NotImplemented  # so sum(layer.ops() for ...) works


def sum_additions(matrix) -> int:
  """Additions to apply a matrix whose rows are summed: Σ over rows of (non-zeros − 1), rows with none free."""
  nonzero = np.count_nonzero(np.asarray(matrix).reshape(np.shape(matrix)[0], -1), axis=1)
  return int(np.maximum(nonzero - 1, 0).sum())


def dense_ops(inputs: int, outputs: int, bias: bool = True) -> OpCount:
  return OpCount(inputs * outputs, (inputs - 1 + bias) * outputs, inputs * outputs + bias * outputs)


def conv_ops(out_height: int, out_width: int, kernel: int, inputs: int, outputs: int, bias: bool = True) -> OpCount:
  """A dense k×k convolution producing out_height × out_width × outputs values."""
  taps = kernel * kernel * inputs
  positions = out_height * out_width * outputs
  return OpCount(positions * taps, positions * (taps - 1 + bias), taps * outputs + bias * outputs)


def transposed_conv_ops(in_height: int, in_width: int, kernel: int, stride: int, inputs: int, outputs: int,
                        bias: bool = True) -> OpCount:
  """A k×k transposed convolution of stride s as a scatter computes it: every input value times every tap (the
  products that land in a 'SAME' layer's cropped border included); additions: products minus kept outputs, an
  upper bound that also charges the cropped border's sums (about 1% over the exact count at the sizes decoded
  here)."""
  products = in_height * in_width * kernel * kernel * inputs * outputs
  values = in_height * stride * in_width * stride * outputs
  return OpCount(products, products - values + bias * values, kernel * kernel * inputs * outputs + bias * outputs)


def gdn_ops(height: int, width: int, channels: int) -> OpCount:
  """(Inverse) GDN over height × width positions: per position C squares, the C×C γ product, and C products
  of x with the root (C square roots are neither, and not counted); parameters γ and β."""
  positions = height * width
  return OpCount(positions * (channels * channels + 2 * channels), positions * channels * channels,
                 channels * channels + channels)


def ternary_expansion(w, terms: int) -> tuple[np.ndarray, np.ndarray]:
  """w ≈ Σ_j α_j ⊙ t_j, greedily: t_j is the TWN level pattern of what the earlier terms left, per output channel
  (the last axis), and α_j ≥ 0 its per-channel scale. -> (t: terms × w.shape in {-1, 0, 1}, α: terms × outputs).
  A plain layer becomes a ternary sum-product layer with terms × outputs multiplications per position."""
  _positive(terms)
  residual = np.asarray(w, np.float64).reshape(-1, np.shape(w)[-1])
  levels, scales = [], []
  for _ in range(terms):
    magnitude = np.abs(residual)
    kept = magnitude > TWN_THRESHOLD * magnitude.mean(axis=0)
    alpha = (magnitude * kept).sum(axis=0) / np.maximum(kept.sum(axis=0), 1)
    t = (np.sign(residual) * kept).astype(np.int8)
    residual = residual - alpha * t
    levels.append(t.reshape(np.shape(w)))
    scales.append(alpha)
  return np.stack(levels), np.stack(scales).astype(np.float32)


def check_mode(mode: str) -> str:
  if mode not in MODES:
    raise UsageError(f"unknown sum-product mode {mode!r}; use one of {', '.join(MODES)}")
  return mode


def applied(w_b, w_c, mode: str):
  """(W_b, W_c) as ``mode`` applies them. "frozen" stops their gradients; a training loop must also keep its
  optimizer's momentum and weight decay off them in that stage: build the optimizer ``wrt=TRAINABLE["frozen"]``."""
  if check_mode(mode) == "full":
    return w_b, w_c
  w_b, w_c = ternarize(w_b), ternarize(w_c)
  if mode == "frozen":
    return jax.lax.stop_gradient(w_b), jax.lax.stop_gradient(w_c)
  return w_b, w_c


# What an optimizer updates in each mode: everything, or (frozen) every parameter but the ternary W_b and W_c.
TRAINABLE = {"full": nnx.Param, "ternary": nnx.Param,
             "frozen": nnx.All(nnx.Param, nnx.Not(nnx.Any(nnx.PathContains("w_b"), nnx.PathContains("w_c"))))}


def set_mode(model: nnx.Module, mode: str) -> nnx.Module:
  """Every sum-product layer of ``model`` to ``mode`` (the schedule's stage)."""
  check_mode(mode)
  for _, module in nnx.iter_modules(model):
    if isinstance(module, (SumProdDense, SumProdConv)):
      module.mode = mode
  return model


def _hidden_norm(hidden: int, norm: bool, rngs: nnx.Rngs):
  """Batch norm on the hidden units (the official code's), no scale of its own: ã is one. At inference its scale
  folds into ã and its shift, through W_c, into an output bias per block position (p²·C_out numbers, which ``ops``
  counts as the layer's bias), so it costs no operation of its own."""
  return nnx.BatchNorm(hidden, use_scale=False, rngs=rngs) if norm else None


def _positive(*sizes) -> None:
  if not all(isinstance(n, (int, np.integer)) and n >= 1 for n in sizes):
    raise UsageError(f"sizes must be positive integers, got {sizes}")


class SumProdDense(nnx.Module):
  """y = W_c (ã ⊙ (W_b x)) + bias: ``hidden`` multiplications per input vector once W_b and W_c are ternary."""

  def __init__(self, inputs: int, outputs: int, hidden: int, *, rngs: nnx.Rngs, mode: str = "full",
               bias: bool = True, norm: bool = False):
    check_mode(mode)
    _positive(inputs, outputs, hidden)
    self.norm = _hidden_norm(hidden, norm, rngs)
    init = nnx.initializers.variance_scaling(1.0, "fan_in", "normal", in_axis=-1, out_axis=-2)  # (out, in)
    self.w_b = nnx.Param(init(rngs.params(), (hidden, inputs)))
    self.w_c = nnx.Param(init(rngs.params(), (outputs, hidden)))
    self.scale = nnx.Param(jnp.ones((hidden,)))
    self.bias = nnx.Param(jnp.zeros((outputs,))) if bias else None
    self.mode = mode

  def __call__(self, x):
    if np.shape(x)[-1:] != self.w_b.shape[1:]:
      raise UsageError(f"SumProdDense takes inputs of {self.w_b.shape[1]} features, got shape {np.shape(x)}")
    w_b, w_c = applied(self.w_b[...], self.w_c[...], self.mode)
    hidden = x @ w_b.T
    if self.norm is not None:
      hidden = self.norm(hidden)
    y = (hidden * jnp.clip(self.scale[...], 0.0, SCALE_LIMIT)) @ w_c.T
    return y if self.bias is None else y + self.bias[...]

  def ops(self) -> OpCount:
    """Per input vector, bias additions included. Ternary: as deployed, the r products ã ⊙ (W_b x) with the TWN
    scales folded into ã; full precision: as computed, W_b, the ã product and W_c."""
    check_mode(self.mode)
    hidden, inputs = self.w_b.shape
    outputs = self.w_c.shape[0]
    bias = self.bias is not None or self.norm is not None  # the norm's shift folds into an output bias
    parameters = hidden * (inputs + outputs + 1) + bias * outputs
    if self.mode == "full":
      return OpCount(hidden * inputs + hidden + outputs * hidden,
                     hidden * (inputs - 1) + outputs * (hidden - 1 + bias), parameters)
    t_b, _ = ternary_levels(self.w_b[...])
    t_c, _ = ternary_levels(self.w_c[...])
    return OpCount(hidden, sum_additions(t_b) + sum_additions(t_c) + bias * outputs, parameters)


class SumProdConv(nnx.Module):
  """A k×k convolution (stride s, 'SAME' padding, NHWC) as a sum-product network over p×p blocks of outputs:
  W_b is a convolution of kernel (p − 1)·s + k and stride p·s to ``hidden`` channels, ã scales them, and W_c (a
  p×p transposed convolution of stride p) spreads each hidden vector over its block's p×p outputs. ``hidden``
  multiplications per block of p² output positions (all output channels) once W_b and W_c are ternary. Height
  and width must be multiples of p·s."""

  def __init__(self, inputs: int, outputs: int, kernel: int, hidden: int, block: int, *, rngs: nnx.Rngs,
               stride: int = 1, mode: str = "full", bias: bool = True, norm: bool = False):
    check_mode(mode)
    _positive(inputs, outputs, kernel, hidden, block, stride)
    self.norm = _hidden_norm(hidden, norm, rngs)
    self.kernel, self.block, self.stride, self.mode = kernel, block, stride, mode
    self.window = (block - 1) * stride + kernel
    self.w_b = nnx.Param(nnx.initializers.variance_scaling(1.0, "fan_in", "normal")(
        rngs.params(), (self.window, self.window, inputs, hidden)))
    # Each output sums its block's r hidden values only: fan-in r (the p×p taps never overlap).
    self.w_c = nnx.Param(nnx.initializers.variance_scaling(1.0, "fan_in", "normal", in_axis=2, out_axis=(0, 1, 3))(
        rngs.params(), (block, block, hidden, outputs)))
    self.scale = nnx.Param(jnp.ones((hidden,)))
    self.bias = nnx.Param(jnp.zeros((outputs,))) if bias else None

  def load_plain(self, kernel, bias=None, terms: int = 1) -> "SumProdConv":
    """Makes this layer the ternary expansion (``ternary_expansion``, ``terms`` terms) of a plain 'SAME'
    convolution (k×k×in×out, this layer's geometry): hidden unit (term, dy, dx, o) holds the term's levels at
    offset (dy, dx)·s in its window, ã its scale, and W_c sends it to output o of block position (dy, dx). With
    one term per (dy, dx, o) the layer's ternary form is exactly the expansion: a warm start from a trained plain
    layer (distillation's teacher), at terms·out multiplications per output position."""
    if self.norm is not None:
      raise UsageError("load_plain needs a layer without hidden batch norm: the norm would rescale the expansion")
    p, s, k = self.block, self.stride, self.kernel
    window, _, inputs, hidden = self.w_b.shape
    outputs = self.w_c.shape[-1]
    if np.shape(kernel) != (k, k, inputs, outputs) or hidden != terms * p * p * outputs:
      raise UsageError(f"a plain {k}×{k}×{inputs}×{outputs} kernel in {terms} terms needs hidden = "
                       f"{terms * p * p * outputs}; this layer has {hidden} and the kernel is {np.shape(kernel)}")
    levels, alphas = ternary_expansion(kernel, terms)
    w_b = np.zeros(self.w_b.shape, np.float32)
    w_c = np.zeros(self.w_c.shape, np.float32)
    scale = np.zeros((hidden,), np.float32)
    for j, dy, dx, o in np.ndindex(terms, p, p, outputs):
      unit = ((j * p + dy) * p + dx) * outputs + o
      w_b[dy * s:dy * s + k, dx * s:dx * s + k, :, unit] = levels[j, ..., o]
      w_c[dy, dx, unit, o] = 1.0
      scale[unit] = alphas[j, o]
    self.w_b[...], self.w_c[...], self.scale[...] = jnp.asarray(w_b), jnp.asarray(w_c), jnp.asarray(scale)
    if bias is not None:
      if self.bias is None:
        raise UsageError("load_plain got a bias for a sum-product layer built without one")
      self.bias[...] = jnp.asarray(bias, jnp.float32)
    return self

  def _padding(self, size: int) -> tuple[int, int]:
    """Where plain 'SAME' padding puts output i's window, block by block: the left pad, and the right pad that
    gives size / (p·s) windows."""
    hop = self.block * self.stride
    if size % hop:
      raise UsageError(f"a sum-product convolution with block {self.block} and stride {self.stride} needs sides "
                       f"that are multiples of {hop}, got {size}")
    low = max(self.kernel - self.stride, 0) // 2  # as XLA's 'SAME': the total pad k − s, the smaller half first
    return low, max(0, (size // hop - 1) * hop + self.window - low - size)

  def __call__(self, x):
    if np.ndim(x) != 4 or np.shape(x)[-1] != self.w_b.shape[2]:
      raise UsageError(f"SumProdConv takes NHWC inputs of {self.w_b.shape[2]} channels, got shape {np.shape(x)}")
    w_b, w_c = applied(self.w_b[...], self.w_c[...], self.mode)
    padding = [self._padding(x.shape[1]), self._padding(x.shape[2])]
    if self.block == 1 and self.norm is None and self._folding_is_cheaper(x.shape):
      # With 1×1 blocks and no batch norm the layer is linear in x: one k×k kernel W_b·diag(ã)·W_c computes the
      # same function with fewer operations on this hardware (``ops`` counts the sum-product form, as deployed
      # on adder-rich hardware). Training and decoding then cost what a plain convolution costs.
      kernel = jnp.einsum("hwir,r,or->hwio", w_b, jnp.clip(self.scale[...], 0.0, SCALE_LIMIT), w_c[0, 0].T)
      y = jax.lax.conv_general_dilated(x, kernel, (self.stride,) * 2, padding,
                                       dimension_numbers=("NHWC", "HWIO", "NHWC"))
      return y if self.bias is None else y + self.bias[...]
    hidden = jax.lax.conv_general_dilated(
        x, w_b, (self.block * self.stride,) * 2, padding, dimension_numbers=("NHWC", "HWIO", "NHWC"))
    if self.norm is not None:
      hidden = self.norm(hidden)
    hidden = hidden * jnp.clip(self.scale[...], 0.0, SCALE_LIMIT)
    batch, rows, columns, _ = hidden.shape
    y = jnp.einsum("nhwr,abro->nhawbo", hidden, w_c).reshape(batch, rows * self.block, columns * self.block, -1)
    return y if self.bias is None else y + self.bias[...]

  def _folding_is_cheaper(self, shape) -> bool:
    """Whether computing W_b·diag(ã)·W_c once and convolving with it costs fewer multiplications than the
    factored layer on an input of ``shape`` (NHWC): the choice of a fast path, not of the function."""
    window, _, inputs, hidden = self.w_b.shape
    outputs = self.w_c.shape[-1]
    positions = shape[0] * (shape[1] // self.stride) * (shape[2] // self.stride)
    factored = positions * (window * window * inputs * hidden + hidden * outputs)
    folded = window * window * inputs * hidden * outputs + positions * window * window * inputs * outputs
    return folded < factored

  def ops(self, in_height: int, in_width: int) -> OpCount:
    """Per input image of in_height × in_width (the output's sides times the stride), bias additions included;
    ternary as deployed (TWN scales folded into ã), full precision as computed."""
    check_mode(self.mode)
    _positive(in_height, in_width)
    for side in (in_height, in_width):
      self._padding(side)  # sides must be whole blocks
    window, _, inputs, hidden = self.w_b.shape
    outputs = self.w_c.shape[-1]
    bias = self.bias is not None or self.norm is not None
    blocks = (in_height // (self.block * self.stride)) * (in_width // (self.block * self.stride))
    # Deployed, a hidden norm's shift reaches each block position differently through W_c: p²·C_out biases.
    bias_parameters = (self.block**2 if self.norm is not None else 1) * outputs * bias
    parameters = window * window * inputs * hidden + hidden + self.block**2 * hidden * outputs + bias_parameters
    outputs_per_block = self.block**2 * outputs
    if self.mode == "full":
      taps = window * window * inputs
      return OpCount(blocks * (hidden * taps + hidden + outputs_per_block * hidden),
                     blocks * (hidden * (taps - 1) + outputs_per_block * (hidden - 1 + bias)), parameters)
    t_b, _ = ternary_levels(self.w_b[...])
    t_c, _ = ternary_levels(self.w_c[...])
    per_block = sum_additions(np.moveaxis(t_b, 3, 0)) + sum_additions(np.moveaxis(t_c, 2, 3).reshape(-1, hidden))
    return OpCount(blocks * hidden, blocks * (per_block + bias * outputs_per_block), parameters)


# ------------------------------------------------------------------------------------ products of matrices

def matmul_tensor(n: int) -> np.ndarray:
  """T[i, j, k] = 1 where vec(A)_i · vec(B)_j is a term of vec(A·B)_k (n×n, row-major vec)."""
  tensor = np.zeros((n * n,) * 3, np.int64)
  for row in range(n):
    for inner in range(n):
      for column in range(n):
        tensor[row * n + inner, inner * n + column, row * n + column] = 1
  return tensor


def spn_tensor(w_a, w_b, w_c) -> np.ndarray:
  """The bilinear map an SPN vec(C) = W_c[(W_b vec(B)) ⊙ (W_a vec(A))] computes, as T[i, j, k]."""
  return np.einsum("ri,rj,kr->ijk", np.asarray(w_a), np.asarray(w_b), np.asarray(w_c))


def is_exact_matmul(w_a, w_b, w_c, n: int) -> bool:
  """Whether integer W_a, W_b (r × n²) and W_c (n² × r) multiply every pair of n×n matrices exactly: the SPN's
  bilinear map equals matrix multiplication's, entry by entry, in integer arithmetic."""
  arrays = _checked_spn(w_a, w_b, w_c, n)
  if any(not np.issubdtype(w.dtype, np.integer) for w in arrays):
    raise UsageError("exactness is decided on integer weights (ternary levels), not floats")
  return bool(np.array_equal(spn_tensor(*(w.astype(np.int64) for w in arrays)), matmul_tensor(n)))


def _checked_spn(w_a, w_b, w_c, n: int) -> list[np.ndarray]:
  arrays = [np.asarray(w) for w in (w_a, w_b, w_c)]
  hidden = arrays[0].shape[0] if arrays[0].ndim == 2 else -1
  if [w.shape for w in arrays] != [(hidden, n * n), (hidden, n * n), (n * n, hidden)]:
    raise UsageError(f"an SPN for {n}×{n} products takes W_a, W_b (r × {n * n}) and W_c ({n * n} × r), got "
                     f"{[w.shape for w in arrays]}")
  return arrays


def spn_matmul(w_a, w_b, w_c, a, b) -> np.ndarray:
  """A·B for n×n matrices through the SPN, in the arrays' own arithmetic (integers stay exact)."""
  n = np.shape(a)[0]
  _checked_spn(w_a, w_b, w_c, n)
  if np.shape(a) != (n, n) or np.shape(b) != (n, n):
    raise UsageError(f"spn_matmul takes two n×n matrices, got {np.shape(a)} and {np.shape(b)}")
  hidden = (np.asarray(w_a) @ np.asarray(a).reshape(-1)) * (np.asarray(w_b) @ np.asarray(b).reshape(-1))
  return (np.asarray(w_c) @ hidden).reshape(n, n)


def matmul_ops(w_a, w_b, w_c) -> OpCount:
  """Multiplications (the hidden products) and additions of an integer SPN for one matrix product (its
  ``parameters`` are 0: an algorithm, not a layer)."""
  return OpCount(np.shape(w_a)[0], sum_additions(w_a) + sum_additions(w_b) + sum_additions(w_c), 0)
