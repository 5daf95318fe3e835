"""Fits the patch codecs' books (compzoo/codecs/patch.py) on BSDS500's training photos and writes them to
compzoo/weights/patch/.

    python -m experiments.patch_fit            # ~5 min on one core; `make patch-books`

Every subspace book starts from clusters of textured blocks' zero-mean parts, each cluster's basis its
members' PCA: SSC-MP's clusters (``ssc.npz``, the kept dimension of each the median support size SSC-MP
needed to bring a member's residual under ``--tau``), k-means' on the same unit-norm points (``kmeans.npz``,
every dimension kept) or one cluster (``pca.npz``). Then, the same for all, ``--passes`` rounds assign every
training block by the codec's own rate-distortion rule at ``--reference_step`` and re-measure each basis's
coefficient scales and the id counts on its blocks. The non-negative book (``nonneg.npz``) is scikit-learn's
NMF of raw blocks, normalised, with its weights' scales measured from the codec's own FCMP codes.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
from absl import app, flags

from compzoo import sparse
from compzoo.codecs import patch
from compzoo.data.images import list_images, load_image
from compzoo.entropy.coder import quantize_pmf
from compzoo.errors import UsageError

FLAGS = flags.FLAGS
flags.DEFINE_string("images", "../shared/data/train/bsds500/train", "folder of training photos")
flags.DEFINE_string("out", str(patch.BOOKS), "where the books go")
flags.DEFINE_integer("clusters", 16, "bases per subspace book (SSC-MP and k-means)")
flags.DEFINE_integer("cluster_points", 3000, "textured blocks clustered per plane (SSC's affinity is N×N)")
flags.DEFINE_integer("samples", 40000, "training blocks per plane for scales, counts and NMF")
flags.DEFINE_integer("cluster_steps", 3, "SSC-MP's pursuit steps for the clustering (more: one giant cluster)")
flags.DEFINE_integer("dim_steps", 48, "the most pursuit steps when reading a cluster's dimension")
flags.DEFINE_float("tau", 0.1, "the residual threshold (unit-norm points) that reads each cluster's dimension")
flags.DEFINE_integer("gain_octaves", 3, "a block's scales may be multiplied by 2^-n..2^n")
flags.DEFINE_integer("passes", 2, "rate-distortion reassignment rounds")
flags.DEFINE_float("reference_step", 20.0, "the quantiser step the reassignment uses")
flags.DEFINE_integer("atoms", 96, "non-negative dictionary size (NMF parts; the flat block is added)")
flags.DEFINE_integer("cone_steps", 32, "the most FCMP iterations per block in the non-negative codec")
flags.DEFINE_integer("seed", 0, "sampling and clustering seed")
BOOK_KINDS = {"pca": "subspaces", "ssc": "subspaces", "kmeans": "subspaces", "nonneg": "cone"}
flags.DEFINE_list("books", list(BOOK_KINDS), "which books to fit")

_SCALE_FLOOR = 0.05  # a coefficient never seen non-zero still gets a table (the ladder starts at 0.11)
_START_DIMS = 8  # directions that place a training block before the rate-distortion rounds
_CONE_SAMPLE = 4000  # blocks whose FCMP codes (up to 32 NNLS fits each) set the cone book's scales


def training_blocks(folder: str, samples: int, rng) -> dict:
  """{"luma": (samples, 64), "chroma": ...} random blocks of every photo's planes, and the RMS DC difference."""
  paths = list_images(folder)
  if not paths:
    raise UsageError(f"no images in {folder}")
  blocks = {"luma": [], "chroma": []}
  dc_diffs = {"luma": [], "chroma": []}
  for path in paths:
    for name, plane in zip(patch.PLANES, patch.to_planes(load_image(path))):
      cut = patch.to_blocks(plane)
      blocks[name].append(cut)
      dc = (cut.sum(axis=1) / patch.BLOCK).reshape(patch.grid(plane.shape))
      dc_diffs[name].append(patch.dc_differences(dc).reshape(-1)[1:])  # the first block is predicted from 0
  out = {}
  for name in blocks:
    every = np.concatenate(blocks[name])
    out[name] = every[rng.choice(len(every), min(samples, len(every)), replace=False)]
    out[name + "/dc_scale"] = float(np.sqrt(np.mean(np.concatenate(dc_diffs[name])**2)))
  return out


def complement_basis() -> np.ndarray:
  """(64, 63) orthonormal columns spanning the zero-mean blocks."""
  centring = np.eye(patch.BLOCK**2) - 1.0 / patch.BLOCK**2
  vectors, _, _ = np.linalg.svd(centring)
  return vectors[:, :patch.BLOCK**2 - 1]


