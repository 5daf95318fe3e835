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


def check_mode(mode: str) -> str:
  if mode not in MODES:
    raise UsageError(f"unknown sum-product mode {mode!r}; use one of {', '.join(MODES)}")
  return mode


def applied(w_b, w_c, mode: str):
  """(W_b, W_c) as ``mode`` applies them. "frozen" stops their gradients; a training loop must also keep its
  optimizer's momentum and weight decay off them in that stage (the CIFAR-10 runs will mask them)."""
  if check_mode(mode) == "full":
    return w_b, w_c
  w_b, w_c = ternarize(w_b), ternarize(w_c)
  if mode == "frozen":
    return jax.lax.stop_gradient(w_b), jax.lax.stop_gradient(w_c)
  return w_b, w_c


def _positive(*sizes) -> None:
  if not all(isinstance(n, (int, np.integer)) and n >= 1 for n in sizes):
    raise UsageError(f"sizes must be positive integers, got {sizes}")


class SumProdDense(nnx.Module):
  """y = W_c (ã ⊙ (W_b x)) + bias: ``hidden`` multiplications per input vector once W_b and W_c are ternary."""

  def __init__(self, inputs: int, outputs: int, hidden: int, *, rngs: nnx.Rngs, mode: str = "full",
               bias: bool = True):
    check_mode(mode)
    _positive(inputs, outputs, hidden)
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
    y = ((x @ w_b.T) * jnp.clip(self.scale[...], 0.0, SCALE_LIMIT)) @ w_c.T
    return y if self.bias is None else y + self.bias[...]

  def ops(self) -> OpCount:
    """Per input vector, bias additions included. Ternary: as deployed, the r products ã ⊙ (W_b x) with the TWN
    scales folded into ã; full precision: as computed, W_b, the ã product and W_c."""
    check_mode(self.mode)
    hidden, inputs = self.w_b.shape
    outputs = self.w_c.shape[0]
    bias = self.bias is not None
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
               stride: int = 1, mode: str = "full", bias: bool = True):
    check_mode(mode)
    _positive(inputs, outputs, kernel, hidden, block, stride)
    self.kernel, self.block, self.stride, self.mode = kernel, block, stride, mode
    self.window = (block - 1) * stride + kernel
    self.w_b = nnx.Param(nnx.initializers.variance_scaling(1.0, "fan_in", "normal")(
        rngs.params(), (self.window, self.window, inputs, hidden)))
    # Each output sums its block's r hidden values only: fan-in r (the p×p taps never overlap).
    self.w_c = nnx.Param(nnx.initializers.variance_scaling(1.0, "fan_in", "normal", in_axis=2, out_axis=(0, 1, 3))(
        rngs.params(), (block, block, hidden, outputs)))
    self.scale = nnx.Param(jnp.ones((hidden,)))
    self.bias = nnx.Param(jnp.zeros((outputs,))) if bias else None

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
    hidden = jax.lax.conv_general_dilated(
        x, w_b, (self.block * self.stride,) * 2, [self._padding(x.shape[1]), self._padding(x.shape[2])],
        dimension_numbers=("NHWC", "HWIO", "NHWC"))
    hidden = hidden * jnp.clip(self.scale[...], 0.0, SCALE_LIMIT)
    batch, rows, columns, _ = hidden.shape
    y = jnp.einsum("nhwr,abro->nhawbo", hidden, w_c).reshape(batch, rows * self.block, columns * self.block, -1)
    return y if self.bias is None else y + self.bias[...]

  def ops(self, in_height: int, in_width: int) -> OpCount:
    """Per input image of in_height × in_width (the output's sides times the stride), bias additions included;
    ternary as deployed (TWN scales folded into ã), full precision as computed."""
    check_mode(self.mode)
    _positive(in_height, in_width)
    for side in (in_height, in_width):
      self._padding(side)  # sides must be whole blocks
    window, _, inputs, hidden = self.w_b.shape
    outputs = self.w_c.shape[-1]
    bias = self.bias is not None
    blocks = (in_height // (self.block * self.stride)) * (in_width // (self.block * self.stride))
    parameters = window * window * inputs * hidden + hidden + self.block**2 * hidden * outputs + bias * outputs
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
