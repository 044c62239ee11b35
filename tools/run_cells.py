"""Run a notebook's code cells in one plain Python process, as nbdev's test runner would (no Jupyter needed).

For machines that have PyTorch but not the notebook stack, such as a GPU node:
`python tools/run_cells.py nbs/03c_augment.ipynb --flags cuda`. Cells marked `#| eval: false` are skipped,
and so are cells carrying a test flag of settings.ini (`slow`, `cuda`, ...) unless `--flags` names it;
lines that import nbdev are left out and `show_doc` does nothing. Exit status 1 at the first failing cell.
"""
import argparse, configparser, json, sys, time, traceback
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_flags() -> tuple[str, ...]:
    "The test flags of settings.ini (`tst_flags`): cells carrying one run only when asked for."
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / 'settings.ini')
    return tuple(cfg['DEFAULT'].get('tst_flags', '').split())


def directives(src: str) -> dict:
    "The cell's `#| key: value` lines, and its bare flags as `{flag: True}`."
    out = {}
    for line in src.splitlines():
        if not line.startswith('#|'): break
        body = line[2:].strip()
        if ':' in body: k, v = body.split(':', 1); out[k.strip()] = v.strip()
        else:
            for flag in body.split(): out[flag] = True
    return out


def run(nb_path: str | Path, flags=(), verbose: bool = False) -> int:
    cells = [c for c in json.loads(Path(nb_path).read_text())['cells'] if c['cell_type'] == 'code']
    ns = {'__name__': '__main__', 'show_doc': lambda *a, **k: None}
    ran, skip_flags = 0, test_flags()
    for i, c in enumerate(cells):
        src = ''.join(c['source'])
        d = directives(src)
        if d.get('eval') == 'false' or any(d.get(f) for f in skip_flags if f not in flags): continue
        code = '\n'.join(ln for ln in src.splitlines() if not ln.lstrip().startswith(('%', '!', 'from nbdev', 'import nbdev')))
        t0 = time.time()
        try: exec(compile(code, f'{Path(nb_path).name}[{i}]', 'exec'), ns)
        except Exception:
            print(f'{nb_path}: code cell {i} failed:\n{src[:400]}', file=sys.stderr)
            traceback.print_exc()
            return 1
        ran += 1
        if verbose or any(d.get(f) for f in flags): print(f'  cell {i}: ok ({time.time() - t0:.1f}s){" " + ",".join(f for f in flags if d.get(f))}', flush=True)
    print(f'{nb_path}: {ran} of {len(cells)} code cells ran', flush=True)
    return 0


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('notebooks', nargs='+')
    ap.add_argument('--flags', nargs='*', default=[], help='test flags whose cells run too (e.g. cuda slow)')
    ap.add_argument('-v', '--verbose', action='store_true')
    a = ap.parse_args()
    sys.path.insert(0, str(ROOT))
    sys.exit(max(run(nb, a.flags, a.verbose) for nb in a.notebooks))
