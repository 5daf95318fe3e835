"""The classifiers whose features the zoo's Fréchet distance is measured in (compzoo/models/classifier.py).

    python -m experiments.train --config=experiments/configs/feature_net.py:cpu-mnist --workdir=runs/features/mnist
    python -m experiments.train --config=experiments/configs/feature_net.py:cpu-cifar10 --workdir=runs/features/cifar10
    # then: cp -r runs/features/NAME/export compzoo/weights/features/NAME

Trained on the training split (MNIST: the zoo's fixed 8,000 digits; CIFAR-10: 50,000), measured on the test
split by ``python -m experiments.dplc_eval --feature_accuracy``. Variant = size-dataset.
"""

from experiments.configs import presets

DATASETS = ("mnist", "cifar10")
VARIANTS = presets.all_variants(presets.SIZES, DATASETS)


def get_config(variant: str = "cpu-mnist"):
  size, dataset = presets.parse_variant(variant, presets.SIZES, DATASETS)
  width, features, batch, steps = {"tiny": (8, 16, 8, 30), "cpu": (32, 128, 64, 1200), "gpu": (64, 256, 128, 20_000)}[size]
  if size == "cpu" and dataset == "cifar10":
    steps = 3000
  return presets.config(
      model=dict(name="classifier", channels=1 if dataset == "mnist" else 3, classes=10, width=width, features=features),
      objective=dict(name="classification"),
      data=presets.data(dataset, 32, batch, flip=dataset != "mnist"),
      optimizer=presets.optimizer(2e-3, warmup=100),
      train=presets.train(size, steps, eval_images=256))
