"""The ``amun`` command line: click only. It parses options, calls :mod:`amun_plugin.commands`
and prints; library messages (``logging``, logger ``amun_plugin``) go to stderr at INFO.

Start-up stays light: ``amun --help``, ``amun --version`` and ``amun COMMAND --help`` import no
torch, ART or scikit-learn. The commands (and the plugin host) are imported when a command runs;
installed plugins are found from their entry-point metadata and loaded only when a command runs,
when one of their commands is named, or for the command list of ``amun --help``. Option parsing:
:mod:`amun_plugin.cli_options`; log, error and warning lines: :mod:`amun_plugin.cli_messages`."""

from __future__ import annotations

import functools
import importlib
import json
import os
import sys
import warnings
from typing import Any, Callable

import click

from amun_plugin.cli_messages import _SHOWN, _warning_line, configure_logging, error_line
from amun_plugin.cli_options import _pairs, _split_config, split_options
from amun_plugin.errors import AmunError, InvalidInputError

__all__ = ["main", "cli"]

PLUGIN_GROUP = "amun_plugin"
"""The entry-point group of plugins (``plugins.ENTRY_POINT_GROUP``, read here without importing the host)."""
DISABLE_AUTOLOAD_ENV = "AMUN_DISABLE_PLUGIN_AUTOLOAD"


def _commands() -> Any:
    """:mod:`amun_plugin.commands`, imported when a command runs (it loads torch; help does not)."""
    return importlib.import_module("amun_plugin.commands")


def _installed_plugins() -> list[str]:
    """The entry-point names of installed plugins, from metadata (no plugin module is imported)."""
    if os.environ.get(DISABLE_AUTOLOAD_ENV, "") not in ("", "0"):
        return []
    metadata = importlib.import_module("importlib.metadata")
    return sorted(ep.name for ep in metadata.entry_points(group=PLUGIN_GROUP))


class _LazyHost:
    """The plugin host of one ``main()``, loaded (with the plugins' commands) on first use."""

    def __init__(self, argv: list[str]) -> None:
        self.argv = argv
        self.host: Any = None

    def get(self) -> Any:
        if self.host is None:
            self.host = _load_plugins(self.argv)
        return self.host


def _host_of(ctx: click.Context) -> Any:
    """The plugin host of ``ctx``'s ``main()`` (loaded now if need be), or a fresh one outside ``main()``."""
    lazy = ctx.find_object(_LazyHost)
    return lazy.get() if lazy is not None else importlib.import_module("amun_plugin.plugins").get_plugin_manager()


def _pass_host(command: Callable[..., Any]) -> Callable[..., Any]:
    """Like ``click.pass_obj``: the command's first argument is the plugin host."""
    @functools.wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        return command(_host_of(click.get_current_context()), *args, **kwargs)
    return wrapper


class _Command(click.Command):
    """A built-in command: the plugin host loads when it runs, not for its ``--help``."""

    def invoke(self, ctx: click.Context) -> Any:
        lazy = ctx.find_object(_LazyHost)
        if lazy is not None:
            lazy.get()
        return super().invoke(ctx)


class _Group(click.Group):
    """The ``amun`` group: built-in commands without the host; plugin commands once loaded."""

    command_class = _Command

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and _installed_plugins():
            _host_of(ctx)
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        if _installed_plugins():
            _host_of(ctx)
        return super().list_commands(ctx)


@click.group(cls=_Group)
@click.version_option(package_name="amun_plugin")
def cli() -> None:
    """amun: machine unlearning with AMUN, its baselines and their evaluation."""


@cli.command()
@click.option("--output", default="amun-demo-report", show_default=True, help="report folder")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--no-progress", is_flag=True)
def demo(output: str, seed: int, device: str, no_progress: bool) -> None:
    """AMUN on the embedded digits data: original, retrained, AMUN with and without D_R."""
    commands = _commands()
    commands.run_demo(commands.DemoConfig(output=output, seed=seed, device=device), progress=not no_progress,
                      echo=click.echo)


