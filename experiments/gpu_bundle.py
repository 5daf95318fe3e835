"""What ``make gpu-run`` needs on a lent GPU machine, where only this repository's working tree travels
(tracked files, untracked files git does not ignore, and ignored folders the call names: 64 MiB in all).

    python -m experiments.gpu_bundle make      # make gpu-bundle
    python -m experiments.gpu_bundle restore   # make gpu-restore
    python -m experiments.gpu_bundle size      # what would travel now

``make`` writes ``.gpu-bundle/`` (git-ignored; the call carries it):
  ``wheels/``   cp312 manylinux wheels of what the GPU image lacks, at this repository's pinned versions
                (constraints.txt); imagecodecs cut down to its JPEG codec (jpeg-refine's stream), which
                is all the run uses of its 26 MB
  ``data/``     the queue's training data, compact: lossless-photos train and CamVid's train frames (every
                ``--camvid_every``-th) as lossless WebP, which Pillow decodes there; one Kodak photo
  ``manifest.json``  what is in it, and what was set aside
and sets aside what the run does not need: ``docs/`` and the shipped weights that neither the queue nor
the cross-backend checks load with their own values (their config.json files stay, for the stand-ins of
experiments/gpu_checks.py). Setting aside takes files out of git's index and lists them in
.git/info/exclude, so they neither travel nor leave the disk. ``restore`` puts them back: git status is
clean again. Until then, do not commit: the set-aside files would be committed as deleted.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

from experiments.configs import presets

BUNDLE = Path(".gpu-bundle")
SHARED_DATA = Path(presets.SHARED_DATA)
WHEEL_CACHE = Path.home() / ".cache" / "compzoo" / "wheels"
# What the GPU image lacks (its package list: /work/.library/device/KINDS.md) and the run imports.
WHEELS = ("ml_collections", "constriction", "grain", "array_record", "portpicker", "tensorboardX", "imagecodecs")
PLATFORMS = ("manylinux_2_28_x86_64", "manylinux_2_27_x86_64", "manylinux_2_24_x86_64", "manylinux_2_17_x86_64",
             "manylinux2014_x86_64", "manylinux1_x86_64")
# imagecodecs' files the run needs: the package's Python, its shared helpers, and libjpeg's codec.
IMAGECODECS_KEEP = ("imagecodecs/__init__.py", "imagecodecs/imagecodecs.py", "imagecodecs/_imagecodecs.py",
                    "imagecodecs/_shared", "imagecodecs/_jpeg8", "imagecodecs.libs/libjpeg", ".dist-info/")
CARRY_WEIGHTS_BELOW = 2.5 * 2**20  # cross-checked codecs' own weights travel when smaller than this
SET_ASIDE_DIRS = ("docs",)
EXCLUDE_BEGIN, EXCLUDE_END = "# gpu-bundle: set aside until make gpu-restore", "# end gpu-bundle"
TARGET_BYTES = 60 * 2**20


def git(*args: str, input: str | None = None) -> str:
  env = dict(os.environ, GIT_LITERAL_PATHSPECS="1")  # file names are names, never patterns
  return subprocess.run(["git", *args], check=True, capture_output=True, text=True, input=input, env=env).stdout


def travelling_files() -> list[Path]:
  """The tree the device copies: tracked files and untracked ones git does not ignore."""
  names = git("ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
  return [Path(n) for n in names if n and Path(n).is_file()]


def travelling_bytes(bundle: Path = BUNDLE) -> int:
  return sum(p.stat().st_size for p in travelling_files()) + _size(bundle)


def _size(path: Path) -> int:
  return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.exists() else 0


def pinned(name: str) -> str:
  for line in Path("constraints.txt").read_text().splitlines():
    key, _, version = line.partition("==")
    if key.strip().lower().replace("-", "_") == name.lower().replace("-", "_"):
      return version.strip()
  raise SystemExit(f"{name} is not pinned in constraints.txt")


def download_wheels(target: Path) -> list[str]:
  """cp312 manylinux wheels of ``WHEELS`` at their pinned versions (imagecodecs cut down) into ``target``."""
  target.mkdir(parents=True, exist_ok=True)
  WHEEL_CACHE.mkdir(parents=True, exist_ok=True)
  names = []
  for name in WHEELS:
    spec = f"{name}=={pinned(name)}"
    command = [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--only-binary=:all:", "--python-version",
               "3.12", "--implementation", "cp", "-d", str(WHEEL_CACHE), spec]
    for platform in PLATFORMS:
      command += ["--platform", platform]
    subprocess.run(command, check=True, capture_output=True)
    wheel = _cached_wheel(name, pinned(name))
    if name == "imagecodecs":
      slim_wheel(wheel, target / wheel.name, IMAGECODECS_KEEP)
    else:
      shutil.copy2(wheel, target / wheel.name)
    names.append(wheel.name)
  return names


def _cached_wheel(name: str, version: str) -> Path:
  stem = name.lower().replace("-", "_")
  for wheel in sorted(WHEEL_CACHE.glob("*.whl")):
    project, wheel_version = wheel.name.split("-")[:2]
    if project.lower().replace("-", "_") == stem and wheel_version == version:
      return wheel
  raise SystemExit(f"pip downloaded no wheel for {name}=={version}")


def slim_wheel(source: Path, target: Path, keep: tuple[str, ...]) -> None:
  """A copy of wheel ``source`` holding only files whose path starts with (or, for '.dist-info/', holds) a
  ``keep`` entry, with a RECORD that lists what is left (pip installs it like the original)."""
  buffer = io.BytesIO()
  with zipfile.ZipFile(source) as whole, zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as slim:
    record_name = next(n for n in whole.namelist() if n.endswith(".dist-info/RECORD"))
    lines = []
    for name in whole.namelist():
      if name == record_name or not any(name.startswith(k) or (k.startswith(".") and k in name) for k in keep):
        continue
      data = whole.read(name)
      slim.writestr(whole.getinfo(name), data)
      digest = hashlib.sha256(data).digest()
      lines.append(f"{name},sha256={base64.urlsafe_b64encode(digest).rstrip(b'=').decode()},{len(data)}")
    lines.append(f"{record_name},,")
    slim.writestr(record_name, "\n".join(lines) + "\n")
  target.write_bytes(buffer.getvalue())


def compact_data(shared: Path, target: Path, camvid_every: int) -> dict:
  """The queue's data as lossless WebP (pixels identical to the PNGs), and the Kodak photo the codecs are
  timed on. Files already there are kept (re-encoding takes a minute)."""
  from PIL import Image

  from compzoo.data.images import list_images, load_image
  from experiments.gpu_run import KODAK_IMAGE
  sets = {"lossless-photos/train": list_images(shared / "lossless-photos" / "train"),
          "camvid/train": list_images(shared / "camvid" / "train" / "images")[::camvid_every]}
  counts = {}
  for name, paths in sets.items():
    folder = target / name
    folder.mkdir(parents=True, exist_ok=True)
    wanted = {f"{p.stem}.webp": p for p in paths}
    for stale in set(p.name for p in folder.iterdir()) - set(wanted):
      (folder / stale).unlink()
    for file, path in wanted.items():
      if not (folder / file).is_file():
        Image.fromarray(load_image(path)).save(folder / file, "WEBP", lossless=True, quality=80, method=4)
    counts[name] = {"images": len(wanted), "mib": round(_size(folder) / 2**20, 2)}
  kodak = target / KODAK_IMAGE
  kodak.parent.mkdir(parents=True, exist_ok=True)
  shutil.copy2(shared / KODAK_IMAGE, kodak)
  return counts


def weights_to_keep() -> set[Path]:
  """Export folders (relative to compzoo/weights) the run loads with their own values: the queue's warm
  starts, and each cross-checked codec's own when smaller than CARRY_WEIGHTS_BELOW."""
  from compzoo.codecs.learned import SHIPPED_WEIGHTS
  from experiments.gpu_checks import entry_folder, learned_names
  from experiments.gpu_run import QUEUE
  keep = {Path(item.weights) for item in QUEUE}
  keep.add(Path("patch"))  # the patch codecs' books (1.3 MB, no config.json): without them the zoo cannot build them
  for name in learned_names():
    folder = entry_folder(name)
    config = json.loads((SHIPPED_WEIGHTS / folder / "config.json").read_text())
    parts = [folder] + [Path(os.path.normpath(folder / shared)) for shared in config.get("shared_params", {}).values()]
    if sum(_size(SHIPPED_WEIGHTS / p) for p in parts) < CARRY_WEIGHTS_BELOW:
      keep.update(parts)
  return keep


