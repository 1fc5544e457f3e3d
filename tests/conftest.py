import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# No screen in CI: pygame draws to a dummy driver, matplotlib to files.
os.environ.setdefault('SDL_VIDEODRIVER', 'dummy')
os.environ.setdefault('SDL_AUDIODRIVER', 'dummy')
os.environ.setdefault('MPLBACKEND', 'Agg')


def run_script(args, cwd, timeout=300, check=True):
    """Run `python <args>` in cwd like a user would; returns the CompletedProcess."""
    proc = subprocess.run([sys.executable] + list(args), cwd=cwd, capture_output=True, text=True,
                          timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError('%s exited %d\nstdout:\n%s\nstderr:\n%s' % (
            ' '.join(args), proc.returncode, proc.stdout[-4000:], proc.stderr[-4000:]))
    return proc


@pytest.fixture(scope='session')
def root():
    return ROOT
