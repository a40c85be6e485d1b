"""The typed config, its presets and the generated CLI."""

from __future__ import annotations

import dataclasses
import json

import pytest

from launch.cli import field_docs
from launch.impala.config import PRESETS, ConfigError, TrainConfig, config_from_preset, parse_train_args


def test_every_field_has_a_docstring_and_a_flag_in_help(capsys: pytest.CaptureFixture[str]) -> None:
    docs = field_docs(TrainConfig)
    names = [item.name for item in dataclasses.fields(TrainConfig)]
    assert set(docs) == set(names)
    with pytest.raises(SystemExit) as exit_info:
        parse_train_args(["--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())
    for name in names:
        assert "--" + name.replace("_", "-") in text
    assert "Recurrent core of the agent" in text and "boxworld-easy-rmc" in text


def test_help_with_a_preset_shows_the_values_it_sets(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        parse_train_args(["--preset", "boxworld-easy-rmc", "--help"])
    assert exit_info.value.code == 0
    text = " ".join(capsys.readouterr().out.split()).replace("- ", "-")  # argparse wraps at hyphens
    assert "(default: 0.001; preset boxworld-easy-rmc: 0.0006)" in text
    assert "(default: 4; preset boxworld-easy-rmc: 1)" in text  # --num-epochs
    assert "(default: 32; preset boxworld-easy-rmc: 64)" in text  # --envs-per-actor
    with pytest.raises(SystemExit):
        parse_train_args(["--help"])
    assert "preset boxworld-easy-rmc" not in capsys.readouterr().out


def test_print_config_prints_the_resolved_config_and_exits(capsys: pytest.CaptureFixture[str],
                                                           tmp_path: object, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exit_info:
        parse_train_args(["--preset", "boxworld-easy-rmc", "--seed", "7", "--print-config"])
    assert exit_info.value.code == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed == config_from_preset("boxworld-easy-rmc", seed=7).to_json()
    assert printed["learning_rate"] == 6e-4 and printed["seed"] == 7
    assert list(tmp_path.iterdir()) == []  # type: ignore[attr-defined]
    with pytest.raises(SystemExit) as exit_info:
        parse_train_args(["--resume", "runs/x", "--print-config"])
    assert exit_info.value.code == 2
    assert "--print-config cannot be combined with --resume" in capsys.readouterr().err


@pytest.mark.parametrize("task", ["boxworld-easy", "boxworld", "boxworld-viewport", "minipacman", "minipacman-viewport"])
def test_each_task_has_an_rmc_and_an_lstm_preset(task: str) -> None:
    rmc, lstm = config_from_preset(f"{task}-rmc"), config_from_preset(f"{task}-lstm")
    assert (rmc.core, lstm.core) == ("rmc", "lstm")
    assert rmc.env == lstm.env and rmc.env.startswith("rmc/")
    assert rmc.total_steps == lstm.total_steps and rmc.time_limit_s == lstm.time_limit_s
    assert (rmc.envs_per_actor, rmc.unroll_length) == (lstm.envs_per_actor, lstm.unroll_length)  # same acting
    if task != "boxworld-easy":  # the easy RMC preset's learner settings were tuned on its own runs
        assert rmc.batch_size == lstm.batch_size and rmc.learning_rate == lstm.learning_rate


def test_the_game_presets_keep_the_agent_and_loss_they_were_measured_with() -> None:
    default = TrainConfig()
    assert (default.use_previous_action_reward, default.advantage_normalization, default.lstm_output_norm,
            default.lr_kl_target) == (True, True, True, None)
    for name in PRESETS:
        preset = config_from_preset(name)
        assert preset.use_previous_action_reward and preset.num_epochs == 1 and preset.lr_kl_target is None
        assert not (preset.advantage_normalization or preset.observation_normalization or preset.lstm_output_norm)
        assert preset.value_normalization == "none"
        assert preset.slots_per_actor == (0 if name.endswith("-gpu") else 2)


def test_command_line_overrides_the_preset() -> None:
    config, resume, explicit, preset = parse_train_args(
        ["--preset", "boxworld-rmc", "--num-actors", "3", "--env-kwargs", '{"max_steps": 50}', "--wandb"])
    assert resume is None and preset == "boxworld-rmc"
    assert config.env == "rmc/BoxWorld-v0" and config.unroll_length == PRESETS["boxworld-rmc"]["unroll_length"]
    assert config.num_actors == 3 and config.env_kwargs == {"max_steps": 50} and config.wandb is True
    assert explicit == {"num_actors": 3, "env_kwargs": {"max_steps": 50}, "wandb": True}


def test_only_the_easy_rmc_preset_clips_the_policy_ratio_at_twice_the_learning_rate() -> None:
    assert config_from_preset("boxworld-easy-rmc").pg_ratio_clip == 0.2
    assert config_from_preset("boxworld-easy-rmc").learning_rate == 6e-4
    assert config_from_preset("boxworld-easy-rmc").batch_size == 32  # half an actor's 64 games
    assert config_from_preset("boxworld-easy-rmc").updates_per_batch == 2
    assert config_from_preset("boxworld-easy-lstm").batch_size == 64
    assert config_from_preset("boxworld-easy-lstm").learning_rate == 3e-4
    assert config_from_preset("boxworld-easy-lstm").pg_ratio_clip is None
    assert config_from_preset("boxworld-rmc").pg_ratio_clip is None
    config, *_ = parse_train_args(["--preset", "boxworld-easy-rmc", "--pg-ratio-clip", "none"])
    assert config.pg_ratio_clip is None


def test_optional_and_list_fields_parse() -> None:
    config, *_ = parse_train_args(["--env", "CartPole-v1", "--reward-clip", "1", "--env-package", "a",
                                   "--env-package", "b", "--run-name", "x"])
    assert config.reward_clip == 1.0 and config.env_package == ["a", "b"] and config.run_name == "x"
    config, *_ = parse_train_args(["--reward-clip", "none"])
    assert config.reward_clip is None


def test_resume_takes_no_preset(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        parse_train_args(["--resume", "runs/x", "--preset", "boxworld-rmc"])
    assert "--preset cannot be combined with --resume" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"num_actors": 0}, "num_actors must be an integer >= 1, got 0"),
        ({"learning_rate": float("nan")}, "learning_rate must be a finite number > 0, got nan"),
        ({"optimizer": "sgd"}, "optimizer must be one of ['rmsprop', 'adam', 'radam'], got 'sgd'"),
        ({"wrappers": ["nocolon"]}, "'module:callable'"),
        ({"adam_beta2": 1.0}, "adam_beta2 must be in [0, 1), got 1.0"),
        ({"adam_beta1": -0.1}, "adam_beta1 must be in [0, 1), got -0.1"),
        ({"pg_ratio_clip": 0.0}, "pg_ratio_clip must be in (0, 1) or unset, got 0.0"),
        ({"slots_per_actor": -1}, "slots_per_actor must be an integer >= 0, got -1"),
        ({"slots_per_actor": 1, "num_actors": 1, "envs_per_actor": 16, "batch_size": 32},
         "slots_per_actor x num_actors (1 x 1) must be at least the actor buffers of one batch (2)"),
        ({"bogus": 1}, "unknown config keys ['bogus']"),
    ],
)
def test_invalid_values_are_rejected_by_name(overrides: dict, message: str) -> None:
    with pytest.raises(ConfigError) as error:
        config_from_preset(None, **overrides)
    assert message in str(error.value)


def test_unknown_preset_lists_the_valid_ones() -> None:
    with pytest.raises(ConfigError, match="valid presets are"):
        config_from_preset("boxworld-gru")


def test_json_round_trip() -> None:
    config = config_from_preset("minipacman-viewport-lstm", seed=7)
    assert TrainConfig.from_json(json.loads(json.dumps(config.to_json()))) == config


def test_configs_saved_before_a_field_existed_rebuild_their_agent() -> None:
    config = config_from_preset("boxworld-easy-rmc")
    assert config.core_output_norm  # new runs normalise the RMC output
    saved = config.to_json()
    del saved["core_output_norm"]  # as written before the field existed
    assert TrainConfig.from_saved_json(saved).core_output_norm is False
    assert TrainConfig.from_saved_json(config.to_json()).core_output_norm is True
    assert config.rmc_gate_input_pooling == "mean"
    del saved["rmc_gate_input_pooling"]
    assert TrainConfig.from_saved_json(saved).rmc_gate_input_pooling == "flatten"
    # the loss settings added since: a run saved without them resumes with the loss it had
    plain = TrainConfig(env="CartPole-v1").to_json()
    for name in ("pg_ratio_clip", "value_normalization", "advantage_normalization", "observation_normalization",
                 "num_epochs", "vtrace_lambda", "target_kl", "lstm_output_norm", "lr_kl_target", "num_minibatches",
                 "pg_clip_reference"):
        del plain[name]
    old = TrainConfig.from_saved_json(plain)
    assert (old.pg_ratio_clip, old.value_normalization, old.advantage_normalization, old.observation_normalization,
            old.num_epochs, old.vtrace_lambda, old.target_kl, old.lstm_output_norm, old.lr_kl_target,
            old.num_minibatches, old.pg_clip_reference) == (None, "none", False, False, 1, 1.0, None, False, None, 1,
                                                            "behaviour")
    with pytest.raises(ConfigError, match="unknown config keys"):
        TrainConfig.from_saved_json({**saved, "no_such_field": 1})


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_builds_its_env_and_agent(preset: str) -> None:
    from launch.train import check_config

    check_config(config_from_preset(preset))
