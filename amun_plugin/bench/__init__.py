"""Benchmark suites: the AMUN paper's experiments as YAML suites, run resumably on a local or
Ray executor (``amun bench SUITE``; see benchmarks/README.md and docs/).

    config = load_suite("table1", "fmnist-cnn")
    folder = run_suite(config, "results/table1", executor=RayExecutor())   # or the default local one
"""

from amun_plugin.bench.ray_executor import RayExecutor
from amun_plugin.bench.runner import run_suite
from amun_plugin.bench.suite_config import SuiteConfig, load_suite

__all__ = ["RayExecutor", "SuiteConfig", "load_suite", "run_suite"]
