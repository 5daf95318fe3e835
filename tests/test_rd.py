import jax
import jax.numpy as jnp
import numpy as np
import pytest

from compzoo import rd
from compzoo.errors import UsageError


def _output(recon=None):
  return rd.RDOutput(reconstruction=recon, bits={"y": jnp.array([800.0, 1200.0]), "z": jnp.array([100.0, 100.0])},
                     num_pixels=100)


def test_rd_output_rates():
  out = _output()
  np.testing.assert_allclose(out.total_bits(), [900.0, 1300.0])
  assert float(out.bpp()) == pytest.approx(11.0)


def test_rate_distortion_loss_and_rate_target():
  target = jnp.zeros((2, 4, 4, 3))
  out = _output(target + 2.0)  # mse 4
  loss, logs = rd.rate_distortion_loss(out, target, lmbda=0.5)
  assert float(loss) == pytest.approx(11.0 + 2.0)
  assert float(logs["bpp/y"]) == pytest.approx(10.0)
  loss, _ = rd.rate_distortion_loss(out, target, lmbda=0.5, rate_target=12.0, beta=3.0)
  assert float(loss) == pytest.approx(2.0)  # under the target the rate costs nothing
  loss, _ = rd.rate_distortion_loss(out, target, lmbda=0.5, rate_target=10.0, beta=3.0)
  assert float(loss) == pytest.approx(3.0 + 2.0)
  with pytest.raises(UsageError):
    rd.distortion(target, target, "l1")


def test_lossless_loss_is_bits_per_subpixel():
  loss, logs = rd.lossless_loss(_output())
  assert float(loss) == pytest.approx(11.0 / 3)
  assert float(logs["bpsp"]) == float(loss)
  assert sum(float(v) for k, v in logs.items() if k.startswith("bpsp/")) == pytest.approx(11.0 / 3)


def test_ms_ssim_distortion_adds_its_mse_and_colour_terms(astronaut):
  photo = jnp.asarray(astronaut[:96, :96], jnp.float32)[None]
  tinted = photo + jnp.asarray([12.0, -12.0, 0.0])  # a colour cast: flat, so MS-SSIM hardly sees it
  checker = jnp.where((jnp.indices((96, 96)).sum(0) % 2)[..., None] == 0, 12.0, -12.0)
  textured = photo + checker  # the same MSE (96), spent on texture: block means unchanged
  distortion = jax.jit(lambda x, mse_weight, colour_weight: rd.distortion(
      photo, x, "ms_ssim", ms_ssim_scales=4, mse_weight=mse_weight, colour_weight=colour_weight))
  plain = lambda x, mse_weight=0.0, colour_weight=0.0: float(distortion(x, mse_weight, colour_weight))
  assert plain(tinted) < 0.2 * plain(textured)  # why the first cpm models lost their colours
  assert plain(tinted, mse_weight=20.0) == pytest.approx(plain(tinted) + 20.0 * 96.0 / 255**2, rel=1e-4)
  assert plain(tinted, colour_weight=20.0) == pytest.approx(plain(tinted) + 20.0 * 96.0 / 255**2, rel=1e-4)
  assert plain(textured, colour_weight=20.0) == pytest.approx(plain(textured), abs=1e-5)  # blind to texture
  grad = jax.jit(jax.grad(lambda x: distortion(x, 0.0, 50.0)))(tinted)
  assert float(jnp.sum(grad[..., 0])) > 0 > float(jnp.sum(grad[..., 1]))  # pushes the cast back
