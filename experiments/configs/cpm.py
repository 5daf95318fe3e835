"""Context-model autoencoder (Mentzer et al., CVPR 2018) at three operating points, and its ablation.

    python -m experiments.train --config=experiments/configs/cpm.py:tiny-mid --workdir=/tmp/cpm-tiny
    python -m experiments.train --config=experiments/configs/cpm.py:cpu-low --workdir=runs/cpm-low
    python -m experiments.train --config=experiments/configs/cpm.py:cpu-mid-factorized --workdir=runs/cpm-mid-fact
    python -m experiments.train --config=experiments/configs/cpm.py:gpu-high --workdir=runs/cpm-high-gpu

Variant = size-point[-factorized]. Points set the rate target H_t (bpp on the training crops) of the loss
D + beta * max(H - H_t, 0): ``low``, ``mid``, ``high``. D = 1 - MS-SSIM + (10 MSE + 60 MSE of the 8x8 block
means) / 255²: MS-SSIM alone charges colour 6-24x less per unit of MSE than texture, and models trained on
it alone decoded to near-grey images (``python -m experiments.colour_blindness``; docs/cpm.md). Sizes: ``tiny`` (a smoke test),
``cpu`` (the shipped checkpoints: 48 features, 2 residual blocks, 96-pixel crops with 4-scale MS-SSIM,
sized for 2 CPU cores), ``gpu`` (closer to the paper: 128 features, 15 residual blocks, 176-pixel crops
with 5-scale MS-SSIM). Every size has C=32 channels in K=8 importance groups and L=6 learned centers.
``-factorized`` swaps the 3D context model for one learned categorical per channel (the paper's ablation).
Other operating points warm-start from a trained one: ``--config.train.init_from=runs/cpm-high``.
"""

from experiments.configs import presets

RATE_TARGETS = {"low": 0.12, "mid": 0.2, "high": 0.55}
PRIORS = ("", "factorized")
VARIANTS = presets.all_variants(presets.SIZES, tuple(RATE_TARGETS), PRIORS)


def get_config(variant: str = "cpu-mid"):
  size, point, prior = presets.parse_variant(variant, presets.SIZES, tuple(RATE_TARGETS), PRIORS)
  model = dict(name="cpm", features=48, blocks=2, channels=32, groups=8, levels=6, sigma=1.0, context_features=24,
               prior=prior or "context")
  scales, crop, batch, steps = {"tiny": (3, 48, 4, 100), "cpu": (4, 96, 8, 1200), "gpu": (5, 176, 30, 150_000)}[size]
  optimizer = {"tiny": presets.optimizer(1e-3, warmup=0), "cpu": presets.optimizer(1e-3),
               "gpu": presets.optimizer(1e-4)}[size]
  if size == "tiny":
    model.update(features=16, blocks=1, channels=8, groups=4, context_features=8)
  elif size == "gpu":
    model.update(features=128, blocks=15)
  return presets.config(
      model=model,
      objective=dict(name="rate_distortion", lmbda=1.0, distortion="ms_ssim", ms_ssim_scales=scales, mse_weight=10.0, colour_weight=60.0,
                     rate_target=RATE_TARGETS[point], beta=10.0),
      data=presets.data("bsds500", crop, batch, downscale=1),
      optimizer=optimizer,
      train=presets.train(size, steps))
