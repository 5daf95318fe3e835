"""Greedy sparse coding (compzoo/sparse): the pursuits against scikit-learn, the papers' claims on small draws
(SSC-MP robust to its step budget where SSC-OMP is not; a residual threshold reads off subspace dimensions;
away-step and pairwise cone pursuits converge linearly where plain NNMP does not), and bad input."""

import numpy as np
import pytest
from scipy.optimize import nnls

from compzoo import sparse
from compzoo.errors import UsageError
from compzoo.sparse.subspaces import union_of_subspaces


def test_omp_matches_scikit_learn():
  from sklearn.linear_model import OrthogonalMatchingPursuit
  rng = np.random.default_rng(0)
  atoms = rng.standard_normal((30, 50))
  atoms /= np.linalg.norm(atoms, axis=0)
  signals = rng.standard_normal((30, 4))
  ours = sparse.orthogonal_matching_pursuit(atoms, signals, max_steps=6)
  for column in range(4):
    reference = OrthogonalMatchingPursuit(n_nonzero_coefs=6, fit_intercept=False).fit(atoms, signals[:, column])
    np.testing.assert_allclose(ours[:, column], reference.coef_, atol=1e-10)


def test_matching_pursuit_stops_by_each_rule_and_only_descends():
  rng = np.random.default_rng(1)
  atoms = rng.standard_normal((20, 40))
  signals = rng.standard_normal((20, 3))
  errors = [np.linalg.norm(signals - atoms @ sparse.matching_pursuit(atoms, signals, steps), axis=0)
            for steps in (1, 2, 5, 20)]
  assert all((later <= earlier + 1e-12).all() for earlier, later in zip(errors, errors[1:]))
  assert ((sparse.matching_pursuit(atoms, signals, 50, max_support=4) != 0).sum(axis=0) <= 4).all()
  tol = 0.5 * np.linalg.norm(signals, axis=0).min()
  for pursuit in (sparse.matching_pursuit, sparse.orthogonal_matching_pursuit):
    stopped = pursuit(atoms, signals, 30, tol=tol)
    residuals = np.linalg.norm(signals - atoms @ stopped, axis=0)
    assert (residuals <= tol + 1e-12).all()
    assert ((stopped != 0).sum(axis=0) < (pursuit(atoms, signals, 30) != 0).sum(axis=0)).all()  # it stopped early
  for pursuit in (sparse.matching_pursuit, sparse.orthogonal_matching_pursuit):
    selfish = pursuit(atoms[:, :5], atoms[:, :5], 10, exclude=np.arange(5))
    assert not np.diag(selfish).any()  # self-expression never uses the point itself
    assert ((selfish != 0).sum(axis=0) <= 4).all()


@pytest.fixture(scope="module")
def intersecting_draws():
  """The paper's iteration-sensitivity setting: m = 80, three 15-dimensional subspaces sharing 3 dimensions,
  60 points each, noise σ = 0.5."""
  return [union_of_subspaces(np.random.default_rng(seed), ambient=80, dimensions=(15, 15, 15), shared=3,
                             points=60, noise=0.5) for seed in range(2)]


def test_ssc_mp_is_robust_to_its_step_budget_where_ssc_omp_is_not(intersecting_draws):
  """Tschannen & Bölcskei 2018 (the official code's numbers at 40 steps: SSC-MP 0.0063, SSC-OMP 0.358)."""
  mp = np.mean([sparse.clustering_error(sparse.ssc(x, 3, "mp", max_steps=40), truth) for x, truth in intersecting_draws])
  omp = np.mean([sparse.clustering_error(sparse.ssc(x, 3, "omp", max_steps=40), truth)
                 for x, truth in intersecting_draws])
  assert mp <= 0.02 and omp >= 0.2, (mp, omp)


def test_a_residual_threshold_reads_off_each_subspace_dimension():
  """SSC-MP stopped by τ = 1.4 × the noise level: the support sizes are the subspaces' dimensions (± 1)."""
  for seed in range(2):
    x, truth = union_of_subspaces(np.random.default_rng(seed), ambient=60, dimensions=(4, 8, 12), shared=0,
                                  points=80, noise=0.05)
    support = (sparse.self_expression(x, "mp", max_steps=60, tol=0.07) != 0).sum(axis=0)
    medians = np.asarray([np.median(support[truth == label]) for label in range(3)])
    assert np.abs(medians - [4, 8, 12]).max() <= 1, medians


def test_the_number_of_clusters_is_found_by_the_eigengap_and_tsc_and_the_lasso_cluster_too():
  x, truth = union_of_subspaces(np.random.default_rng(4), ambient=30, dimensions=(3, 3, 3, 3), shared=0,
                                points=25, noise=0.02)
  labels = sparse.ssc(x, None, "mp", max_steps=6)
  assert len(np.unique(labels)) == 4 and sparse.clustering_error(labels, truth) == 0.0
  assert sparse.clustering_error(sparse.tsc(x, 4, neighbours=5), truth) == 0.0
  assert sparse.clustering_error(sparse.ssc(x, 4, "lasso", alpha=0.05), truth) <= 0.02


