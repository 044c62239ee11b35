"""Check that the notebooks are the source of truth: `nbdev_export` and `nbdev_clean` must change nothing.

Hashes every file under the library and notebook folders, runs both commands, and fails listing
the files they changed. Works on a dirty tree too (it compares before and after, not against git).
"""
import hashlib, subprocess, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def snapshot():
    out = {}
    for folder in ('mlfo', 'nbs'):
        for p in sorted((ROOT / folder).rglob('*')):
            if p.is_file() and '__pycache__' not in p.parts and '.ipynb_checkpoints' not in p.parts:
                out[str(p.relative_to(ROOT))] = hashlib.sha256(p.read_bytes()).hexdigest()
    return out


def main():
    before = snapshot()
    for cmd in ('nbdev_clean', 'nbdev_export'):
        r = subprocess.run([str(BIN / cmd)], cwd=ROOT, capture_output=True, text=True)
        if r.returncode:
            print(f'{cmd} failed:\n{r.stdout}{r.stderr}')
            return 1
    after = snapshot()
    changed = sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k))
    if changed:
        print('nbdev_export / nbdev_clean changed these files (the package or notebooks were not in step; '
              'they are now, commit them):')
        for c in changed: print('  ' + c)
        return 1
    print(f'nbdev check: export and clean leave all {len(after)} files unchanged')
    return 0


if __name__ == '__main__':
    sys.exit(main())
