"""MPI rollout fan-out shared by every experiment's train.py.

Rank 0 (the master) asks the evolution strategy for a population, sends each worker its
share and gathers the rewards; ranks 1..num_worker run rollouts. A train.py supplies
`make_evaluator()`, called once in each worker, which returns

    evaluate(params, seeds, train_mode, max_len) -> (rewards, steps)
        params: (k, num_params) float64, one row per solution
        seeds:  (k, num_episode) int64, one env seed per episode
        rewards, steps: (k, num_episode) float

so an experiment may step all k * num_episode episodes of a worker as one batch.

Run outside MPI, `run()` relaunches the script under `mpiexec -n num_worker+1`. Logs
(written atomically each generation, in the 2018 estool layout) live in `log/`:
    <game>.<opt>.<num_episode>.<popsize>.json       [current_params]
    ....hist.json       rows [gen, seconds, avg, min, max, std, rms_stdev, mean_steps, max_steps]
    ....best.json       [best_params, best_eval_reward]
    ....hist_best.json  rows [gen, seconds, "improvement", x, "curr", y, "prev", z, "best", w]
    ....log.json        rows [gen, eval_reward, params]
plus `.args.json` (the resolved flags; a resume keeps the first start's `--init`) and `.es.pkl`
(the full state, for --resume).

`.es.pkl` is bulk (CMA-ES keeps a num_params^2 covariance) and is not committed, so a fresh
checkout has only the logs. --resume then rebuilds the run from them (`state_from_logs`):
generation, history, best and evaluations continue; the optimizer restarts at the logged
mean with the logged RMS step size, with a fresh covariance and fresh random streams.
"""

import json
import os
import pickle
import shutil
import signal
import subprocess
import sys
import time

import numpy as np

from estool import atomic
from estool.atomic import WriteFailed, write_atomic
from estool.argtypes import finite_float, float_range, input_file, nonnegative_int, positive_float, positive_int, random_seed
from estool.es import OPTIMIZERS, make_optimizer
from estool.resume import differences

RESULT_TAG, JOB_TAG, STOP_TAG, ERROR_TAG = 1, 2, 3, 4
LAUNCHER_PID_VAR = 'ESTOOL_LAUNCHER_PID'  # set by relaunch_under_mpi for rank 0's watchdog
FATAL_FILE_VAR = 'ESTOOL_FATAL_FILE'     # where rank 0 leaves its last words for the launcher
UNDER_MPI_VARS = ('PMI_RANK', 'PMIX_RANK', 'OMPI_COMM_WORLD_RANK')
STOP_GRACE_SECONDS = 15   # after SIGTERM/SIGHUP, how long the launcher waits for mpiexec to end the run
POLL_SECONDS = 0.002  # MPICH spins in blocking receives; sleeping leaves the cores to rollouts
EVAL_SEED_BASE = 10 ** 8  # eval seeds are fixed and kept apart from training seeds
# Flags that decide what the logged rewards and the search mean: a --resume must keep them
# (with the experiment's own, passed to run() as same_flags). The rest only steer the search
# from here on (--max_gen, --stop_at, --eval_steps, --common_seeds, --cap_time, --retrain, the
# -n/-t split of the same popsize) and may change on a resume.
RESUME_FLAGS = ('seed', 'antithetic', 'sigma_decay', 'weight_decay')


