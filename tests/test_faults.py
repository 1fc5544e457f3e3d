"""Faults and bad input: signals, kills, reruns, bad files and flags, diverged training,
read-only folders, runs under a user's own mpiexec. Real environments, toy sizes."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from conftest import ROOT, run_script

ESTOOL = os.path.join(ROOT, 'estool')
CAR = os.path.join(ROOT, 'carracing')
DOOM = os.path.join(ROOT, 'doomrnn')
TRAIN = ['train.py', 'cartpole_swingup', '-n', '2', '-t', '2', '-e', '1']
NAME = 'cartpole_swingup.cma.1.4'


def read(path):
    with open(path) as f:
        return json.load(f)


def one_line_error(proc):
    """The stderr of a refused start: one line, no traceback."""
    err = proc.stderr.strip()
    assert proc.returncode != 0 and 'Traceback' not in err, err
    assert len(err.splitlines()) == 1, err
    return err


def run_pids(log_dir):
    """PIDs of every process of a run writing to log_dir except the launcher: mpiexec, its
    proxy and the ranks (those have PMI_RANK or are MPICH's own programs)."""
    pids = []
    for pid in os.listdir('/proc'):
        if not pid.isdigit():
            continue
        try:
            with open('/proc/%s/cmdline' % pid, 'rb') as f:
                cmd = f.read().split(b'\0')
            with open('/proc/%s/environ' % pid, 'rb') as f:
                env = f.read()
            with open('/proc/%s/stat' % pid) as f:
                zombie = f.read().rsplit(')', 1)[1].split()[0] == 'Z'
        except OSError:
            continue
        mpich = any(os.path.basename(c).startswith((b'mpiexec', b'hydra_pmi_proxy')) for c in cmd[:1])
        if not zombie and str(log_dir).encode() in b' '.join(cmd) and (b'PMI_RANK=' in env or mpich):
            pids.append(int(pid))
    return pids


def wait_for(predicate, seconds):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if predicate():
            return True
        time.sleep(0.2)
    return False


def start_run(log_dir, *extra):
    return subprocess.Popen([sys.executable] + TRAIN + ['--eval_steps', '1000', '--log_dir', str(log_dir)] + list(extra),
                            cwd=ESTOOL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def hist_rows(log_dir):
    try:
        return len(read(os.path.join(str(log_dir), NAME + '.hist.json')))
    except (OSError, ValueError):
        return 0


# ---------------------------------------------------------------- 1: no orphaned runs, one writer per prefix

@pytest.mark.parametrize('sig', [signal.SIGTERM, signal.SIGHUP, signal.SIGKILL])
def test_stopping_the_launcher_stops_every_rank_and_frees_the_logs(tmp_path, sig):
    proc = start_run(tmp_path)
    try:
        assert wait_for(lambda: hist_rows(tmp_path) >= 2, 120), 'the run did not start'
        assert len([p for p in run_pids(tmp_path) if p != proc.pid]) >= 3
        # a second run on the same logs is refused while the first is writing them
        second = run_script(TRAIN + ['--resume', '--max_gen', '1000', '--log_dir', str(tmp_path)], ESTOOL, check=False)
        assert 'another run' in one_line_error(second)
        proc.send_signal(sig)
        proc.wait(timeout=60)
        assert wait_for(lambda: not run_pids(tmp_path), 30), 'ranks still running: %s' % run_pids(tmp_path)
    finally:
        if proc.poll() is None:
            proc.kill()
    rows = hist_rows(tmp_path)
    time.sleep(1.5)
    assert hist_rows(tmp_path) == rows          # nobody writes the logs any more
    # the dead run left no stuck lock: --resume takes over
    out = run_script(TRAIN + ['--resume', '--max_gen', str(rows + 1), '--log_dir', str(tmp_path)], ESTOOL).stdout
    assert 'gen %d ' % (rows + 1) in out


# ---------------------------------------------------------------- 2: no silent overwrite

def test_rerun_without_resume_refuses_and_restart_starts_over(tmp_path):
    run_script(TRAIN + ['--max_gen', '2', '--log_dir', str(tmp_path)], ESTOOL)
    before = read(tmp_path / (NAME + '.hist.json'))
    err = one_line_error(run_script(TRAIN + ['--max_gen', '1', '--log_dir', str(tmp_path)], ESTOOL, check=False))
    assert '--resume' in err and '--restart' in err and str(tmp_path / NAME) in err
    assert read(tmp_path / (NAME + '.hist.json')) == before
    run_script(TRAIN + ['--max_gen', '1', '--restart', '--log_dir', str(tmp_path)], ESTOOL)
    assert [r[0] for r in read(tmp_path / (NAME + '.hist.json'))] == [1]
    assert [r[0] for r in read(tmp_path / (NAME + '.log.json'))] == [1]   # the old evaluations went too


# ---------------------------------------------------------------- 9: a crashing worker's message

CRASHING_TRAIN = '''
import argparse
from estool import fanout

def make_evaluator():
    def evaluate(params, seeds, train_mode, max_len):
        raise RuntimeError('boom in rank evaluate')
    return evaluate

p = argparse.ArgumentParser()
fanout.add_es_arguments(p, num_worker=2, num_worker_trial=1, num_episode=1)
args = p.parse_args()
fanout.check_es_arguments(p, args)
fanout.run(args, 'crash', 3, make_evaluator)
'''


def test_a_crashing_workers_error_is_printed_by_rank_0(tmp_path):
    (tmp_path / 'crash_train.py').write_text(CRASHING_TRAIN)
    env = dict(os.environ, PYTHONPATH=ROOT)
    for i in range(3):   # the old worker-side message was lost in some runs
        proc = subprocess.run([sys.executable, 'crash_train.py', '--log_dir', str(tmp_path / ('log%d' % i))],
                              cwd=str(tmp_path), env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode != 0
        assert 'crash_train.py: worker ' in proc.stderr and 'failed: RuntimeError: boom in rank evaluate' in proc.stderr, \
            proc.stderr


# ---------------------------------------------------------------- 12: unwritable log dir, corrupt checkpoint

def test_unwritable_log_dir_is_one_line_before_mpi_starts(tmp_path):
    (tmp_path / 'file').write_text('not a folder')
    err = one_line_error(run_script(TRAIN + ['--max_gen', '1', '--log_dir', str(tmp_path / 'file' / 'log')],
                                    ESTOOL, check=False))
    assert err.startswith('--log_dir %s: cannot write' % (tmp_path / 'file' / 'log'))


def test_corrupt_es_pkl_on_resume_is_one_line(tmp_path):
    run_script(TRAIN + ['--max_gen', '1', '--log_dir', str(tmp_path)], ESTOOL)
    (tmp_path / (NAME + '.es.pkl')).write_bytes(b'\x80\x05 truncated')
    proc = run_script(TRAIN + ['--max_gen', '2', '--resume', '--log_dir', str(tmp_path)], ESTOOL, check=False)
    assert proc.returncode != 0 and 'Traceback' not in proc.stderr, proc.stderr
    assert '%s.es.pkl is not a readable checkpoint' % (tmp_path / NAME) in proc.stderr


# ---------------------------------------------------------------- scale past one machine

def test_runs_under_a_user_started_mpiexec_with_a_hostfile(tmp_path):
    """MPICH's `mpiexec -f hostfile`, a host named more than once, as across machines."""
    hostfile = tmp_path / 'hosts'
    hostfile.write_text('localhost\nlocalhost\nlocalhost\n')
    mpiexec = os.path.join(os.path.dirname(sys.executable), 'mpiexec')
    log = str(tmp_path / 'log')

    def mpirun(*extra):
        return subprocess.run([mpiexec, '-f', str(hostfile), '-n', '3', sys.executable, '-u'] + TRAIN +
                              ['--eval_steps', '2', '--log_dir', log] + list(extra), cwd=ESTOOL,
                              capture_output=True, text=True, timeout=180)
    out = mpirun('--max_gen', '2')
    assert out.returncode == 0, out.stderr
    assert 'MPI: 3 ranks on 1 host' in out.stdout and 'gen 2 ' in out.stdout
    assert [r[0] for r in read(os.path.join(log, NAME + '.hist.json'))] == [1, 2]
    again = mpirun('--max_gen', '3')           # the same refusal as under train.py's own relaunch
    assert again.returncode != 0 and 'add --resume to continue it' in again.stderr
    assert [r[0] for r in read(os.path.join(log, NAME + '.hist.json'))] == [1, 2]
    out = mpirun('--max_gen', '3', '--resume')
    assert out.returncode == 0 and 'gen 3 ' in out.stdout, out.stderr
