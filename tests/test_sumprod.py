"""Sum-product layers (compzoo/nn/sumprod.py): ternarisation, the three training modes, exact operation counts,
and the r = 7 algorithm experiments/strassen.py found, proved exact on integer matrices."""

import json
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest
from flax import nnx

from compzoo.errors import UsageError
from compzoo.nn import sumprod

SOLUTION = Path(__file__).parent / "data" / "strassen_r7.json"


def test_ternarize_is_twn_forward_and_straight_through_backward():
  w = jnp.array([0.9, -0.05, 0.4, -1.3, 0.02, 0.6])
  levels, alpha = sumprod.ternary_levels(w)
  threshold = 0.7 * np.mean(np.abs(w))
  np.testing.assert_array_equal(levels, np.sign(w) * (np.abs(w) > threshold))
  assert alpha == pytest.approx(np.mean(np.abs(w)[np.abs(w) > threshold]))
  np.testing.assert_allclose(sumprod.ternarize(w), alpha * levels, rtol=1e-6)
  np.testing.assert_allclose(jax.grad(lambda v: jnp.sum(sumprod.ternarize(v) * jnp.arange(6.0)))(w), np.arange(6.0))
  np.testing.assert_array_equal(sumprod.round_ternary(jnp.array([-2.2, -0.6, 0.4, 0.7, 3.0])), [-1, -1, 0, 1, 1])
  assert float(sumprod.ternary_penalty(jnp.array([-1.0, 0.0, 1.0]))) == 0.0
  assert float(sumprod.ternary_penalty(jnp.array([0.5]))) > 0


def test_the_three_modes_of_a_dense_layer():
  x = jax.random.normal(jax.random.PRNGKey(0), (5, 12))
  layer = sumprod.SumProdDense(12, 3, 6, rngs=nnx.Rngs(0))
  w_b, w_c = layer.w_b[...], layer.w_c[...]
  np.testing.assert_allclose(layer(x), (x @ w_b.T) @ w_c.T, rtol=1e-5, atol=1e-5)  # ã starts at 1
  layer.mode = "ternary"
  t_b, a_b = sumprod.ternary_levels(w_b)
  t_c, a_c = sumprod.ternary_levels(w_c)
  np.testing.assert_allclose(layer(x), a_b * a_c * (x @ t_b.T) @ t_c.T, rtol=1e-5, atol=1e-5)

  def grads(mode):
    layer.mode = mode
    return nnx.grad(lambda m: jnp.sum(m(x) ** 2))(layer)
  assert float(jnp.abs(grads("ternary")["w_b"][...]).sum()) > 0
  frozen = grads("frozen")
  assert float(jnp.abs(frozen["w_b"][...]).sum()) == 0 and float(jnp.abs(frozen["w_c"][...]).sum()) == 0
  assert float(jnp.abs(frozen["scale"][...]).sum()) > 0
  np.testing.assert_allclose(layer(x), a_b * a_c * (x @ t_b.T) @ t_c.T, rtol=1e-5, atol=1e-5)  # frozen = ternary
  with pytest.raises(UsageError, match="mode"):
    sumprod.SumProdDense(2, 2, 2, rngs=nnx.Rngs(0), mode="binary")
  layer.mode = "binary"  # a typo set later is refused on use, not run as ternary
  with pytest.raises(UsageError, match="mode"):
    layer(x)
  layer.mode = "full"
  with pytest.raises(UsageError, match="features"):
    layer(x[:, :5])


@pytest.mark.parametrize("block, kernel, stride", [(2, 3, 1), (2, 3, 2), (2, 4, 1), (2, 5, 2), (3, 1, 3), (3, 2, 2),
                                                   (1, 3, 2)])
