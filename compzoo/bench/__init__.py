"""Benchmarks: run codecs over images, measure bits, quality, exactness and time, write reports."""

from compzoo.bench.grid import PictureGrid
from compzoo.bench.html import write_html
from compzoo.bench.report import summarize, write_reports
from compzoo.bench.runner import BenchRecord, expand_sweeps, run_bench

__all__ = ["BenchRecord", "PictureGrid", "expand_sweeps", "run_bench", "summarize", "write_html", "write_reports"]
