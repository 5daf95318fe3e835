"""The patch codecs (compzoo/codecs/patch.py): exact file round trips on odd shapes, the rate-distortion choice,
the books' and files' checks, and the fit (experiments/patch_fit.py) on a tiny set."""

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from compzoo import bitstream, zoo
from compzoo.codecs import patch
from compzoo.entropy import GaussianTables
from compzoo.errors import BitstreamError, UsageError
from compzoo.sparse import Quadratic, cone_pursuit, fcmp_codes

ROOT = Path(__file__).resolve().parent.parent
BOOKS = ("patch-ssc", "patch-ssc:dims=full", "patch-kmeans", "patch-pca", "patch-nonneg")


@pytest.fixture(scope="module")
def photo():
  import skimage.data

  return np.ascontiguousarray(skimage.data.astronaut()[60:108, 150:214])


@pytest.mark.parametrize("spec", BOOKS)
@pytest.mark.parametrize("shape", [(1, 1), (7, 13), (9, 17), (33, 20)])
def test_files_decode_to_the_encoders_reconstruction(spec, shape, photo):
  codec = zoo.make_codec(spec + ":step=14")
  image = np.ascontiguousarray(photo[:shape[0], :shape[1]])
  assert np.array_equal(codec.decompress(codec.compress(image)), codec.reconstruct(image))


def test_a_finer_step_costs_more_and_is_closer(photo):
  sizes, errors = [], []
  for step in (40, 14, 5):
    codec = zoo.make_codec(f"patch-ssc:step={step}:dims=full")
    data = codec.compress(photo)
    sizes.append(len(data))
    errors.append(np.mean((codec.decompress(data).astype(float) - photo)**2))
  assert sizes[0] < sizes[1] < sizes[2] and errors[0] > errors[1] > errors[2]
  assert errors[2] < 16.0  # above 36 dB at Δ = 5: the bases span every block (halved chroma sets the floor)


