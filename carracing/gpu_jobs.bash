#!/usr/bin/env bash
# Stages 3-5 in a row: train V, encode record/ into series/, train M.
#   bash gpu_jobs.bash
#   VAE_FLAGS="--epochs 1 --max_files 200" RNN_FLAGS="--steps 300 --batch_size 20" bash gpu_jobs.bash
# Then copy the three files the controller needs into vae/, rnn/ and initial_z/ (see README.md).
set -euo pipefail
cd "$(dirname "$0")"
python vae_train.py ${VAE_FLAGS:-}
python series.py ${SERIES_FLAGS:-}
python rnn_train.py ${RNN_FLAGS:-}
echo "next: cp tf_vae/vae.json vae/ && cp tf_rnn/rnn.json rnn/ && cp tf_initial_z/initial_z.json initial_z/"
