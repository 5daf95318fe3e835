"""The greedy sparse-coding reproductions (compzoo/sparse; docs/sparse.md), one figure each:

    python -m experiments.sparse_figures --figure=iterations --out=runs/sparse   # SSC-MP vs SSC-OMP against the step budget
    python -m experiments.sparse_figures --figure=dimensions --out=runs/sparse   # support size against subspace dimension
    python -m experiments.sparse_figures --figure=large --out=runs/sparse        # 10 subspaces, 2,000 points: time and error
    python -m experiments.sparse_figures --figure=cone --out=runs/sparse         # NNMP, AMP, PWMP, FCMP, projected gradient
    python -m experiments.sparse_figures --figure=mnist --out=runs/sparse        # MNIST test digits after PCA

Each writes FIGURE.png and FIGURE.json into --out. Synthetic draws come from fixed seeds (--seed); nothing is tuned
on the numbers reported (the settings are the papers', or fixed before the first run).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from absl import app, flags

from experiments.configs import presets

FIGURES = ("iterations", "dimensions", "large", "cone", "mnist")
_FIGURE = flags.DEFINE_enum("figure", "iterations", FIGURES, "which reproduction")
_OUT = flags.DEFINE_string("out", "runs/sparse", "output folder")
_REPETITIONS = flags.DEFINE_integer("repetitions", 20, "random draws per point (iterations, dimensions)")
_SEED = flags.DEFINE_integer("seed", 0, "first seed of the draws")
_MNIST = flags.DEFINE_string("mnist", presets.MNIST, "folder of the MNIST IDX files")
_DIGITS = flags.DEFINE_integer("digits", 2000, "MNIST test digits clustered (the first N)")

# Tschannen & Bölcskei 2018's iteration-sensitivity setting, and the official code's clustering errors there.
PAPER_STEPS = (8, 20, 40, 60)
PAPER_ERRORS = {"omp": (0.0038, 0.023, 0.358, 0.523), "mp": (0.0043, 0.0034, 0.0063, 0.0079)}
INTERSECTING = dict(ambient=80, dimensions=(15, 15, 15), shared=3, points=60, noise=0.5)


def iterations(rng, repetitions):
  from compzoo import sparse
  from compzoo.sparse.subspaces import union_of_subspaces
  steps = (2, 4, 8, 12, 20, 30, 40, 50, 60)
  errors = {p: np.zeros((repetitions, len(steps))) for p in ("mp", "omp")}
  for r in range(repetitions):
    x, truth = union_of_subspaces(rng, **INTERSECTING)
    for pursuit, table in errors.items():
      for i, s in enumerate(steps):
        table[r, i] = sparse.clustering_error(sparse.ssc(x, 3, pursuit, max_steps=s, seed=r), truth)
  result = {"setting": INTERSECTING, "repetitions": repetitions, "steps": steps,
            "mean": {p: e.mean(0).tolist() for p, e in errors.items()},
            "std": {p: e.std(0).tolist() for p, e in errors.items()},
            "paper_steps": PAPER_STEPS, "paper": PAPER_ERRORS}

  def draw(axes):
    for pursuit, colour in (("mp", "C0"), ("omp", "C1")):
      axes.errorbar(steps, result["mean"][pursuit], result["std"][pursuit], color=colour, marker="o", capsize=3,
                    label=f"SSC-{pursuit.upper()} (compzoo, {repetitions} draws)")
      axes.plot(PAPER_STEPS, PAPER_ERRORS[pursuit], color=colour, marker="x", linestyle="none", markersize=10,
                label=f"SSC-{pursuit.upper()} (official code)")
    axes.set(xlabel="maximum pursuit steps", ylabel="clustering error",
             title="m = 80, three 15-dim subspaces sharing 3 dims, 60 points each, σ = 0.5")
  return result, draw


def dimensions(rng, repetitions):
  from compzoo import sparse
  from compzoo.sparse.subspaces import union_of_subspaces
  dims, noise, tol = (3, 6, 9, 12, 15), 0.05, 0.07
  sizes = {p: {d: [] for d in dims} for p in ("mp", "omp")}
  for _ in range(repetitions):
    x, truth = union_of_subspaces(rng, ambient=80, dimensions=dims, points=60, noise=noise)
    for pursuit in sizes:
      support = (sparse.self_expression(x, pursuit, max_steps=60, tol=tol) != 0).sum(axis=0)
      for label, d in enumerate(dims):
        sizes[pursuit][d].extend(support[truth == label].tolist())
  result = {"ambient": 80, "points": 60, "noise": noise, "tol": tol, "repetitions": repetitions,
            "median": {p: {d: float(np.median(v)) for d, v in s.items()} for p, s in sizes.items()},
            "quartiles": {p: {d: np.percentile(v, [25, 75]).tolist() for d, v in s.items()} for p, s in sizes.items()}}

  def draw(axes):
    for pursuit, colour, shift in (("mp", "C0", -0.2), ("omp", "C1", 0.2)):
      medians = [result["median"][pursuit][d] for d in dims]
      quartiles = np.asarray([result["quartiles"][pursuit][d] for d in dims]).T
      axes.errorbar(np.asarray(dims) + shift, medians, [medians - quartiles[0], quartiles[1] - medians], color=colour,
                    marker="o", capsize=3, linestyle="none", label=f"SSC-{pursuit.upper()}: median, quartiles")
    axes.plot(dims, dims, "k--", label="the subspace's dimension")
    axes.set(xlabel="subspace dimension", ylabel=f"support size at τ = {tol}",
             title=f"five subspaces in 80 dims, σ = {noise}, τ = {tol}")
  return result, draw


def _compare(points, truth, clusters: int) -> dict:
  """Each clustering method on the columns of ``points``: seconds (spectral clustering included), error and
  cluster sizes."""
  from compzoo import sparse
  methods = {"SSC-MP": lambda: sparse.ssc(points, clusters, "mp", max_steps=10),
             "SSC-OMP": lambda: sparse.ssc(points, clusters, "omp", max_steps=10),
             "SSC-Lasso": lambda: sparse.ssc(points, clusters, "lasso", alpha=0.05),
             "TSC": lambda: sparse.tsc(points, clusters, neighbours=10)}
  rows = {}
  for name, run in methods.items():
    started = time.perf_counter()
    labels = run()
    rows[name] = {"seconds": time.perf_counter() - started, "error": sparse.clustering_error(labels, truth),
                  "cluster_sizes": sorted(np.bincount(labels).tolist(), reverse=True)}
    print(name, rows[name])
  return rows


def large(rng, repetitions):
  del repetitions
  from compzoo.sparse.subspaces import union_of_subspaces
  x, truth = union_of_subspaces(rng, ambient=100, dimensions=(10,) * 10, points=200, noise=0.3)
  rows = _compare(x, truth, 10)
  result = {"setting": dict(ambient=100, subspaces=10, dimension=10, points=2000, noise=0.3), "methods": rows}

  def draw(axes):
    for name, row in rows.items():
      axes.scatter(row["seconds"], row["error"], s=60)
      axes.annotate(name, (row["seconds"], row["error"]), textcoords="offset points", xytext=(6, 4))
    axes.set(xscale="log", xlabel="seconds (one CPU thread)", ylabel="clustering error",
             title="10 subspaces of dim 10 in 100 dims, 2,000 points, σ = 0.3")
  return result, draw


def cone(rng, repetitions):
  del repetitions
  from scipy.optimize import nnls
  from compzoo import sparse
  atoms = rng.standard_normal((200, 100))
  atoms /= np.linalg.norm(atoms, axis=0)
  y = rng.standard_normal(200)
  basis = np.linalg.qr(rng.standard_normal((200, 60)))[0]  # rank 60 < 100 atoms: not strongly convex over the cone
  problems = {"strongly convex: ½||y - x||²": None, "not strongly convex: ½||P(y - x)||², rank P = 60": basis @ basis.T}
  iterations, curves = 600, {}
  for title, projection in problems.items():
    objective = sparse.Quadratic(y, projection)
    p = np.eye(200) if projection is None else projection
    best = 0.5 * nnls(p @ atoms, p @ y)[1] ** 2
    curves[title] = {v: (np.asarray(sparse.cone_pursuit(objective, atoms, v, iterations).values) - best).tolist()
                     for v in sparse.VARIANTS}
    step = 1.0 / np.linalg.norm(p @ atoms, 2) ** 2
    weights, values = np.zeros(atoms.shape[1]), []
    for _ in range(iterations + 1):
      values.append(objective.value(atoms @ weights) - best)
      weights = np.maximum(0.0, weights - step * atoms.T @ objective.gradient(atoms @ weights))
    curves[title]["projected gradient"] = values
  result = {"atoms": 100, "dimension": 200, "iterations": iterations, "suboptimality": curves,
            "at_600": {t: {v: c[min(600, len(c) - 1)] for v, c in cs.items()} for t, cs in curves.items()}}

  def draw(axes_list):
    for axes, (title, cs) in zip(axes_list, curves.items()):
      for v, c in cs.items():
        axes.semilogy(np.maximum(c, 1e-16), label=v.upper() if v in sparse.VARIANTS else v)
      axes.set(xlabel="iteration", ylabel="f(x_t) - f*", title=title, ylim=(1e-16, None))
  return result, draw


def mnist(rng, repetitions):
  del rng, repetitions
  from compzoo import sparse
  from compzoo.data.builders import read_mnist
  images, labels = read_mnist(Path(_MNIST.value))
  count = _DIGITS.value
  x = images[:count].reshape(count, -1).astype(np.float64).T / 255.0
  x -= x.mean(axis=1, keepdims=True)
  u, _, _ = np.linalg.svd(x, full_matrices=False)
  features = u[:, :50].T @ x  # PCA to 50 dimensions
  truth = labels[:count]
  rows = _compare(features, truth, 10)
  same_digit = truth[:, None] == truth[None, :]
  for name in ("SSC-MP", "SSC-OMP"):  # how much of the affinity joins points of one digit (10% at random)
    weights = np.abs(sparse.self_expression(features, name[4:].lower(), max_steps=10))
    rows[name]["same_digit_weight"] = float((weights * same_digit).sum() / weights.sum())
  result = {"digits": count, "pca": 50, "methods": rows, "paper": "none: no source paper reports this setting"}

  def draw(axes):
    names = list(rows)
    axes.bar(names, [rows[n]["error"] for n in names])
    axes.set(ylabel="clustering error", title=f"MNIST test, first {count} digits, PCA to 50 dims, 10 clusters")
  return result, draw


def main(argv):
  del argv
  import matplotlib
  matplotlib.use("Agg")
  import matplotlib.pyplot as plt

  out = Path(_OUT.value)
  out.mkdir(parents=True, exist_ok=True)
  name = _FIGURE.value
  started = time.perf_counter()
  result, draw = globals()[name](np.random.default_rng(_SEED.value), _REPETITIONS.value)
  result["seconds"] = time.perf_counter() - started
  panels = 2 if name == "cone" else 1
  figure, axes = plt.subplots(1, panels, figsize=(6.5 * panels, 4.5))
  draw(axes)
  for a in np.atleast_1d(axes):
    a.grid(alpha=0.3)
    if a.get_legend_handles_labels()[0]:
      a.legend(fontsize=8)
  figure.tight_layout()
  figure.savefig(out / f"{name}.png", dpi=110)
  (out / f"{name}.json").write_text(json.dumps(result, indent=1, default=float))
  print(f"wrote {out / name}.png and .json in {result['seconds']:.0f} s")


if __name__ == "__main__":
  from experiments import launch
  launch.run(lambda: app.run(main))
