"""Strassen rediscovered: sum-product networks for 2×2 matrix products, trained over many seeds at once.

    python -m experiments.strassen --out=runs/strassen --solution=tests/data/strassen_r7.json   # `make strassen`, ~11 min

For each hidden width r (multiplications) and each training recipe, ``--seeds`` SPNs vec(C) = W_c[(W_b vec(B)) ⊙
(W_a vec(A))] train on random Gaussian pairs, vectorised over seeds (``jax.vmap`` of one ``lax.scan``). A seed
counts as exact when its ternary levels compute A·B exactly (``sumprod.is_exact_matmul``: the bilinear map equal
to matrix multiplication's, in integers). Recipes:
  * ``twn``: the paper's schedule: full precision, then TWN ternarisation with a straight-through gradient;
  * ``penalty``: full precision, then an annealed ``sumprod.ternary_penalty`` that slides the solution along its
    symmetries (A·B = (A·G)(G⁻¹·B) and rescalings) to integer entries, then rounding with a straight-through
    gradient.
Writes results.json (exact rates with 95% Wilson intervals) and prints one r = 7 algorithm; ``--solution`` saves it.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import optax
from absl import app, flags

from compzoo.errors import UsageError
from compzoo.nn import sumprod

FLAGS = flags.FLAGS
flags.DEFINE_string("out", "runs/strassen", "folder for results.json")
flags.DEFINE_list("hidden", ["6", "7", "8"], "hidden widths r (multiplications) to train")
flags.DEFINE_list("recipes", ["twn", "penalty"], "training recipes: twn, penalty")
flags.DEFINE_integer("seeds", 200, "seeds per (r, recipe)")
flags.DEFINE_integer("full_steps", 3000, "full-precision Adam steps")
flags.DEFINE_integer("ternary_steps", 6000, "steps of the ternary stage (penalty: the annealing)")
flags.DEFINE_integer("round_steps", 2000, "penalty recipe: straight-through rounding steps after the annealing")
flags.DEFINE_string("solution", "", "where to save the first exact r = 7 algorithm (JSON), if any")

N = 2
BATCH = 64
LEARNING_RATE = 1e-2
PENALTY_RANGE = (1e-4, 1e-1)  # the penalty's weight, raised geometrically over the annealing


def _loss(params, key, transform, penalty_weight):
  w_a, w_b, w_c = (transform(w) for w in params)
  key_a, key_b = jax.random.split(key)
  a = jax.random.normal(key_a, (BATCH, N * N))
  b = jax.random.normal(key_b, (BATCH, N * N))
  target = jnp.einsum("ni,nj,ijk->nk", a, b, jnp.asarray(sumprod.matmul_tensor(N), jnp.float32))
  error = jnp.mean(jnp.square(((a @ w_a.T) * (b @ w_b.T)) @ w_c.T - target))
  return error + penalty_weight * sum(sumprod.ternary_penalty(w) for w in params)


def _identity(w):
  return w


def train(seed, hidden: int, recipe: str):
  """-> (W_a, W_b, W_c) after the recipe's stages, and the last step's loss."""
  key = jax.random.PRNGKey(seed)
  keys = jax.random.split(key, 4)
  params = (0.5 * jax.random.normal(keys[0], (hidden, N * N)), 0.5 * jax.random.normal(keys[1], (hidden, N * N)),
            0.5 * jax.random.normal(keys[2], (N * N, hidden)))
  optimizer = optax.adam(LEARNING_RATE)
  carry = (params, optimizer.init(params))

  def stage(carry, index, transform, weights):
    def step(carry, inputs):
      step_key, weight = inputs
      params, state = carry
      loss, grads = jax.value_and_grad(_loss)(params, step_key, transform, weight)
      updates, state = optimizer.update(grads, state, params)
      return (optax.apply_updates(params, updates), state), loss
    stage_keys = jax.random.split(jax.random.fold_in(keys[3], index), len(weights))
    return jax.lax.scan(step, carry, (stage_keys, weights))

  carry, losses = stage(carry, 0, _identity, jnp.zeros(FLAGS.full_steps))
  if recipe == "twn":
    carry, losses = stage(carry, 1, sumprod.ternarize, jnp.zeros(FLAGS.ternary_steps))
  else:
    carry, losses = stage(carry, 1, _identity, jnp.geomspace(*PENALTY_RANGE, FLAGS.ternary_steps))
    carry, losses = stage(carry, 2, sumprod.round_ternary, jnp.zeros(FLAGS.round_steps))
  return carry[0], losses[-1]


def levels(params, recipe: str) -> list[np.ndarray]:
  """The integer weights a trained SPN stands for: TWN's levels, or the rounded weights."""
  if recipe == "twn":
    return [sumprod.ternary_levels(w)[0].astype(np.int64) for w in params]
  return [np.clip(np.rint(np.asarray(w)), -1, 1).astype(np.int64) for w in params]