def add_es_arguments(parser, num_worker=64, num_worker_trial=1, num_episode=16,
                     eval_steps=25, sigma_init=0.10):
    """Add the fan-out's flags to a train.py parser; defaults are the experiment's."""
    g = parser.add_argument_group('evolution strategy and MPI fan-out')
    g.add_argument('-o', '--optimizer', choices=OPTIMIZERS, default='cma',
                   help='cma (pycma CMA-ES), pepg, ses (PEPG with elites), openes or ga (default: %(default)s)')
    g.add_argument('-n', '--num_worker', type=positive_int, default=num_worker,
                   help='MPI worker processes; the master is one more (default: %(default)s)')
    g.add_argument('-t', '--num_worker_trial', type=positive_int, default=num_worker_trial,
                   help='solutions each worker evaluates per generation; popsize = n * t (default: %(default)s)')
    g.add_argument('-e', '--num_episode', type=positive_int, default=num_episode,
                   help='episodes averaged per solution (default: %(default)s)')
    g.add_argument('--eval_steps', type=positive_int, default=eval_steps,
                   help='every this many generations, evaluate the current mean on fixed seeds '
                        '(popsize * num_episode episodes) and keep the best (default: %(default)s)')
    g.add_argument('--antithetic', action='store_true',
                   help='antithetic sampling (openes) and the same episode seeds for each +/- pair')
    g.add_argument('--common_seeds', action='store_true',
                   help='every solution of a generation runs the same num_episode episode seeds, so '
                        'fitness differences come from the solutions, not from how hard their episodes were')
    g.add_argument('--cap_time', action='store_true',
                   help='cap training episodes at twice the mean length of the last generation')
    g.add_argument('--retrain', action='store_true',
                   help='when an evaluation does not beat the best, reset the mean to the best params')
    g.add_argument('--seed', '--seed_start', dest='seed', type=random_seed, default=0,
                   help='the run seed: optimizer and episode seeds are all derived from it (default: %(default)s)')
    g.add_argument('--sigma_init', type=positive_float, default=sigma_init,
                   help='initial standard deviation of the search distribution (default: %(default)s)')
    g.add_argument('--sigma_decay', type=float_range(0.0, 1.0, low_open=True), default=0.999,
                   help='sigma multiplier per generation for pepg, openes and ga (default: %(default)s)')
    g.add_argument('--weight_decay', type=float_range(0.0), default=0.005,
                   help='L2 penalty subtracted from rewards (default: %(default)s)')
    g.add_argument('--max_gen', type=nonnegative_int, default=0,
                   help='stop after this many generations; 0 runs until Ctrl-C (default: %(default)s)')
    g.add_argument('--stop_at', type=finite_float, metavar='SCORE',
                   help='stop, before --max_gen, once an evaluation of the mean scores SCORE or more '
                        '(e.g. near a game\'s step cap, where more generations cannot gain); also checked '
                        'on --resume')
    g.add_argument('--resume', action='store_true',
                   help='continue from log/<name>.es.pkl with the same ES state and random streams; '
                        'without it (a fresh checkout), restart the optimizer at the mean and step size '
                        'of the last logged generation and keep the logs going; refused if --seed, '
                        '--antithetic, --sigma_decay, --weight_decay or the world model differ from the run\'s')
    g.add_argument('--restart', action='store_true',
                   help='start a new run over existing logs of the same name, deleting them first '
                        '(without --resume or --restart, a run whose logs exist refuses to start)')
    g.add_argument('--init', metavar='PARAMS_JSON', type=input_file,
                   help='start the search mean at the params of this log file ([params, ...], e.g. a '
                        '.best.json) instead of zeros; with --resume and no .es.pkl, restart there '
                        'instead of at the logged mean')
    g.add_argument('--log_dir', default='log', help='where the log files go (default: %(default)s)')
    return parser


def log_name(game, args):
    return '%s.%s.%d.%d' % (game, args.optimizer, args.num_episode, args.num_worker * args.num_worker_trial)


def check_es_arguments(parser, args):
    """Reject impossible flag combinations with one line, before anything is launched."""
    if args.num_worker < 1 or args.num_worker_trial < 1 or args.num_episode < 1:
        parser.error('-n, -t and -e must be at least 1')
    popsize = args.num_worker * args.num_worker_trial
    if (args.optimizer in ('pepg', 'ses') or args.antithetic) and popsize % 2:
        parser.error('%s needs an even popsize (n * t), got %d' % (
            'antithetic sampling' if args.antithetic else args.optimizer, popsize))
    if args.eval_steps < 1:
        parser.error('--eval_steps must be at least 1')
    if args.resume and args.restart:
        parser.error('--resume continues the logged run and --restart deletes it: use one of them')


def write_json_atomic(path, obj):
    """A kill never leaves a half-written log; a failed write (WriteFailed: a full disk, most
    often) leaves the old file and no temp file."""
    write_atomic(path, 'w', lambda f: json.dump(obj, f))


def read_json(path, missing=None):
    """A log file's contents; `missing` when it does not exist (None: it must exist)."""
    if missing is not None and not os.path.exists(path):
        return missing
    with open(path) as f:
        return json.load(f)


def write_pickle_atomic(path, obj):
    write_atomic(path, 'wb', lambda f: pickle.dump(obj, f, protocol=pickle.HIGHEST_PROTOCOL))


def _numbers(value, count=None):
    """True if value is a list of finite numbers (of length count, if given)."""
    return (isinstance(value, list) and (count is None or len(value) == count) and
            all(isinstance(x, (int, float)) and not isinstance(x, bool) and np.isfinite(x) for x in value))


def _rows(value, check):
    return isinstance(value, list) and all(isinstance(row, list) and check(row) for row in value)


