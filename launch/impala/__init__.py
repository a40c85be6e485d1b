"""The IMPALA machinery behind ``launch.train``, in the order an observation meets it.

- ``config``: ``TrainConfig``, the presets and the command line of ``launch.train``.
- ``env_factory`` and ``policy_factory``: the vector env of an actor and the policy of a config.
- ``rollout``: one unroll of a batch of games with a CPU copy of the policy (both backends).
- ``actor`` and ``actor_pool``: local actor processes and their supervision;
  ``ray_actor`` and ``ray_pool``: the same on a Ray cluster (``--backend ray``, docs/ray.md).
- ``buffers``: the shared-memory unroll slots the actors fill and the learner batches.
- ``learner``: V-trace updates on a batch (``agents.loss``), PopArt, the optimiser.
- ``shared_weights``: the learner publishes versioned weights, the actors pull them.
- ``run_dir``, ``checkpoint``, ``best_policy``, ``progress``: what a run leaves on disk and prints.
- ``trained``: a checkpoint's config, weights and policy, for the tools that play one.
"""
