import importlib
import os
import subprocess
import sys
import types

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


def folder_modules(folder, names):
    """Import an experiment folder's scripts in-process, by the names they use for each other
    ('runtime', 'vae.vae', ...), and yield them as a namespace (attribute = last name part).

    Both experiment folders have modules called runtime, env, vae, ...: whatever was loaded
    from elsewhere under those names is dropped first, and this folder's modules after."""
    def drop(inside):
        for name, module in list(sys.modules.items()):
            path = os.path.abspath(getattr(module, '__file__', None) or '')
            if name.split('.')[0] in tops or (inside and path.startswith(folder + os.sep)):
                del sys.modules[name]

    tops = {name.split('.')[0] for name in names}
    saved_path = sys.path[:]
    drop(inside=False)
    sys.path.insert(0, folder)
    try:
        yield types.SimpleNamespace(**{n.split('.')[-1]: importlib.import_module(n) for n in names})
    finally:
        sys.path[:] = saved_path
        drop(inside=True)


@pytest.fixture(scope='session')
def root():
    return ROOT