def read_logs(prefix, num_params):
    """What a --resume without .es.pkl restarts from: {ext: contents} of the run's logs, each
    in the layout train.py writes. A file that is not (truncated, empty, edited) is a one-line
    exit naming it, before anything is started or written."""
    def is_gen(x):
        return isinstance(x, int) and not isinstance(x, bool) and x >= 1
    checks = {   # ext: (required, layout check)
        '.hist.json': (True, lambda v: v and _rows(v, lambda r: len(r) == 9 and is_gen(r[0]) and _numbers(r[1:]))
                       and v[-1][6] > 0),
        '.json': (True, lambda v: isinstance(v, list) and len(v) == 1 and _numbers(v[0])),
        '.hist_best.json': (False, lambda v: _rows(v, lambda r: len(r) == 10 and is_gen(r[0]) and
                                                   _numbers(r[1:2] + r[3::2]))),
        '.log.json': (False, lambda v: _rows(v, lambda r: len(r) == 3 and is_gen(r[0]) and _numbers(r[1:2]) and
                                             _numbers(r[2], num_params))),
        '.rewards.json': (False, lambda v: _rows(v, lambda r: len(r) == 2 and is_gen(r[0]) and
                                                 isinstance(r[1], list))),
        '.best.json': (False, lambda v: isinstance(v, list) and len(v) == 2 and
                       (v[0] is None or _numbers(v[0], num_params)) and (v[1] is None or _numbers(v[1:]))),
    }
    logs = {}
    for ext, (required, check) in checks.items():
        path = prefix + ext
        if not required and not os.path.exists(path):
            continue
        remedy = 'restore it' if required else 'restore it, or move it away to resume without it'
        try:
            logs[ext] = read_json(path)
            layout = check(logs[ext])
        except (OSError, ValueError) as e:
            sys.exit('--resume: %s is not a readable train.py log (%s: %s); %s' % (path, type(e).__name__, e, remedy))
        if ext == '.json' and layout and len(logs[ext][0]) != num_params:
            sys.exit('--resume: %s.json holds %d params, this model has %d' % (prefix, len(logs[ext][0]), num_params))
        if not layout:
            sys.exit('--resume: %s is not in the layout train.py writes; %s' % (path, remedy))
    return logs


def read_checkpoint(path, num_params):
    """The full state that .es.pkl holds; a one-line exit if it is unreadable or of another model."""
    try:
        with open(path, 'rb') as f:
            state = pickle.load(f)
        state['num_params'], state['gen']
    except Exception as e:   # truncated, not a pickle, or another program's pickle
        sys.exit('--resume: %s is not a readable checkpoint (%s: %s); move it away to resume '
                 'from the logs instead' % (path, type(e).__name__, e))
    if state['num_params'] != num_params:
        sys.exit('--resume: %s holds %d params, this model has %d' % (path, state['num_params'], num_params))
    return state


def check_same_run(args, prefix, same_flags=(), inputs=None):
    """--resume: a one-line exit if the flags (RESUME_FLAGS + same_flags) or the input files
    (inputs, {name: estool.resume.file_record}) that decide the run differ from those its
    .args.json recorded; keys an older record lacks are not compared."""
    path = prefix + '.args.json'
    try:
        recorded = read_json(path, missing={})
        if not isinstance(recorded, dict):
            raise ValueError('not a record of flags')
    except (OSError, ValueError) as e:
        sys.exit('--resume: %s is unreadable (%s); it records the run\'s flags: move it away to resume '
                 'without comparing them' % (path, e))
    current = {name: getattr(args, name) for name in RESUME_FLAGS + tuple(same_flags)}
    changes = differences(recorded, current) + differences(recorded.get('inputs') or {}, inputs or {})
    if changes:
        sys.exit('--resume: the run in %s.* was made with other settings (%s); resume with those, or start '
                 'another run (--restart or another --log_dir)' % (prefix, '; '.join(changes)))


def rounded(params):
    return np.round(np.asarray(params, dtype=np.float64), 4).tolist()


def read_init_params(path, num_params):
    """The params of a controller log ([params, ...]) for --init; one-line exit if unusable."""
    try:
        params = np.asarray(read_json(path)[0], dtype=np.float64)
    except (OSError, ValueError, TypeError, IndexError, KeyError) as e:
        sys.exit('--init: cannot read params from %s (%s)' % (path, e))
    if params.shape != (num_params,):
        if params.ndim != 1:
            sys.exit('--init: %s holds an array of shape %s, expected a flat list of %d params' % (
                path, params.shape, num_params))
        sys.exit('--init: %s holds %d params, this model has %d' % (path, params.size, num_params))
    if not np.all(np.isfinite(params)):
        sys.exit('--init: %s holds non-finite params (nan or inf)' % path)
    return params


def under_mpi():
    return any(v in os.environ for v in UNDER_MPI_VARS)


def relaunch_under_mpi(num_worker):
    """Run this same command under `mpiexec -n num_worker+1` -> (exit code, what rank 0 left in
    the fatal file, already printed)."""
    mpiexec = shutil.which('mpiexec') or os.path.join(os.path.dirname(sys.executable), 'mpiexec')
    if not os.path.exists(mpiexec):
        sys.exit('%s: mpiexec not found; install the mpich wheel (pip install -r requirements.txt)'
                 % os.path.basename(sys.argv[0]))
    env = dict(os.environ)
    # Many processes share few cores: one BLAS thread each avoids oversubscription.
    for var in ('OMP_NUM_THREADS', 'OPENBLAS_NUM_THREADS', 'MKL_NUM_THREADS'):
        env.setdefault(var, '1')
    env[LAUNCHER_PID_VAR] = str(os.getpid())
    import tempfile
    fd, fatal_path = tempfile.mkstemp(prefix='estool-fatal-', suffix='.txt')
    os.close(fd)
    env[FATAL_FILE_VAR] = fatal_path
    cmd = [mpiexec, '-n', str(num_worker + 1), sys.executable, '-u'] + sys.argv
    proc = subprocess.Popen(cmd, env=env, preexec_fn=_terminate_with_parent)
    code = None
    try:
        code = _wait_mpiexec(proc)
    finally:
        text = _print_fatal_file(fatal_path)
    return code, text