@cli.command()
@click.option("--preset", default=None,
              help="a suite preset's dataset, model, recipe and device (fmnist-cnn, fmnist-paper, ...; see `amun "
                   "bench --dry-run`); the options below override it")
@click.option("--dataset", default=None, help="dataset name (default: the preset's, else digits)")
@click.option("--dataset-option", "dataset_options", multiple=True, help="key=value, repeatable")
@click.option("--model", "architecture", default=None, help="architecture name (default: the preset's, else mlp)")
@click.option("--model-option", "model_options", multiple=True, help="key=value, repeatable")
@click.option("--recipe-option", "recipe_options", multiple=True, help="TrainConfig key=value, e.g. epochs=40")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default=None, help="cpu, cuda, ... (default: the preset's, else cpu)")
@click.option("--without-forget", is_flag=True, help="train on D_R only (a retrained model); needs a forget split")
@split_options
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="checkpoint (.safetensors)")
@_pass_host
def train(host: Any, preset: str | None, dataset: str | None, dataset_options: tuple[str, ...],
          architecture: str | None,
          model_options: tuple[str, ...], recipe_options: tuple[str, ...], seed: int, device: str | None,
          without_forget: bool, forget_fraction: float | None, forget_indices: str | None,
          forget_classes: str | None, split_seed: int, out: str) -> None:
    """Train an original (or, with --without-forget, a retrained) model and save a checkpoint."""
    commands = _commands()
    spec = commands.TrainSpec(dataset=dataset, dataset_options=_pairs(dataset_options), architecture=architecture,
                     model_options=_pairs(model_options), recipe_options=_pairs(recipe_options), preset=preset,
                     device=device)
    split = _split_config(forget_fraction, forget_indices, forget_classes, split_seed)
    if split is not None and not without_forget:
        raise InvalidInputError("a forget set option of `amun train` needs --without-forget")
    commands.train_command(spec=spec, seed=seed, split=split, out=out, echo=click.echo, without_forget=without_forget,
                           host=host)


@cli.command(name="unlearn")
@click.argument("checkpoint", type=click.Path(exists=True, dir_okay=False))
@click.option("--method", default="amun", show_default=True, help="a registered unlearner (amun plugins)")
@click.option("--option", "options", multiple=True, help="the method's config key=value, repeatable")
@split_options
@click.option("--no-retain", is_flag=True, help="the setting without access to D_R")
@click.option("--validation-size", type=int, default=0, show_default=True,
              help="test samples held out as non-member validation data, for methods that need it (DAU)")
@click.option("--holdout-size", type=int, default=None,
              help="test samples held out for a method that calibrates on them (AMUN); default: 20 percent of "
                   "the test split for such a method, none otherwise; 0 = none (AMUN then runs its fixed schedule)")
@click.option("--holdout-file", type=click.Path(exists=True, dir_okay=False),
              help="held-out samples for the calibration instead: a .npz with arrays x (N, ...) in [0, 1] and y (N,)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--dataset-option", "dataset_options", multiple=True,
              help="key=value for the checkpoint's dataset, e.g. root=./data, download=true (never read from the file)")
@click.option("--model", "architecture", default=None,
              help="a plain state dict's registered architecture (e.g. cnn); checkpoints record their own")
