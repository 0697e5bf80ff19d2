#!/usr/bin/env bash
# Cloud TPU: train (see polyglot_jax/launch/tpu.py). Prints the gcloud commands; --dry_run only prints.
#   tpu_scripts/train.sh --name=pj --zone=us-central2-b [--dry_run] -- --gin_file=... --gin.X=...
set -euo pipefail
exec python -m polyglot_jax.cli.tpu train "$@"
