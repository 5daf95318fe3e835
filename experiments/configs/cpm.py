"""Context-model autoencoder (Mentzer et al., CVPR 2018) at three operating points, and its ablation.

    python -m experiments.train --config=experiments/configs/cpm.py:tiny-mid --workdir=/tmp/cpm-tiny
    python -m experiments.train --config=experiments/configs/cpm.py:cpu-low --workdir=runs/cpm-low
    python -m experiments.train --config=experiments/configs/cpm.py:cpu-mid-factorized --workdir=runs/cpm-mid-fact
    python -m experiments.train --config=experiments/configs/cpm.py:gpu-high --workdir=runs/cpm-high-gpu

Variant = size-point[-factorized]. Points set the rate target H_t (bpp on the training crops) of the loss
1 - MS-SSIM + beta * max(H - H_t, 0): ``low``, ``mid``, ``high``. Sizes: ``tiny`` (a smoke test),
``cpu`` (the shipped checkpoints: 48 features, 2 residual blocks, 96-pixel crops with 4-scale MS-SSIM,
sized for 2 CPU cores), ``gpu`` (closer to the paper: 128 features, 15 residual blocks, 176-pixel crops
with 5-scale MS-SSIM). Every size has C=32 channels in K=8 importance groups and L=6 learned centers.
``-factorized`` swaps the 3D context model for one learned categorical per channel (the paper's ablation).
"""

import ml_collections

BSDS500 = "../shared/data/train/bsds500"
SIZES = ("tiny", "cpu", "gpu")
RATE_TARGETS = {"low": 0.12, "mid": 0.2, "high": 0.55}


def get_config(variant: str = "cpu-mid") -> ml_collections.ConfigDict:
  size, _, rest = variant.partition("-")
  point, _, prior = rest.partition("-")
  if size not in SIZES or point not in RATE_TARGETS or prior not in ("", "factorized"):
    raise ValueError(f"unknown variant {variant!r}; use SIZE-POINT[-factorized] with SIZE in {SIZES} "
                     f"and POINT in {tuple(RATE_TARGETS)}")
  config = ml_collections.ConfigDict()
  config.model = dict(name="cpm", features=48, blocks=2, channels=32, groups=8, levels=6, sigma=1.0,
                      context_features=24, prior=prior or "context")
  config.objective = dict(name="rate_distortion", lmbda=1.0, distortion="ms_ssim", ms_ssim_scales=4,
                          rate_target=RATE_TARGETS[point], beta=10.0)
  config.data = dict(source="folder", path=BSDS500, downscale=1, data_dir=".data/tfds", crop=96, batch_size=8)
  config.optimizer = dict(name="adam", learning_rate=1e-3, schedule="cosine", warmup=100, clip=1.0)
  config.train = dict(steps=1200, seed=0, log_every=50, eval_every=500, checkpoint_every=500, eval_images=4,
                      init_from="")  # a workdir or export to warm-start from (other operating points)
  if size == "tiny":
    config.model.update(features=16, blocks=1, channels=8, groups=4, context_features=8)
    config.objective.update(ms_ssim_scales=3)
    config.data.update(crop=48, batch_size=4)
    config.optimizer.update(learning_rate=1e-3, warmup=0)
    config.train.update(steps=100, log_every=10, eval_every=50, checkpoint_every=50)
  elif size == "gpu":
    config.model.update(features=128, blocks=15)
    config.objective.update(ms_ssim_scales=5)
    config.data.update(crop=176, batch_size=30)
    config.optimizer.update(learning_rate=1e-4)
    config.train.update(steps=150_000, log_every=100, eval_every=2000, checkpoint_every=5000)
  return config
