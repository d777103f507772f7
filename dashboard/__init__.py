"""The ecotrain Streamlit dashboard (shipped as the package ecotrain.dashboard)."""
