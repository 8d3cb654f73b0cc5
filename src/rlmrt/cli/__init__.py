"""The `rlm` command. Entry point: `rlmrt.cli.main:app`.

Command modules import the engine inside their functions, so `rlm --help` stays fast.
"""
