"""The four studies as grids of runs, and the resumable study runner."""
