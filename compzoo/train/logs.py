"""Where a run's numbers go: WORKDIR/metrics.csv (training, step first, one column per metric),
WORKDIR/eval.csv (the loop's evaluations, same layout), TensorBoard events (scalars, reconstructions) and a
progress bar with rate and ETA, all written by process 0 of a run; optionally WORKDIR/reads/ (each process's
share of the data)."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import numpy as np
from tqdm import tqdm


class CsvLog:
  """Rows of (step, metrics...) in one CSV; a resumed run drops the rows written after its restored step
  (they belong to the interrupted run)."""

  def __init__(self, path: Path, start_step: int):
    self.path = path
    self.columns = None
    if path.is_file():
      with path.open(newline="") as f:
        rows = list(csv.reader(f))
      if rows:
        kept = [rows[0]] + [row for row in rows[1:] if row and int(row[0]) <= start_step]
        with path.open("w", newline="") as f:
          csv.writer(f).writerows(kept)
        self.columns = rows[0]

  def write(self, step: int, values: dict[str, float]) -> None:
    if self.columns is None:
      self.columns = ["step"] + sorted(values)
      with self.path.open("w", newline="") as f:
        csv.writer(f).writerow(self.columns)
    with self.path.open("a", newline="") as f:
      csv.writer(f).writerow([step] + [_format(values.get(c, math.nan)) for c in self.columns[1:]])


class MetricsLog:
  def __init__(self, workdir, start_step: int, total_steps: int, progress: bool = True):
    from tensorboardX import SummaryWriter  # imported here: it is slow to import and only runs need it
    self.train_csv = CsvLog(Path(workdir) / "metrics.csv", start_step)
    self.eval_csv = CsvLog(Path(workdir) / "eval.csv", start_step)
    self.tensorboard = SummaryWriter(str(Path(workdir) / "tensorboard"))
    self.bar = tqdm(total=total_steps, initial=start_step, unit="step", disable=not progress,
                    dynamic_ncols=True, mininterval=1.0)

  def advance(self, steps: int = 1) -> None:
    self.bar.update(steps)

  def scalars(self, step: int, values: dict[str, float]) -> None:
    self.train_csv.write(step, values)
    for name, value in values.items():
      self.tensorboard.add_scalar(f"train/{name}", value, step)
    if "loss" in values:
      self.bar.set_postfix(loss=f"{values['loss']:.4g}", refresh=False)

  def evaluation(self, step: int, values: dict[str, float], images: np.ndarray | None = None) -> None:
    self.eval_csv.write(step, values)
    for name, value in values.items():
      self.tensorboard.add_scalar(f"eval/{name}", value, step)
    if images is not None and images.ndim == 4:
      pictures = np.clip(np.round(np.asarray(images, np.float32)), 0, 255).astype(np.uint8)
      self.tensorboard.add_images("eval/reconstruction", pictures, step, dataformats="NHWC")
    self.tensorboard.flush()

  def close(self) -> None:
    self.bar.close()
    self.tensorboard.close()


def _format(value) -> str:
  return value if isinstance(value, str) else f"{value:.6g}"


class NoLog:
  """What processes other than 0 log in a multi-process run: nothing (process 0 writes for the run)."""

  def advance(self, steps: int = 1) -> None:
    pass

  def scalars(self, step: int, values: dict[str, float]) -> None:
    pass

  def evaluation(self, step: int, values: dict[str, float], images: np.ndarray | None = None) -> None:
    pass

  def close(self) -> None:
    pass


class ReadsLog:
  """WORKDIR/reads/process-<id>.csv (``train.log_reads``): which source records this process read at each
  step (its rows of the global batch), to check that processes read disjoint shares."""

  def __init__(self, workdir, process: int, start_step: int):
    path = Path(workdir) / "reads" / f"process-{process}.csv"
    path.parent.mkdir(parents=True, exist_ok=True)
    self.csv = CsvLog(path, start_step)

  def write(self, step: int, source_indices) -> None:
    self.csv.write(step + 1, {"source_indices": " ".join(str(int(i)) for i in source_indices)})
