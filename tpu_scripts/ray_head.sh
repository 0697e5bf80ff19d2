#!/usr/bin/env bash
# Ray on Cloud TPU VMs: head (see polyglot_jax/studies/ray_nodes.py). Prints the gcloud commands; --dry_run only prints.
#   tpu_scripts/ray_head.sh --name=pj-head --zone=us-central2-b [--port=6379] [--dry_run]
set -euo pipefail
exec python -m polyglot_jax.studies.ray_nodes head "$@"
