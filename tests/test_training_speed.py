"""V and M train on TensorFlow's oneDNN kernels on every x86-64 CPU, and bench.py's training
rows run and count their FLOPs right, in both experiment folders. (The speeds themselves are
bench.py's to report, not the tests'. That V and M resume to the bytes of a straight run with
oneDNN on is test_contracts.py's resume test.)"""

import json
import os
import platform
import subprocess
import sys

import numpy as np
import pytest

from conftest import CAR, DOOM, folder_modules, run_script

# every module of a folder that imports Keras, or whose main() does
KERAS_MODULES = {CAR: ['vae_train', 'rnn_train', 'vae.vae', 'rnn.rnn'],
                 DOOM: ['vae_train', 'rnn_train', 'vae', 'rnn']}
X86 = platform.machine().lower() in ('x86_64', 'amd64')


def onednn_after_import(folder, module, value=None):
    """Import `module` in a fresh process, then TensorFlow -> (TF_ENABLE_ONEDNN_OPTS, oneDNN on?)."""
    env = {k: v for k, v in os.environ.items() if k != 'TF_ENABLE_ONEDNN_OPTS'}
    if value is not None:
        env['TF_ENABLE_ONEDNN_OPTS'] = value
    env['TF_CPP_MIN_LOG_LEVEL'] = '2'
    code = ('import os, %s, tensorflow\n'
            'from tensorflow.python.util import _pywrap_util_port as port\n'
            'print(os.environ.get("TF_ENABLE_ONEDNN_OPTS"), port.IsMklEnabled())' % module)
    proc = subprocess.run([sys.executable, '-c', code], cwd=folder, env=env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return tuple(proc.stdout.split()[-2:])


# Stops the process at its first import of TensorFlow, Keras or JAX, printing the variable as
# TensorFlow would read it there; a module that imports none of them prints it after its import.
STOP_AT_TENSORFLOW = '''
import os, sys
class StopAtTensorflow:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('tensorflow', 'keras', 'jax'):
            print('at', name, os.environ.get('TF_ENABLE_ONEDNN_OPTS'), flush=True)
            os._exit(0)
sys.meta_path.insert(0, StopAtTensorflow())
import %s
print('after', 'import', os.environ.get('TF_ENABLE_ONEDNN_OPTS'), flush=True)
'''


def onednn_when_tensorflow_loads(folder, module, value=None):
    """TF_ENABLE_ONEDNN_OPTS as TensorFlow would first see it, in a fresh process that imports
    `module` (stopped before TensorFlow loads, so no TensorFlow import is paid); value: the
    user's own setting, if any."""
    env = {k: v for k, v in os.environ.items() if k != 'TF_ENABLE_ONEDNN_OPTS'}
    if value is not None:
        env['TF_ENABLE_ONEDNN_OPTS'] = value
    proc = subprocess.run([sys.executable, '-c', STOP_AT_TENSORFLOW % module], cwd=folder, env=env,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout.split()[-1]


@pytest.mark.skipif(not X86, reason='oneDNN is turned on for x86-64 CPUs')
@pytest.mark.parametrize('folder', [CAR, DOOM], ids=['carracing', 'doomrnn'])
def test_every_keras_module_turns_onednn_on_before_tensorflow(folder):
    for module in KERAS_MODULES[folder]:
        assert onednn_when_tensorflow_loads(folder, module) == '1', module
        assert onednn_when_tensorflow_loads(folder, module, '0') == '0', module   # the user's is left alone
    # and TensorFlow then runs on oneDNN (once: tf_cpu.py is the same file in both folders)
    if folder == DOOM:
        assert onednn_after_import(folder, KERAS_MODULES[folder][0]) == ('1', 'True')


def keras_forward_flops(vae):
    """2 x the multiply-adds of V's layers for one frame, from the shapes Keras gives them."""
    flops = 0
    x = np.zeros((1, 64, 64, 3), np.float32)
    for conv in vae.enc_convs:
        y = conv(x)
        k = conv.kernel.shape
        flops += 2 * y.shape[1] * y.shape[2] * k[0] * k[1] * k[2] * k[3]
        x = y
    h = vae.flatten(x)
    flops += 2 * 2 * h.shape[1] * vae.z_size
    flops += 2 * vae.z_size * vae.dec_fc.kernel.shape[1]
    x = np.zeros((1, 1, 1, vae.dec_fc.kernel.shape[1]), np.float32)
    for deconv in vae.dec_deconvs:
        k = deconv.kernel.shape                   # (kh, kw, out, in)
        flops += 2 * x.shape[1] * x.shape[2] * k[0] * k[1] * k[2] * k[3]
        x = deconv(x)
    assert x.shape == (1, 64, 64, 3)
    return flops


@pytest.mark.parametrize('folder,z', [(CAR, 32), (DOOM, 64)], ids=['carracing', 'doomrnn'])
def test_bench_counts_the_flops_of_v_and_m(folder, z):
    vae_module = 'vae.vae' if folder == CAR else 'vae'
    for m in folder_modules(folder, ['bench', vae_module]):
        vae = getattr(m, 'vae').build_vae(z)
        assert m.bench.vae_train_flops(z, 100) == 3 * 100 * keras_forward_flops(vae)
        # M: an LSTM kernel (inputs + units, 4 units) and the head (units, outputs), per row
        rnn = m.bench
        inputs = rnn.M_Z + (3 if folder == CAR else 2)
        outputs = rnn.M_Z * 3 * rnn.M_MIXTURES + (0 if folder == CAR else 1)
        rows = rnn.M_BATCH * (rnn.M_SEQ - 1 if folder == CAR else rnn.M_SEQ)
        per_row = 2 * (inputs + rnn.M_UNITS) * 4 * rnn.M_UNITS + 2 * rnn.M_UNITS * outputs
        assert rnn.m_train_flops() == 3 * rows * per_row


@pytest.mark.parametrize('folder', [CAR, DOOM], ids=['carracing', 'doomrnn'])
def test_bench_runs_one_training_row_and_refuses_a_bad_one(folder):
    out = run_script(['bench.py', '--row', 'v:tf-onednn', '--v_steps', '1'], cwd=folder, timeout=300).stdout
    row = json.loads(out.splitlines()[-1][len('row '):])
    assert row['name'] == 'v:tf-onednn' and row['seconds'] > 0
    bad = run_script(['bench.py', '--row', 'v:cuda'], cwd=folder, check=False)
    assert bad.returncode == 2 and 'expected v or m' in bad.stderr and 'Traceback' not in bad.stderr
