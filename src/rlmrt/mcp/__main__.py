"""`python -m rlmrt.mcp serve|config`: the `rlm mcp` commands without the `rlm` script."""

from rlmrt.cli.mcp_cmd import main

if __name__ == "__main__":  # pragma: no cover - run as `python -m rlmrt.mcp` by the tests
    main()