def _print_fatal_file(path):
    try:
        with open(path) as f:
            text = f.read()
        os.remove(path)
    except OSError:
        return ''
    if text:
        sys.stderr.write(text)
        sys.stderr.flush()
    return text


def _wait_mpiexec(proc):
    stopped = []

    def forward(signum, frame):
        # mpiexec passes SIGTERM/SIGHUP on to every rank; without this they would outlive
        # this process and go on writing the logs.
        stopped.append(signum)
        proc.send_signal(signum)
    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, forward)
    try:
        # Polled, not one blocking wait: once a stop signal has been passed on, an mpiexec
        # still running STOP_GRACE_SECONDS later is killed, and its ranks go with it (hydra's
        # proxies end them; rank 0's watchdog sees this process gone).
        first = None
        while True:
            try:
                code = proc.wait(timeout=1.0)
                break
            except subprocess.TimeoutExpired:
                if stopped and first is None:
                    first = time.time()
                if first is not None and time.time() - first > STOP_GRACE_SECONDS:
                    proc.kill()
        return 128 + stopped[0] if stopped else code
    except KeyboardInterrupt:
        # A terminal's Ctrl-C reaches every rank already; a SIGINT sent to this process
        # alone (timeout, kill -INT) must be passed on. Either way each rank exits at once
        # (see _quiet_sigint).
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        return 130


def _terminate_with_parent():
    """In mpiexec's child: the kernel sends it SIGTERM when the launcher dies, even by SIGKILL."""
    try:
        import ctypes
        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)   # 1 = PR_SET_PDEATHSIG (Linux)
    except (OSError, AttributeError):
        pass   # not Linux: rank 0's watchdog (_launcher_gone) still stops the run


def _launcher_gone():
    """True when train.py relaunched this run under mpiexec and has since died."""
    pid = os.environ.get(LAUNCHER_PID_VAR)
    if not pid:
        return False     # started by the user's own mpiexec: it owns the run
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return True
    except (PermissionError, ValueError):
        return False
    try:
        with open('/proc/%s/stat' % pid) as f:
            return f.read().rsplit(')', 1)[1].split()[0] == 'Z'    # killed, not yet reaped
    except (OSError, IndexError):
        return False


LOCK_SUFFIX = '.lock'
LOG_SUFFIXES = ('.json', '.hist.json', '.best.json', '.hist_best.json', '.log.json', '.rewards.json', '.args.json',
                '.es.pkl')


def lock_logs(prefix):
    """Take the run's lock (prefix.lock) and return its open file, or None if another run holds it.

    flock belongs to the open file, so the kernel drops it when the holder dies however it
    dies: a killed run never leaves a stuck lock."""
    import fcntl
    f = open(prefix + LOCK_SUFFIX, 'a+')
    try:
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        f.close()
        return None
    # Who holds it, for the message of a refused run: written over the old text in place, then
    # cut to length, so a reader never finds the file empty between a truncate and a write.
    # Best effort: a full disk must not stop the run here (lock_holder then asks the kernel).
    text = ('%d %s\n' % (os.getpid(), os.uname().nodename)).encode()
    try:
        os.pwrite(f.fileno(), text, 0)
        os.ftruncate(f.fileno(), len(text))
    except OSError:
        pass
    return f


def lock_holder(prefix, wait=1.0):
    """'pid host' of the run holding prefix.lock. A holder that has only just taken the lock
    may not have written its name yet: wait for it a little, then ask the kernel."""
    path = prefix + LOCK_SUFFIX
    deadline = time.time() + wait
    while True:
        try:
            with open(path) as f:
                text = f.read().strip()
        except OSError:
            text = ''
        if text or time.time() > deadline:
            break
        time.sleep(0.05)
    return text or _kernel_lock_holder(path) or 'unknown'


def _kernel_lock_holder(path):
    """'pid host' of the process that /proc/locks (Linux) shows holding the flock on path, or None."""
    try:
        st = os.stat(path)
        with open('/proc/locks') as f:
            lines = f.read().splitlines()
    except OSError:
        return None
    device = '%02x:%02x:%d' % (os.major(st.st_dev), os.minor(st.st_dev), st.st_ino)
    for line in lines:
        fields = line.split()
        if len(fields) > 5 and fields[1] == 'FLOCK' and fields[5] == device:
            return '%s %s' % (fields[4], os.uname().nodename)
    return None


