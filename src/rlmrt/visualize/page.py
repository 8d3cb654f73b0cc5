"""The Streamlit page of `rlm visualize`: pick a run, see its tree, timeline and code.

Started by `rlm visualize` (`streamlit run` on `app.py`, which calls `main()`; the code
lives here so it is an ordinary, importable module) with the trajectory folder in
`RLMRT_VISUALIZE_DIR`; the chosen run is kept in the URL (`?run=RUN_ID`). A run that is
still writing its trajectory is followed: the run view polls the file every
`POLL_S` seconds (a Streamlit fragment), reading only the new lines.
"""

from __future__ import annotations

import os
from pathlib import Path

import streamlit as st

from rlmrt.errors import UsageError
from rlmrt.observe import format as fmt
from rlmrt.observe.calltree import Node
from rlmrt.visualize import model, render
from rlmrt.visualize.runs import Follower, RunChoice, list_choices

DIR_ENV = "RLMRT_VISUALIZE_DIR"
POLL_S = 1.0


def runs_folder() -> Path:
    named = os.environ.get(DIR_ENV)
    if named:
        return Path(named)
    from rlmrt.config import load_config

    return load_config().trajectory.dir


def follower(path: Path) -> Follower:
    """This browser session's follower of `path` (kept between reruns)."""
    followers: dict[str, Follower] = st.session_state.setdefault("followers", {})
    key = str(path)
    if key not in followers:
        followers[key] = Follower(path)
    return followers[key]


def pick(choices: list[RunChoice]) -> RunChoice:
    wanted = st.query_params.get("run")
    ids = [c.run_id for c in choices]
    index = ids.index(wanted) if wanted in ids else 0
    chosen: RunChoice | None = st.sidebar.selectbox(
        "Run (newest first)", choices, index=index, format_func=lambda c: c.label, key="run"
    )
    if chosen is None:  # pragma: no cover - the picker always has a default
        chosen = choices[0]
    if st.query_params.get("run") != chosen.run_id:
        st.query_params["run"] = chosen.run_id
    return chosen


def show_header(view: Follower) -> None:
    summary = view.summary()
    st.subheader(f"Run {summary.run_id}")
    st.caption(f"{summary.model} · {view.path}")
    st.markdown(f"**Question:** {summary.prompt}")
    cols = st.columns(5)
    cols[0].metric("status", summary.status_text())
    cols[1].metric("model calls", f"{summary.model_calls:,}")
    cols[2].metric("tokens", f"{summary.total_tokens:,}")
    cols[3].metric("cost", fmt.cost(summary.cost_usd))
    cols[4].metric("time", fmt.duration(summary.wall_time_s))
    if summary.status == "unfinished":
        st.info(f"The run has not finished (still running, or killed): polling every {POLL_S:g}s.")
    elif summary.answer is not None:
        st.markdown("**Answer:**")
        st.code(summary.answer, language="text")


def show_tree(view: Follower) -> None:
    st.markdown("#### Recursion tree")
    st.html(render.tree_html(model.tree_rows(view.tree)))


def show_timeline(view: Follower) -> None:
    bars = model.timeline(view.tree)
    st.markdown("#### Timeline")
    if not bars:
        st.caption("no calls yet")
        return
    st.caption(
        f"{len(bars)} calls; at most {model.peak(bars)} model call(s) at once, "
        f"{model.peak(bars, 'llm_query')} llm_query and {model.peak(bars, 'rlm_query')} "
        "rlm_query"
    )
    st.vega_lite_chart(spec=render.timeline_spec(bars), width="stretch")


def show_iterations(view: Follower) -> None:
    runs = model.run_nodes(view.tree)
    st.markdown("#### Iterations")
    run: Node | None = st.selectbox(
        "Run node",
        runs,
        format_func=lambda n: f"{n.title}: {fmt.preview(n.prompt, 80)}",
        key=f"node-{view.path.name}",
    )
    if run is None:
        return
    steps = model.iterations(view.tree, run)
    if not steps:
        st.caption("no iterations yet")
    for step in steps:
        title = (
            f"iteration {step.number} · in {step.input_tokens:,} / out "
            f"{step.output_tokens:,} tok · {fmt.cost(step.cost_usd)} · "
            f"{fmt.duration(step.seconds)}"
        )
        with st.expander(title, expanded=step.number == len(steps)):
            st.markdown(f"**Model reply** ({step.model})")
            st.code(step.reply or "(waiting for the reply)", language="markdown")
            for index, block in enumerate(step.code, start=1):
                st.markdown(f"**Code {index}** ({fmt.duration(block.seconds)})")
                st.code(block.code or "(running)", language="python")
                for sub in block.sub_calls:
                    st.caption(f"{sub.title} {sub.detail} · {render.stats(sub)}")
                st.code(block.stdout or "(no output)", language="text")
                if block.stderr:
                    st.code(block.stderr, language="text")
                if block.error:
                    st.error(block.error)


def show_run(view: Follower) -> None:
    show_header(view)
    show_tree(view)
    show_timeline(view)
    show_iterations(view)


def run_view(path: Path) -> None:
    """The chosen run, brought up to date on every (fragment) rerun."""
    view = follower(path)
    try:
        view.poll()
    except UsageError as exc:  # deleted or made unreadable while shown
        st.error(f"Cannot show this run: {exc}")
        return
    if view.tree.root is None:
        st.warning(f"{path} holds no run yet (no run_started event); waiting for it.")
    else:
        show_run(view)
    if view.finished and st.session_state.get("live") == str(path):
        st.session_state["live"] = None
        st.rerun()  # the run is done: stop polling


def main() -> None:
    st.set_page_config(page_title="rlmrt runs", layout="wide")
    folder = runs_folder()
    st.sidebar.title("rlmrt runs")
    st.sidebar.caption(str(folder))
    choices = list_choices(folder)
    if not choices:
        st.info(
            f"No runs in {folder} yet. A run writes its trajectory here as it happens "
            "(`rlm run ...`, or `RLM(...).completion(...)`); reload this page then."
        )
        return
    chosen = pick(choices)
    if chosen.status == "unreadable":
        st.error(f"Cannot show this run: {chosen.problem}")
        return
    view = follower(chosen.path)
    try:
        view.poll()
    except UsageError as exc:
        st.error(f"Cannot show this run: {exc}")
        return
    live = not view.finished
    if live:
        st.session_state["live"] = str(chosen.path)
    st.fragment(run_every=POLL_S if live else None)(run_view)(chosen.path)
