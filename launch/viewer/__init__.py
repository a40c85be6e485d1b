"""Watching a trained agent: ``session`` plays a policy in a window or into a file,
``view`` draws the panel beside the env's frame (values, action probabilities, the RMC's
attention), ``video`` writes GIF / MP4 files, ``recorder`` records rollouts during
training. The command line is ``launch.watch``."""
