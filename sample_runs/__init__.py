"""Sample training scripts and the example database (shipped as ecotrain.sample_runs)."""
