"""The repo's own promises: README commands, CI script, workers free of TensorFlow."""

import os
import re
import subprocess
import sys

from conftest import ROOT


def readme_commands():
    with open(os.path.join(ROOT, 'README.md')) as f:
        text = f.read()
    quick_start = text.split('## Quick start', 1)[1].split('\n## ', 1)[0]
    return re.findall(r'```\n(.+?)\n```', quick_start)


def test_readme_has_two_one_line_commands_and_ci_runs_the_test_one():
    commands = readme_commands()
    assert len(commands) == 2 and all('\n' not in c for c in commands)
    main, tests = commands
    assert 'train.py' in main or 'model.py' in main
    assert 'pytest' in tests
    with open(os.path.join(ROOT, '.ci', 'run')) as f:
        ci = f.read()
    assert tests in ci.splitlines()


def test_estool_imports_without_tensorflow():
    code = ('import sys, estool.es, estool.fanout, estool.model\n'
            'assert "tensorflow" not in sys.modules and "keras" not in sys.modules\n'
            'print("ok")')
    out = subprocess.run([sys.executable, '-c', code], capture_output=True, text=True, cwd='/')
    assert out.stdout.strip() == 'ok', out.stderr
