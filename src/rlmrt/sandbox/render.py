"""How a sandbox turns a value into the final-answer string (shared by every backend).

The one implementation lives in the kernel, which must stay stdlib-only and runs
inside out-of-process sandboxes; in-process backends import it from here.
"""

from __future__ import annotations

from rlmrt.sandbox.kernel import render_final, render_value

__all__ = ["render_final", "render_value"]