def test_each_block_takes_the_class_of_least_cost_and_the_estimate_tracks_the_bytes(photo):
  codec = zoo.make_codec("patch-kmeans:step=20")
  book, step = codec.books["luma"], 20.0
  blocks = patch.to_blocks(patch.to_planes(photo)[0])
  classes, q0, coefficients = patch.encode_subspaces(book, blocks, step)
  residual = blocks - blocks.mean(axis=1, keepdims=True)
  id_bits = patch.PRECISION - np.log2(book.id_freqs[0])
  costs = np.zeros((len(blocks), book.classes))
  for c in range(book.classes):  # one class at a time, against the encoder's all-at-once choice
    k, g = divmod(c, len(book.gains))
    coefficient = residual @ book.bases[k].T
    q = patch.quantize(coefficient, step)
    bits = patch._bits(book.class_indexes(step)[k, g], q).sum(axis=1) + id_bits[c]
    costs[:, c] = np.sum((coefficient - step * q)**2, axis=1) + patch.RD_LAMBDA * step**2 * bits
  np.testing.assert_array_equal(classes, np.argmin(costs, axis=1))
  assert all(len(c) == book.dims[k // len(book.gains)] for c, k in zip(coefficients, classes))
  # The estimate is what the coder then pays, within a few percent.
  flat = np.concatenate(coefficients)
  indexes = np.concatenate([book.class_indexes(step)[c // len(book.gains), c % len(book.gains)] for c in classes])
  estimate = patch._bits(indexes, flat).sum() + id_bits[classes].sum()
  paid = 8 * (len(patch.GaussianTables.build().encode(flat, indexes)) + len(codec.coders[0]._encode_classes(classes)))
  assert abs(paid - estimate) < 0.03 * paid + 64


def test_fcmp_codes_match_the_cone_pursuit():
  rng = np.random.default_rng(3)
  atoms = np.abs(rng.standard_normal((16, 24)))
  signals = np.abs(rng.standard_normal((16, 5))) * 10
  weights = fcmp_codes(atoms, signals, 6)
  for n in range(5):
    result = cone_pursuit(Quadratic(signals[:, n]), atoms, "fcmp", 6)
    np.testing.assert_allclose(atoms @ weights[:, n], result.x, atol=1e-9)
    assert (weights[:, n] >= 0).all() and np.count_nonzero(weights[:, n]) <= 6
  # A residual threshold stops each signal once it is met: fewer atoms, and the threshold honoured.
  tol = float(np.median(np.linalg.norm(signals - atoms @ fcmp_codes(atoms, signals, 3), axis=0)))
  early = fcmp_codes(atoms, signals, 6, tol=tol)
  left = np.linalg.norm(signals - atoms @ early, axis=0)
  assert np.count_nonzero(early) < np.count_nonzero(weights)
  assert ((left <= tol) | np.isclose(left, np.linalg.norm(signals - atoms @ weights, axis=0))).all()  # met, or ran on
  with pytest.raises(UsageError, match="tol"):
    fcmp_codes(atoms, signals, 6, tol=float("nan"))


def test_folded_tables_code_non_negative_symbols_and_escapes():
  tables = GaussianTables.build(folded=True)
  symbols = np.array([0, 1, 5, 0, 3000, 2, 0, 70000])
  indexes = np.array([0, 5, 20, 63, 10, 1, 2, 3])
  assert GaussianTables.from_arrays(tables.to_arrays(), folded=True).radii.tolist() == tables.radii.tolist()
  np.testing.assert_array_equal(tables.decode(tables.encode(symbols, indexes), indexes), symbols)
  with pytest.raises(UsageError, match="non-negative"):
    tables.encode(np.array([-1]), np.array([3]))
  # No sign: a half-normal costs one bit less than the Gaussian for the same magnitudes.
  signed = GaussianTables.build()
  many = np.abs(np.random.default_rng(0).normal(0, 8, 20000)).round().astype(int)
  at = np.full(many.shape, 40)
  assert len(signed.encode(many, at)) - len(tables.encode(many, at)) > 0.8 * np.count_nonzero(many) / 8


@pytest.mark.parametrize("spec", ["patch-ssc:step=14", "patch-nonneg:step=28"])
def test_damaged_and_lying_files_are_refused_in_one_line(spec, photo):
  codec = zoo.make_codec(spec)
  container = bitstream.unpack(codec.compress(photo))
  streams = list(container.streams)
  coefficients = bytearray(streams[5])  # Cb's coefficients: the same length, other bytes
  coefficients[len(coefficients) // 2] ^= 0x5A
  streams[5] = bytes(coefficients)
  with pytest.raises(BitstreamError, match="check"):
    codec.decompress(bitstream.pack(dataclasses.replace(container, streams=tuple(streams))))
  with pytest.raises(BitstreamError, match="cannot hold"):
    codec.decompress(bitstream.pack(dataclasses.replace(container, shape=(2000, 2000, 3))))
  streams = list(container.streams)
  streams[1 if "nonneg" in spec else 3] = b"\0" * 4  # a DC stream where the book codes none; other class ids
  with pytest.raises(BitstreamError):
    codec.decompress(bitstream.pack(dataclasses.replace(container, streams=tuple(streams))))
  with pytest.raises(BitstreamError, match="weights"):
    zoo.make_codec("patch-kmeans:step=14").decompress(
        bitstream.pack(dataclasses.replace(container, codec="patch-kmeans:step=14.0")))


def test_missing_or_malformed_books_are_one_line_errors(tmp_path):
  with pytest.raises(UsageError, match="cannot be read"):
    patch.load_books(tmp_path / "none.npz")
  kind, books = patch.load_books(patch.BOOKS / "pca.npz")
  bad = {"luma": dataclasses.replace(books["luma"], dims=np.array([0])), "chroma": books["chroma"]}
  patch.save_books(tmp_path / "bad.npz", kind, bad)
  with pytest.raises(UsageError, match="out of range"):
    patch.load_books(tmp_path / "bad.npz")
  np.savez(tmp_path / "odd.npz", kind=np.array("voronoi"))
  with pytest.raises(UsageError, match="unknown kind"):
    patch.load_books(tmp_path / "odd.npz")
  (tmp_path / "cut.npz").write_bytes((patch.BOOKS / "pca.npz").read_bytes()[:5000])
  with pytest.raises(UsageError, match="cannot be read"):
    patch.load_books(tmp_path / "cut.npz")
  for broken in (dict(bases=books["luma"].bases[0]), dict(scales=books["luma"].scales * np.nan),
                 dict(dc_scale=np.array([1.0, 2.0]))):
    patch.save_books(tmp_path / "broken.npz", kind, {"luma": dataclasses.replace(books["luma"], **broken),
                                                     "chroma": books["chroma"]})
    with pytest.raises(UsageError, match="broken.npz"):
      patch.load_books(tmp_path / "broken.npz")
  with pytest.raises(UsageError, match="step"):
    zoo.make_codec("patch-pca:step=0")


def test_the_fit_writes_books_that_code(tmp_path, photo):
  import subprocess
  import sys

  import skimage.data
  from compzoo.data.images import save_image

  images = tmp_path / "photos"
  images.mkdir()
  for i, picture in enumerate([skimage.data.astronaut(), skimage.data.coffee()]):
    save_image(images / f"{i}.png", np.ascontiguousarray(picture[:96, :128]))
  # In a process of its own, as tests run every app: absl's flags are global and other apps share these names.
  fit = subprocess.run([sys.executable, "-m", "experiments.patch_fit", f"--images={images}", f"--out={tmp_path / 'books'}",
                        "--clusters=3", "--cluster_points=60", "--samples=400", "--atoms=8", "--cone_steps=3",
                        "--passes=1"], cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert fit.returncode == 0, fit.stderr[-2000:]
  bad = subprocess.run([sys.executable, "-m", "experiments.patch_fit", "--books=voronoi", f"--out={tmp_path / 'x'}"],
                       cwd=ROOT, capture_output=True, text=True, timeout=600)
  assert bad.returncode != 0 and "unknown book 'voronoi'" in bad.stderr and "Traceback" not in bad.stderr
  for name in ("ssc", "kmeans", "pca", "nonneg"):
    codec = patch.PatchCodec(f"patch-{name}:step=20.0", tmp_path / "books" / f"{name}.npz", 20.0)
    assert np.array_equal(codec.decompress(codec.compress(photo)), codec.reconstruct(photo))
  kind, books = patch.load_books(tmp_path / "books" / "ssc.npz")
  assert kind == "subspaces" and books["luma"].bases.shape == (3, 63, 64)
  bases = books["luma"].bases
  np.testing.assert_allclose(bases[0] @ bases[0].T, np.eye(63), atol=1e-5)  # stored as float32
  np.testing.assert_allclose(bases.sum(axis=2), 0, atol=1e-5)  # orthogonal to the constant block