def preflight(args, prefix, num_params, same_flags=(), inputs=None):
    """Every check that needs only the files, so a bad start fails in one line before
    mpiexec starts (and again in rank 0, for a run under the user's own mpiexec)."""
    try:
        os.makedirs(args.log_dir, exist_ok=True)
        import tempfile
        with tempfile.NamedTemporaryFile(dir=args.log_dir, prefix='.write_test'):
            pass
    except OSError as e:
        sys.exit('--log_dir %s: cannot write logs there (%s)' % (args.log_dir, e.strerror or e))
    if args.init:
        read_init_params(args.init, num_params)
        if args.resume and os.path.exists(prefix + '.es.pkl'):
            sys.exit('--init: %s.es.pkl holds the full optimizer state and --resume would ignore --init '
                     '(move the .es.pkl away to restart from the logs at --init)' % prefix)
    if args.resume and not os.path.exists(prefix + '.es.pkl'):
        # without the full checkpoint, state_from_logs needs the history and the logged mean
        missing = [prefix + ext for ext in ('.hist.json', '.json') if not os.path.exists(prefix + ext)]
        if missing:
            sys.exit('--resume: no checkpoint %s.es.pkl and no %s to restart from '
                     '(start once without --resume)' % (prefix, ' or '.join(missing)))
        read_logs(prefix, num_params)
    elif args.resume:
        read_checkpoint(prefix + '.es.pkl', num_params)
    if args.resume:
        check_same_run(args, prefix, same_flags, inputs)
    if not args.resume and not args.restart:
        existing = [prefix + ext for ext in LOG_SUFFIXES if os.path.exists(prefix + ext)]
        if existing:
            sys.exit('%s.*: logs of an earlier run exist (%s); add --resume to continue it or '
                     '--restart to delete them and start over' % (prefix, ', '.join(os.path.basename(p) for p in existing)))
    lock = lock_logs(prefix)
    if lock is None:
        sys.exit('%s.*: another run (pid, host: %s) is writing these logs; stop it first' % (
            prefix, lock_holder(prefix)))
    return lock


def _fatal(comm, text):
    """Rank 0's last words, then abort the run.

    MPI_Abort kills the ranks while mpiexec may still hold their unforwarded output, so a
    message written to stderr just before it is lost in some runs. Under train.py's own
    launcher the message goes to a file that the launcher prints once mpiexec has exited."""
    path = os.environ.get(FATAL_FILE_VAR)
    written = False
    if path:
        try:
            # no O_CREAT: on another host than the launcher's the file is absent -> stderr
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)
            with os.fdopen(fd, 'w') as f:
                f.write(text)
            written = True
        except OSError:
            pass
    if not written:
        sys.stderr.write(text)
        sys.stderr.flush()
    comm.Abort(1)


def _last_words(text):
    """Rank 0's message for the launcher to print after mpiexec ends (stderr if there is no
    launcher, under the user's own mpiexec, or on another host)."""
    path = os.environ.get(FATAL_FILE_VAR)
    if path:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_APPEND)   # no O_CREAT, as in _fatal
            with os.fdopen(fd, 'w') as f:
                f.write(text)
            return
        except OSError:
            pass
    sys.stderr.write(text)
    sys.stderr.flush()


def _write_failure(error, prefix):
    """The one line for a log that could not be written."""
    return ('%s: %s; the logs stay as the last finished generation left them in %s.*, and --resume '
            'continues from there once they can be written'
            % (os.path.basename(sys.argv[0]), atomic.describe(error.path, error.error), prefix))


def _quiet_sigint(rank, name):
    """On Ctrl-C each rank exits at once; logs of finished generations are already on disk."""
    def handler(signum, frame):
        if rank == 0:
            sys.stderr.write('\ninterrupted: logs of the last finished generation are in %s.*\n' % name)
            sys.stderr.flush()
        os._exit(130)
    signal.signal(signal.SIGINT, handler)


def _recv_polling(comm, source, tag, status=None):
    """Rank 0's receive. A worker's error report ends the run with its message printed here
    (a worker's own stderr can be lost when the run is aborted); so does a dead launcher."""
    from mpi4py import MPI
    status = status if status is not None else MPI.Status()
    polls = 0
    while not comm.Iprobe(source=source, tag=MPI.ANY_TAG, status=status):
        time.sleep(POLL_SECONDS)
        polls += 1
        if polls % 500 == 0 and _launcher_gone():
            sys.stderr.write('%s: the launching process is gone; stopping the run\n' % os.path.basename(sys.argv[0]))
            sys.stderr.flush()
            comm.Abort(1)   # nobody is left to read a file
    if status.Get_tag() == ERROR_TAG:
        rank, text = comm.recv(source=status.Get_source(), tag=ERROR_TAG)
        last = text.strip().splitlines()[-1] if text.strip() else 'unknown error'
        _fatal(comm, '%s\n%s: worker %d failed: %s\n' % (text.rstrip(), os.path.basename(sys.argv[0]), rank, last))
    return comm.recv(source=status.Get_source(), tag=tag)


def _report_and_abort(comm):
    """In a worker: send the traceback to rank 0, which prints it and aborts the run."""
    import traceback
    text = traceback.format_exc()
    try:
        comm.send((comm.Get_rank(), text), dest=0, tag=ERROR_TAG)
        time.sleep(30)   # rank 0 aborts the run as soon as it reads the report
    finally:
        sys.stderr.write(text)
        sys.stderr.flush()
        comm.Abort(1)


def stop_workers(comm, num_worker):
    for w in range(num_worker):
        comm.send(None, dest=w + 1, tag=STOP_TAG)