def test_clustering_error_takes_the_best_matching():
  assert sparse.clustering_error([2, 2, 0, 0, 1], [0, 0, 1, 1, 2]) == 0.0
  assert sparse.clustering_error([0, 0, 0, 1], [0, 0, 1, 1]) == pytest.approx(0.25)


def _instance(seed, atoms=100, dimension=200):
  rng = np.random.default_rng(seed)
  matrix = rng.standard_normal((dimension, atoms))
  return matrix / np.linalg.norm(matrix, axis=0), rng.standard_normal(dimension)


def test_away_and_pairwise_cone_pursuits_converge_linearly_where_nnmp_does_not():
  """Locatello et al. 2017 on min ½||y - Aw||², w ≥ 0, 100 atoms in 200 dimensions (strongly convex)."""
  matrix, y = _instance(0)
  best = 0.5 * nnls(matrix, y)[1] ** 2
  gap = {v: sparse.cone_pursuit(sparse.Quadratic(y), matrix, v, 600).values[-1] - best for v in sparse.VARIANTS}
  assert gap["amp"] < 1e-8 and gap["pwmp"] < 1e-8 and gap["fcmp"] < 1e-10, gap
  assert gap["nnmp"] > 1e-5, gap


def test_every_cone_pursuit_descends_on_a_smooth_objective_that_is_not_strongly_convex():
  matrix, y = _instance(1, atoms=40, dimension=60)
  rng = np.random.default_rng(2)
  basis = np.linalg.qr(rng.standard_normal((60, 30)))[0]
  objective = sparse.Quadratic(y, basis @ basis.T)  # rank 30 of 60
  best = 0.5 * nnls(basis @ basis.T @ matrix, basis @ basis.T @ y)[1] ** 2
  for variant in sparse.VARIANTS:
    result = sparse.cone_pursuit(objective, matrix, variant, 300)
    assert np.all(np.diff(result.values) <= 1e-12), variant
    assert all(w > 0 for w in result.weights.values())
    assert result.values[-1] - best < 0.05 * (result.values[0] - best), variant


def test_bad_input_gets_one_line_errors():
  good = np.eye(4)
  with pytest.raises(UsageError, match="NaN"):
    sparse.ssc(np.full((3, 5), np.nan), 2)
  with pytest.raises(UsageError, match="2-D"):
    sparse.matching_pursuit(np.zeros((4, 0)), good, 3)
  with pytest.raises(UsageError, match="features"):
    sparse.orthogonal_matching_pursuit(good, np.ones((3, 2)), 2)
  with pytest.raises(UsageError, match="clusters of 4 points"):
    sparse.ssc(good + 0.1, 9)
  with pytest.raises(UsageError, match="unknown pursuit"):
    sparse.ssc(good + 0.1, 2, pursuit="lars")
  with pytest.raises(UsageError, match="unknown cone pursuit"):
    sparse.cone_pursuit(sparse.Quadratic(np.ones(4)), good, "frank-wolfe")
  with pytest.raises(UsageError, match="zero column"):
    sparse.tsc(np.zeros((3, 4)), 2)
  points = np.random.default_rng(0).standard_normal((5, 12))
  for bad in (dict(tol=np.nan), dict(max_support=0), dict(max_steps=2.5), dict(pursuit="lasso", alpha=1.5)):
    with pytest.raises(UsageError):
      sparse.ssc(points, 2, **{"pursuit": "mp", **bad})
  with pytest.raises(UsageError, match="no affinity"):
    sparse.ssc(points, 2, tol=10.0)  # every pursuit stops at once: no silent arbitrary labels
  with pytest.raises(UsageError, match="integer"):
    sparse.ssc(points, 2.5)
  with pytest.raises(UsageError, match="symmetric"):
    sparse.spectral_clustering(np.triu(np.ones((4, 4))), 2)
  with pytest.raises(UsageError, match="at least 3 points"):
    sparse.spectral_clustering(np.ones((2, 2)), None)
  with pytest.raises(UsageError, match="dimensions"):
    sparse.cone_pursuit(sparse.Quadratic(np.ones(3)), good, "amp")
  with pytest.raises(UsageError, match="equally long"):
    sparse.clustering_error(np.zeros((2, 3)), np.zeros(6))


class _CoordinateOracle:
  """The unit vectors e_i, given only through an oracle: their cone is the non-negative orthant."""

  def __init__(self, dimension):
    self.dimension = dimension

  def __call__(self, gradient):
    return int(np.argmin(gradient))

  def atom(self, key):
    return np.eye(self.dimension)[key]


def test_an_atom_set_given_by_its_oracle_alone():
  y = np.random.default_rng(5).standard_normal(12)
  for variant in ("amp", "pwmp", "fcmp"):
    result = sparse.cone_pursuit(sparse.Quadratic(y), _CoordinateOracle(12), variant, 50)
    np.testing.assert_allclose(result.x, np.maximum(y, 0.0), atol=1e-12)