def set_aside(keep: set[Path]) -> list[str]:
  """Takes every tracked file under SET_ASIDE_DIRS, and every weights file outside ``keep`` except
  config.json, out of the index and into .git/info/exclude. -> the paths."""
  from compzoo.codecs.learned import SHIPPED_WEIGHTS
  root = Path(git("rev-parse", "--show-toplevel").strip())
  weights = SHIPPED_WEIGHTS.relative_to(root)
  kept = {(weights / k).resolve() for k in keep}
  paths = []
  for name in git("ls-files", "-z", "--", *SET_ASIDE_DIRS, str(weights)).split("\0"):
    path = Path(name)
    if not name or (path.is_relative_to(weights) and (path.name == "config.json" or path.parent.resolve() in kept)):
      continue
    paths.append(name)
  if not paths:
    return paths
  staged = subprocess.run(["git", "diff", "--cached", "--quiet", "--", *SET_ASIDE_DIRS, str(weights)])
  if staged.returncode:  # restore resets these paths to HEAD: staged work there would be lost
    raise SystemExit(f"staged changes under {', '.join(SET_ASIDE_DIRS)} or {weights}: commit or unstage them first")
  git("rm", "-q", "--cached", "--pathspec-from-file=-", "--pathspec-file-nul", input="\0".join(paths))
  exclude = _exclude_file()
  exclude.parent.mkdir(parents=True, exist_ok=True)
  text = exclude.read_text() if exclude.exists() else ""
  if text and not text.endswith("\n"):
    text += "\n"
  exclude.write_text(text + "\n".join([EXCLUDE_BEGIN, *(f"/{p}" for p in paths), EXCLUDE_END]) + "\n")
  return paths


