#!/usr/bin/env bash
# Ray on Cloud TPU VMs: stop (see polyglot_jax/studies/ray_nodes.py). Prints the gcloud commands; --dry_run only prints.
#   tpu_scripts/ray_stop.sh --name=pj-head,pj-a,pj-b --zone=us-central2-b [--dry_run]
set -euo pipefail
exec python -m polyglot_jax.studies.ray_nodes stop "$@"
