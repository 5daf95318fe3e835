"""Renders a benchmark's report.html in a real headless browser (Debian's chromium) and saves a screenshot,
to check what a reader sees: the tables laid out, the plots and the picture grid shown.

    python -m experiments.screenshot_report --report=runs/bench/report.html --out=runs/bench/report.png
    apt-get install chromium   # on Debian, if it is missing

The test suite checks the report's content without a browser (tests/test_cli.py).
"""

import shutil
import subprocess
from pathlib import Path

from absl import app, flags

_REPORT = flags.DEFINE_string("report", None, "the report.html to render", required=True)
_OUT = flags.DEFINE_string("out", "", "screenshot PNG (default: beside the report, report.png)")
_WIDTH = flags.DEFINE_integer("width", 1400, "window width in pixels")
_HEIGHT = flags.DEFINE_integer("height", 2400, "window height in pixels (the screenshot's)")
BROWSERS = ("chromium", "chromium-browser", "google-chrome", "chrome")


def main(argv):
  del argv
  report = Path(_REPORT.value).resolve()
  if not report.is_file():
    raise app.UsageError(f"no report at {report}: run compzoo bench --out first")
  browser = next((shutil.which(name) for name in BROWSERS if shutil.which(name)), None)
  if browser is None:
    raise app.UsageError(f"no headless browser found ({', '.join(BROWSERS)}); on Debian: apt-get install chromium")
  out = Path(_OUT.value) if _OUT.value else report.with_suffix(".png")
  command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
             f"--window-size={_WIDTH.value},{_HEIGHT.value}", f"--screenshot={out.resolve()}", report.as_uri()]
  result = subprocess.run(command, capture_output=True, text=True, timeout=120)
  if result.returncode or not out.is_file():
    raise SystemExit(f"{browser} failed ({result.returncode}): {result.stderr[-2000:]}")
  print(f"wrote {out} ({_WIDTH.value}x{_HEIGHT.value}) from {report} with {browser}")


if __name__ == "__main__":
  app.run(main)
