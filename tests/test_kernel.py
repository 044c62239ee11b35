"""The Jupyter side of `make`: the kernel `mlfo` runs this virtualenv's Python, JupyterLab and
ipywidgets are installed (tqdm shows a widget, no warning), and one chapter executes through the
kernel as JupyterLab would run it."""
import json, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_kernel_mlfo_runs_this_python():
    from jupyter_client.kernelspec import KernelSpecManager, NoSuchKernel
    try: spec = KernelSpecManager().get_kernel_spec('mlfo')
    except NoSuchKernel: raise AssertionError('no kernel mlfo: `make venv` registers it (ipykernel install --sys-prefix --name mlfo)') from None
    assert Path(spec.argv[0]).resolve() == Path(sys.executable).resolve() or spec.argv[0] in ('python', 'python3'), spec.argv
    assert spec.display_name == 'Python 3 (mlfo)'


def test_jupyterlab_and_widgets_installed():
    import ipywidgets, jupyterlab  # noqa: F401  (the pins of settings.ini)
    r = subprocess.run([str(Path(sys.executable).parent / 'jupyter'), 'lab', '--version'], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.strip().startswith('4.'), r.stderr


def test_a_chapter_runs_through_the_kernel(tmp_path):
    "The notation chapter executed cell by cell by the kernel mlfo (nbclient, as JupyterLab's run all)."
    import nbformat
    from nbclient import NotebookClient
    nb = nbformat.read(ROOT / 'nbs' / '01_config.ipynb', as_version=4)
    NotebookClient(nb, kernel_name='mlfo', timeout=600, resources={'metadata': {'path': str(ROOT / 'nbs')}}).execute()
    outputs = [o for c in nb.cells if c.cell_type == 'code' for o in c.get('outputs', [])]
    assert not [o for o in outputs if o.output_type == 'error']
    assert not any('IProgress not found' in json.dumps(o) for o in outputs)   # ipywidgets present: no tqdm warning


def test_make_lab_serves_with_the_kernel_mlfo(tmp_path):
    "`make lab` starts JupyterLab whose default kernel is mlfo (headless, on a free port, stopped after)."
    import os, signal, socket, time, urllib.request
    with socket.socket() as s:
        s.bind(('127.0.0.1', 0)); port = s.getsockname()[1]
    args = f'LAB_ARGS=--no-browser --port {port} --IdentityProvider.token=t --ServerApp.open_browser=False'
    proc = subprocess.Popen(['make', '--no-print-directory', 'lab', args], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            text=True, start_new_session=True, env={**os.environ, 'JUPYTER_RUNTIME_DIR': str(tmp_path)})
    try:
        for _ in range(120):
            try:
                with urllib.request.urlopen(f'http://127.0.0.1:{port}/api/kernelspecs?token=t', timeout=2) as r: specs = json.load(r)
                break
            except OSError: time.sleep(0.5)
        else: raise AssertionError('JupyterLab did not answer in 60 s')
        assert specs['default'] == 'mlfo' and 'mlfo' in specs['kernelspecs'], specs
        with urllib.request.urlopen(f'http://127.0.0.1:{port}/lab?token=t', timeout=5) as r: assert r.status == 200
    finally:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=30)
