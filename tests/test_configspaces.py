import math
from pathlib import Path

import numpy as np
import pytest
from ConfigSpace import (
    CategoricalHyperparameter,
    UniformFloatHyperparameter,
    UniformIntegerHyperparameter,
)

from eqxppo.configspaces import (
    DEFAULT_DIVERGENCE_LIMIT,
    SEARCH_SPACES,
    PPOConfig,
    PPOHyperparams,
    get_default_hpo_config,
    get_default_nas_config,
    get_hpo_config_space,
    get_nas_config_space,
    get_search_space,
    hpo_config_to_dict,
    parse_hpo_config,
    parse_nas_config,
    read_search_space,
    search_space_to_yaml,
)


# name -> (kind, choices or (lower, upper), default, log) as ARLBench 0.1.3 defines them.
ARLBENCH_HPO = {
    "minibatch_size": ("cat", [16, 32, 64, 128, 2048], 64, False),
    "learning_rate": ("float", (1e-6, 0.1), 3e-4, True),
    "n_steps": ("cat", [5, 32, 64, 80, 128, 256, 512], 128, False),
    "update_epochs": ("int", (1, 20), 10, False),
    "gamma": ("float", (0.8, 1.0), 0.99, False),
    "gae_lambda": ("float", (0.8, 0.9999), 0.95, False),
    "clip_eps": ("float", (0.0, 0.5), 0.2, False),
    "vf_clip_eps": ("float", (0.0, 0.5), 0.2, False),
    "normalize_advantage": ("cat", [True, False], True, False),
    "ent_coef": ("float", (0.0, 0.5), 0.0, False),
    "vf_coef": ("float", (0.0, 1.0), 0.5, False),
    "max_grad_norm": ("float", (0.0, 1.0), 0.5, False),
    "normalize_observations": ("cat", [True, False], False, False),
}


def _check_space(space, expected):
    assert sorted(space.keys()) == sorted(expected)
    for name, (kind, rng, default, log) in expected.items():
        hp = space[name]
        assert hp.default_value == default, name
        if kind == "cat":
            assert isinstance(hp, CategoricalHyperparameter), name
            assert list(hp.choices) == rng, name
        else:
            assert isinstance(
                hp, UniformFloatHyperparameter if kind == "float" else UniformIntegerHyperparameter
            ), name
            assert (hp.lower, hp.upper) == rng, name
            assert hp.log == log, name


def test_hpo_space_matches_arlbench():
    _check_space(get_hpo_config_space(), ARLBENCH_HPO)
    assert len(get_hpo_config_space()) == 13


def test_nas_space_is_arlbench_s_with_the_recurrent_core():
    expected = {
        "activation": ("cat", ["tanh", "relu"], "tanh", False),  # ARLBench's two keys
        "hidden_size": ("int", (1, 2048), 64, False),
        "recurrent": ("cat", ["none", "gru", "lstm"], "none", False),  # off by default
    }
    _check_space(get_nas_config_space(), expected)
    default = {"activation": "tanh", "hidden_size": 64, "recurrent": "none"}
    assert dict(get_default_nas_config()) == default
    # ARLBench's own NAS mappings (without the key) stay feed-forward.
    assert parse_nas_config({"activation": "relu", "hidden_size": 8}).recurrent == "none"


def test_seeded_spaces_sample_reproducibly():
    a = get_hpo_config_space(seed=3).sample_configuration(4)
    b = get_hpo_config_space(seed=3).sample_configuration(4)
    assert [dict(x) for x in a] == [dict(x) for x in b]


def test_default_config_splits_into_static_and_traced_parts():
    config, hparams = parse_hpo_config(get_default_hpo_config())
    assert config == PPOConfig(128, 64, 10)
    assert hparams.learning_rate.dtype == np.float32
    assert hparams.learning_rate.shape == ()
    # The epochs and the two switches are traced too: int32 and bool leaves.
    assert hparams.update_epochs.dtype == np.int32 and int(hparams.update_epochs) == 10
    assert hparams.normalize_advantage.dtype == np.bool_ and bool(hparams.normalize_advantage)
    assert not bool(hparams.normalize_observations)
    # ARLBench's 13 values, and the divergence guard's bound eqxppo adds.
    assert hpo_config_to_dict(config, hparams) == pytest.approx(
        {**dict(get_default_hpo_config()), "divergence_limit": DEFAULT_DIVERGENCE_LIMIT}
    )
    assert math.isclose(float(hparams.gamma), 0.99, rel_tol=1e-6)
    assert hpo_config_to_dict(config, hparams)["n_steps"] == 128


def test_every_sampled_configuration_parses():
    for sample in get_hpo_config_space(seed=0).sample_configuration(50):
        config, hparams = parse_hpo_config(sample)
        assert config.n_steps == sample["n_steps"]
        assert float(hparams.learning_rate) == pytest.approx(sample["learning_rate"], rel=1e-6)


def test_mapping_may_leave_the_space_and_omit_keys():
    config, hparams = parse_hpo_config({"n_steps": 100, "gamma": 1.0, "max_grad_norm": 0.0})
    assert config.n_steps == 100
    assert config.minibatch_size == 64  # default filled in
    assert float(hparams.max_grad_norm) == 0.0


