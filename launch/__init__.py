"""Training, evaluation, watching and plotting: the IMPALA actor-learner around the RMC agents.

Entry points (also installed as console scripts ``rmc-train``, ``rmc-evaluate``,
``rmc-plot``, ``rmc-watch``)::

    python -m launch.train --preset boxworld-easy-rmc            # a first run
    python -m launch.train --preset boxworld-rmc --num-actors 15  # the paper's Box-World agent
    python -m launch.train --env CartPole-v1 --core lstm          # any Gymnasium id
    python -m launch.train --env my/Env-v0 --env-package my_pkg --env-kwargs '{"size": 9}'
    python -m launch.train --resume runs/RUN_DIR --total-steps 200000000
    python -m launch.train --preset boxworld-rmc --backend ray --ray-address HEAD_IP:6379
    python -m launch.evaluate --checkpoint runs/RUN_DIR --episodes 200
    python -m launch.evaluate --random --env rmc/MiniPacman-v0 --episodes 200
    python -m launch.plot runs/A runs/B --label RMC --label LSTM --metric success --out curves.png
    python -m launch.watch --checkpoint runs/RUN_DIR                      # a window with the attention panel
    python -m launch.watch --checkpoint runs/RUN_DIR --record out.gif     # the same view, headless

Presets: ``<task>-rmc`` and ``<task>-lstm`` for ``boxworld-easy``, ``boxworld``,
``boxworld-viewport``, ``minipacman`` and ``minipacman-viewport``. ``--time-limit-s``
bounds a run by wall time (e.g. the 20-minute runs of ``tests/launch/test_learning.py``).

Modules: ``config`` (``TrainConfig``, presets, CLI), ``train`` (``main``, ``Trainer``),
``rollout`` (producing one unroll, shared by both backends), ``actor`` and ``actor_pool``
(local actor processes and their supervision), ``ray_actor`` and ``ray_pool`` (``--backend
ray``: actors on a Ray cluster, docs/ray.md), ``buffers``
(shared-memory unrolls), ``shared_weights`` (versioned weight publishing), ``learner``
(V-trace updates), ``checkpoint`` and ``run_dir`` (what a run leaves on disk),
``env_factory``, ``policy_factory``, ``progress``, ``evaluate``, ``plot``, ``watch`` and
``watch_view`` (playing a checkpoint with its attention), ``video`` (GIF / MP4 files),
``rollout_recorder`` (rollouts recorded during training); diagnostics of a run's
checkpoints: ``boxworld_phases`` (where a Box-World agent's steps go), ``policy_drift``
(how far the policy moved between checkpoints), ``loss_balance`` (how hard each loss term
pulls on the layers both heads share).
"""