def worker_loop(comm, make_evaluator):
    """Ranks 1..n: evaluate jobs until the master says stop. Never imports TensorFlow."""
    from mpi4py import MPI
    try:
        evaluate = make_evaluator()
    except Exception:
        _report_and_abort(comm)
    status = MPI.Status()
    while True:
        while not comm.Iprobe(source=0, tag=MPI.ANY_TAG, status=status):
            time.sleep(POLL_SECONDS)
        job = comm.recv(source=0, tag=status.Get_tag())
        if status.Get_tag() == STOP_TAG:
            return
        params, seeds, train_mode, max_len = job
        try:
            rewards, steps = evaluate(params, seeds, train_mode, max_len)
        except Exception:
            _report_and_abort(comm)
        comm.send((np.asarray(rewards, dtype=np.float64), np.asarray(steps, dtype=np.float64)),
                  dest=0, tag=RESULT_TAG)


class Master:
    """Rank 0: the ES loop, the logs and the checkpoint."""

    def __init__(self, comm, args, game, num_params, inputs=None):
        self.comm = comm
        self.args = args
        self.num_params = num_params
        self.inputs = inputs or {}   # {name: file_record}: the files that decide the rewards
        self.popsize = args.num_worker * args.num_worker_trial
        self.name = log_name(game, args)
        self.prefix = os.path.join(args.log_dir, self.name)
        os.makedirs(args.log_dir, exist_ok=True)

    def new_state(self):
        a = self.args
        es_seed, episode_seed = np.random.SeedSequence(a.seed).spawn(2)
        es = make_optimizer(a.optimizer, self.num_params, self.popsize, sigma_init=a.sigma_init,
                            sigma_decay=a.sigma_decay, antithetic=a.antithetic,
                            weight_decay=a.weight_decay, seed=es_seed, x0=self.init_params())
        return dict(es=es, seed_rng=np.random.default_rng(episode_seed), gen=0, seconds=0.0,
                    hist=[], hist_best=[], eval_log=[], rewards=[], best_params=None,
                    best_reward=None, max_len=-1, num_params=self.num_params)

    def init_params(self):
        """--init's params (num_params,), or None without it (run() has checked the file)."""
        if not self.args.init:
            return None
        print('search mean starts at the params of %s' % self.args.init, flush=True)
        return read_init_params(self.args.init, self.num_params)

    def load_state(self):
        path = self.prefix + '.es.pkl'
        if not os.path.exists(path):
            return self.state_from_logs()
        state = read_checkpoint(path, self.num_params)
        # checkpoints written before the per-episode log existed start it from the file, if any
        state.setdefault('rewards', read_json(self.prefix + '.rewards.json', []))
        print('resumed %s at generation %d' % (path, state['gen']), flush=True)
        return state

    def state_from_logs(self):
        """The state of a finished generation rebuilt from the committed logs (no .es.pkl).

        What the logs hold carries on exactly: generation count, seconds, hist, hist_best,
        evaluations and the best params. What they do not hold starts afresh: the optimizer's
        covariance, evolution paths and random streams (seeded from --seed and the generation,
        so the continuation is reproducible). For CMA-ES with hundreds of params and a small
        population the covariance learning rates are ~1e-5 per generation, so the lost
        covariance is close to sigma^2 * I and the restart at the logged RMS step size loses
        little.
        """
        a = self.args
        logs = read_logs(self.prefix, self.num_params)
        hist = logs['.hist.json']
        (mean,) = logs['.json']
        hist_best = logs.get('.hist_best.json', [])
        eval_log = logs.get('.log.json', [])
        rewards = [r for r in logs.get('.rewards.json', []) if r[0] <= int(hist[-1][0])]
        best_params, best_reward = logs.get('.best.json', [None, None])
        gen, sigma = int(hist[-1][0]), float(hist[-1][6])
        es_seed, episode_seed = np.random.SeedSequence(a.seed, spawn_key=(gen,)).spawn(2)
        init = self.init_params()
        es = make_optimizer(a.optimizer, self.num_params, self.popsize, sigma_init=sigma,
                            sigma_decay=a.sigma_decay, antithetic=a.antithetic, weight_decay=a.weight_decay,
                            seed=es_seed, x0=np.array(mean) if init is None else init)
        seconds = max([float(hist[-1][1])] + [float(r[1]) for r in hist_best if r[0] == gen])
        print('resumed %s from its logs at generation %d (no .es.pkl): optimizer restarted at the '
              '%s, step size %.4f' % (self.prefix, gen, 'logged mean' if init is None else '--init params', sigma),
              flush=True)
        return dict(es=es, seed_rng=np.random.default_rng(episode_seed), gen=gen, seconds=seconds,
                    hist=hist, hist_best=hist_best, eval_log=eval_log, rewards=rewards, best_params=best_params,
                    best_reward=best_reward, max_len=2 * int(hist[-1][7]) if a.cap_time else -1,
                    num_params=self.num_params)

    def evaluate_population(self, solutions, seeds, train_mode, max_len, desc):
        """Send each worker its rows, gather (rewards, steps) of shape (popsize, num_episode)."""
        from mpi4py import MPI
        from tqdm import tqdm
        t = self.args.num_worker_trial
        for w in range(self.args.num_worker):
            rows = slice(w * t, (w + 1) * t)
            self.comm.send((solutions[rows], seeds[rows], train_mode, max_len), dest=w + 1, tag=JOB_TAG)
        rewards = np.zeros(seeds.shape)
        steps = np.zeros(seeds.shape)
        status = MPI.Status()
        with tqdm(total=self.args.num_worker, desc=desc, unit='worker', leave=False,
                  disable=None) as bar:
            for _ in range(self.args.num_worker):
                r, s = _recv_polling(self.comm, MPI.ANY_SOURCE, RESULT_TAG, status)
                w = status.Get_source() - 1
                rewards[w * t:(w + 1) * t] = r
                steps[w * t:(w + 1) * t] = s
                bar.update()
        return rewards, steps

    def train_seeds(self, seed_rng):
        """(popsize, num_episode) episode seeds of one generation."""
        if self.args.common_seeds:
            # Common random numbers: with a few episodes per solution the spread of episode
            # difficulty (CarRacing: std ~200 between tracks) drowns the differences between
            # nearby solutions; on shared episodes the ranking sees those differences.
            row = seed_rng.integers(0, 2 ** 31 - 1, size=(1, self.args.num_episode))
            return np.repeat(row, self.popsize, axis=0)
        seeds = seed_rng.integers(0, 2 ** 31 - 1, size=(self.popsize, self.args.num_episode))
        if self.args.antithetic:
            # Solutions i and i + popsize/2 are a +/- pair: same episodes, less noise in the difference.
            half = self.popsize // 2
            seeds[half:] = seeds[:half]
        return seeds

    def eval_seeds(self):
        return EVAL_SEED_BASE + np.arange(self.popsize * self.args.num_episode).reshape(
            self.popsize, self.args.num_episode)

    def resolved_flags(self):
        """The flags to save in .args.json. A resume from .es.pkl refuses --init, so it keeps the
        first start's: without it the saved flags would no longer say where the search began."""
        flags = dict(vars(self.args), inputs=self.inputs)
        if self.args.resume and self.args.init is None:
            try:
                flags['init'] = read_json(self.prefix + '.args.json', missing={}).get('init')
            except (OSError, ValueError, AttributeError):
                pass   # an unreadable record is replaced by this start's flags
        return flags

    def run(self):
        a = self.args
        if a.restart:
            for ext in LOG_SUFFIXES:
                if os.path.exists(self.prefix + ext):
                    os.remove(self.prefix + ext)
        state = self.load_state() if a.resume else self.new_state()
        es = state['es']
        write_json_atomic(self.prefix + '.args.json', self.resolved_flags())
        print('training %s: %d params, popsize %d, %d episodes each, %d workers' % (
            self.name, self.num_params, self.popsize, a.num_episode, a.num_worker), flush=True)
        start = time.time() - state['seconds']
        while a.max_gen <= 0 or state['gen'] < a.max_gen:
            if a.stop_at is not None and state['best_reward'] is not None and state['best_reward'] >= a.stop_at:
                print('stop after generation %d: the best evaluation, %.2f, is at least --stop_at %g' % (
                    state['gen'], state['best_reward'], a.stop_at), flush=True)
                break
            gen = state['gen'] + 1
            solutions = es.ask()
            rewards, steps = self.evaluate_population(
                solutions, self.train_seeds(state['seed_rng']), True, state['max_len'], 'gen %d' % gen)
            fitness = rewards.mean(axis=1)
            es.tell(fitness)
            mean_steps, max_steps = float(steps.mean()), float(steps.max())
            if a.cap_time:
                state['max_len'] = 2 * int(mean_steps + 1)
            seconds = int(time.time() - start)
            row = [gen, seconds, round(float(fitness.mean()), 2), round(float(fitness.min()), 2),
                   round(float(fitness.max()), 2), round(float(fitness.std()), 2),
                   round(es.rms_stdev(), 4), round(mean_steps + 1, 1), int(max_steps) + 1]
            state['hist'].append(row)
            print('gen %d  time %ds  avg %.2f  min %.2f  max %.2f  std %.2f  sigma %.4f  mean_steps %.1f  max_steps %d'
                  % tuple(row), flush=True)
            write_json_atomic(self.prefix + '.json', [rounded(es.current_param())])
            write_json_atomic(self.prefix + '.hist.json', state['hist'])
            # each solution's reward on each of its episodes: the spread between episodes
            # against the spread between solutions (plot_training_progress.py --spread)
            state['rewards'].append([gen, np.round(rewards, 2).tolist()])
            write_json_atomic(self.prefix + '.rewards.json', state['rewards'])

            last = a.max_gen > 0 and gen == a.max_gen
            if gen % a.eval_steps == 0 or last:
                self.evaluate_mean(es, state, gen, start)
            state['gen'] = gen
            state['seconds'] = time.time() - start
            write_pickle_atomic(self.prefix + '.es.pkl', state)
        stop_workers(self.comm, self.args.num_worker)

    def evaluate_mean(self, es, state, gen, start):
        params = rounded(es.current_param())
        solutions = np.tile(np.array(params), (self.popsize, 1))
        rewards, _ = self.evaluate_population(solutions, self.eval_seeds(), False, -1, 'eval %d' % gen)
        reward = float(rewards.mean())
        prev = state['best_reward']
        state['eval_log'].append([gen, round(reward, 4), params])
        if prev is None or reward > prev:
            state['best_reward'], state['best_params'] = reward, params
        elif self.args.retrain:
            es.set_mu(np.array(state['best_params']))
        best = state['best_reward']
        improvement = reward - (prev if prev is not None else reward)
        row = [gen, int(time.time() - start), 'improvement', round(improvement, 4), 'curr',
               round(reward, 4), 'prev', round(prev if prev is not None else reward, 4), 'best', round(best, 4)]
        state['hist_best'].append(row)
        print('eval gen %d  improvement %.2f  curr %.2f  prev %.2f  best %.2f' % (
            gen, improvement, reward, row[7], best), flush=True)
        write_json_atomic(self.prefix + '.log.json', state['eval_log'])
        write_json_atomic(self.prefix + '.best.json', [state['best_params'], round(best, 4)])
        write_json_atomic(self.prefix + '.hist_best.json', state['hist_best'])


