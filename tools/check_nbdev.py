"""Check that the notebooks are the source of truth: `nbdev_export` and `nbdev_clean` must change nothing.

Hashes every file under the library and notebook folders, runs both commands, and fails listing
the files they changed. Works on a dirty tree too (it compares before and after, not against git).
Then checks that every cell the docs build runs finds the names it uses (`docs_exec_problems`).
"""
import ast, builtins, hashlib, subprocess, sys, warnings
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


def _binds(n) -> set:
    "The names one AST node binds (an assignment or deletion target, a def or class, an argument, an import, an except name)."
    if isinstance(n, ast.Name) and isinstance(n.ctx, (ast.Store, ast.Del)): return {n.id}
    if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)): return {n.name}
    if isinstance(n, ast.arg): return {n.arg}
    if isinstance(n, ast.alias) and n.name != '*': return {(n.asname or n.name).split('.')[0]}
    if isinstance(n, ast.ExceptHandler) and n.name: return {n.name}
    return set()


def _bound(tree):
    "Names a cell binds anywhere (assignments, defs, imports, arguments, loop and with targets)."
    return set().union(*map(_binds, ast.walk(tree)))


def _module_bound(tree):
    "Names a cell binds at module level: as `_bound`, but not a function's arguments and locals or a comprehension's variables."
    scopes = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda, ast.ClassDef, ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)
    names, todo = set(), [tree]
    while todo:
        for child in ast.iter_child_nodes(todo.pop()):
            names |= _binds(child)   # a def's or class's name, but nothing inside it
            if not isinstance(child, scopes): todo.append(child)
    return names


def _star_names(tree):
    "What `from m import *` brings in (the module's __all__, or its public names)."
    import importlib
    names = set()
    for n in ast.walk(tree):
        if isinstance(n, ast.ImportFrom) and n.module and any(a.name == '*' for a in n.names):
            m = importlib.import_module(n.module)
            names |= set(getattr(m, '__all__', [k for k in vars(m) if not k.startswith('_')]))
    return names


def docs_exec_problems(nb_path):
    """Names a cell run by the docs build uses but only a cell the docs build skips defines.

    nbdev's docs build runs only exported cells, cells with an import and show_doc cells (its
    `_do_eval`); a test cell that imports a helper therefore runs there, and fails on any name that
    an earlier plain cell defined. Found here in a second, not after the four-minute build."""
    from nbdev.process import NBProcessor
    from nbdev.processors import _do_eval
    nb = NBProcessor(nb_path).nb
    exports = {'export', 'exports', 'exporti'}
    has_docs = any(c.cell_type == 'code' and (c.directives_.keys() & exports or 'show_doc(' in c.source)
                   for c in nb.cells)   # nbdev runs no cell of a notebook without API docs
    if not has_docs or 'skip_showdoc: true' in ''.join(c.source for c in nb.cells if c.cell_type == 'raw'):
        return []
    run, skipped, problems = set(dir(builtins)) | {'show_doc'}, {}, []
    for cell in nb.cells:
        if cell.cell_type != 'code' or not cell.source: continue
        try: tree = ast.parse('\n'.join('' if line.lstrip().startswith(('%', '!')) else line
                                        for line in cell.source.splitlines()))
        except SyntaxError: continue
        with warnings.catch_warnings():
            warnings.simplefilter('ignore')
            evaluated = _do_eval(cell)
        bound = _bound(tree)
        if evaluated:
            used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
            for name in sorted(used - bound - run):
                if name in skipped:
                    problems.append(f'{Path(nb_path).name} cell {cell.idx_}: the docs build runs it (it imports '
                                    f'or exports) but not cell {skipped[name]}, which defines `{name}`; '
                                    'put the import in a cell of its own')
            run |= _module_bound(tree) | _star_names(tree)   # a function's arguments are not the notebook's names
        else:
            for name in bound - run: skipped.setdefault(name, cell.idx_)
    return problems


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
    nbs = sorted([*(ROOT / 'nbs').glob('*.ipynb'), *(ROOT / 'nbs' / 'experiments').glob('*.ipynb')])
    problems = [p for nb in nbs for p in docs_exec_problems(nb)]
    for p in problems: print(p)
    if problems: return 1
    print('nbdev check: every cell the docs build runs finds its names')
    return 0


if __name__ == '__main__':
    sys.exit(main())
