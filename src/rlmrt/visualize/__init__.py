"""The trajectory visualizer behind `rlm visualize` (the `viz` extra: Streamlit).

`runs` lists trajectory files and follows one as it grows; `model` turns a run's call
tree into what the page shows (tree rows, a timeline of calls, each iteration's code and
output); `render` writes the tree as HTML and the timeline as a Vega-Lite spec. These three are
plain Python. `page` draws them with Streamlit (the only module that imports it) and
`app` is the script `streamlit run` starts.
"""
