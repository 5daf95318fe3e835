"""Greedy sparse coding: matching pursuits, subspace clustering built on them, and pursuits over cones.

    from compzoo import sparse
    labels = sparse.ssc(X, n_clusters=3, pursuit="mp", max_steps=20)   # one point per column of X
    sparse.clustering_error(labels, truth)

pursuit.py (MP, OMP), clustering.py (SSC with MP / OMP / the Lasso, TSC, spectral clustering, the clustering
error), cone.py (non-negative MP and its away-step, pairwise and fully corrective variants).
"""

from compzoo.sparse.clustering import (PURSUITS, clustering_error, self_expression, spectral_clustering, ssc, tsc,
                                       tsc_affinity, unit_columns)
from compzoo.sparse.cone import VARIANTS, ConeResult, MatrixAtoms, Quadratic, cone_pursuit, fcmp_codes
from compzoo.sparse.pursuit import matching_pursuit, orthogonal_matching_pursuit

__all__ = ["PURSUITS", "VARIANTS", "ConeResult", "MatrixAtoms", "Quadratic", "clustering_error", "cone_pursuit",
           "fcmp_codes", "matching_pursuit", "orthogonal_matching_pursuit", "self_expression", "spectral_clustering",
           "ssc", "tsc", "tsc_affinity", "unit_columns"]
