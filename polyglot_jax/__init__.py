"""polyglot_jax: multilingual instruction tuning experiments in JAX."""

import os

# TensorFlow is only the input pipeline here: keep its C++ start-up chatter quiet.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
