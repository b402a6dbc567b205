"""Checkpoints: round trip, exact resume in a new process, atomic writes, bad files."""

import hashlib
import json
import os
import subprocess
import sys
import textwrap

import jax
import jax.random as jr
import numpy as np
import pytest
from conftest import assert_bitwise_equal

import eqxppo
from eqxppo import PPO, CheckpointError, make_env
from eqxppo.agent import _checkpoint_file


HPO = {"n_steps": 16, "minibatch_size": 32, "update_epochs": 2, "normalize_observations": True,
       "learning_rate": 1e-3}  # fmt: skip
NAS = {"hidden_size": 16}
HALF = {"n_total_timesteps": 256, "n_eval_steps": 1, "n_eval_episodes": 3}


@pytest.fixture(scope="module")
def agent():
    env = make_env("gymnax", "CartPole-v1", n_envs=4, env_kwargs={"max_steps_in_episode": 200})
    return PPO(HPO, env, nas_config=NAS)


@pytest.fixture(scope="module")
def half(agent):
    state, _ = agent.train(*agent.init(jr.key(0)), **HALF)
    return state


def test_round_trip_restores_agent_and_every_leaf(agent, half, tmp_path):
    path = eqxppo.save(tmp_path / "ckpt.eqx", agent, half)
    loaded_agent, loaded = eqxppo.load(path)
    assert_bitwise_equal(loaded.runner_state, half.runner_state)
    assert loaded_agent.config == agent.config
    assert loaded_agent.network_config == agent.network_config
    assert float(loaded_agent.hparams.learning_rate) == float(agent.hparams.learning_rate)
    assert loaded_agent.env.max_episode_steps == 200  # env_kwargs survive
    assert loaded.runner_state.rng.dtype == half.runner_state.rng.dtype  # typed key again
    meta = _checkpoint_file.read_metadata(path)
    assert meta["global_step"] == 256 and meta["versions"]["jax"] == jax.__version__


_RESUME = textwrap.dedent(
    """
    import sys, numpy as np, equinox as eqx, jax, jax.random as jr
    import eqxppo
    agent, state = eqxppo.load(sys.argv[1])
    state, result = agent.train(*state, n_total_timesteps=256, n_eval_steps=1,
                                n_eval_episodes=3)
    eqxppo.save(sys.argv[2], agent, state)
    np.save(sys.argv[3], np.asarray(result.eval_rewards))
    """
)


@pytest.mark.e2e
def test_resume_in_a_new_process_is_bitwise_identical(agent, half, tmp_path):
    full, full_result = agent.train(*agent.init(jr.key(0)), **{**HALF, "n_total_timesteps": 512,
                                                              "n_eval_steps": 2})  # fmt: skip
    _, first_result = agent.train(*agent.init(jr.key(0)), **HALF)
    eqxppo.save(tmp_path / "half.eqx", agent, half)
    subprocess.run(
        [sys.executable, "-c", _RESUME, tmp_path / "half.eqx", tmp_path / "end.eqx",
         tmp_path / "rewards.npy"],
        check=True, timeout=600,
    )  # fmt: skip
    _, resumed = eqxppo.load(tmp_path / "end.eqx")
    assert_bitwise_equal(resumed.runner_state, full.runner_state)
    rewards = np.concatenate([first_result.eval_rewards, np.load(tmp_path / "rewards.npy")])
    np.testing.assert_array_equal(rewards, full_result.eval_rewards)


def test_a_failed_write_keeps_the_previous_checkpoint(agent, half, tmp_path, monkeypatch):
    path = eqxppo.save(tmp_path / "ckpt.eqx", agent, agent.init(jr.key(1)))
    before = path.read_bytes()

    def crash(fd):
        raise OSError("disk full")

    monkeypatch.setattr(os, "fsync", crash)  # fails after the payload is written
    with pytest.raises(OSError, match="disk full"):
        eqxppo.save(path, agent, half)
    monkeypatch.undo()
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["ckpt.eqx"]  # no temporary file left
    eqxppo.load(path)


def _forge_header(path, edit, *, checksum: bool = True) -> None:
    """Edit the header's JSON; with `checksum`, forge the checksum to match (what a
    writer of another version, or a deliberate forger, would produce)."""
    magic, old_sum, header, payload = path.read_bytes().split(b"\n", 3)
    header = json.loads(header)
    edit(header)
    body = json.dumps(header).encode() + b"\n" + payload
    new_sum = b"sha256 " + hashlib.sha256(body).hexdigest().encode() if checksum else old_sum
    path.write_bytes(magic + b"\n" + new_sum + b"\n" + body)


