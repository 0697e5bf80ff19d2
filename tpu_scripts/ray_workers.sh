#!/usr/bin/env bash
# Ray on Cloud TPU VMs: workers (see polyglot_jax/studies/ray_nodes.py). Prints the gcloud commands; --dry_run only prints.
#   tpu_scripts/ray_workers.sh --name=pj-a,pj-b --zone=us-central2-b --head=10.130.0.2 [--dry_run]
set -euo pipefail
exec python -m polyglot_jax.studies.ray_nodes workers "$@"
