"""Serving a model over the OpenAI protocol (``polyglot-jax serve``).

:mod:`engine` decodes :mod:`jobs` with continuous batching over the decode :mod:`slots` of the
model interface; :mod:`protocol` validates request bodies; :mod:`chat` and :mod:`completions`
are the routes, :mod:`service` what they share, :mod:`text` turns tokens into streamed text and
log-prob pieces; :mod:`app` assembles and runs the server, :mod:`connections` puts a deadline
on each request's arrival.
"""
