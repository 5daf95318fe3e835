"""Generative compression, global and selective (Agustsson et al., ICCV 2019), on CamVid street scenes.

    python -m experiments.train --config=experiments/configs/gc.py:cpu-gc --workdir=runs/gc/gc-c4
    python -m experiments.train --config=experiments/configs/gc.py:cpu-gc --workdir=runs/gc/gc-c2 \
        --config.model.code_channels=2
    python -m experiments.train --config=experiments/configs/gc.py:cpu-mse --workdir=runs/gc/mse-c4
    python -m experiments.train --config=experiments/configs/gc.py:cpu-sc --workdir=runs/gc/sc-c4

Variant = size-objective. The rate is ``model.code_channels`` (C ∈ {2, 4, 8} shipped): C·log2(5)/256 bpp
nominal. Objectives:
  ``gc``   the paper's: least-squares GAN against a 3-scale patch discriminator, feature matching (weight
           10, as in pix2pixHD, which the paper follows) and λ·MSE with λ = 10 on images scaled to [0, 1]
           (10/255² on the zoo's 0-255 MSE). No VGG term: no pretrained network can be downloaded here.
  ``mse``  the same autoencoder on MSE alone (``gc-mse``): the baseline that isolates the adversarial term.
  ``sc``   selective compression: the gc objective for a model that also codes CamVid's label map and
           synthesizes the blocks of chosen classes from it (each class chosen w.p. 1/2 in training; the
           shipped choice, ``SYNTHESIZE``, is Sky, Road and Tree).
Sizes: ``tiny`` (tests), ``cpu`` (the shipped models: f = 12, so E is 12-24-48-96-192 and G starts at 192,
4 residual blocks, discriminator 16-32-64-128, crops of 128), ``gpu`` (the paper's: f = 60, 9 blocks,
discriminator 64-128-256-512, crops of 176, the largest multiple of 16 in CamVid's 180 rows).
Data: CamVid train (367 frames, 240×180, ``../shared/data/camvid``), random crops, flipped; val for the
loop's evaluation; test is never looked at in training.
"""

from compzoo.codecs.catalogue import SC_SYNTHESIZE
from compzoo.data.images import CAMVID_CLASSES
from experiments.configs import presets

OBJECTIVES = ("gc", "mse", "sc")
SYNTHESIZE = SC_SYNTHESIZE.default_ids  # sky, road, tree: the paper's sky, street, vegetation
VARIANTS = presets.all_variants(presets.SIZES, OBJECTIVES)
MSE_WEIGHT = 10.0 / 255.0 ** 2  # λ = 10 on the MSE of images in [0, 1]
FEATURE_MATCHING = 10.0


def get_config(variant: str = "cpu-gc"):
  size, objective = presets.parse_variant(variant, presets.SIZES, OBJECTIVES)
  features, blocks, disc, crop, batch, steps = {
      "tiny": (2, 1, 4, 64, 2, 30),
      "cpu": (12, 4, 16, 128, 4, 6000),
      "gpu": (60, 9, 64, 176, 8, 150_000),
  }[size]
  model = dict(name="gc", code_channels=4, features=features, blocks=blocks, noise_channels=0,
               discriminator_features=disc)
  if objective == "sc":
    model.update(label_classes=len(CAMVID_CLASSES), synthesize=SYNTHESIZE, label_features=max(features // 2, 1))
  if objective in ("gc", "sc"):
    objective_config = dict(name="gan", loss="least_squares", feature_matching=FEATURE_MATCHING,
                            distortion="mse", distortion_weight=MSE_WEIGHT, adversarial_weight=1.0)
    optimizer = presets.optimizer(2e-4, schedule="constant", warmup=0, clip=0.0, b1=0.5, b2=0.999)
  else:
    objective_config = dict(name="rate_distortion", lmbda=1.0, distortion="mse")
    optimizer = presets.optimizer(2e-4, warmup=100)
  return presets.config(model=model, objective=objective_config, data=presets.data("camvid", crop, batch, flip=True),
                        optimizer=optimizer, train=presets.train(size, steps))
