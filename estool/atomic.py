"""Files written whole or not at all, and a write that fails (a full disk) said in one line.

Every stage that writes for a long time (extract.py, vae_train.py, series.py, rnn_train.py,
train.py) writes its outputs through write_atomic: to PATH.tmp, then renamed over PATH. A
kill leaves the old file or the new one; a failed write leaves the old file and no PATH.tmp,
and raises WriteFailed naming PATH (an OSError of a write names no file by itself).

    write_atomic(path, 'w', lambda f: json.dump(obj, f))
    with exit_on_write_failure('series.py', 'rerun with --resume to go on from its parts'):
        main()
"""

import contextlib
import errno
import os
import sys

FULL_DISK = (errno.ENOSPC, errno.EDQUOT)


class WriteFailed(Exception):
    """path could not be written (error: the OSError); the file itself is unchanged."""

    def __init__(self, path, error):
        super().__init__('%s: %s' % (path, error.strerror or error))
        self.path, self.error = path, error


def write_atomic(path, mode, dump, fsync=False):
    """dump(f) into path + '.tmp' opened with mode, then rename it over path (fsync: flush it
    to the disk first, for a file that names others, as a checkpoint's state does)."""
    tmp = path + '.tmp'
    try:
        with open(tmp, mode) as f:
            dump(f)
            if fsync:
                f.flush()
                os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException as e:   # an interrupted write too: no half file stays behind
        with contextlib.suppress(OSError):
            os.remove(tmp)
        if isinstance(e, OSError):
            raise WriteFailed(path, e) from e
        raise


def describe(path, error):
    """'the disk is full (No space left on device while writing PATH)' or 'cannot write PATH (...)'."""
    if error.errno in FULL_DISK:
        return 'the disk is full (%s while writing %s)' % (error.strerror, path)
    return 'cannot write %s (%s)' % (path, error.strerror or error)


@contextlib.contextmanager
def exit_on_write_failure(script, then):
    """Around a script's main: a WriteFailed, or an OSError of a full disk raised by a writer
    that names no file (a library's own), ends the script in one line, 'script: <what>; then'
    (then: what to do once there is room), instead of a traceback."""
    try:
        yield
    except WriteFailed as e:
        sys.exit('%s: %s; %s' % (script, describe(e.path, e.error), then))
    except OSError as e:
        if e.errno not in FULL_DISK:
            raise
        sys.exit('%s: %s; %s' % (script, describe(e.filename or 'its output', e), then))
