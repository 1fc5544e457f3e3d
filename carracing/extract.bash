#!/usr/bin/env bash
# Fan extract.py out over processes: bash extract.bash [workers] [trials]  (default 64 x 200).
# Worker i extracts seeds i*trials .. (i+1)*trials-1 into record/; rerun to resume.
set -euo pipefail
cd "$(dirname "$0")"
workers=${1:-64}
trials=${2:-200}
mkdir -p record log
for ((i = 0; i < workers; i++)); do
  python extract.py --episodes "$trials" --seed $((i * trials)) > "log/extract.$i.out" 2>&1 &
done
wait
cat log/extract.*.out | grep '^extract:'
echo "record/ holds $(ls record/*.npz | wc -l) episodes"