def pca_basis(residuals: np.ndarray) -> np.ndarray:
  """(63, 64): the zero-mean blocks' principal directions, by falling variance."""
  frame = complement_basis()
  coords = residuals @ frame
  _, vectors = np.linalg.eigh(coords.T @ coords)
  return (frame @ vectors[:, ::-1]).T


def rd_refine(bases, dims, blocks, dc_scale, passes, step, initial_bases=None):
  """Scales (over each block's gain) and class counts measured on the blocks each (basis, gain) wins under the
  codec's own rule; at first each block takes ``initial_bases`` and the gain nearest its own RMS."""
  gains = _gains()
  residuals = blocks - blocks.mean(axis=1, keepdims=True)
  labels = np.zeros(len(blocks), np.int64) if initial_bases is None else np.asarray(initial_bases)
  gain_of = _nearest_gain(np.sqrt(np.mean(residuals**2, axis=1)), gains)
  classes = labels * len(gains) + gain_of
  for _ in range(passes + 1):
    labels, gain_of = classes // len(gains), classes % len(gains)
    scales = np.stack([_rms(np.einsum("dp,np->nd", basis, residuals[labels == k]) / gains[gain_of[labels == k], None])
                       for k, basis in enumerate(bases)])
    total = len(bases) * len(gains)
    counts = np.bincount(classes, minlength=total) + 1.0
    ids = quantize_pmf((counts / counts.sum())[None]) if total > 1 else np.ones((1, 1), np.float32)
    book = patch.SubspaceBook(bases, np.asarray(dims, np.int64), scales, gains, ids, dc_scale)
    classes, _, _ = patch.encode_subspaces(book, blocks, step)
  return book, classes // len(gains)


def _rms(values):
  if len(values) == 0:
    return np.full(values.shape[1], 1.0)
  return np.maximum(np.sqrt(np.mean(values**2, axis=0)), _SCALE_FLOOR)


def textured(blocks, count, rng):
  """Unit-norm zero-mean parts of ``count`` blocks drawn among the more textured half, as columns, and which."""
  residuals = blocks - blocks.mean(axis=1, keepdims=True)
  energy = np.linalg.norm(residuals, axis=1)
  chosen = rng.choice(np.nonzero(energy > np.median(energy))[0], count, replace=False)
  return sparse.unit_columns(residuals[chosen].T), chosen


def cluster_book(method, blocks, dc_scale, rng, report):
  points, chosen = textured(blocks, FLAGS.cluster_points, rng)
  residuals = blocks - blocks.mean(axis=1, keepdims=True)
  if method == "ssc":
    coefficients = sparse.self_expression(points, "mp", FLAGS.cluster_steps)
    labels = sparse.spectral_clustering(np.abs(coefficients) + np.abs(coefficients).T, FLAGS.clusters, FLAGS.seed)
  else:
    from sklearn.cluster import KMeans
    labels = KMeans(FLAGS.clusters, n_init=10, random_state=FLAGS.seed).fit_predict(points.T)
  bases, dims, supports = [], [], []
  for k in range(FLAGS.clusters):
    members = chosen[labels == k]
    bases.append(pca_basis(residuals[members]))
    dims.append(patch.BLOCK**2 - 1)
    if method == "ssc" and len(members) > 1:
      # The dimension-detection claim: written in terms of its own cluster's other points, a member needs about
      # as many atoms as its subspace has dimensions to bring its residual under τ.
      own = sparse.self_expression(points[:, labels == k], "mp", min(FLAGS.dim_steps, len(members) - 1), FLAGS.tau)
      supports.append(float(np.median(np.count_nonzero(own, axis=0))))
      dims[-1] = int(np.clip(np.ceil(supports[-1]), 1, patch.BLOCK**2 - 1))
  initial = np.full(len(blocks), -1)
  initial[chosen] = labels
  # Blocks outside the clustered set start at the basis capturing most of their energy in its first few
  # directions (one rule for every book: kept dimensions would favour the bases that keep more).
  rest = initial < 0
  captured = np.stack([np.sum((residuals[rest] @ b[:_START_DIMS].T)**2, axis=1) for b in bases], axis=1)
  initial[rest] = np.argmax(captured, axis=1)
  book, final = rd_refine(np.stack(bases), dims, blocks, dc_scale, FLAGS.passes, FLAGS.reference_step, initial)
  report.update(dims=[int(d) for d in dims], cluster_sizes=np.bincount(labels, minlength=FLAGS.clusters).tolist(),
                blocks_per_basis=np.bincount(final, minlength=FLAGS.clusters).tolist())
  if supports:
    report["median_supports"] = supports
  return book


