"""The plugin's fixtures, for the tests of them here (once rlmrt is installed from this
tree its `pytest11` entry point loads them in every run; importing them makes these
tests independent of how rlmrt was installed)."""

from rlmrt.testing.pytest_plugin import scripted_model, scripted_rlm

__all__ = ["scripted_model", "scripted_rlm"]