def test_a_sum_product_convolution_can_be_exactly_a_plain_one(block, kernel, stride):
  """Hidden unit (dy, dx, o) holds the plain kernel of output channel o at offset (dy, dx)·s in its window, and W_c
  sends it to that output alone: the SPN then is the plain 'SAME' convolution, block geometry and padding included."""
  inputs, outputs = 2, 3
  plain = jax.random.normal(jax.random.PRNGKey(1), (kernel, kernel, inputs, outputs))
  layer = sumprod.SumProdConv(inputs, outputs, kernel, block * block * outputs, block, stride=stride,
                              rngs=nnx.Rngs(0), bias=False)
  window = (block - 1) * stride + kernel
  w_b = np.zeros((window, window, inputs, block * block * outputs), np.float32)
  w_c = np.zeros((block, block, block * block * outputs, outputs), np.float32)
  for dy, dx, o in np.ndindex(block, block, outputs):
    h = (dy * block + dx) * outputs + o
    w_b[dy * stride:dy * stride + kernel, dx * stride:dx * stride + kernel, :, h] = plain[..., o]
    w_c[dy, dx, h, o] = 1.0
  layer.w_b[...], layer.w_c[...] = jnp.asarray(w_b), jnp.asarray(w_c)
  hop = block * stride
  x = jax.random.normal(jax.random.PRNGKey(2), (2, 2 * hop, 3 * hop, inputs))
  expected = jax.lax.conv_general_dilated(x, plain, (stride, stride), "SAME",
                                          dimension_numbers=("NHWC", "HWIO", "NHWC"))
  np.testing.assert_allclose(layer(x), expected, rtol=1e-5, atol=1e-5)
  if hop > 1:
    with pytest.raises(UsageError, match="multiples"):
      layer(x[:, :hop + 1])
  with pytest.raises(UsageError, match="channels"):
    layer(x[..., :1])