def cone_book(blocks, rng, report):
  """NMF atoms; the weights' scales and gain counts measured on FCMP codes of training blocks, the gains
  assigned as the codec assigns them (at ``--reference_step``)."""
  from sklearn.decomposition import NMF
  model = NMF(FLAGS.atoms, init="random", max_iter=400, random_state=FLAGS.seed)
  model.fit(blocks)
  # The flat block joins the parts NMF finds: without it a block's mean level is assembled from many parts.
  atoms = np.vstack([np.full((1, patch.BLOCK**2), 1.0 / patch.BLOCK), model.components_])
  atoms = atoms / np.maximum(np.linalg.norm(atoms, axis=1, keepdims=True), 1e-12)
  sample = blocks[rng.choice(len(blocks), min(_CONE_SAMPLE, len(blocks)), replace=False)]
  tol = FLAGS.reference_step * patch.BLOCK / np.sqrt(12)  # the codec's own stopping rule at the reference step
  weights = sparse.fcmp_codes(atoms.T, sample.T, FLAGS.cone_steps, tol).T
  gains = _gains()
  gain_of = _nearest_gain(np.sqrt(np.mean(weights**2, axis=1)), gains)
  q = np.floor(weights / FLAGS.reference_step + 0.5).astype(np.int64)
  for _ in range(FLAGS.passes + 1):
    counts = np.bincount(gain_of, minlength=len(gains)) + 1.0
    book = patch.ConeBook(atoms, _rms(weights / gains[gain_of, None]), gains,
                          quantize_pmf((counts / counts.sum())[None]), FLAGS.cone_steps)
    gain_of = patch.cone_classes(book, q, FLAGS.reference_step)
  report.update(nmf_error=float(model.reconstruction_err_), mean_support=float(np.mean(np.count_nonzero(weights, 1))),
                blocks_per_gain=np.bincount(gain_of, minlength=len(gains)).tolist())
  return book


def _gains():
  return 2.0 ** np.arange(-FLAGS.gain_octaves, FLAGS.gain_octaves + 1, dtype=np.float64)


def _nearest_gain(energy, gains):
  """The gain nearest each block's RMS over the median RMS, on a log scale."""
  ratio = np.maximum(energy, 1e-3) / max(np.median(energy), 1e-3)
  return np.argmin(np.abs(np.log2(ratio)[:, None] - np.log2(gains)[None]), axis=1)


def main(argv):
  del argv
  unknown = sorted(set(FLAGS.books) - set(BOOK_KINDS))
  if unknown:
    raise UsageError(f"unknown book {unknown[0]!r}; use {', '.join(BOOK_KINDS)}")
  rng = np.random.default_rng(FLAGS.seed)
  out = Path(FLAGS.out)
  out.mkdir(parents=True, exist_ok=True)
  start = time.time()
  data = training_blocks(FLAGS.images, FLAGS.samples, rng)
  if not (out / "tables.npz").is_file():  # every book's weights id hashes them: never rewritten
    patch.save_tables(out / "tables.npz")
  reports = {}
  for index, name in enumerate(BOOK_KINDS):
    if name not in FLAGS.books:
      continue
    book_rng = np.random.default_rng([FLAGS.seed, index])  # a book's draws do not depend on which others are fitted
    books, reports[name] = {}, {}
    for plane in ("luma", "chroma"):
      report = reports[name].setdefault(plane, {})
      blocks, dc_scale = data[plane], data[plane + "/dc_scale"]
      if name == "pca":
        book, _ = rd_refine(pca_basis(blocks - blocks.mean(axis=1, keepdims=True))[None], [63], blocks, dc_scale,
                            FLAGS.passes, FLAGS.reference_step)
      elif name in ("ssc", "kmeans"):
        book = cluster_book(name, blocks, dc_scale, book_rng, report)
      else:
        book = cone_book(blocks, book_rng, report)
      books[plane] = book
      print(f"{name} {plane}: {json.dumps(report)} ({time.time() - start:.0f} s)", flush=True)
    patch.save_books(out / f"{name}.npz", BOOK_KINDS[name], books)
  settings = {key: FLAGS[key].value for key in (
      "images", "clusters", "cluster_points", "samples", "cluster_steps", "dim_steps", "tau", "gain_octaves", "passes",
      "reference_step", "atoms", "cone_steps", "seed")}
  record = out / "fit.json"  # one entry per book, so fitting one book again keeps the others' records
  entries = json.loads(record.read_text()) if record.is_file() else {}
  entries.update({name: {"settings": settings, "report": report} for name, report in reports.items()})
  record.write_text(json.dumps(entries, indent=1) + "\n")


if __name__ == "__main__":
  from experiments import launch
  launch.run(lambda: app.run(main))
