"""Distribution-preserving lossy compression (Tschannen, Agustsson, Lucic, NeurIPS 2018) on MNIST and CIFAR-10.

    python -m experiments.train --config=experiments/configs/dplc.py:cpu-mnist-generator --workdir=runs/dplc/mnist-generator
    python -m experiments.train --config=experiments/configs/dplc.py:cpu-mnist-wgan --workdir=runs/dplc/mnist-wgan-8 \
        --config.model.code_channels=8 --config.train.init_from=runs/dplc/mnist-generator
    python -m experiments.train --config=experiments/configs/dplc.py:cpu-mnist-wpp --workdir=runs/dplc/mnist-wpp-8 \
        --config.model.code_channels=8 --config.train.init_from=runs/dplc/mnist-generator
    python -m experiments.train --config=experiments/configs/dplc.py:cpu-mnist-wae --workdir=runs/dplc/mnist-wae-8 \
        --config.model.code_channels=8
    python -m experiments.train --config=experiments/configs/dplc.py:cpu-mnist-mse --workdir=runs/dplc/mnist-mse-8 \
        --config.model.code_channels=8
    make dplc-mnist   # every objective at every rate, then the evaluation (experiments/dplc_eval.py); dplc-cifar10 too

Variant = size-dataset-objective. The rate is ``model.code_channels`` (C): C·(32/16)² symbols of
``model.levels`` levels per image, so C·4·log2 L bits nominal (0 bits: a generative model).
Objectives:
  ``generator``  WGAN-GP at rate 0: G learns the data distribution from z ~ N(0, I).
  ``wgan``       the paper's two-stage WGAN codec: G from ``generator`` frozen (``train.freeze``), E and B
                 trained on d(x, G(B(E(x)))) + lambda * MMD(B(E(x)), P_Z); needs ``train.init_from``.
  ``wae``        WAE: the same loss with G trained too, from scratch.
  ``wpp``        Wasserstein++: the WAE loss plus WGAN-GP on fakes that are half G(z), half G(B(E(x)));
                 warm-started from the ``generator`` workdir in the shipped runs: its latest checkpoint
                 gives both G and the critic (an export would give G alone).
  ``mse``        the MSE autoencoder at the same rate: E, B, G on MSE alone (the codec that blurs).
d is MSE on the 0-255 scale; lambda = 1e4 puts the MMD on the WAE paper's footing for that scale.
Data: MNIST is the fixed 8,000/2,000 split of the 10k test digits (``../shared/data/mnist``), edge-padded
to 32×32, never flipped; CIFAR-10 is 50,000/10,000 as stored (JPEG q75: the decoded JPEG is the original).
Sizes: ``tiny`` (tests), ``cpu`` (the shipped models: 16 features, z of 64, 16 noise channels), ``gpu``
(the paper's sizes: 64 features, z of 128).
"""

from experiments.configs import presets

DATASETS = ("mnist", "cifar10")
OBJECTIVES = ("generator", "wgan", "wae", "wpp", "mse")
VARIANTS = presets.all_variants(presets.SIZES, DATASETS, OBJECTIVES)
MMD_WEIGHT = 1e4


def get_config(variant: str = "cpu-mnist-wgan"):
  size, dataset, objective = presets.parse_variant(variant, presets.SIZES, DATASETS, OBJECTIVES)
  features, latent, noise, batch = {"tiny": (8, 16, 4, 8), "cpu": (16, 64, 16, 32), "gpu": (64, 128, 32, 64)}[size]
  steps = {"tiny": 30, "cpu": {"generator": 6000, "wgan": 1000, "wae": 1500, "wpp": 600, "mse": 1500}[objective],
           "gpu": 100_000}[size]
  model = dict(name="dplc", size=32, channels=1 if dataset == "mnist" else 3, levels=2,
               code_channels=0 if objective == "generator" else 8, latent_dim=latent, noise_dim=noise,
               features=features)
  wgan_optimizer = presets.optimizer(1e-4, schedule="constant", warmup=0, clip=0.0, b1=0.5, b2=0.9)
  critic_steps = 2 if size == "tiny" else 5
  objectives = {
      "generator": (dict(name="wgan_gp", critic_steps=critic_steps, penalty_weight=10.0), wgan_optimizer),
      "wgan": (dict(name="wae", penalty_weight=MMD_WEIGHT), presets.optimizer(1e-3, warmup=100)),
      "wae": (dict(name="wae", penalty_weight=MMD_WEIGHT), presets.optimizer(1e-3, warmup=100)),
      "wpp": (dict(name="wasserstein_pp", critic_steps=critic_steps, gradient_penalty=10.0, penalty_weight=MMD_WEIGHT,
                   adversarial_weight=1.0), wgan_optimizer),
      "mse": (dict(name="rate_distortion", lmbda=1.0, distortion="mse"), presets.optimizer(1e-3, warmup=100)),
  }
  objective_config, optimizer = objectives[objective]
  train = presets.train(size, steps, freeze="generator" if objective == "wgan" else "")
  return presets.config(model=model, objective=objective_config,
                        data=presets.data(dataset, 32, batch, flip=dataset != "mnist"),
                        optimizer=optimizer, train=train)
