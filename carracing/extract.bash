#!/usr/bin/env bash
# Fan extract.py out over processes: bash extract.bash [workers] [trials] [first_seed] [extract.py flags...]
# (default 64 x 200 from seed 0). Worker i extracts seeds first_seed + i*trials .. + (i+1)*trials-1;
# rerun the same command to resume. Example, 1,000 agent-driven episodes on 2 cores:
#   bash extract.bash 2 500 1100000 --params log/carracing.cma.16.32.best.json --record_dir record_agent
set -euo pipefail
cd "$(dirname "$0")"
workers=${1:-64}
trials=${2:-200}
first=${3:-0}
shift $(( $# < 3 ? $# : 3 ))
mkdir -p record log
for ((i = 0; i < workers; i++)); do
  seed=$((first + i * trials))
  python extract.py --episodes "$trials" --seed "$seed" "$@" > "log/extract.$seed.out" 2>&1 &
done
wait
for ((i = 0; i < workers; i++)); do grep '^extract:' "log/extract.$((first + i * trials)).out"; done
