"""Data: readers, chat templates, SeqIO preprocessors, vocabularies and recipes."""

import tensorflow as tf

# The input pipeline runs on the host; keep TensorFlow off any accelerator JAX will use.
tf.config.set_visible_devices([], "GPU")