def wilson(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
  if trials == 0:
    return 0.0, 1.0
  p = successes / trials
  centre = (p + z * z / (2 * trials)) / (1 + z * z / trials)
  half = z * math.sqrt(p * (1 - p) / trials + z * z / (4 * trials * trials)) / (1 + z * z / trials)
  return max(0.0, centre - half), min(1.0, centre + half)


def describe(w_a, w_b, w_c) -> str:
  """The algorithm as formulas: M_i = (± a..)(± b..), then c_k = ± M_i ...; A = [[a11, a12], [a21, a22]]."""
  names = ["11", "12", "21", "22"]

  def combination(row, symbol):
    terms = [f"{'-' if v < 0 else '+'} {symbol}{names[i]}" for i, v in enumerate(row) if v]
    return " ".join(terms).lstrip("+ ")

  lines = [f"M{i + 1} = ({combination(w_a[i], 'a')}) · ({combination(w_b[i], 'b')})" for i in range(len(w_a))]
  for k in range(N * N):
    terms = [f"{'-' if v < 0 else '+'} M{i + 1}" for i, v in enumerate(w_c[k]) if v]
    lines.append(f"c{names[k]} = " + " ".join(terms).lstrip("+ "))
  return "\n".join(lines)


def main(argv):
  del argv
  recipes = list(FLAGS.recipes)
  if set(recipes) - {"twn", "penalty"}:
    raise UsageError(f"unknown recipe in {recipes}; use twn, penalty")
  if not all(h.isdigit() and int(h) >= 1 for h in FLAGS.hidden):
    raise UsageError(f"--hidden takes positive integers, got {FLAGS.hidden}")
  if min(FLAGS.seeds, FLAGS.full_steps, FLAGS.ternary_steps, FLAGS.round_steps) < 1:
    raise UsageError("--seeds and every stage's steps must be at least 1")
  if FLAGS.solution and "7" not in FLAGS.hidden:
    raise UsageError("--solution saves an r = 7 algorithm: --hidden must include 7")
  out = Path(FLAGS.out)
  out.mkdir(parents=True, exist_ok=True)
  results, solution = [], None
  for hidden in (int(h) for h in FLAGS.hidden):
    for recipe in recipes:
      start = time.time()
      params, losses = jax.jit(jax.vmap(lambda seed: train(seed, hidden, recipe)))(jnp.arange(FLAGS.seeds))
      exact = []
      for s in range(FLAGS.seeds):
        w = levels([p[s] for p in params], recipe)
        exact.append(sumprod.is_exact_matmul(*w, N))
        if exact[-1] and hidden == 7 and solution is None:
          solution = w
      count = int(np.sum(exact))
      low, high = wilson(count, FLAGS.seeds)
      results.append({"hidden": hidden, "recipe": recipe, "seeds": FLAGS.seeds, "exact": count,
                      "rate": count / FLAGS.seeds, "interval95": [low, high],
                      "median_final_loss": float(np.median(np.asarray(losses))), "seconds": time.time() - start})
      print(f"r = {hidden}, {recipe}: {count} of {FLAGS.seeds} exact ({100 * count / FLAGS.seeds:.1f}%, 95% "
            f"{100 * low:.1f}–{100 * high:.1f}%), {time.time() - start:.0f} s", flush=True)
  record = {"results": results, "settings": {**{k: FLAGS[k].value for k in (
      "hidden", "recipes", "seeds", "full_steps", "ternary_steps", "round_steps")}, "batch": BATCH,
      "learning_rate": LEARNING_RATE, "penalty_range": PENALTY_RANGE}}
  if solution is not None:
    ops = sumprod.matmul_ops(*solution)
    print("An r = 7 algorithm (exact in integer arithmetic):\n" + describe(*solution))
    print(f"{ops.multiplications} multiplications, {ops.additions} additions (the schoolbook product: 8 and 4)")
    record["r7_solution"] = {"w_a": solution[0].tolist(), "w_b": solution[1].tolist(), "w_c": solution[2].tolist(),
                             "multiplications": ops.multiplications, "additions": ops.additions}
    if FLAGS.solution:
      Path(FLAGS.solution).write_text(json.dumps(record["r7_solution"], indent=1) + "\n")
  (out / "results.json").write_text(json.dumps(record, indent=1) + "\n")


if __name__ == "__main__":
  from experiments import launch
  launch.run(lambda: app.run(main))