def test_operation_counts_are_exact():
  assert sumprod.dense_ops(10, 4) == sumprod.OpCount(40, 40, 44)
  assert sumprod.conv_ops(8, 8, 3, 2, 5, bias=False) == sumprod.OpCount(8 * 8 * 5 * 18, 8 * 8 * 5 * 17, 90)
  assert sumprod.sum_additions(np.array([[1, 0, -1], [0, 0, 0], [1, 1, 1]])) == 1 + 0 + 2
  layer = sumprod.SumProdDense(12, 3, 6, rngs=nnx.Rngs(0), mode="ternary")
  t_b, _ = sumprod.ternary_levels(layer.w_b[...])
  t_c, _ = sumprod.ternary_levels(layer.w_c[...])
  ops = layer.ops()
  assert ops.multiplications == 6 and ops.parameters == 6 * (12 + 3 + 1) + 3
  assert ops.additions == sumprod.sum_additions(t_b) + sumprod.sum_additions(t_c) + 3
  layer.mode = "full"
  assert layer.ops() == sumprod.OpCount(6 * 12 + 6 + 3 * 6, 6 * 11 + 3 * (5 + 1), 6 * 16 + 3)
  assert sum([layer.ops(), sumprod.dense_ops(3, 2)]) == layer.ops() + sumprod.dense_ops(3, 2)
  conv = sumprod.SumProdConv(4, 8, 3, 10, 2, rngs=nnx.Rngs(0), mode="ternary")
  blocks = (16 // 2) * (12 // 2)
  assert conv.ops(16, 12).multiplications == blocks * 10  # r per 2×2 block of outputs, every channel
  plain = sumprod.conv_ops(16, 12, 3, 4, 8)
  assert conv.ops(16, 12).multiplications < 0.02 * plain.multiplications
  t_b, _ = sumprod.ternary_levels(conv.w_b[...])
  t_c, _ = sumprod.ternary_levels(conv.w_c[...])
  filters = sum(max(np.count_nonzero(t_b[..., h]) - 1, 0) for h in range(10))
  spreads = sum(max(np.count_nonzero(t_c[dy, dx, :, o]) - 1, 0) for dy, dx, o in np.ndindex(2, 2, 8))
  assert conv.ops(16, 12).additions == blocks * (filters + spreads + 2 * 2 * 8)


def test_ternary_expansion_levels_and_convergence():
  w = np.asarray(jax.random.normal(jax.random.PRNGKey(3), (3, 3, 5, 4)))
  errors = []
  for terms in (1, 2, 4, 8):
    levels, alphas = sumprod.ternary_expansion(w, terms)
    assert levels.shape == (terms,) + w.shape and alphas.shape == (terms, 4)
    assert set(np.unique(levels)) <= {-1, 0, 1} and (alphas >= 0).all()
    errors.append(np.linalg.norm(np.einsum("j...o,jo->...o", levels, alphas) - w) / np.linalg.norm(w))
  assert all(later < earlier for earlier, later in zip(errors, errors[1:])) and errors[-1] < 0.1
  with pytest.raises(UsageError, match="positive"):
    sumprod.ternary_expansion(w, 0)


@pytest.mark.parametrize("block, stride", [(1, 1), (1, 2), (2, 1)])
def test_a_loaded_plain_kernel_is_the_expansion_exactly(block, stride):
  """Ternary (and frozen) layers loaded from a plain kernel compute the 'SAME' convolution with the expansion's
  kernel Σ_j α_j t_j, through the factored layer (block 2) and the folded fast path (block 1) alike."""
  kernel = np.asarray(jax.random.normal(jax.random.PRNGKey(4), (3, 3, 4, 6)))
  bias = np.arange(6, dtype=np.float32)
  layer = sumprod.SumProdConv(4, 6, 3, 2 * block * block * 6, block, stride=stride, rngs=nnx.Rngs(0), mode="frozen")
  layer.load_plain(kernel, bias, terms=2)
  levels, alphas = sumprod.ternary_expansion(kernel, 2)
  expansion = np.einsum("j...o,jo->...o", levels, alphas).astype(np.float32)
  x = jax.random.normal(jax.random.PRNGKey(5), (2, 4 * block * stride, 6 * block * stride, 4))
  expected = jax.lax.conv_general_dilated(x, expansion, (stride, stride), "SAME",
                                          dimension_numbers=("NHWC", "HWIO", "NHWC")) + bias
  np.testing.assert_allclose(layer(x), expected, rtol=1e-4, atol=1e-4)
  assert layer.ops(x.shape[1], x.shape[2]).multiplications == x.shape[1] * x.shape[2] // stride**2 * 12
  with pytest.raises(UsageError, match="hidden"):
    layer.load_plain(kernel, terms=3)
  with pytest.raises(UsageError, match="without one"):
    sumprod.SumProdConv(4, 6, 3, 6, 1, rngs=nnx.Rngs(0), bias=False).load_plain(kernel, bias)


@pytest.mark.parametrize("mode", sumprod.MODES)
def test_the_folded_fast_path_computes_the_factored_layer(mode):
  layer = sumprod.SumProdConv(6, 5, 3, 24, 1, stride=2, rngs=nnx.Rngs(1), mode=mode)
  layer.scale[...] = jnp.linspace(0.5, 2.0, 24)
  x = jax.random.normal(jax.random.PRNGKey(6), (2, 12, 8, 6))
  assert layer._folding_is_cheaper(x.shape)
  w_b, w_c = sumprod.applied(layer.w_b[...], layer.w_c[...], mode)
  hidden = jax.lax.conv_general_dilated(x, w_b, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC"))
  factored = jnp.einsum("nhwr,ro->nhwo", hidden * layer.scale[...], w_c[0, 0]) + layer.bias[...]
  np.testing.assert_allclose(layer(x), factored, rtol=1e-4, atol=1e-4)


def test_the_frozen_stage_leaves_w_b_and_w_c_to_no_optimizer_state():
  """Adam's momentum (or weight decay) would keep moving W_b and W_c after their gradients stop: the frozen
  stage's optimizer (``TRAINABLE["frozen"]``) holds no state for them, and ``set_mode`` reaches every layer."""
  model = nnx.Sequential(sumprod.SumProdDense(6, 4, 5, rngs=nnx.Rngs(0)),
                         sumprod.SumProdConv(4, 3, 3, 6, 1, rngs=nnx.Rngs(1), norm=True))
  sumprod.set_mode(model, "frozen")
  assert [layer.mode for layer in model.layers] == ["frozen", "frozen"]
  trainable = sumprod.TRAINABLE["frozen"]
  optimizer = nnx.Optimizer(model, optax.adamw(0.1, weight_decay=0.5), wrt=trainable)
  held = {"/".join(map(str, path)) for path, _ in nnx.to_flat_state(nnx.state(optimizer.opt_state))}
  assert any("scale" in path for path in held) and not any("w_b" in path or "w_c" in path for path in held)
  before = {k: np.asarray(v) for k, v in nnx.to_flat_state(nnx.state(model, nnx.Param))}
  x = jax.random.normal(jax.random.PRNGKey(7), (2, 4, 4, 6))
  loss = lambda m: jnp.sum(jnp.square(m.layers[1](m.layers[0](x))))
  for _ in range(3):
    optimizer.update(model, nnx.grad(loss, argnums=nnx.DiffState(0, trainable))(model))
  after = dict(nnx.to_flat_state(nnx.state(model, nnx.Param)))
  moved = {"/".join(map(str, k)) for k, v in after.items() if not np.array_equal(np.asarray(v), before[k])}
  assert any("scale" in k for k in moved) and not any("w_b" in k or "w_c" in k for k in moved)
  everything = nnx.Optimizer(model, optax.adamw(0.1, weight_decay=0.5), wrt=nnx.Param)  # the trap it avoids
  everything.update(model, nnx.grad(loss)(model))
  assert not np.array_equal(np.asarray(model.layers[0].w_b[...]), before[("layers", 0, "w_b")])
  with pytest.raises(UsageError, match="mode"):
    sumprod.set_mode(model, "binary")


def test_hidden_batch_norm_normalises_in_training_and_uses_its_averages_after():
  layer = sumprod.SumProdDense(8, 3, 4, rngs=nnx.Rngs(0), norm=True)
  x = 5.0 + 3.0 * jax.random.normal(jax.random.PRNGKey(8), (64, 8))
  hidden = layer.norm(x @ layer.w_b[...].T)
  np.testing.assert_allclose(hidden.mean(axis=0), 0, atol=1e-4)
  layer.eval()
  assert not np.allclose(layer.norm(x @ layer.w_b[...].T), hidden, atol=1e-3)  # running averages, not the batch's


def test_decoder_operation_counts():
  assert sumprod.transposed_conv_ops(4, 3, 5, 2, 2, 7) == sumprod.OpCount(
      4 * 3 * 25 * 2 * 7, 4 * 3 * 25 * 2 * 7 - 8 * 6 * 7 + 8 * 6 * 7, 25 * 14 + 7)
  assert sumprod.gdn_ops(2, 3, 4) == sumprod.OpCount(6 * (16 + 8), 6 * 16, 20)


def test_the_found_r7_algorithm_multiplies_integer_matrices_exactly():
  solution = json.loads(SOLUTION.read_text())
  w_a, w_b, w_c = (np.array(solution[k], np.int64) for k in ("w_a", "w_b", "w_c"))
  assert w_a.shape == (7, 4) and set(np.unique(np.concatenate([w_a.ravel(), w_b.ravel(), w_c.ravel()]))) <= {-1, 0, 1}
  assert sumprod.is_exact_matmul(w_a, w_b, w_c, 2)
  rng = np.random.default_rng(0)
  for _ in range(200):
    a, b = rng.integers(-10**6, 10**6, (2, 2, 2), dtype=np.int64)
    np.testing.assert_array_equal(sumprod.spn_matmul(w_a, w_b, w_c, a, b), a @ b)
  assert sumprod.matmul_ops(w_a, w_b, w_c).multiplications == 7
  broken = w_c.copy()
  broken[0, np.nonzero(broken[0])[0][0]] *= -1
  assert not sumprod.is_exact_matmul(w_a, w_b, broken, 2)
  # Every one of its seven products is needed: dropping any one breaks it.
  assert not any(sumprod.is_exact_matmul(np.delete(w_a, i, 0), np.delete(w_b, i, 0), np.delete(w_c, i, 1), 2)
                 for i in range(7))
  with pytest.raises(UsageError, match="integer"):
    sumprod.is_exact_matmul(w_a.astype(float), w_b, w_c, 2)
  with pytest.raises(UsageError, match="takes W_a"):
    sumprod.is_exact_matmul(w_a, w_b, w_c, 3)


def test_the_schoolbook_product_is_an_exact_r8_spn():
  w_a, w_b, w_c = [], [], np.zeros((4, 8), np.int64)
  for index, (row, inner, column) in enumerate(np.ndindex(2, 2, 2)):
    w_a.append(np.eye(4, dtype=np.int64)[row * 2 + inner])
    w_b.append(np.eye(4, dtype=np.int64)[inner * 2 + column])
    w_c[row * 2 + column, index] = 1
  assert sumprod.is_exact_matmul(np.array(w_a), np.array(w_b), w_c, 2)
  assert sumprod.matmul_ops(np.array(w_a), np.array(w_b), w_c) == sumprod.OpCount(8, 4, 0)


@pytest.mark.slow
def test_training_finds_an_exact_r7_algorithm_and_no_r6_one(tmp_path):
  import subprocess
  import sys
  # In a process of its own, as tests run every app: absl's flags are global and other apps share these names.
  run = subprocess.run([sys.executable, "-m", "experiments.strassen", f"--out={tmp_path}", "--hidden=6,7",
                        "--recipes=penalty", "--seeds=8", "--full_steps=1500", "--ternary_steps=3000",
                        "--round_steps=500",
                        f"--solution={tmp_path / 'r7.json'}"], cwd=Path(__file__).resolve().parent.parent,
                       capture_output=True, text=True, timeout=600)
  assert run.returncode == 0, run.stderr[-2000:]
  results = {row["hidden"]: row["exact"] for row in json.loads((tmp_path / "results.json").read_text())["results"]}
  assert results[7] >= 1 and results[6] == 0
  found = json.loads((tmp_path / "r7.json").read_text())
  assert sumprod.is_exact_matmul(*(np.array(found[k]) for k in ("w_a", "w_b", "w_c")), 2)
  bad = subprocess.run([sys.executable, "-m", "experiments.strassen", "--seeds=0", f"--out={tmp_path}"],
                       cwd=Path(__file__).resolve().parent.parent, capture_output=True, text=True, timeout=600)
  assert bad.returncode != 0 and "--seeds" in bad.stderr and "Traceback" not in bad.stderr


@pytest.mark.slow
def test_the_cifar_budget_experiment_trains_and_counts(tmp_path):
  import subprocess
  import sys
  root = Path(__file__).resolve().parent.parent
  run = subprocess.run([sys.executable, "-m", "experiments.strassen_cifar", f"--out={tmp_path}", "--width=4",
                        "--terms=1", "--block2_hidden=1", "--plain_widths=2", "--train_images=1024", "--batch=64",
                        "--epochs=4", "--ternary_epochs=1", "--frozen_epochs=1", "--test_images=256"],
                       cwd=root, capture_output=True, text=True, timeout=900)
  assert run.returncode == 0, run.stderr[-2000:]
  rows = {row["network"]: row for row in json.loads((tmp_path / "results.json").read_text())["rows"]}
  assert set(rows) == {"teacher", "spn-p1-t1 (start)", "spn-p1-t1", "spn-p2-r1", "plain-w2"}
  first, last = rows["teacher"]["loss_first_last"]
  assert last < first  # the loss falls
  assert all(0.0 <= row["accuracy"] <= 1.0 for row in rows.values())
  assert rows["teacher"]["accuracy"] > 0.15  # above chance (0.10) after 64 steps
  for name in ("spn-p1-t1", "spn-p2-r1", "plain-w2"):
    assert rows[name]["multiplications"] < rows["teacher"]["multiplications"]
  assert (tmp_path / "accuracy-vs-multiplications.png").stat().st_size > 0
  assert "| spn-p1-t1 |" in (tmp_path / "results.md").read_text()
  for flag, said in (("--train_images=60000", "asked for 60000"), ("--terms=0,2", "--terms"), ("--batch=0", "--batch")):
    bad = subprocess.run([sys.executable, "-m", "experiments.strassen_cifar", f"--out={tmp_path}", flag],
                         cwd=root, capture_output=True, text=True, timeout=600)
    assert bad.returncode != 0 and said in bad.stderr and "Traceback" not in bad.stderr, (flag, bad.stderr[-500:])


def test_a_convolutions_hidden_batch_norm_is_applied_and_folds_into_scales_and_per_position_biases():
  layer = sumprod.SumProdConv(4, 3, 3, 6, 2, rngs=nnx.Rngs(0), norm=True)
  layer.scale[...] = jnp.linspace(0.5, 2.0, 6)
  x = 5.0 + 3.0 * jax.random.normal(jax.random.PRNGKey(8), (8, 8, 12, 4))
  hidden = jax.lax.conv_general_dilated(x, layer.w_b[...], (2, 2), [layer._padding(8), layer._padding(12)],
                                        dimension_numbers=("NHWC", "HWIO", "NHWC"))

  def spread(h, scale):  # W_c over each 2×2 block of outputs
    return jnp.einsum("nhwr,abro->nhawbo", h * scale, layer.w_c[...]).reshape(8, 8, 12, 3)

  normalised = (hidden - hidden.mean(axis=(0, 1, 2))) / jnp.sqrt(hidden.var(axis=(0, 1, 2)) + layer.norm.epsilon)
  np.testing.assert_allclose(layer(x), spread(normalised, layer.scale[...]) + layer.bias[...], rtol=1e-4, atol=1e-4)
  layer.eval()  # running averages: the norm folds into ã and a bias per block position, as ``ops`` counts it
  sigma = jnp.sqrt(layer.norm.var[...] + layer.norm.epsilon)
  shift = jnp.einsum("r,abro->abo", layer.scale[...] * (layer.norm.bias[...] - layer.norm.mean[...] / sigma),
                     layer.w_c[...])
  assert not np.allclose(shift[0, 0], shift[1, 1])
  np.testing.assert_allclose(layer(x), spread(hidden, layer.scale[...] / sigma) + jnp.tile(shift, (4, 6, 1))
                             + layer.bias[...], rtol=1e-4, atol=1e-3)
  plain = sumprod.SumProdConv(4, 3, 3, 6, 2, rngs=nnx.Rngs(0))
  assert layer.ops(8, 12).parameters - plain.ops(8, 12).parameters == 3 * 3  # p²·C_out biases, not C_out
  with pytest.raises(UsageError, match="batch norm"):
    layer.load_plain(np.zeros((3, 3, 4, 3), np.float32), terms=1)
