"""The five credit rules held against each other where theory says they agree: RTRL's exact forward
influence gives BPTT's gradient; TBPTT with a window past the end is BPTT; SAB with dense attention and no
truncation is BPTT of the same attention-augmented model; the mean of UORO's unbiased rank-one estimates
converges to BPTT's gradient. On a plain RNN and on the refinement decoder's 2-D recurrence (five reads a
step, a memory read by top-k attention)."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest
from flax import nnx

from compzoo import jpeg, models
from compzoo.errors import UsageError
from compzoo.nn.recurrence import Memory, sparse_attention
from compzoo.train import credit
from compzoo.train.registry import make_objective
from toy_models import LinearRecurrence


def _sequence(batch=4, steps=12):
  x = np.random.default_rng(0).normal(size=(batch, steps)).astype(np.float32)
  target = np.zeros_like(x)
  for t in range(steps):
    target[:, t] = np.tanh(0.8 * (target[:, t - 1] if t else 0) + x[:, t])
  return {"image": x, "target": target}


def _jpeg_crops(batch=2, height=16, width=24):
  import skimage.data

  photo = skimage.data.astronaut()
  images = np.stack([photo[100 + 40 * i:100 + 40 * i + height, 180:180 + width] for i in range(batch)])
  copies = [jpeg.degrade(image, quality) for image, quality in zip(images, (15, 40))]
  return {"image": images, "jpeg": np.stack([c[0] for c in copies]), "jpeg_quality": np.stack([c[1] for c in copies])}


def _refine_model(memory_stride=3, memory_topk=2, stages=2):
  """A tiny decoder whose zero-initialised correction is perturbed, so every parameter has a gradient."""
  model = models.build(dict(name="refine", features=4, width=3, stages=stages, memory_stride=memory_stride,
                            memory_topk=memory_topk))
  params = nnx.state(model, nnx.Param)
  keys = iter(jax.random.split(jax.random.PRNGKey(1), len(jax.tree.leaves(params))))
  nnx.update(model, jax.tree.map(lambda p: p + 0.1 * jax.random.normal(next(keys), p.shape), params))
  return model


def _gradient(model, batch, rule, key=0):
  objective = make_objective(ml_collections.ConfigDict(dict(name="recurrent", credit=rule)))
  metrics, grads = objective.gradients(model, nnx.Param, batch, jax.random.PRNGKey(key))
  return np.concatenate([np.ravel(g) for g in jax.tree.leaves(grads)]), metrics


def _relative(a, b):
  return float(np.max(np.abs(a - b)) / np.max(np.abs(b)))


@pytest.mark.parametrize("memory", [None, (3, 2)])
def test_rtrl_gives_bptt_s_gradient_on_a_plain_rnn(memory):
  model, batch = LinearRecurrence(memory=memory), _sequence()
  bptt, _ = _gradient(model, batch, "bptt")
  rtrl, _ = _gradient(model, batch, "rtrl")
  assert _relative(rtrl, bptt) < 1e-5


def test_rtrl_gives_bptt_s_gradient_on_the_refinement_decoder():
  model, batch = _refine_model(), _jpeg_crops()  # 2 sweeps over 2x3 patches: 12 steps, 5 reads, 4 entries
  bptt, metrics = _gradient(model, batch, "bptt")
  rtrl, rtrl_metrics = _gradient(model, batch, "rtrl")
  assert np.count_nonzero(bptt) > 0.75 * bptt.size  # a few units of so small a network are dead ReLUs)
  assert _relative(rtrl, bptt) < 1e-5
  assert np.isclose(float(metrics["loss"]), float(rtrl_metrics["loss"]), rtol=1e-6)


def test_truncation_past_the_end_and_dense_sab_are_bptt_exactly():
  model, batch = _refine_model(memory_topk=100), _jpeg_crops()  # top-100 of 4 entries: dense attention
  bptt, _ = _gradient(model, batch, "bptt")
  for rule in ("tbptt:12", "tbptt:40", "sab:12", "sab:40"):
    np.testing.assert_array_equal(_gradient(model, batch, rule)[0], bptt)
  # Shorter windows: TBPTT loses credit that SAB keeps along the attention edges.
  tbptt, _ = _gradient(model, batch, "tbptt:3")
  sab, _ = _gradient(model, batch, "sab:3")
  assert not np.allclose(tbptt, bptt) and not np.allclose(sab, tbptt)
  assert _relative(sab, bptt) < _relative(tbptt, bptt)


def test_sparse_attention_reads_and_credits_only_the_top_k_visible_entries():
  memory = jnp.asarray(np.random.default_rng(0).normal(size=(6, 4)), jnp.float32)
  query = memory[2] + 0.1
  visible = jnp.array([True, True, True, True, False, False])
  scores = np.asarray(memory @ query)
  chosen = set(np.argsort(np.where(visible, scores, -np.inf))[-2:])
  grads = jax.grad(lambda m: jnp.sum(sparse_attention(query, m, visible, 2)))(memory)
  credited = set(np.flatnonzero(np.abs(np.asarray(grads)).sum(axis=1)))
  assert credited == chosen
  assert np.all(sparse_attention(query, memory, jnp.zeros(6, bool), 2) == 0)
  # Entries become visible when their block is over: the kept states of steps 2 and 5 (stride 3) for a
  # step of the third block of 4.
  assert list(np.asarray(Memory(stride=3, topk=2, block=4).visible(9, 4))) == [True, True, False, False]


def test_uoro_estimates_average_to_bptt_s_gradient():
  model, batch = LinearRecurrence(width=6, memory=(3, 2)), _sequence(batch=1)
  bptt, _ = _gradient(model, batch, "bptt")
  objective = make_objective(ml_collections.ConfigDict(dict(name="recurrent", credit="uoro")))
  estimates = jax.jit(jax.vmap(lambda key: jnp.concatenate([jnp.ravel(g) for g in jax.tree.leaves(
      objective.gradients(model, nnx.Param, batch, key)[1])])))(jax.random.split(jax.random.PRNGKey(0), 4000))
  estimates = np.asarray(estimates)
  cosine = lambda n: float(estimates[:n].mean(0) @ bptt / np.linalg.norm(estimates[:n].mean(0)) / np.linalg.norm(bptt))
  cosines = [cosine(n) for n in (1, 10, 100, 1000, 4000)]
  assert cosines[-1] > 0.995 and cosines[-1] > cosines[0]
  assert _relative(estimates.mean(0), bptt) < 0.15
  assert not np.allclose(estimates[0], bptt, rtol=0.05)  # one estimate is noisy: it is an estimate


def test_rules_are_parsed_and_sab_needs_a_memory():
  assert isinstance(credit.parse_credit("rtrl"), credit.RTRL)
  assert credit.parse_credit("sab:5") == credit.Backprop(5, through_memory=True)
  assert credit.parse_credit("tbptt:5") == credit.Backprop(5)
  with pytest.raises(UsageError, match="attention memory"):
    _gradient(LinearRecurrence(), _sequence(), "sab:4")
  with pytest.raises(UsageError, match="needs a key"):
    credit.UORO().value_and_grad(None, {}, None, None)