def _rewrite_header(path, **changes) -> None:
    _forge_header(path, lambda header: header.update(changes))


@pytest.mark.parametrize(
    "damage, match",
    [
        (lambda p: p.write_bytes(p.read_bytes()[:-100]), "truncated"),
        (lambda p: p.write_bytes(p.read_bytes()[:30]), "truncated"),
        (lambda p: p.write_bytes(p.read_bytes()[:-9] + b"\x00" * 9), "corrupt"),
        (lambda p: p.write_text("hello"), "not an eqxppo checkpoint"),
        (lambda p: _rewrite_header(p, format_version=99), "format 99.*Upgrade"),
        # An edited header is as corrupt as an edited payload: `load` rebuilds from it.
        (
            lambda p: p.write_bytes(p.read_bytes().replace(b'"n_steps": 16', b'"n_steps": 17')),
            "corrupt",
        ),
        (
            lambda p: _forge_header(
                p, lambda h: h["metadata"].update(hpo_config={}), checksum=False
            ),
            "corrupt",
        ),
        (lambda p: _forge_header(p, lambda h: h["metadata"].pop("env")), "cannot rebuild"),
        (lambda p: p.write_bytes(p.read_bytes()[:20]), "truncated"),
        (lambda p: p.unlink(), "No checkpoint"),
    ],
)
def test_damaged_files_fail_clearly(agent, half, tmp_path, damage, match):
    path = eqxppo.save(tmp_path / "ckpt.eqx", agent, half)
    damage(path)
    with pytest.raises(CheckpointError, match=match):
        eqxppo.load(path)


@pytest.mark.parametrize(
    "hpo, nas, match",
    [
        (HPO, {"hidden_size": 32}, "nas_config"),
        ({**HPO, "n_steps": 8}, NAS, "hpo_config.n_steps"),
    ],
)
def test_loading_into_another_configuration_fails(agent, half, tmp_path, hpo, nas, match):
    path = eqxppo.save(tmp_path / "ckpt.eqx", agent, half)
    other = PPO(hpo, agent.env, nas_config=nas)
    with pytest.raises(CheckpointError, match=match):
        eqxppo.load(path, agent=other)
    same_structure = PPO({**HPO, "learning_rate": 3e-4}, agent.env, nas_config=NAS)
    loaded_agent, _ = eqxppo.load(path, agent=same_structure)
    assert loaded_agent is same_structure


def test_a_tampered_payload_of_another_shape_fails(agent, tmp_path):
    small = PPO(HPO, agent.env, nas_config={"hidden_size": 8})
    path = eqxppo.save(tmp_path / "small.eqx", small, small.init(jr.key(0)))
    # Claim the file holds the 16-unit network (checksum forged): the header passes, the
    # payload does not.
    _forge_header(path, lambda header: header["metadata"]["nas_config"].update(hidden_size=16))
    with pytest.raises(CheckpointError, match="another shape"):
        eqxppo.load(path)


def test_member_agent_and_checkpoint_keep_the_members_current_rates(tmp_path):
    # The path of examples/typed_usage.py: halve a population's learning rates, make an
    # agent for a member, save, load, train; the rate used must be the halved one.
    env = make_env("gymnax", "CartPole-v1", n_envs=4)
    configs = [{**HPO, "learning_rate": 1e-3}, {**HPO, "learning_rate": 4e-3}]
    pop = PPO.population(configs, env, seeds=range(2), nas_config=NAS)
    state, _ = pop.train(pop.init(jr.key(0)), **HALF)
    state = pop.update_hparams(state, learning_rate=pop.get_hparams(state)["learning_rate"] / 2)
    member = pop.member(state, 3)
    agent = PPO.from_population(pop, 3, state)
    assert float(agent.hparams.learning_rate) == pytest.approx(2e-3)
    path = eqxppo.save(tmp_path / "member.eqx", agent, member)
    loaded_agent, restored = eqxppo.load(path)
    assert float(loaded_agent.hparams.learning_rate) == pytest.approx(2e-3)
    trained, _ = loaded_agent.train(*restored, **HALF)
    assert float(trained.runner_state.hparams.learning_rate) == pytest.approx(2e-3)
    # The file records the state's rate even when the saving agent holds another one.
    stale = PPO(configs[1], env, nas_config=NAS)
    eqxppo.save(tmp_path / "stale.eqx", stale, member)
    assert float(eqxppo.load(tmp_path / "stale.eqx")[0].hparams.learning_rate) == pytest.approx(
        2e-3
    )
