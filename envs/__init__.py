"""Mini PacMan and Box-World as Gymnasium environments, single and batch-native vector.

Importing this package registers every id below (Gymnasium 1.x does not auto-load
plugins), so ``import envs`` then ``gymnasium.make("rmc/MiniPacman-v0")``; or, without
the import, ``gymnasium.make("envs:rmc/MiniPacman-v0")``.

Each game id also has a ``vector_entry_point``: ``gymnasium.make_vec(id, num_envs=N,
vectorization_mode="vector_entry_point")`` returns the batch-native vector env that steps
all N games with array operations. ``rmc/CartPoleNoVel-v1`` (CartPole without its
velocities, a memory benchmark) wraps Gymnasium's CartPole and has no vector version of its own.
"""

from gymnasium.envs.registration import register

# --- Mini PacMan (envs/minipacman.py, envs/minipacman_vector.py) ---------------------
_PACMAN_IDS = {
    "rmc/MiniPacman-v0": {},
    "rmc/MiniPacmanAvoid-v0": {"mode": "avoid"},
    "rmc/MiniPacmanHunt-v0": {"mode": "hunt"},
    "rmc/MiniPacmanAmbush-v0": {"mode": "ambush"},
    "rmc/MiniPacmanRush-v0": {"mode": "rush"},
    "rmc/MiniPacmanViewport-v0": {"viewport": 5},
}
for _env_id, _kwargs in _PACMAN_IDS.items():
    register(
        id=_env_id,
        entry_point="envs.minipacman:MiniPacmanEnv",
        vector_entry_point="envs.minipacman_vector:MiniPacmanVectorEnv",
        kwargs=_kwargs,
    )

# --- Box-World (envs/boxworld.py, envs/boxworld_vector.py) ---------------------------
_BOXWORLD_IDS = {
    "rmc/BoxWorld-v0": {},
    # The RMC paper's viewport variant (Santoro et al. 2018, App. A.3).
    "rmc/BoxWorldViewport-v0": {
        "viewport": 5,
        "solution_length": (1, 2, 3, 4, 5),
        "num_distractors": (0, 1, 2, 3, 4, 5),
    },
    # A small level set for a first training run that succeeds in minutes on a laptop
    # (a 6x6 room holds at most 2 objects, too few for a solution path of 2 boxes).
    "rmc/BoxWorldEasy-v0": {
        "room_size": 7,
        "solution_length": (1, 2),
        "num_distractors": 0,
    },
}
for _env_id, _kwargs in _BOXWORLD_IDS.items():
    register(
        id=_env_id,
        entry_point="envs.boxworld:BoxWorldEnv",
        vector_entry_point="envs.boxworld_vector:BoxWorldVectorEnv",
        kwargs=_kwargs,
    )

REGISTERED_IDS: tuple[str, ...] = (*_PACMAN_IDS, *_BOXWORLD_IDS)
"""The games of this package (each with a batch-native vector env)."""

# --- Partially observed classic control (envs/partially_observed.py) ------------------
register(
    id="rmc/CartPoleNoVel-v1",
    entry_point="envs.partially_observed:make_cartpole_no_velocity",
    max_episode_steps=500,
    reward_threshold=475.0,
)
MEMORY_BENCHMARK_IDS: tuple[str, ...] = ("rmc/CartPoleNoVel-v1",)
"""Wrapped Gymnasium tasks that need memory (stepped by Gymnasium's vector envs)."""
