"""A real RLM run over examples/ledger.txt, end to end, with no API key.

The engine, the sandbox, the HTTP model client and the recursion are all real; the
model is rlmrt's scripted OpenAI-compatible server on 127.0.0.1, whose "root model"
replies with the code a capable model would write and whose "sub-model" reads the
chunk it is sent. Point `RLM(model=..., api_base=...)` at a real server for real answers.
"""

from __future__ import annotations

import re
import sys
import tempfile
from pathlib import Path

from rlmrt import RLM
from rlmrt.testing import ChatRequest, ScriptedOpenAIServer

LEDGER = Path(__file__).with_name("ledger.txt")

ROOT_REPLIES = [
    "Let me look at the ledger first.\n```repl\nprint(len(context))\nprint(context[:300])\n```",
    (
        "The ledger has one invoice per line. I will ask a sub-model to count the overdue\n"
        "invoices in each chunk, then add the counts.\n"
        "```repl\n"
        "lines = context.splitlines()\n"
        "chunks = ['\\n'.join(lines[i:i + 200]) for i in range(0, len(lines), 200)]\n"
        "question = 'How many invoices have status OVERDUE? Reply with a number.'\n"
        "answers = llm_query_batched([f'{question}\\n{c}' for c in chunks])\n"
        "total = sum(int(a) for a in answers)\n"
        "print(answers, total)\n"
        "```"
    ),
    "```repl\nFINAL(f'{total} invoices are overdue')\n```",
]


def scripted_model(request: ChatRequest) -> str:
    if request.is_rlm_root:
        turn = sum(1 for m in request.messages if m["role"] == "assistant")
        return ROOT_REPLIES[min(turn, len(ROOT_REPLIES) - 1)]
    text = request.last_user_text
    return str(len(re.findall(r"\|\s*OVERDUE\s*$", text, flags=re.MULTILINE)))


def main() -> int:
    with ScriptedOpenAIServer(scripted_model) as server, tempfile.TemporaryDirectory() as runs:
        rlm = RLM(
            model="openai/scripted-demo",
            api_base=server.url,
            api_key="sk-demo",
            trajectory_dir=Path(runs),
        )
        with rlm:
            result = rlm.completion("How many invoices are overdue?", context=LEDGER)
    print(f"answer: {result.answer}")
    print(
        f"usage: {result.usage.model_calls} model calls, "
        f"{result.usage.total_tokens} tokens, {result.usage.wall_time_s:.2f} s"
    )
    expected = len(re.findall(r"\|\s*OVERDUE\s*$", LEDGER.read_text(), flags=re.MULTILINE))
    if result.answer != f"{expected} invoices are overdue":
        print(f"demo: expected {expected} overdue invoices", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
