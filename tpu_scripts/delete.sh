#!/usr/bin/env bash
# Cloud TPU: delete (see polyglot_jax/launch/tpu.py). Prints the gcloud commands; --dry_run only prints.
#   tpu_scripts/delete.sh --name=pj --zone=us-central2-b --accelerator=v4-32 [--dry_run]
set -euo pipefail
exec python -m polyglot_jax.cli.tpu delete "$@"
