"""The repo's own promises: README commands, CI script, workers free of TensorFlow."""

import os
import re
import subprocess
import sys

import pytest

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


# Words that would tell how the work on the repo was organised rather than what the repo is.
NOT_ABOUT_THE_REPO = re.compile(r'\b(session|sessions|issue|issues|lent|borrowed|helper|helpers|CEO|developer|stopping rule)\b',
                                re.IGNORECASE)


def test_markdown_speaks_only_of_the_repo():
    found = []
    for folder, dirs, files in os.walk(ROOT):
        dirs[:] = [d for d in dirs if not d.startswith('.') and d not in ('node_modules', '__pycache__')]
        for name in files:
            if name.endswith('.md'):
                path = os.path.join(folder, name)
                with open(path) as f:
                    for n, line in enumerate(f, 1):
                        found += ['%s:%d: %s' % (os.path.relpath(path, ROOT), n, m.group(0))
                                  for m in NOT_ABOUT_THE_REPO.finditer(line)]
    assert not found, found


def scripts():
    """Every file of the three folders that runs as a script."""
    found = []
    for folder in ('carracing', 'doomrnn', 'estool'):
        for name in sorted(os.listdir(os.path.join(ROOT, folder))):
            if name.endswith('.py'):
                with open(os.path.join(ROOT, folder, name)) as f:
                    if "if __name__ == '__main__':" in f.read():
                        found.append(folder + '/' + name)
    return found


@pytest.mark.parametrize('script', scripts())
def test_every_script_answers_help(script):
    folder, name = script.split('/')
    out = subprocess.run([sys.executable, name, '--help'], cwd=os.path.join(ROOT, folder), capture_output=True,
                         text=True, timeout=120)
    # (pygame's banner may come first)
    assert out.returncode == 0 and re.search(r'^usage: %s' % name, out.stdout, re.MULTILINE), out.stderr[-2000:]
