"""launch.cli: every command line is an options dataclass; bad input is one line and exit 2."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Literal

import pytest

from launch.cli import (MANY, POSITIONAL, REQUIRED, BadInput, EXIT_BAD_INPUT, field_docs, parse_options,
                        require_at_least, run_command)
from launch.evaluate import EvaluateOptions
from launch.impala.checkpoint import CheckpointError
from launch.play import PlayConfig
from launch.plot import PlotOptions
from launch.tools.boxworld_phases import BoxWorldPhasesOptions
from launch.tools.export_policy import ExportOptions
from launch.tools.loss_balance import LossBalanceOptions
from launch.tools.policy_drift import PolicyDriftOptions
from launch.viewer.session import WatchOptions
from tests.benchmark_scripts import load_benchmark


@dataclass
class Example:
    paths: list[str] = field(metadata=POSITIONAL)
    """Inputs."""
    out: str = field(default="", metadata=REQUIRED)
    """Where to write."""
    mode: Literal["fast", "slow"] = "fast"
    """How."""
    count: int | None = None
    """How many (default: all)."""
    sizes: list[int] = field(default_factory=lambda: [1, 2], metadata=MANY)
    """Sizes."""
    tag: list[str] = field(default_factory=list)
    """A tag, repeatable."""
    verbose: bool = False
    """Say more."""
    kwargs: dict[str, Any] = field(default_factory=dict)
    """Extra settings."""

    def __post_init__(self) -> None:
        if self.count is not None and self.count < 1:
            raise BadInput(f"--count must be >= 1, got {self.count}")


def parse(*argv: str) -> Example:
    return parse_options(Example, list(argv), prog="example", description="An example.")


def test_fields_become_flags_with_their_types_and_defaults() -> None:
    options = parse("a", "b", "--out", "x.png")
    assert options == Example(paths=["a", "b"], out="x.png")
    options = parse("a", "--out", "x", "--mode", "slow", "--count", "3", "--sizes", "4", "5", "6", "--tag", "p",
                    "--tag", "q", "--verbose", "--kwargs", '{"size": 9}')
    assert (options.mode, options.count, options.sizes, options.tag, options.verbose, options.kwargs) == (
        "slow", 3, [4, 5, 6], ["p", "q"], True, {"size": 9})
    assert parse("a", "--out", "x", "--verbose", "false").verbose is False
    assert parse("a", "--out", "x", "--count", "none").count is None


@pytest.mark.parametrize(("argv", "message"), [
    (["--out", "x"], "required: paths"),
    (["a"], "required: --out"),
    (["a", "--out", "x", "--mode", "medium"], "invalid choice: 'medium'"),
    (["a", "--out", "x", "--kwargs", "[1]"], "--kwargs must be a JSON object, got '[1]'"),
    (["a", "--out", "x", "--count", "two"], "invalid int value: 'two'"),
])
def test_malformed_arguments_are_usage_errors(argv: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse(*argv)
    assert exit_info.value.code == EXIT_BAD_INPUT
    assert message in capsys.readouterr().err


def test_help_shows_each_field_with_its_docstring_and_default(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse("--help")
    text = " ".join(capsys.readouterr().out.split())
    assert "How many (default: all)." in text and "Sizes. (default: [1, 2])" in text and "{fast,slow}" in text


def test_run_command_turns_bad_input_into_one_line_and_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    def bad() -> None:
        parse("a", "--out", "x", "--count", "0")

    assert run_command(bad) == EXIT_BAD_INPUT
    assert capsys.readouterr().err == "error: --count must be >= 1, got 0\n"

    def missing() -> None:
        raise CheckpointError("no such checkpoint")

    assert run_command(missing) == EXIT_BAD_INPUT
    assert run_command(lambda: None) == 0 and run_command(lambda: 3) == 3

    def bug() -> None:
        raise KeyError("a bug is not bad input")

    with pytest.raises(KeyError):
        run_command(bug)


COMMAND_OPTIONS = [EvaluateOptions, WatchOptions, PlayConfig, PlotOptions, BoxWorldPhasesOptions, LossBalanceOptions,
                   PolicyDriftOptions, ExportOptions]
BENCHMARK_OPTIONS = {"env_throughput": "EnvThroughputOptions", "games_per_actor": "GamesPerActorOptions",
                     "learner_update": "LearnerUpdateOptions", "learning_suite": "SuiteOptions",
                     "nth_farthest": "NthFarthestOptions",
                     "policy_speed": "PolicySpeedOptions", "ray_overhead": "RayOverheadOptions",
                     "rmc_speed": "RmcSpeedOptions", "train_throughput": "TrainThroughputOptions"}


@pytest.mark.parametrize("options", COMMAND_OPTIONS + [(name, cls) for name, cls in BENCHMARK_OPTIONS.items()],
                         ids=lambda options: options.__name__ if isinstance(options, type) else options[0])
def test_every_command_documents_every_option(options: Any) -> None:
    cls = options if isinstance(options, type) else getattr(load_benchmark(options[0]), options[1])
    names = {item.name for item in dataclasses.fields(cls) if item.init}
    docs = field_docs(cls)
    assert names <= set(docs), f"{cls.__name__} fields without a docstring: {sorted(names - set(docs))}"
    assert all(docs[name] for name in names)


def test_require_at_least_names_the_first_flag_below_its_minimum():
    options = dataclasses.make_dataclass("Counts", [("num_envs", int), ("warmup_steps", int)])(num_envs=2, warmup_steps=-1)
    require_at_least(options, num_envs=1)
    with pytest.raises(BadInput, match="--warmup-steps must be >= 0, got -1"):
        require_at_least(options, num_envs=2, warmup_steps=0)
    with pytest.raises(BadInput, match="--num-envs must be >= 3, got 2"):
        require_at_least(options, num_envs=3, warmup_steps=0)