def run(args, game, num_params, make_evaluator, same_flags=(), inputs=None):
    """Train with the ES over MPI; relaunches under mpiexec when not already under MPI.

    same_flags: the experiment's flags that a --resume must keep (besides RESUME_FLAGS);
    inputs: {name: estool.resume.file_record(path)} of the files that decide the rewards
    (weights), recorded in .args.json and compared by content on a --resume."""
    prefix = os.path.join(args.log_dir, log_name(game, args))
    if not under_mpi():
        # Fail fast, before mpiexec starts; rank 0 takes the lock for real below.
        preflight(args, prefix, num_params, same_flags, inputs).close()
        code, last_words = relaunch_under_mpi(args.num_worker)
        # rank 0's one-line refusal (a full disk, bad logs) already says what happened
        explained = len(last_words.strip().splitlines()) == 1
        if code - 128 in (signal.SIGTERM, signal.SIGHUP):
            sys.stderr.write('%s: stopped by %s; logs of the last finished generation are in %s.*\n' % (
                os.path.basename(sys.argv[0]), signal.Signals(code - 128).name, prefix))
        elif code not in (0, 130) and not explained:
            sys.stderr.write('%s: the MPI run stopped with exit code %d (a rank crashed or was '
                             'killed); logs of the last finished generation are in %s.*\n' % (
                                 os.path.basename(sys.argv[0]), code, prefix))
        sys.exit(code)
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    rank = comm.Get_rank()
    if comm.Get_size() != args.num_worker + 1:
        # Every rank sees the mismatch, so all leave in order: MPI_Abort could drop the message.
        if rank == 0:
            sys.stderr.write('-n %d needs %d MPI processes (mpiexec -n %d), got %d\n' % (
                args.num_worker, args.num_worker + 1, args.num_worker + 1, comm.Get_size()))
        sys.exit(2)
    _quiet_sigint(rank, os.path.join(args.log_dir, log_name(game, args)))
    hosts = comm.gather(MPI.Get_processor_name(), root=0)
    if rank == 0:
        counts = {h: hosts.count(h) for h in hosts}
        print('MPI: %d ranks on %d host%s: %s' % (len(hosts), len(counts), '' if len(counts) == 1 else 's',
                                                 ', '.join('%s (%d)' % kv for kv in counts.items())), flush=True)
        try:
            # Only rank 0 reads and writes the logs: under a multi-host mpiexec the other
            # ranks may run where log_dir does not exist.
            lock = preflight(args, prefix, num_params, same_flags, inputs)   # noqa: F841  (held until this process ends)
        except SystemExit:
            # No job is out yet, so the workers can be stopped in order and the run ends
            # normally: mpiexec then forwards the refusal, which MPI_Abort can drop.
            stop_workers(comm, args.num_worker)
            raise
        try:
            Master(comm, args, game, num_params, inputs).run()
        except (WriteFailed, SystemExit) as e:
            if isinstance(e, SystemExit) and e.code in (None, 0):
                raise
            # No job is out: a refusal comes before the first job, and a log is written only
            # once every reward of the generation is in. So the workers stop in order and the
            # run ends with one line, not an abort.
            stop_workers(comm, args.num_worker)
            text = _write_failure(e, prefix) if isinstance(e, WriteFailed) else e.code
            if not isinstance(text, str):
                sys.exit(text)
            _last_words(text + '\n')
            sys.exit(1)
        except BaseException as e:
            # Workers wait for jobs for ever: a master that stops must take them down.
            text = ''
            if not isinstance(e, SystemExit):
                import traceback
                text = traceback.format_exc()
            elif e.code not in (None, 0):
                text = '%s\n' % e.code
            _fatal(comm, text)
    else:
        worker_loop(comm, make_evaluator)

