"""The networks whose features the zoo's Fréchet distance is measured in: classifiers for the digit and
object sets (compzoo/models/classifier.py), a segmentation U-Net for street scenes (compzoo/models/segmenter.py;
its predictions on decoded images also give the mIoU that generative codecs keep).

    python -m experiments.train --config=experiments/configs/feature_net.py:cpu-mnist --workdir=runs/features/mnist
    python -m experiments.train --config=experiments/configs/feature_net.py:cpu-cifar10 --workdir=runs/features/cifar10
    python -m experiments.train --config=experiments/configs/feature_net.py:cpu-camvid --workdir=runs/features/camvid
    # then: cp -r runs/features/NAME/export compzoo/weights/features/NAME

Trained on the training split (MNIST: the zoo's fixed 8,000 digits; CIFAR-10: 50,000; CamVid: its 367 train
frames, random 128-pixel crops, flipped, void pixels ignored), measured on the test split (classifiers:
``python -m experiments.dplc_eval --feature_accuracy``). Variant = size-dataset.
"""

from compzoo.data.images import CAMVID_VOID
from experiments.configs import presets

DATASETS = ("mnist", "cifar10", "camvid")
VARIANTS = presets.all_variants(presets.SIZES, DATASETS)


def get_config(variant: str = "cpu-mnist"):
  size, dataset = presets.parse_variant(variant, presets.SIZES, DATASETS)
  if dataset == "camvid":
    width, crop, batch, steps = {"tiny": (4, 32, 2, 30), "cpu": (16, 128, 8, 3000), "gpu": (32, 176, 16, 20_000)}[size]
    return presets.config(model=dict(name="segmenter", classes=CAMVID_VOID, width=width),
                          objective=dict(name="segmentation", ignore=CAMVID_VOID),
                          data=presets.data("camvid", crop, batch, flip=True),
                          optimizer=presets.optimizer(2e-3, warmup=100),
                          train=presets.train(size, steps, eval_images=32))
  width, features, batch, steps = {"tiny": (8, 16, 8, 30), "cpu": (32, 128, 64, 1200), "gpu": (64, 256, 128, 20_000)}[size]
  if size == "cpu" and dataset == "cifar10":
    steps = 3000
  return presets.config(
      model=dict(name="classifier", channels=1 if dataset == "mnist" else 3, classes=10, width=width, features=features),
      objective=dict(name="classification"),
      data=presets.data(dataset, 32, batch, flip=dataset != "mnist"),
      optimizer=presets.optimizer(2e-3, warmup=100),
      train=presets.train(size, steps, eval_images=256))
