"""Training, evaluation, watching and plotting: the IMPALA actor-learner around the RMC agents.

Entry points (also installed as console scripts ``rmc-train``, ``rmc-evaluate``,
``rmc-plot``, ``rmc-watch``, ``rmc-play``)::

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

Layout: the commands above are the modules of this package (``train``, ``evaluate``,
``watch``, ``play``, ``plot``); ``launch.impala`` holds the actor-learner machinery they
run on (config, actors and pools, Ray, buffers, rollout, learner, weights, run directory,
checkpoints), ``launch.viewer`` the window and video of ``watch``, and ``launch.tools``
the diagnostics of a run's checkpoints (``python -m launch.tools.boxworld_phases``,
``policy_drift``, ``loss_balance``).
"""
