"""What a resumed run must share with the run it continues.

A stage that can be stopped and continued (series.py, vae_train.py, rnn_train.py, extract.py,
train.py) records, when it starts, the settings and input files that decide its result; a
--resume compares them with what it is given now and refuses, in one line naming each
difference, instead of writing one result made half by one setup and half by another.

Files are compared by content (sha256), so a weights file that was moved or renamed still
matches and one that was retrained in place does not. Keys that a record lacks (written by
an older version) are not compared.

    recorded = {'batch_size': 100, 'vae': file_record('tf_vae/vae.json')}
    changes = differences(recorded_earlier, recorded)   # ['--vae: ... then, ... now', ...]
"""

import hashlib
import json
import os

from estool.atomic import write_atomic


def sha256(path):
    """Hex digest of a file's bytes; None if it cannot be read."""
    digest = hashlib.sha256()
    try:
        with open(path, 'rb') as f:
            for block in iter(lambda: f.read(1 << 20), b''):
                digest.update(block)
    except OSError:
        return None
    return digest.hexdigest()


def file_record(path):
    """A file as a run records it: its path as given and its content's digest."""
    return {'path': path, 'sha256': sha256(path)}


def _plain(value):
    """As the value reads back from JSON (tuples become lists)."""
    return json.loads(json.dumps(value))


def _same(was, now):
    if isinstance(now, dict) and 'sha256' in now:
        if isinstance(was, dict) and was.get('sha256') and now['sha256']:
            return was['sha256'] == now['sha256']
        return (was.get('path') if isinstance(was, dict) else was) == now['path']
    if isinstance(now, list) and isinstance(was, list) and len(now) == len(was):
        return all(_same(w, n) for w, n in zip(was, now))
    return was == now


def _describe(value):
    if isinstance(value, dict) and 'path' in value:
        return '%s (sha256 %s)' % (value['path'], (value.get('sha256') or 'unreadable')[:12])
    if isinstance(value, list):
        return ' '.join(_describe(v) for v in value)
    return str(value)


def differences(recorded, current):
    """-> ['--key: <recorded> then, <current> now', ...] for each key of current whose
    recorded value differs (keys the record lacks are skipped). A key is a flag's name, or a
    phrase with a space ('record files'), shown as it is."""
    changes = []
    for key, now in _plain(current).items():
        if key not in recorded:
            continue
        was = recorded[key]
        if not _same(was, now):
            label = key if ' ' in key else '--' + key   # a flag, or a phrase such as 'record files'
            changes.append('%s: %s then, %s now' % (label, _describe(was), _describe(now)))
    return changes


def read_record(path):
    """A record written by write_record -> dict; None if there is none; ValueError if unreadable."""
    if not os.path.exists(path):
        return None
    try:
        with open(path) as f:
            record = json.load(f)
    except (OSError, ValueError) as e:
        raise ValueError('%s is unreadable (%s)' % (path, e))
    if not isinstance(record, dict):
        raise ValueError('%s is not a record of settings' % path)
    return record


def write_record(path, record):
    """Write atomically: a kill leaves the old record or the new one (WriteFailed if it cannot)."""
    write_atomic(path, 'w', lambda f: json.dump(_plain(record), f, indent=1))
