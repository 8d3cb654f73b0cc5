"""The script `streamlit run` starts (see `rlmrt.visualize.page`)."""

from rlmrt.visualize.page import main

main()