def restore() -> list[str]:
  """Puts the set-aside files back into the index and removes their exclude block."""
  exclude = _exclude_file()
  text = exclude.read_text() if exclude.exists() else ""
  if EXCLUDE_BEGIN not in text:
    return []
  before, _, rest = text.partition(EXCLUDE_BEGIN + "\n")
  block, _, after = rest.partition(EXCLUDE_END + "\n")
  paths = [line[1:] for line in block.splitlines() if line.startswith("/")]
  if paths:  # an empty pathspec would reset the whole index
    git("reset", "-q", "--pathspec-from-file=-", "--pathspec-file-nul", input="\0".join(paths))
  exclude.write_text(before + after)
  return paths


def _exclude_file() -> Path:
  return Path(git("rev-parse", "--git-path", "info/exclude").strip())


def make(shared: Path = SHARED_DATA, bundle: Path = BUNDLE, camvid_every: int = 3) -> dict:
  restore()  # a second make starts from the whole tree
  from compzoo.codecs.learned import SHIPPED_WEIGHTS
  from experiments.gpu_run import QUEUE
  wheels = download_wheels(bundle / "wheels")
  data = compact_data(shared, bundle / "data", camvid_every)
  keep = weights_to_keep()
  aside = set_aside(keep)
  files = travelling_files()
  weights_root = str(SHIPPED_WEIGHTS.relative_to(Path.cwd().resolve()))
  breakdown = {
      "code and text": sum(p.stat().st_size for p in files if not str(p).startswith(weights_root)),
      "weights (travelling)": sum(p.stat().st_size for p in files if str(p).startswith(weights_root)),
      "wheels": _size(bundle / "wheels"), "data": _size(bundle / "data")}
  manifest = {"wheels": wheels, "data": data, "queue": [item.name for item in QUEUE],
              "weights_kept": sorted(map(str, keep)), "set_aside_files": len(aside),
              "breakdown_mib": {k: round(v / 2**20, 2) for k, v in breakdown.items()},
              "summary": f"{len(wheels)} wheels, " + ", ".join(f"{k}: {v['images']} images" for k, v in data.items())}
  (bundle / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
  return manifest


def main(argv):
  from absl import flags
  command = argv[1] if len(argv) > 1 else "size"
  f = flags.FLAGS
  if command == "make":
    manifest = make(Path(f.shared), Path(f.bundle), f.camvid_every)
    for part, mib in manifest["breakdown_mib"].items():
      print(f"{part:>22}: {mib:6.1f} MiB")
    print(f"set aside: {manifest['set_aside_files']} files (make gpu-restore puts them back; commit nothing before)")
  elif command == "restore":
    print(f"restored {len(restore())} set-aside files")
  elif command != "size":
    raise SystemExit(f"unknown command {command!r}: make, restore or size")
  total = travelling_bytes(Path(f.bundle))
  print(f"bundle: {Path(f.bundle).resolve()}")
  print(f"travels: {total / 2**20:.1f} MiB")
  if command == "make" and total > TARGET_BYTES:
    raise SystemExit(f"the travelling tree is {total / 2**20:.1f} MiB, over {TARGET_BYTES / 2**20:.0f}")


if __name__ == "__main__":
  from absl import app, flags
  flags.DEFINE_string("bundle", str(BUNDLE), "the bundle folder (git-ignored)")
  flags.DEFINE_string("shared", str(SHARED_DATA), "../shared/data: where the training data is read from")
  flags.DEFINE_integer("camvid_every", 3, "CamVid train frames carried: every N-th")
  app.run(main)
