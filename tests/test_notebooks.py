"""Every notebook runs as shipped: from a clean copy of its folder, with its own defaults."""

import os
import shutil

import pytest

from conftest import ROOT, execute_notebook, outputs_text

# What a fresh clone does not have: .gitignore's bulk data, checkpoints and caches.
NOT_IN_A_CLONE = shutil.ignore_patterns('record', 'record_*', 'series', 'tf_vae', 'tf_rnn', 'tf_initial_z', '*.npz',
                                        '*.es.pkl', '*.tmp', '__pycache__', '.ipynb_checkpoints', '_vizdoom*')

NOTEBOOKS = {
    'carracing/plot_training_progress.ipynb': ['270 generations', 'best evaluation: 896.2425'],
    'carracing/vae_test.ipynb': ['frames from the real env', 'z size 32', 'frames of these episodes: mean'],
    'doomrnn/plot_training_progress.ipynb': ['100 generations', 'best dream evaluation: 1037.6504'],
    'doomrnn/vae_test.ipynb': ['frames from the real game', 'z size 64', 'frames of these episodes: mean'],
    'estool/plot_training_progress.ipynb': ['600 generations', 'best evaluation: 860.2742'],
    'estool/simple_es_example.ipynb': ['CMA-ES', 'OpenES', 'PEPG', 'SimpleGA'],
}


@pytest.mark.parametrize('notebook', sorted(NOTEBOOKS))
def test_notebook_runs_from_a_clean_copy_with_its_defaults(notebook, tmp_path):
    folder, name = notebook.split('/')
    copy = tmp_path / folder
    shutil.copytree(os.path.join(ROOT, folder), copy, ignore=NOT_IN_A_CLONE)
    nb = execute_notebook(str(copy / name))
    text = outputs_text(nb)
    for words in NOTEBOOKS[notebook]:
        assert words in text, text
    images = [o for c in nb.cells if c.cell_type == 'code' for o in c.outputs if 'image/png' in o.get('data', {})]
    assert images
