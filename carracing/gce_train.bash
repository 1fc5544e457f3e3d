#!/usr/bin/env bash
# The paper's controller run on one large machine (64 workers, 16 episodes each, popsize 64).
# Logs go to log/carracing.cma.16.64.*; Ctrl-C stops it; add --resume to continue a stopped run.
set -euo pipefail
cd "$(dirname "$0")"
python train.py -o cma -n 64 -t 1 -e 16 --eval_steps 25 "$@"
