"""Tools that read a run's checkpoints, each a command line:

- ``python -m launch.tools.boxworld_phases``: where a Box-World agent spends its steps.
- ``python -m launch.tools.policy_drift``: how far the policy moved between checkpoints.
- ``python -m launch.tools.loss_balance``: how hard each loss term pulls on the shared layers.
- ``python -m launch.tools.export_policy``: a run's policy as a small weights-only checkpoint
  (how the agents in ``pretrained/`` were made).
"""
