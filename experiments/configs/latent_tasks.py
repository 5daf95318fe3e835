"""Image understanding from compressed latents (Torfason et al., ICLR 2018): a codec at three rates, and
classification (CIFAR-10) and segmentation (CamVid) from its latents, from its decoded pixels and from the
original pixels, trained separately or jointly with the codec.

    # 1. the codec (bmshj2018's factorized prior with 8× downsampling), one run per rate
    python -m experiments.train --config=experiments/configs/latent_tasks.py:cpu-codec-mid --workdir=runs/lt/codec-mid
    # 2. task heads, the codec frozen (train.init_from=codec=runs/lt/codec-RATE, train.freeze=codec)
    python -m experiments.train --config=experiments/configs/latent_tasks.py:cpu-cifar10-latent-mid \\
        --workdir=runs/lt/cifar10-latent-mid
    python -m experiments.train --config=experiments/configs/latent_tasks.py:cpu-cifar10-rgb-mid --workdir=runs/lt/cifar10-rgb-mid
    python -m experiments.train --config=experiments/configs/latent_tasks.py:cpu-cifar10-original --workdir=runs/lt/cifar10-original
    # 3. joint: codec and latent head from step 2, trained on rate-distortion + task loss
    python -m experiments.train --config=experiments/configs/latent_tasks.py:cpu-cifar10-joint-mid --workdir=runs/lt/cifar10-joint-mid
    # (camvid-... the same; `make latent-tasks` runs them all, experiments/latent_tasks_eval.py measures them)

Variant = size-job. Jobs: ``codec-R``; ``TASK-original``; ``TASK-PATH-R`` with TASK cifar10|camvid, PATH
rgb|latent|joint, R low|mid|high. Each job reads the workdirs of the jobs before it under ``runs/lt``
(``train.init_from``; override it to use others).
* Codec: C = 64 latent channels at 1/8 resolution, N = 64 features. The rate is held near the paper's
  0.1, 0.33 and 0.64 bpp by a rate target (Mentzer et al.'s hinge, beta·max(bpp − target, 0), on the
  training crops): λ·MSE pushes the rate up to the target and the hinge stops it there. Above both targets
  low and mid would take the same steps, so low starts from mid's codec with a 10× smaller λ (half the steps). Trained on
  BSDS500, CamVid train and CIFAR-10 train together (32-pixel crops, the CIFAR size), so one codec serves
  both tasks as in the paper; the task data's test splits are never seen.
* Classification: ResNet widths 16-32-64-64, blocks 1-1-1-3, stage s at 1/2^s; on latents (1/8, 4×4
  for CIFAR) the cResNet keeps only the last stage, its 3 blocks, behind a stem from the 64 channels.
* Segmentation: a U-Net over levels 0..4 (width 8·2^l); on latents only levels 3 and 4 remain and the
  logits at 1/8 are upsampled bilinearly. CamVid train crops of 128, void ignored.
* Joint: the latent head and its codec warm-started from step 2, then trained together on the codec's
  rate-distortion loss (same λ, target, beta) + the task's cross-entropy, on the task's data.
"""

from compzoo.data.images import CAMVID_VOID
from experiments.configs import presets

RATES = {"low": 0.1, "mid": 0.33, "high": 0.64}  # rate targets, bpp on the training crops
TASKS = ("cifar10", "camvid")
PATHS = ("rgb", "latent", "joint")
RUNS = "runs/lt"
JOBS = tuple([f"codec-{r}" for r in RATES] + [f"{t}-original" for t in TASKS]
             + [f"{t}-{p}-{r}" for t in TASKS for p in PATHS for r in RATES])
VARIANTS = presets.all_variants(presets.SIZES, JOBS)
LMBDA, BETA = 0.02, 50.0
# λ 0.02 alone leaves the rate near 0.35 bpp after 4,000 steps: low takes a smaller one, its hinge holding 0.1
CODEC_LMBDA = {"low": 0.002, "mid": LMBDA, "high": LMBDA}


def _codec(size: str) -> dict:
  channels, latent = {"tiny": (8, 8), "cpu": (64, 64), "gpu": (128, 192)}[size]
  return dict(channels=channels, latent=latent, stages=3)


def _head(task: str, size: str) -> dict:
  if task == "cifar10":
    widths = {"tiny": (4, 4, 8, 8), "cpu": (16, 32, 64, 64), "gpu": (64, 128, 256, 512)}[size]
    return dict(widths=widths, blocks=(1, 1, 1, 1) if size == "tiny" else (1, 1, 1, 3) if size == "cpu" else (2, 2, 2, 6))
  return dict(width={"tiny": 2, "cpu": 8, "gpu": 32}[size], depth=4)


def _task_data(task: str, size: str) -> dict:
  if task == "cifar10":
    batch = {"tiny": 8, "cpu": 64, "gpu": 128}[size]
    return presets.data("cifar10", 32, batch, flip=True)
  crop, batch = {"tiny": (32, 2), "cpu": (128, 8), "gpu": (176, 16)}[size]
  return presets.data("camvid", crop, batch, flip=True)


def get_config(variant: str = "cpu-codec-mid"):
  size, job = presets.parse_variant(variant, presets.SIZES, JOBS)
  parts = job.split("-")
  if parts[0] == "codec":
    rate = parts[1]
    crop, batch, steps = {"tiny": (32, 4, 30), "cpu": (32, 16, 4000), "gpu": (128, 16, 200_000)}[size]
    parts_data = [presets.data(name, crop, batch) for name in ("bsds500", "camvid", "cifar10")]
    train = presets.train(size, steps, eval_images=16)
    if rate == "low":  # from mid's codec: from scratch, low and mid take the same steps until mid's target
      train.update(init_from=f"{RUNS}/codec-mid", steps=steps // 2)
    return presets.config(
        model=dict(name="bmshj2018_factorized", **_codec(size)),
        objective=dict(name="rate_distortion", lmbda=CODEC_LMBDA[rate], distortion="mse", rate_target=RATES[rate],
                       beta=BETA),
        data=dict(source="mixture", parts=parts_data, crop=crop, batch_size=batch, flip=True),
        optimizer=presets.optimizer(1e-3 if size != "gpu" else 1e-4, warmup=100),
        train=train)
  task, path = parts[0], parts[1]
  rate = parts[2] if len(parts) > 2 else ""
  model = dict(name="latent_task", task="classify" if task == "cifar10" else "segment",
               path="latent" if path == "joint" else path, codec=_codec(size), head=_head(task, size),
               classes=10 if task == "cifar10" else CAMVID_VOID)
  objective_name = "classification" if task == "cifar10" else "segmentation"
  steps = {"tiny": 30, "cpu": 2000 if task == "cifar10" else 1200, "gpu": 100_000}[size]
  train = presets.train(size, steps, eval_images=256 if task == "cifar10" else 32)
  objective = dict(name=objective_name) if task == "cifar10" else dict(name=objective_name, ignore=CAMVID_VOID)
  if path in ("rgb", "latent"):
    train.update(init_from=f"codec={RUNS}/codec-{rate}", freeze="codec")
  elif path == "joint":
    objective = dict(name="joint_task", task=objective_name, lmbda=CODEC_LMBDA[rate], rate_target=RATES[rate], beta=BETA,
                     task_weight=1.0)
    train.update(init_from=f"{RUNS}/{task}-latent-{rate}", steps=steps // 8)
  return presets.config(model=model, objective=objective, data=_task_data(task, size),
                        optimizer=presets.optimizer(2e-3 if path != "joint" else 2e-4, warmup=100 if path != "joint" else 0),
                        train=train)
