import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import skimage.data
from skimage.metrics import structural_similarity

from compzoo import metrics
from compzoo.errors import UsageError

# tf.image.ssim_multiscale / tf.image.ssim (TensorFlow 2, max_val=255) on the pairs built by _pair below;
# produced by experiments/tools/ms_ssim_reference.py in a scratch environment with TensorFlow.
TF_REFERENCE = {"astronaut": (0.9359552264213562, 0.46011027693748474),
                "coffee": (0.9216322898864746, 0.4536581337451935)}


def _pair(image):
  h, w = image.shape[:2]
  i, j = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
  noise = ((i * 7 + j * 13) % 31 - 15)[..., None] * np.array([1, 2, 3])
  return image, np.clip(image.astype(np.int64) + noise, 0, 255).astype(np.uint8)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(TF_REFERENCE))
def test_ms_ssim_matches_tensorflow(name):
  a, b = _pair(getattr(skimage.data, name)())
  ms_ref, ssim_ref = TF_REFERENCE[name]
  assert float(metrics.ms_ssim(a, b)) == pytest.approx(ms_ref, abs=1e-4)
  assert float(metrics.ssim(a, b)) == pytest.approx(ssim_ref, abs=1e-4)


def test_ssim_matches_scikit_image():
  a, b = _pair(skimage.data.chelsea())
  reference = structural_similarity(a, b, channel_axis=-1, gaussian_weights=True, sigma=1.5,
                                    use_sample_covariance=False, data_range=255)
  assert float(metrics.ssim(a, b)) == pytest.approx(reference, abs=1e-4)


def test_ms_ssim_identity_batch_and_gradient(astronaut):
  astronaut = astronaut[100:292, 150:342]  # 192 pixels: five scales fit
  ms_ssim = jax.jit(metrics.ms_ssim)
  assert float(ms_ssim(astronaut, astronaut)) == pytest.approx(1.0, abs=1e-6)
  batch = np.stack([astronaut, _pair(astronaut)[1]]).astype(np.float32)
  values = ms_ssim(batch, batch[::-1])
  assert values.shape == (2,)
  grad = jax.jit(jax.grad(lambda x: metrics.ms_ssim(x, jnp.asarray(batch[0]))))(jnp.asarray(batch[1]))
  assert np.isfinite(grad).all() and np.abs(grad).sum() > 0
  with pytest.raises(UsageError):
    metrics.ms_ssim(astronaut[:100, :100], astronaut[:100, :100])


def test_colour_psnr_sees_colour_and_brightness_not_texture(astronaut):
  photo = astronaut[:96, :104].astype(np.float64)
  grey = np.repeat(photo.mean(axis=-1, keepdims=True), 3, axis=-1)
  desaturated = 0.5 * photo + 0.5 * grey  # sharp, but its colours halfway to grey
  checker = np.where((np.indices(photo.shape[:2]).sum(0) % 2)[..., None] == 0, 20.0, -20.0)
  textured = photo + checker  # +-20 on every pixel, block means unchanged
  assert float(metrics.psnr(photo, textured)) < float(metrics.psnr(photo, desaturated))
  assert float(metrics.colour_psnr(photo, textured)) > 80  # block means equal up to float rounding
  # a colour error is low-frequency: the block means keep nearly all of it
  assert float(metrics.colour_psnr(photo, desaturated)) < float(metrics.psnr(photo, desaturated)) + 3
  assert float(metrics.colour_psnr(photo, photo + 8.0)) == pytest.approx(10 * np.log10(255**2 / 64), rel=1e-5)
  np.testing.assert_allclose(metrics.block_means(photo[:19, :13])[1, 0], photo[8:16, :8].mean(axis=(0, 1)), rtol=1e-5)
  assert metrics.block_means(photo[:5, :3]).shape == (1, 1, 3)  # smaller than a block: one mean
  batch = metrics.colour_psnr(np.stack([photo, photo]), np.stack([desaturated, desaturated]))
  assert float(batch) == pytest.approx(float(metrics.colour_psnr(photo, desaturated)), rel=1e-5)


def test_hue_agreement_sees_a_hue_turn_not_a_texture_change(astronaut):
  photo = astronaut[:128, :128].astype(np.float64)
  swapped = photo[..., [1, 0, 2]]  # red and green swapped: the hues turn, brightness hardly changes
  checker = np.where((np.indices(photo.shape[:2]).sum(0) % 2)[..., None] == 0, 20.0, -20.0)
  assert metrics.hue_agreement(photo, photo) == pytest.approx(1.0)
  assert metrics.hue_agreement(photo, photo + checker) == pytest.approx(1.0, abs=1e-4)
  assert metrics.hue_agreement(photo, swapped) < 0.5
  grey = np.repeat(photo.mean(axis=-1, keepdims=True), 3, axis=-1)
  assert metrics.hue_agreement(photo, 0.5 * photo + 0.5 * grey) == pytest.approx(1.0, abs=1e-4)  # only paler


def test_psnr_and_rates():
  a = np.zeros((4, 4, 3), np.uint8)
  b = a.copy()
  b[0, 0, 0] = 16  # mse = 256 / 48
  assert float(metrics.psnr(a, b)) == pytest.approx(10 * np.log10(255**2 * 48 / 256), rel=1e-6)
  assert float(metrics.psnr(a, a)) == np.inf
  assert metrics.bpp(100, 10, 20) == 4.0
  assert metrics.bpsp(300, 10, 20) == 4.0


def _crops(image, count, size, rng):
  rows = rng.integers(0, image.shape[0] - size, count)
  cols = rng.integers(0, image.shape[1] - size, count)
  return np.stack([image[r:r + size, c:c + size] for r, c in zip(rows, cols)])


@pytest.mark.slow
def test_sliced_wasserstein_separates_distributions(rng):
  sliced_wasserstein = functools.partial(metrics.sliced_wasserstein, directions=128, repeats=2)  # quicker
  photo = skimage.data.coffee()
  real, other_real = _crops(photo, 48, 64, rng), _crops(photo, 48, 64, rng)
  blurred = np.asarray(metrics._blur(metrics._blur(other_real.astype(np.float32))))
  noise = rng.integers(0, 256, real.shape).astype(np.uint8)
  same = sliced_wasserstein(real, real)
  near = sliced_wasserstein(real, other_real)
  far = sliced_wasserstein(real, blurred)
  farther = sliced_wasserstein(real, noise)
  assert len(same) == 4 and max(same) < 1e-3
  assert near[0] < far[0] < farther[0]  # the finest level sees blur and noise
  assert far[0] > 1.5 * near[0]
  assert abs(far[3] - near[3]) < 0.05 * near[3]  # blur leaves the coarsest level alone
  assert np.mean(near) < np.mean(farther)
  assert sliced_wasserstein(real, blurred, seed=3) == sliced_wasserstein(real, blurred, seed=3)
  with pytest.raises(UsageError):
    sliced_wasserstein(real[:, :20, :20], real[:, :20, :20])


def test_frechet_distance_of_gaussians_matches_its_closed_form():
  rng = np.random.default_rng(0)
  a = rng.normal(0.0, 1.0, (20000, 3))
  b = rng.normal(0.0, 2.0, (20000, 3)) + np.array([1.0, 0.0, -2.0])
  # |mu_a - mu_b|^2 + tr(I + 4I - 2 * 2I) = 5 + 3
  assert abs(metrics.frechet_distance(a, b) - 8.0) < 0.25
  assert abs(metrics.frechet_distance(a, a[::-1])) < 1e-6
  with pytest.raises(UsageError, match="N×D"):
    metrics.frechet_distance(a, b[:, :2])