@click.option("--model-option", "model_options", multiple=True, help="the --model architecture's key=value")
@click.option("--dataset", default=None, help="a plain state dict's training dataset (with --dataset-option)")
@click.option("--out", required=True, type=click.Path(dir_okay=False), help="unlearned checkpoint")
@click.option("--force", is_flag=True, help="replace an existing --out file (its file mode is kept)")
@_pass_host
def unlearn_cmd(host: Any, checkpoint: str, method: str, options: tuple[str, ...], forget_fraction: float | None,
                forget_indices: str | None, forget_classes: str | None, split_seed: int, no_retain: bool,
                validation_size: int, holdout_size: int | None, holdout_file: str | None, seed: int, device: str,
                dataset_options: tuple[str, ...], architecture: str | None, model_options: tuple[str, ...],
                dataset: str | None, out: str, force: bool) -> None:
    """Unlearn a forget split of the checkpoint's training set; print metrics before and after.

    CHECKPOINT is an `amun train` checkpoint, or a plain state dict (safetensors) with --model and --dataset."""
    split = _split_config(forget_fraction, forget_indices, forget_classes, split_seed)
    commands = _commands()
    command = commands.UnlearnCommand(
        checkpoint=checkpoint, out=out, split=split, method=method, options=_pairs(options),
        use_retain=not no_retain, validation_size=validation_size,
        holdout_size=holdout_size, holdout_file=holdout_file, dataset_options=_pairs(dataset_options),
        plain=commands.PlainModel(architecture=architecture, architecture_options=_pairs(model_options),
                                  dataset=dataset),
        seed=seed, device=device, force=force)
    commands.unlearn_command(command, click.echo, host)


@cli.command()
@click.argument("checkpoints", nargs=-1, required=True, type=click.Path(exists=True, dir_okay=False))
@click.option("--retrained", type=click.Path(exists=True, dir_okay=False), help="model retrained without D_F")
@click.option("--original", type=click.Path(exists=True, dir_okay=False), help="model before unlearning")
@split_options
@click.option("--evaluator", "evaluators", multiple=True, help="evaluator name, repeatable (default: all cheap ones)")
@click.option("--evaluator-option", "evaluator_options", multiple=True, help="name.key=value, e.g. mis.max_shadow=2000")
@click.option("--bank-dir", default=None, help="RMIA reference bank folder (enables rmia)")
@click.option("--reference-models", type=int, default=None, help="build the bank with K models if missing")
@click.option("--holdout-size", type=int, default=None,
              help="retrain-free audit (needs --original): hold out N class-stratified test samples as unseen data "
                   "(left out of the audited test split); default: the calibration holdout the checkpoint records; "
                   "0 = none")
@click.option("--holdout-file", type=click.Path(exists=True, dir_okay=False),
              help="retrain-free audit (needs --original) on these unseen samples: a .npz with arrays x (N, ...) in "
                   "[0, 1] and y (N,)")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--device", default="cpu", show_default=True)
@click.option("--no-plots", is_flag=True, help="skip the PNGs")
@click.option("--dataset-option", "dataset_options", multiple=True,
              help="key=value for the checkpoints' dataset, e.g. root=./data (never read from the files)")
@click.option("--protocol", type=click.Choice(["standard", "forgetting-quality"]), default="standard",
              show_default=True, help="forgetting-quality: CHECKPOINTS are original models; run --method N times "
              "and retrain N models (NeurIPS-2023 score F and U-LiRA)")