def test_minibatch_clamped_to_batch_and_remainder_dropped():
    config, _ = parse_hpo_config({"n_steps": 5, "minibatch_size": 2048})
    assert config.minibatches(n_envs=1) == (5, 5, 1)  # (units, per minibatch, minibatches)
    config, _ = parse_hpo_config({"n_steps": 5, "minibatch_size": 16})
    assert config.batch_size(n_envs=8) == 40
    assert config.minibatches(n_envs=8) == (40, 16, 2)  # 8 of 40 left out each epoch


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"learning_rate": -1.0}, "learning_rate"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"gamma": 1.5}, "gamma"),
        ({"gae_lambda": -0.1}, "gae_lambda"),
        ({"clip_eps": float("nan")}, "clip_eps"),
        ({"vf_coef": -1.0}, "vf_coef"),
        ({"max_grad_norm": float("inf")}, "max_grad_norm"),
        ({"n_steps": 0}, "n_steps"),
        ({"update_epochs": -3}, "update_epochs"),
        ({"minibatch_size": 0}, "minibatch_size"),
        ({"learning_rat": 1e-3}, "learning_rat.*valid names"),
    ],
)
def test_bad_values_raise_value_error_naming_the_key(bad, match):
    with pytest.raises(ValueError, match=match):
        parse_hpo_config(bad)


@pytest.mark.parametrize(
    "bad, match",
    [
        ({"n_steps": 128.0}, "n_steps.*integer"),
        ({"n_steps": "128"}, "n_steps.*integer"),
        ({"normalize_advantage": 1}, "normalize_advantage.*bool"),
        ({"gamma": "0.9"}, "gamma.*real number"),
        ({"update_epochs": True}, "update_epochs.*integer"),
    ],
)
def test_wrong_types_raise_type_error_naming_the_key(bad, match):
    with pytest.raises(TypeError, match=match):
        parse_hpo_config(bad)


def test_nas_config_validation():
    assert parse_nas_config({"activation": "relu", "hidden_size": 1}).hidden_size == 1
    assert parse_nas_config(None).activation == "tanh"
    assert parse_nas_config({"recurrent": "lstm"}).is_recurrent
    with pytest.raises(ValueError, match="`recurrent` must be one of"):
        parse_nas_config({"recurrent": "rnn"})
    with pytest.raises(ValueError, match="activation.*tanh"):
        parse_nas_config({"activation": "gelu"})
    with pytest.raises(ValueError, match="hidden_size"):
        parse_nas_config({"hidden_size": 0})
    with pytest.raises(TypeError, match="hidden_size"):
        parse_nas_config({"hidden_size": 64.5})
    with pytest.raises(ValueError, match="depth"):
        parse_nas_config({"depth": 3})


def test_hyperparams_check_concrete_values():
    values = dict(
        learning_rate=1e-3, gamma=0.9, gae_lambda=0.9, clip_eps=0.0,
        vf_clip_eps=0.0, ent_coef=0.0, vf_coef=0.5, max_grad_norm=0.0,
    )  # fmt: skip
    PPOHyperparams(**values)
    with pytest.raises(ValueError, match="gamma"):
        PPOHyperparams(**{**values, "gamma": np.array([0.9, 1.2])})


ARLBENCH_SPACES = Path(__file__).parent / "data" / "arlbench_tree" / "search_space"


@pytest.mark.parametrize("name", ["ppo_cc", "ppo_minigrid", "ppo_atari", "ppo_mujoco"])
def test_each_built_in_space_is_arlbench_s_file(name, tmp_path):
    from_file = read_search_space(ARLBENCH_SPACES / f"{name}.yaml")
    built_in = get_search_space(name)
    assert dict(from_file) == dict(built_in)  # names, types, bounds, choices, defaults
    assert list(from_file) == list(built_in)  # and ARLBench's order
    default = dict(built_in.get_default_configuration())
    assert dict(from_file.get_default_configuration()) == default
    assert default["learning_rate"] == pytest.approx(1e-6**0.5 * 0.1**0.5)  # log-scale middle
    parse_hpo_config(dict(built_in.sample_configuration()))  # samples are valid configs
    assert name in SEARCH_SPACES

    # Round trip: written in ARLBench's form and read back, every space stays itself.
    for space in (built_in, get_search_space("full")):
        again = tmp_path / "again.yaml"
        again.write_text(search_space_to_yaml(space))
        assert dict(read_search_space(again)) == dict(space)
    assert "hp_config.learning_rate" in search_space_to_yaml(built_in)


@pytest.mark.parametrize(
    "entry, match",
    [("hp_config.learning_rat: {type: uniform_float, lower: 0.1, upper: 1.0}",
      "unknown hyperparameter 'hp_config.learning_rat'"),
     ("gamma: {type: normal_float, lower: 0.9, upper: 1.0}", "unknown type 'normal_float'"),
     ("gamma: {type: uniform_float, lower: 0.9}", "needs 'upper'"),
     ("gamma: {type: uniform_float, lower: 0.9, upper: 1.0, q: 2}", r"option\(s\) \['q'\]")],
)  # fmt: skip
def test_a_bad_search_space_file_names_what_is_wrong(tmp_path, entry, match):
    path = tmp_path / "bad.yaml"
    path.write_text(f"hyperparameters:\n  {entry}\n")
    with pytest.raises(ValueError, match=match):
        get_search_space(path)
