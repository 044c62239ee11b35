"""Offline docs: the nbdev site without Quarto.

`nbdev_docs` needs Quarto, which needs the network to install. This builds the same pages offline:
1. writes nbs/sidebar.yml (the Quarto sidebar, grouped Method / Data / Training / Evaluation / Results),
2. runs nbdev's own notebook processors (`nbdev.serve.proc_nbs`: front matter, show_doc API
   reference, hidden cells removed) into _proc/,
3. renders every processed notebook to HTML with nbconvert into _docs_offline/, plus an index page,
4. writes README.md from nbs/index.ipynb (what `nbdev_readme` does with Quarto).
`--check` only verifies that nbs/sidebar.yml and README.md are up to date (used by the tests).
"""
import argparse, json, re, shutil, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / 'nbs'
OUT = ROOT / '_docs_offline'
GROUPS = ('Method', 'Data', 'Training', 'Evaluation', 'Results')


def group_of(name: str) -> str:
    "Sidebar section of a notebook, from its number."
    m = re.match(r'(\d+)', name)
    if not m: return 'Results'          # run_ablation, table*, figure* notebooks
    n = int(m.group(1))
    if n in (0, 1) or 4 <= n <= 9: return 'Method'
    if n == 3: return 'Data'
    if n in (2, 10, 12, 13): return 'Training'
    if n == 11: return 'Evaluation'
    return 'Results'


def notebooks():
    return sorted(p.name for p in NBS.glob('*.ipynb') if not p.name.startswith(('_', '.')) and p.name != 'index.ipynb')


def sidebar_yml() -> str:
    lines = ['website:', '  sidebar:', '    contents:', '      - index.ipynb']
    for g in GROUPS:
        members = [n for n in notebooks() if group_of(n) == g]
        if not members: continue
        lines += [f'      - section: {g}', '        contents:'] + [f'          - {n}' for n in members]
    return '\n'.join(lines) + '\n'


def readme_md() -> str:
    "README.md from nbs/index.ipynb: title, description, then the markdown cells (code cells as code blocks)."
    nb = json.loads((NBS / 'index.ipynb').read_text())
    parts = ['<!-- Generated from nbs/index.ipynb by tools/docs_offline.py; edit the notebook, not this file. -->']
    for c in nb['cells']:
        src = ''.join(c['source'])
        if c['cell_type'] == 'markdown': parts.append(src)
        elif c['cell_type'] == 'code' and not src.lstrip().startswith('#| hide'):
            parts.append('```python\n' + src + '\n```')
    text = '\n\n'.join(parts) + '\n'
    return re.sub(r'^> (.*)$', r'> \1', text, count=1, flags=re.M)


def build():
    from nbconvert import HTMLExporter
    from nbdev.serve import proc_nbs
    import nbformat
    (NBS / 'sidebar.yml').write_text(sidebar_yml())
    (ROOT / 'README.md').write_text(readme_md())
    proc_nbs(str(NBS), n_workers=0)
    shutil.rmtree(OUT, ignore_errors=True)
    OUT.mkdir()
    exporter = HTMLExporter(template_name='lab')
    pages = []
    for p in sorted((ROOT / '_proc').glob('*.ipynb')):
        nb = nbformat.read(p, as_version=4)
        title = p.stem
        for c in nb.cells:
            if c.cell_type == 'raw' and c.source.startswith('---'):
                m = re.search(r'^title:\s*(.+)$', c.source, re.M)
                if m: title = m.group(1).strip().strip('"\'')
                c.source = ''
            if c.cell_type == 'code' and re.search(r'^#\|\s*echo:\s*false', c.source, re.M):
                c.metadata['transient'] = {'remove_source': True}
                c.source = ''
        body, _ = exporter.from_notebook_node(nb, resources={'metadata': {'name': title}})
        out = OUT / (p.stem + '.html')
        out.write_text(body)
        pages.append((p.stem + '.ipynb', title, out.name))
    by_group = {g: [pg for pg in pages if pg[0] != 'index.ipynb' and group_of(pg[0]) == g] for g in GROUPS}
    items = ''.join(f'<h2>{g}</h2><ul>' + ''.join(f'<li><a href="{h}">{t}</a></li>' for _, t, h in ps) + '</ul>'
                    for g, ps in by_group.items() if ps)
    (OUT / 'contents.html').write_text(f'<html><head><meta charset="utf-8"><title>mlfo</title></head><body>'
                                       f'<h1>mlfo</h1><p><a href="index.html">Home</a></p>{items}</body></html>')
    print(f'wrote {len(pages)} pages to {OUT.relative_to(ROOT)}/ (contents.html lists them)')


def check() -> int:
    bad = []
    if (NBS / 'sidebar.yml').read_text() != sidebar_yml() if (NBS / 'sidebar.yml').exists() else True: bad.append('nbs/sidebar.yml')
    if not (ROOT / 'README.md').exists() or (ROOT / 'README.md').read_text() != readme_md(): bad.append('README.md')
    if bad: print('out of date (run make docs-offline):', ', '.join(bad))
    return 1 if bad else 0


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--check', action='store_true', help='only check that sidebar.yml and README.md are current')
    a = ap.parse_args()
    sys.exit(check() if a.check else build())