@click.option("--runs", type=int, default=None, help="N for --protocol forgetting-quality (default 8)")
@click.option("--method", default="amun", show_default=True, help="unlearner of --protocol forgetting-quality")
@click.option("--method-option", "method_options", multiple=True, help="the method's config key=value, repeatable")
@click.option("--no-retain", is_flag=True, help="forgetting-quality: the method runs without D_R")
@click.option("--out", required=True, type=click.Path(file_okay=False), help="report folder (one subfolder per model)")
@_pass_host
def audit(host: Any, checkpoints: tuple[str, ...], retrained: str | None, original: str | None,
          forget_fraction: float | None,
          forget_indices: str | None, forget_classes: str | None, split_seed: int, evaluators: tuple[str, ...],
          evaluator_options: tuple[str, ...], bank_dir: str | None, reference_models: int | None,
          holdout_size: int | None, holdout_file: str | None, seed: int,
          device: str, no_plots: bool, dataset_options: tuple[str, ...], protocol: str, runs: int | None,
          method: str, method_options: tuple[str, ...], no_retain: bool, out: str) -> None:
    """Audit checkpoints (UA/RA/TA, RMIA, MIS, ART attacks) and write a report folder for each.

    With --original and held-out data (--holdout-size, --holdout-file or the recorded calibration
    holdout) also the retrain-free audit: the estimated Avg Gap with a bootstrap 95% interval and verdicts."""
    split = _split_config(forget_fraction, forget_indices, forget_classes, split_seed)
    if protocol == "forgetting-quality" and (holdout_size is not None or holdout_file is not None):
        raise InvalidInputError("--holdout-size and --holdout-file are for --protocol standard")
    if protocol == "forgetting-quality":
        _commands().forgetting_audit_command(checkpoints=checkpoints, split=split, method=method,
                                 method_options=_pairs(method_options), use_retain=not no_retain,
                                 runs=8 if runs is None else runs, seed=seed, device=device, out=out,
                                 echo=click.echo, plots=not no_plots, dataset_options=_pairs(dataset_options),
                                 host=host)
        return
    if runs is not None or method_options or no_retain:
        raise InvalidInputError("--runs, --method-option and --no-retain need --protocol forgetting-quality")
    options: dict[str, dict[str, Any]] = {}
    for key, value in _pairs(evaluator_options).items():
        name, _, field = key.partition(".")
        if not field:
            raise InvalidInputError(f"--evaluator-option {key!r} must look like evaluator.key=value")
        options.setdefault(name, {})[field] = value
    _commands().audit_command(checkpoints=checkpoints, retrained=retrained, original=original, split=split,
                  evaluators=evaluators, evaluator_options=options, bank_dir=bank_dir,
                  reference_models=reference_models, seed=seed, device=device, out=out, echo=click.echo,
                  plots=not no_plots, dataset_options=_pairs(dataset_options), holdout_size=holdout_size,
                  holdout_file=holdout_file, host=host)


@cli.command()
@click.option("--json", "as_json", is_flag=True, help="machine-readable output")
@_pass_host
def plugins(host: Any, as_json: bool) -> None:
    """List every registered unlearner, attack backend, evaluator, dataset and model (--json: with options)."""
    listing = _commands().plugins_listing(host)
    if as_json:
        click.echo(json.dumps(listing, indent=2))
        return
    rows = [entry for entries in listing["components"].values() for entry in entries]
    name_width = max([22] + [len(entry["name"]) + 1 for entry in rows])
    package_width = max([16] + [len(entry["package"]) + 1 for entry in rows])
    for kind, entries in listing["components"].items():
        click.echo(f"{kind}:")
        for entry in entries:
            click.echo(f"  {entry['name']:<{name_width}} {entry['package']:<{package_width}} {entry['description']}")
    for error in listing["errors"]:
        click.echo(f"broken plugin {error['plugin']}: {error['error']}", err=True)


@cli.command()
@click.argument("name")
@_pass_host
def describe(host: Any, name: str) -> None:
    """Show a component (unlearner, attack, evaluator, dataset, model) and every option: type, default, meaning."""
    _commands().describe_component(name, click.echo, host)


@cli.command()
@click.argument("suite")
@click.option("--preset", default=None, help="suite preset (default: the suite's default, fmnist-cnn)")
@click.option("--executor", type=click.Choice(["local", "processes", "ray"]), default="local", show_default=True,
              help="local: one job at a time; processes: --workers processes of this machine; ray: a Ray instance")
@click.option("--address", default=None, help="Ray cluster address, e.g. auto or ray://head:10001 (--executor ray)")
@click.option("--workers", type=int, default=None, help="processes at a time (--executor processes; default: cores)")
@click.option("--output", default=None,
              help="run folder (default ./amun-bench/SUITE-PRESET): new, empty or a run folder, which it resumes "
                   "if it holds this commit's results")
@click.option("--resume", is_flag=True, help="add to a folder holding results of another commit, on purpose")
@click.option("--runs", type=int, default=None, help="forget sets (runs) per original model, overriding the suite")
@click.option("--fraction", "fractions", type=float, multiple=True,
              help="forget fraction(s) to run, overriding the suite's (repeat the option for several)")
@click.option("--variant", "variants", type=click.Choice(["standard", "trades", "lipschitz"]), multiple=True,
              help="training variant(s) of the original models to run, overriding the suite's (robust: "
                   "trades, lipschitz; repeat the option for several)")
