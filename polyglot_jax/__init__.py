"""polyglot_jax: multilingual instruction tuning experiments in JAX."""

import os

# The user's own TensorFlow log level (None: unset); when set, the command line shows what
# TensorFlow prints as the user asked.
USER_TF_LOG_LEVEL = os.environ.get("TF_CPP_MIN_LOG_LEVEL")

# TensorFlow is only the input pipeline here: keep its C++ start-up chatter quiet.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
