"""Diagnostic tools, each a command line; most read a run's checkpoints:

- ``python -m launch.tools.boxworld_phases``: where a Box-World agent spends its steps.
- ``python -m launch.tools.policy_drift``: how far the policy moved between checkpoints.
- ``python -m launch.tools.loss_balance``: how hard each loss term pulls on the shared layers.
- ``python -m launch.tools.export_policy``: a run's policy as a small weights-only checkpoint
  (how the agents in ``pretrained/`` were made).
- ``python -m launch.tools.gradient_overlap``: how alike the policy's gradients at different
  states are, for an untrained agent of any launch.train flags or a checkpoint.
- ``python -m launch.tools.memory_cue``: a MiniGrid Memory agent's success split by whether
  the cue is in view at the start.
"""