@click.option("--methods", default=None, help="comma-separated method labels to run (default: all of the suite's)")
@click.option("--reference-models", type=int, default=None, help="RMIA reference models, overriding the suite's")
@click.option("--no-tune", is_flag=True, help="no hyper-parameter search: each method's fixed options")
@click.option("--threads", type=int, default=None, help="torch threads per job, overriding the suite's")
@click.option("--device", default=None, help="cpu, cuda, cuda:1, ... overriding the suite's")
@click.option("--dry-run", is_flag=True, help="print the jobs of each stage and a rough time; run nothing")
@_pass_host
def bench(host: Any, suite: str, preset: str | None, executor: str, address: str | None, workers: int | None,
          output: str | None,
          resume: bool,
          runs: int | None, fractions: tuple[float, ...], variants: tuple[str, ...], methods: str | None,
          reference_models: int | None,
          no_tune: bool, threads: int | None, device: str | None, dry_run: bool) -> None:
    """Run or resume a benchmark suite (a shipped SUITE name, see amun_plugin/suites, or a YAML path)."""
    commands = _commands()
    knobs = commands.SuiteKnobs(runs=runs, fractions=fractions or None, variants=variants or None,
                       reference_models=reference_models, no_tune=no_tune,
                       methods=[m.strip() for m in methods.split(",") if m.strip()] if methods else None,
                       threads=threads, device=device)
    commands.bench_command(suite, preset=preset, executor=executor, address=address, workers=workers, output=output,
                           echo=click.echo,
                  knobs=knobs, dry_run=dry_run, resume=resume, host=host)


@cli.command()
@click.argument("folder")
def report(folder: str) -> None:
    """Re-render a benchmark run folder's table.md and plots from its config.yaml and results.jsonl
    (after an upgrade of the tables; nothing is computed, the records are not touched) and say which
    files changed: an unchanged folder renders to the same bytes."""
    _commands().report_command(folder, echo=click.echo)


_BUILTIN_COMMANDS = dict(cli.commands)


def _load_plugins(argv: list[str] | None) -> Any:
    """The plugin host with every plugin's commands added to ``cli``. A broken plugin is reported
    as one ``warning:`` line on stderr (``amun plugins`` lists it instead) and skipped."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # reported below, once, as plain lines
        host = importlib.import_module("amun_plugin.plugins").get_plugin_manager()
        host.add_commands(cli)
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] != "plugins":
        for error in host.load_errors:
            click.echo(f"warning: skipped plugin {error.plugin}: {error.error}", err=True)
    _SHOWN.update(error.error for error in host.load_errors)  # a host built later in the command: said already
    return host


def _runs_a_command(args: list[str]) -> bool:
    """Whether the command line runs a command (not only help or the version): then the plugins
    load before click parses it, so a broken plugin is reported and Ctrl-C is one line."""
    return bool(args) and args[0] != "--version" and "--help" not in args


def main(argv: list[str] | None = None) -> int:
    """Entry point: AmunErrors become one clear line on stderr and exit code 2; Ctrl-C (also while
    plugins load) one ``interrupted`` line and exit code 130. Help and the version load no plugin
    (``amun --help`` does where plugins are installed, to list their commands)."""
    configure_logging()
    args = sys.argv[1:] if argv is None else list(argv)
    shown = warnings.showwarning
    warnings.showwarning = _warning_line
    _SHOWN.clear()
    try:
        cli.commands.clear()  # plugin commands of an earlier main() in this process go
        cli.commands.update(_BUILTIN_COMMANDS)
        host = _LazyHost(args)
        if _runs_a_command(args):
            host.get()
        cli.main(args=args, prog_name="amun", standalone_mode=False, obj=host)
    except AmunError as exc:
        click.echo(error_line(exc, args), err=True)
        return 2
    except (KeyboardInterrupt, click.exceptions.Abort):
        click.echo("interrupted", err=True)
        return 130
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    finally:
        warnings.showwarning = shown
    return 0




if __name__ == "__main__":
    sys.exit(main())
