"""Every notebook under nbs/ runs as a test, exactly as `nbdev_test` runs it.

This calls nbdev's own `test_nb` with the flags of settings.ini (`tst_flags`), one pytest item per
notebook so that failures are named and counted. Cells flagged `slow` run with `--slow`; cells
flagged `cuda` run when a GPU is present. Notebooks whose front matter says `skip_exec: true`
(the papermill run notebooks) are exercised by tests/test_run_notebooks.py instead.
"""
from pathlib import Path

import pytest
from nbdev.config import get_config
from nbdev.test import test_nb as run_notebook

ROOT = Path(__file__).resolve().parent.parent
NBS = sorted(p for p in (ROOT / 'nbs').rglob('*.ipynb')
             if not any(part.startswith(('_', '.')) for part in p.relative_to(ROOT / 'nbs').parts))


@pytest.mark.parametrize('nb', NBS, ids=[p.relative_to(ROOT / 'nbs').as_posix() for p in NBS])   # experiments/x.ipynb for a subfolder
def test_notebook(nb, request, monkeypatch):
    import torch
    monkeypatch.chdir(ROOT)
    skip = get_config().tst_flags.split()
    force = []
    if request.config.getoption('--slow'): force.append('slow')
    if torch.cuda.is_available(): force.append('cuda')
    ok, secs = run_notebook(nb.absolute(), skip_flags=skip, force_flags=force, basepath=str(ROOT))
    assert ok, f'{nb.name} failed (traceback above)'
