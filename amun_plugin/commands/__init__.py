"""What each ``amun`` command does, as plain functions taking parsed options and an ``echo`` for
what the user reads (the CLI, :mod:`amun_plugin.cli`, only parses options and prints errors).

=================  ==========================================
``amun demo``      :func:`.demo.run_demo`
``amun train``     :func:`.checkpoints.train_command`
``amun unlearn``   :func:`.checkpoints.unlearn_command`
``amun audit``     :func:`.audits.audit_command`, :func:`.forgetting.forgetting_audit_command`
``amun plugins``   :func:`.listing.plugins_listing`
``amun describe``  :func:`.listing.describe_component`
``amun bench``     :func:`.benchmark.bench_command`
``amun report``    :func:`.benchmark.report_command`
=================  ==========================================
"""

from amun_plugin.commands.audits import audit_command
from amun_plugin.commands.benchmark import SuiteKnobs, bench_command, report_command
from amun_plugin.commands.checkpoints import PlainModel, TrainSpec, UnlearnCommand, train_command, unlearn_command
from amun_plugin.commands.demo import DemoConfig, run_demo
from amun_plugin.commands.forgetting import forgetting_audit_command
from amun_plugin.commands.listing import describe_component, plugins_listing

__all__ = [
    "DemoConfig",
    "PlainModel",
    "SuiteKnobs",
    "TrainSpec",
    "UnlearnCommand",
    "audit_command",
    "bench_command",
    "describe_component",
    "forgetting_audit_command",
    "plugins_listing",
    "report_command",
    "run_demo",
    "train_command",
    "unlearn_command",
]
