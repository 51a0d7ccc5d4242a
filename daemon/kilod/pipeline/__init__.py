"""An attempt's pipeline as a chain of steps (worktree → container → setup → agent → checks → review).

Each step is a small object in `runner.STEPS`; adding a step is adding an object
there, not a branch in the runner.
"""
