"""Launchers: grids of runs (sweep) and Cloud TPU VMs (tpu)."""
