"""The recursion engine: run loop, budgets, prompts, reply parsing."""
