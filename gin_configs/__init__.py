"""Gin configuration files shipped with polyglot_jax (``models/``, ``runs/``, experiments)."""
