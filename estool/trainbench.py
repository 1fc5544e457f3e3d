"""Training-speed rows for an experiment's bench.py: V and M train steps per Keras backend.

TensorFlow reads TF_ENABLE_ONEDNN_OPTS, and Keras reads KERAS_BACKEND, once, when first
imported, so every row runs in a process of its own: the experiment's bench.py calls itself
with `--row NAME:BACKEND` and prints one `row ...` line, which `run_row` reads back. Times are
wall-clock seconds (training uses every core), after warm-up steps that absorb tracing and
compilation. Each row is set against this CPU's float32 matmul rate, measured in the same run.
"""

import importlib.util
import json
import os
import subprocess
import sys
import time

import numpy as np

# name -> the environment a row's process gets; tf_cpu.py leaves a set variable alone
BACKENDS = {
    'tf-onednn': {'KERAS_BACKEND': 'tensorflow', 'TF_ENABLE_ONEDNN_OPTS': '1'},
    'tf': {'KERAS_BACKEND': 'tensorflow', 'TF_ENABLE_ONEDNN_OPTS': '0'},
    'jax': {'KERAS_BACKEND': 'jax'},
}


def backends():
    """The backends that can run here: both TensorFlow rows, and JAX when it is installed."""
    return [b for b in BACKENDS if b != 'jax' or importlib.util.find_spec('jax') is not None]


def cores():
    return len(os.sched_getaffinity(0)) if hasattr(os, 'sched_getaffinity') else os.cpu_count()


def seconds_per_step(step, warmup, steps):
    """Wall seconds per call of step(), the mean over `steps` calls after `warmup` untimed ones."""
    for _ in range(warmup):
        step()
    start = time.perf_counter()
    for _ in range(steps):
        step()
    return (time.perf_counter() - start) / steps


def matmul_gflops(n=2048, repeat=5):
    """This CPU's float32 matrix-product rate on every core: the best of `repeat` (n x n) @ (n x n)."""
    rng = np.random.default_rng(0)
    a, b = (rng.standard_normal((n, n)).astype(np.float32) for _ in range(2))
    out = np.empty((n, n), np.float32)
    np.matmul(a, b, out=out)
    best = float('inf')
    for _ in range(repeat):
        start = time.perf_counter()
        np.matmul(a, b, out=out)
        best = min(best, time.perf_counter() - start)
    return 2.0 * n ** 3 / best / 1e9


def lstm_train_flops(batch, steps, inputs, units, outputs):
    """FLOPs of one training step of an LSTM (one kernel on [x, h], 4 gates) and a dense head
    over (batch, steps) inputs: the forward products times 3 (the backward pass costs two)."""
    per_row = 2 * (inputs + units) * 4 * units + 2 * units * outputs
    return 3 * batch * steps * per_row


def print_row(name, seconds, extra=None):
    """The line a row's process prints, read back by run_row."""
    print('row ' + json.dumps(dict(extra or {}, name=name, seconds=seconds)), flush=True)


def run_row(script, name, args=(), timeout=1800):
    """Run `python script --row name` with the row's backend environment -> the dict it printed,
    or {'name': name, 'error': last line of its output} if it failed."""
    backend = name.split(':', 1)[1] if ':' in name else None
    env = dict(os.environ)
    # bench.py keeps numpy on one thread for its per-core rows; a training step uses every core
    env['OPENBLAS_NUM_THREADS'] = str(cores())
    env.update(BACKENDS.get(backend, {}))
    env.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
    proc = subprocess.run([sys.executable, script, '--row', name] + list(args), env=env, capture_output=True,
                          text=True, timeout=timeout)
    for line in reversed(proc.stdout.splitlines()):
        if line.startswith('row '):
            return json.loads(line[4:])
    lines = (proc.stderr or proc.stdout).strip().splitlines()
    return {'name': name, 'error': lines[-1] if lines else 'exit %d' % proc.returncode}


def report(script, rows, v_batch, v_steps, m_steps):
    """Print every training row of script (a bench.py), each run in its own process, against
    this CPU's matmul rate, then V's oneDNN speed-up and M's fastest backend.

    rows: {'v': (label, FLOPs per step), 'm': (label, FLOPs per step)}; v_batch: V's frames per
    step (its rate is printed in images per second)."""
    peak = run_row(script, 'peak')
    if 'error' in peak:
        sys.exit('bench.py: the matmul row failed: %s' % peak['error'])
    rate = peak['gflops']
    print('training on %d cores; float32 matmul (2048 x 2048 @ 2048 x 2048, numpy): %.1f GFLOP/s' % (cores(), rate))
    steps = ['--v_steps', str(v_steps), '--m_steps', str(m_steps)]
    seconds = {}
    for kind, (label, flops) in rows.items():
        for backend in backends():
            row = run_row(script, '%s:%s' % (kind, backend), steps)
            if 'error' in row:
                print('%-32s %-9s failed: %s' % (label, backend, row['error']))
                continue
            s = seconds[kind, backend] = row['seconds']
            speed = '%7.1f img/s  (%.3f s/step, ' % (v_batch / s, s) if kind == 'v' else '%7.2f s/step  (' % s
            print('%-32s %-9s %s%.1f GFLOP/step, %.1f GFLOP/s, %.2f of the matmul rate)'
                  % (label, backend, speed, flops / 1e9, flops / s / 1e9, flops / s / 1e9 / rate), flush=True)
    if ('v', 'tf-onednn') in seconds and ('v', 'tf') in seconds:
        print('V: oneDNN on trains %.2f x as fast as off' % (seconds['v', 'tf'] / seconds['v', 'tf-onednn']))
    m = {b: s for (k, b), s in seconds.items() if k == 'm'}
    if m:
        fastest = min(m, key=m.get)
        print('M: fastest on %s; ' % fastest + ', '.join('%s %.2f x its time' % (b, s / m[fastest])
                                                          for b, s in m.items() if b != fastest))


def conv_vae_train_flops(z_size, batch, enc_filters, enc_kernel, dec_filters, dec_kernels):
    """FLOPs of one training step of the 2018 conv VAE on `batch` 64x64x3 frames: encoder convs
    (stride 2, no padding), mu and logvar, the decoder's dense layer and its stride-2 deconvs;
    the forward products times 3."""
    flops, size, channels = 0, 64, 3
    for filters in enc_filters:
        size = (size - enc_kernel) // 2 + 1
        flops += 2 * size * size * enc_kernel * enc_kernel * channels * filters
        channels = filters
    flops += 2 * 2 * size * size * channels * z_size          # mu and logvar
    flops += 2 * z_size * size * size * channels              # the decoder's dense layer
    size, channels = 1, size * size * channels
    for filters, kernel in zip(dec_filters, dec_kernels):
        flops += 2 * size * size * kernel * kernel * channels * filters
        size, channels = 2 * (size - 1) + kernel, filters
    return 3 * batch * flops
