"""Offline docs: the nbdev site without Quarto, rendered so that a reader can cite it.

`nbdev_docs` needs Quarto, which needs the network to install. This builds the same pages offline:
1. writes nbs/sidebar.yml (the Quarto sidebar, grouped Method / Data / Training / Evaluation / Results, then
   Experiments: every notebook of nbs/experiments/, the measurement write-ups),
2. runs nbdev's own notebook processors (`nbdev.serve.proc_nbs`: front matter, show_doc API
   reference, hidden cells removed) into _proc/,
3. renders every processed notebook with pandoc (math as MathML: no network, no script) into
   _docs_offline/<output-file>, the page names of the Quarto build (07_graph.ipynb -> graph.html,
   experiments/x.ipynb -> experiments/x.html; links between notebooks, `[text](x.ipynb)`, become links to those pages),
   each with its title, description, citation metadata and the sidebar of sidebar.yml; the results
   and figure pages show the tables and figures already generated under results/ (nothing re-runs),
4. writes README.md from nbs/index.ipynb (what `nbdev_readme` does with Quarto); the line `<!-- results -->` of the index
   becomes a table read from the run records and a link to the claims' verdicts (README.md and the offline index page alike).
`--check` only verifies that nbs/sidebar.yml and README.md are up to date (used by the tests).
Needs pandoc (apt-get install pandoc); `make docs` also checks the pages in headless chromium.
"""
import argparse, html, json, posixpath, re, shutil, sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NBS = ROOT / 'nbs'
OUT = ROOT / '_docs_offline'
GROUPS = ('Method', 'Data', 'Training', 'Evaluation', 'Results', 'Experiments')
EXPERIMENTS = 'experiments'   # nbs/experiments/: measurement write-ups that read their numbers from the run records


def group_of(name: str) -> str:
    "Sidebar section of a notebook (its path under nbs/), from its folder or its number."
    if name.startswith(EXPERIMENTS + '/'): return 'Experiments'
    m = re.match(r'(\d+)', name)
    if not m: return 'Results'          # run_ablation, table*, figure* notebooks
    n = int(m.group(1))
    if n in (0, 1) or 4 <= n <= 9: return 'Method'
    if n == 3: return 'Data'
    if n in (10, 13): return 'Training'
    if n == 11: return 'Evaluation'
    return 'Results'


def notebooks():
    "The notebooks of the site but the index, as paths under nbs/: the chapters, then every notebook of nbs/experiments/."
    paths = [*NBS.glob('*.ipynb'), *(NBS / EXPERIMENTS).glob('*.ipynb')]
    return sorted(p.relative_to(NBS).as_posix() for p in paths if not p.name.startswith(('_', '.')) and p.name != 'index.ipynb')


def sidebar_yml() -> str:
    lines = ['website:', '  sidebar:', '    contents:', '      - index.ipynb']
    for g in GROUPS:
        members = [n for n in notebooks() if group_of(n) == g]
        if not members: continue
        lines += [f'      - section: {g}', '        contents:'] + [f'          - {n}' for n in members]
    return '\n'.join(lines) + '\n'


RESULTS_MARKER = '<!-- results -->'  # the line of nbs/index.ipynb that `results_section` replaces
RESULT_ROWS = (  # the index's results table: a row's name and its run record (a key in results/runs/, or a reference's record)
    ('random initialisation (the floor)', 'e2cf551dcf47'),
    ("MLFO, authors' objective, reference run", 'results/reference/mlfo-tiny-reference.json'),
    ("MLFO, authors' objective, seed 0", 'fb74b33bfcfc'),
    ("MLFO, authors' objective, seed 1", 'a1ffb325db69'),
    ("MLFO, authors' objective, seed 2", 'e3863d0e1533'),
    ("MLFO, printed equations, seed 0", 'b2a80069ce91'),
    ("MLFO, printed equations, seed 1", '1e7f3d33c1fc'),
    ('supervised from scratch (the ceiling)', 'results/reference/supervised-tiny-reference.json'))
RESULT_COLUMNS = {'UCF-style linear top-1': 'synthetic/linear/top1', 'UCF-style R@1': 'synthetic/retrieval/R@1',
                  'UCF-style finetune top-1': 'synthetic/finetune/top1', 'HMDB-style linear top-1': 'synthetic-hmdb/linear/top1'}


def repo_url(path: str) -> str:
    "A file of the repository on its git host (settings.ini's git_url and branch)."
    import configparser
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / 'settings.ini')
    return f"{cfg['DEFAULT']['git_url']}/blob/{cfg['DEFAULT']['branch']}/{path}"


def results_section() -> str:
    "The index's results: one table read from the run records (one number a cell) and the claims' verdicts, from the same records."
    if str(ROOT) not in sys.path: sys.path.insert(0, str(ROOT))   # this checkout's package, not an installed one
    from mlfo.results import BACKBONE_NAMES, metric, read_records
    records = read_records(ROOT / 'results' / 'runs')
    rows = []
    for name, source in RESULT_ROWS:
        key = json.loads((ROOT / source).read_text())['key'] if source.endswith('.json') else source
        rows.append((name, key, records.get(key)))
    found = [r for _, _, r in rows if r]
    setting = lambda f: ' / '.join(sorted({str(f(r)) for r in found}))
    epochs = ' / '.join(sorted({str(r['params']['epochs']) for r in found if r.get('init') == 'mlfo'}))
    lines = [f"`{setting(lambda r: r['params']['preset'])}` preset, {setting(lambda r: BACKBONE_NAMES[r['params']['backbone']])}, "
             f"seed {setting(lambda r: r['seed'])}; the MLFO rows pretrained for {epochs} epochs. One run record a row.", '',
             '| run | ' + ' | '.join(RESULT_COLUMNS) + ' | record |', '|------' + '|---' * (len(RESULT_COLUMNS) + 1) + '|']   # pandoc: dashes are relative widths
    for name, key, rec in rows:
        vals = [metric(rec, path) if rec else None for path in RESULT_COLUMNS.values()]
        lines.append(f'| {name} | ' + ' | '.join('-' if v is None else f'{100 * v:.1f}' for v in vals)
                     + f" | `{key}`{'' if rec else ' (no record)'} |")
    # the verdicts, folded by artefact (a fixed size however many are decided), from the same records
    from mlfo.claims import claims_summary_markdown, decide_claims
    df = decide_claims(records)
    lines += ['', f"**The paper's claims** ({len(df)}), each a paired Student-t test over seeds on the UCF-style set; "
                  f"each with its interval in [`claims.md`]({repo_url('results/tables/claims.md')}), every cell beside the "
                  f"paper's in [`parity.md`]({repo_url('results/tables/parity.md')}), every record in "
                  f"[`results/runs`]({repo_url('results/runs/README.md')}).", '', claims_summary_markdown(df)]
    if df['plateau'].map(bool).any():
        lines += ['', '‡: against runs that never left the instance plateau (Known issues).']
    lines += ['', suite_status(records)]
    return '\n'.join(lines)


def suite_status(records: dict) -> str:
    "How much of the suite the records hold: a line for the README, true at every commit."
    from mlfo.suite import suite, unique_runs
    keys = {k for k, _, _ in unique_runs(suite())}
    done = len(keys & set(records))
    if done == len(keys): return f'Every one of the suite\'s {len(keys)} runs is recorded.'
    return (f'{done} of the suite\'s {len(keys)} runs are recorded; `make results` runs the rest, those the claims '
            f'lack first ([The suite]({SITE}suite.html)).')


def readme_md(results: str | None = None) -> str:
    "README.md from nbs/index.ipynb: title, description, then the markdown cells (code cells as code blocks); `results`: `results_section()` if already made."
    nb = json.loads((NBS / 'index.ipynb').read_text())
    parts = ['<!-- Generated from nbs/index.ipynb by tools/docs_offline.py; edit the notebook, not this file. -->']
    for c in nb['cells']:
        src = ''.join(c['source'])
        if c['cell_type'] == 'markdown': parts.append(src.replace(RESULTS_MARKER, results or results_section()) if RESULTS_MARKER in src else src)
        elif c['cell_type'] == 'code' and not src.lstrip().startswith('#| hide'):
            parts.append('```python\n' + src + '\n```')
    text = '\n\n'.join(parts) + '\n'
    return re.sub(r'^> (.*)$', r'> \1', text, count=1, flags=re.M)


SITE = 'https://mlfo.github.io/mlfo/'   # doc_host + doc_baseurl: links to it become relative offline
def citation() -> dict:
    "The paper to cite, from CITATION.cff (nbs/_quarto.yml repeats it for Quarto; a test checks they agree)."
    import yaml
    p = yaml.safe_load((ROOT / 'CITATION.cff').read_text())['preferred-citation']
    return {'title': p['title'], 'authors': [f"{a['family-names']}, {a['given-names']}" for a in p['authors']],
            'conference': p['collection-title'], 'year': str(p['year'])}


ARTEFACT_PAGES = {  # notebook -> the file-name prefixes of its generated output under results/
    'table1_action_recognition.ipynb': ['table1_action_recognition'], 'table2_constraints.ipynb': ['table2_constraints'],
    'table3_temporal.ipynb': ['table3_temporal'], 'table4_retrieval.ipynb': ['table4_retrieval'],
    'figure3_k_and_e.ipynb': ['figure3_k_and_e'], 'figure4_neighbours.ipynb': ['figure4_neighbours'],
    'figure5_temporal_cam.ipynb': ['figure5_temporal_cam'], '15c_report.ipynb': ['pretrain_curves'],
    '15_results.ipynb': ['claims', 'parity']}
CSS = """
body { margin: 0; font: 16px/1.55 system-ui, -apple-system, 'Segoe UI', 'DejaVu Sans', sans-serif; color: #212529; }
a { color: #2780e3; text-decoration: none; } a:hover { text-decoration: underline; }
nav.sidebar { position: fixed; top: 0; left: 0; bottom: 0; width: 17rem; overflow-y: auto; padding: 1rem 1.2rem;
  background: #f7f7f9; border-right: 1px solid #e5e5e5; font-size: 0.9rem; box-sizing: border-box; }
nav.sidebar .site { font-weight: 700; font-size: 1.2rem; display: block; margin-bottom: 0.8rem; color: #212529; }
nav.sidebar h2 { font-size: 0.8rem; text-transform: uppercase; letter-spacing: 0.05em; color: #6c757d; margin: 1rem 0 0.3rem; }
nav.sidebar ul { list-style: none; padding: 0; margin: 0; } nav.sidebar li { margin: 0.15rem 0; }
nav.sidebar a.active { font-weight: 700; color: #212529; }
main { margin-left: 17rem; padding: 1.5rem 3rem 4rem; max-width: 60rem; }
h1.title { margin-bottom: 0.2rem; } p.subtitle { font-size: 1.2rem; font-style: italic; color: #6c757d; margin-top: 0; }
pre { background: #f8f9fa; padding: 0.6rem 0.8rem; overflow-x: auto; border-radius: 4px; font-size: 0.85rem; }
code { font-size: 0.9em; } table { border-collapse: collapse; margin: 1rem 0; font-size: 0.9rem; }
th, td { border-bottom: 1px solid #dee2e6; padding: 0.3rem 0.6rem; text-align: left; vertical-align: top; }
img { max-width: 100%; } math[display="block"] { margin: 0.8rem 0; overflow-x: auto; }
div.generated { border-left: 3px solid #2780e3; padding-left: 1rem; margin: 1.5rem 0; }
a.source-link { float: right; font-size: smaller; }
footer { margin-top: 3rem; font-size: 0.85rem; color: #6c757d; }
"""


def front_matter(nb) -> dict:
    "The YAML front matter nbdev put in the processed notebook's first raw cell."
    import yaml
    for c in nb.cells:
        if c.cell_type == 'raw' and c.source.startswith('---'):
            return yaml.safe_load(c.source.strip().strip('-')) or {}
    return {}


def page_of(nb_name: str, fm: dict) -> str:
    "The page name of the Quarto build: nbdev's output-file (07_graph.ipynb -> graph.html)."
    return fm.get('output-file') or Path(nb_name).stem + '.html'


def _directives(src: str) -> tuple[dict, str]:
    "Quarto cell options (`#| key: value`) and the code without them."
    opts, lines = {}, src.splitlines()
    while lines and lines[0].startswith('#|'):
        k, _, v = lines.pop(0)[2:].partition(':')
        opts[k.strip()] = v.strip()
    return opts, '\n'.join(lines).strip('\n')


def _output_markdown(o) -> str:
    "One cell output as pandoc markdown (raw HTML where it is HTML)."
    if o.output_type == 'stream': return '```text\n' + o.text.rstrip('\n') + '\n```'
    if o.output_type == 'error': return '```text\n' + f"{o.ename}: {o.evalue}" + '\n```'
    data = o.get('data', {})
    if 'text/markdown' in data: return data['text/markdown']
    if 'image/png' in data: return f'```{{=html}}\n<img src="data:image/png;base64,{data["image/png"].strip()}" alt="figure">\n```'
    if 'text/html' in data: return '```{=html}\n' + data['text/html'] + '\n```'
    if 'text/plain' in data: return '```text\n' + data['text/plain'].rstrip('\n') + '\n```'
    return ''


def generated_section(nb_name: str, out: Path, results: Path, up: str = '') -> str:
    "The tables and figures this notebook generated under results/ (copied, not re-run), as markdown."
    prefixes = ARTEFACT_PAGES.get(nb_name)
    if not prefixes: return ''
    tables = sorted(p for pre in prefixes for p in (results / 'tables').glob(f'{pre}*.md'))
    figures = sorted(p for pre in prefixes for p in (results / 'figures').glob(f'{pre}*.png'))
    parts = ['## Generated output', '',
             'What the last run of this notebook wrote under `results/` (the docs show it; they do not re-run anything).']
    for t in tables:
        text = re.sub(r'^# (.*)$', r'### \1', t.read_text(), flags=re.M)   # the table file's title below this page's
        parts += ['', f'`results/tables/{t.name}`', '', text]
    for f in figures:
        (out / 'artefacts').mkdir(exist_ok=True)
        shutil.copy2(f, out / 'artefacts' / f.name)
        parts += ['', f'![`results/figures/{f.name}`]({up}artefacts/{f.name})']
    if not tables and not figures:
        parts += ['', f'Nothing generated yet: `mlfo results --only {prefixes[0].split("_")[0]}` (or `make results`) writes it.']
    return '::: {.generated}\n' + '\n'.join(parts) + '\n:::'


def up_of(page: str) -> str:
    "The way from a page back to the site's root: '' for index.html, '../' for experiments/x.html."
    return '../' * page.count('/')


def notebook_links(text: str, nb_name: str, pages: dict) -> str:
    "Markdown links to another notebook, `[text](../15b_suite.ipynb#anchor)`, as links to its page, relative to this page."
    here = posixpath.dirname(nb_name)
    def fix(m):
        target = posixpath.normpath(posixpath.join(here, m.group(1)))
        if target not in pages: return m.group(0)
        return '](' + posixpath.relpath(pages[target][0], here or '.') + (m.group(2) or '') + ')'
    return re.sub(r'\]\((?![a-z]+:)([^()\s]+?\.ipynb)(#[^()\s]*)?\)', fix, text)


def notebook_markdown(nb, nb_name: str, out: Path, results: Path, pages: dict | None = None) -> str:
    "A processed notebook as one pandoc markdown document; the generated output goes before the first code cell."
    parts, placed = [], False
    up = up_of(nb_name)
    extra = generated_section(nb_name, out, results, up)
    for c in nb.cells:
        if c.cell_type == 'raw': continue
        if c.cell_type == 'markdown':
            parts.append(notebook_links(c.source, nb_name, pages or {})); continue
        if extra and not placed: parts.append(extra); placed = True
        opts, code = _directives(c.source)
        if opts.get('echo') != 'false' and code: parts.append('```python\n' + code + '\n```')
        for o in c.get('outputs', []): parts.append(_output_markdown(o))
    if extra and not placed: parts.append(extra)
    text = '\n\n'.join(p for p in parts if p.strip())
    if nb_name == 'index.ipynb' and RESULTS_MARKER in text: text = text.replace(RESULTS_MARKER, results_section())
    text = text.replace('](' + SITE, '](' + up).replace('href="' + SITE, 'href="' + up)   # doc_host links stay in the offline site
    text = text.replace('](' + SITE.rstrip('/') + ')', '](' + up + 'index.html)')
    # nbdev's source links: `[source](url){target="_blank" style="float:right; ..."}` -> a plain class pandoc knows
    return re.sub(r'\[source\]\(([^)]+)\)\{[^}]*\}', r'[source](\1){.source-link}', text)


def pandoc_html(markdown: str) -> str:
    "Markdown -> an HTML fragment with MathML math and highlighted code (pandoc; no network, no script)."
    import subprocess
    if not shutil.which('pandoc'): raise SystemExit('pandoc is missing: apt-get install pandoc (the offline docs render math with it)')
    r = subprocess.run(['pandoc', '-f', 'markdown+tex_math_dollars+raw_html-implicit_figures', '-t', 'html5', '--mathml',
                        '--highlight-style=pygments'], input=markdown, capture_output=True, text=True)
    if r.returncode: raise SystemExit(f'pandoc failed: {r.stderr[-2000:]}')
    return r.stdout


def highlight_css() -> str:
    "pandoc's CSS for highlighted code (taken from a standalone render of a one-line snippet)."
    import subprocess
    r = subprocess.run(['pandoc', '-s', '--highlight-style=pygments', '-t', 'html5', '--metadata', 'title=x'],
                       input='```python\nx = 1\n```', capture_output=True, text=True)
    style = '\n'.join(re.findall(r'<style[^>]*>(.*?)</style>', r.stdout, re.S))
    return style[style.index('pre > code.sourceCode'):] if 'pre > code.sourceCode' in style else ''   # not the page layout before it


def sidebar_html(pages: dict, active: str, up: str = '') -> str:
    "The sidebar of nbs/sidebar.yml as HTML links to the page names (from a page `up` below the site's root)."
    import yaml
    side = yaml.safe_load((NBS / 'sidebar.yml').read_text())['website']['sidebar']['contents']
    link = lambda nb: (f'<li><a href="{up}{pages[nb][0]}"' + (' class="active"' if nb == active else '')
                       + f'>{html.escape(pages[nb][1])}</a></li>') if nb in pages else ''
    items = [f'<a class="site" href="{up}index.html">mlfo</a>', '<ul>']
    for entry in side:
        if isinstance(entry, str): items.append(link(entry))
        else: items += ['</ul>', f'<h2>{html.escape(entry["section"])}</h2>', '<ul>'] + [link(n) for n in entry['contents']]
    items += ['</ul>', f'<h2>Site</h2><ul><li><a href="{up}contents.html">All pages</a></li></ul>']
    return '<nav class="sidebar" aria-label="chapters">' + ''.join(items) + '</nav>'


def page_html(title: str, description: str, body: str, sidebar: str, page: str) -> str:
    "A whole page: head with title, description and citation metadata; the sidebar; the body."
    c = citation()
    meta = [f'<meta name="description" content="{html.escape(description)}">',
            f'<meta name="citation_title" content="{html.escape(c["title"])}">',
            *[f'<meta name="citation_author" content="{html.escape(a)}">' for a in c['authors']],
            f'<meta name="citation_conference_title" content="{html.escape(c["conference"])}">',
            f'<meta name="citation_publication_date" content="{c["year"]}">',
            f'<link rel="canonical" href="{SITE}{page}">']
    subtitle = f'<p class="subtitle">{html.escape(description)}</p>' if description else ''
    up = up_of(page)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f'<meta name="viewport" content="width=device-width, initial-scale=1">'
            f'<title>{html.escape(title)} – mlfo</title>{"".join(meta)}<link rel="stylesheet" href="{up}site.css"></head>\n'
            f'<body>{sidebar}<main><header><h1 class="title">{html.escape(title)}</h1>{subtitle}</header>\n{body}\n'
            f'<footer>mlfo reproduces {html.escape(c["title"])} ({c["conference"].split("(")[-1].rstrip(")")} {c["year"]}); '
            f'cite the paper (see <a href="{up}index.html#citing">Citing</a>).</footer></main></body></html>\n')


def drop_dead_anchors(out: Path) -> list[str]:
    "nbdev links every backticked name of _modidx; private names have no heading to land on: keep their code, drop the link."
    pages = list(out.rglob('*.html'))   # pages in folders (experiments/) too
    ids = {p.relative_to(out).as_posix(): set(re.findall(r'\bid="([^"]+)"', p.read_text())) for p in pages}
    dropped = []
    def fix(m, here):
        page, anchor = posixpath.normpath(posixpath.join(here, m.group(1))), m.group(2)
        if page in ids and anchor not in ids[page]:
            dropped.append(f'{page}#{anchor}'); return m.group(3)
        return m.group(0)
    for p in pages:
        text, here = p.read_text(), posixpath.dirname(p.relative_to(out).as_posix())
        new = re.sub(r'<a\s+href="([\w./-]+\.html)#([^"]+)"[^>]*>(<code>[^<]*</code>)</a>', lambda m, here=here: fix(m, here), text)
        if new != text: p.write_text(new)
    return dropped


def build(out: Path = OUT, # the site folder
          results: Path = ROOT / 'results', # where the generated tables and figures are read
         ):
    "The whole site (and sidebar.yml, README.md)."
    from nbdev.serve import proc_nbs
    import nbformat
    (NBS / 'sidebar.yml').write_text(sidebar_yml())
    (ROOT / 'README.md').write_text(readme_md())
    proc_nbs(str(NBS), n_workers=0)
    out, results = Path(out), Path(results)
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    if (NBS / 'images').exists(): shutil.copytree(NBS / 'images', out / 'images')   # pictures the chapters show
    (out / 'site.css').write_text(CSS + highlight_css() + (NBS / 'styles.css').read_text())
    proc = ROOT / '_proc'
    nbs = {p.relative_to(proc).as_posix(): nbformat.read(p, as_version=4)
           for p in sorted([*proc.glob('*.ipynb'), *(proc / EXPERIMENTS).glob('*.ipynb')])}
    pages = {}   # notebook (path under nbs/) -> (page, title, description); a notebook in a folder gets a page in that folder
    for name, nb in nbs.items():
        fm = front_matter(nb)
        page = posixpath.join(posixpath.dirname(name), page_of(posixpath.basename(name), fm))
        pages[name] = (page, str(fm.get('title') or Path(name).stem), str(fm.get('description') or ''))
    for name, nb in nbs.items():
        page, title, description = pages[name]
        body = pandoc_html(notebook_markdown(nb, name, out, results, pages))
        (out / page).parent.mkdir(parents=True, exist_ok=True)
        (out / page).write_text(page_html(title, description, body, sidebar_html(pages, name, up_of(page)), page))
    unlinked = drop_dead_anchors(out)
    if unlinked: print(f'{len(unlinked)} automatic links to names without a heading made plain code: {", ".join(sorted(set(unlinked)))}')
    by_group = {g: [pages[n] for n in pages if n != 'index.ipynb' and group_of(n) == g] for g in GROUPS}
    items = ''.join(f'<h2>{g}</h2><ul>' + ''.join(f'<li><a href="{h}">{html.escape(t)}</a>: {html.escape(d)}</li>' for h, t, d in ps) + '</ul>'
                    for g, ps in by_group.items() if ps)
    (out / 'contents.html').write_text(page_html('All pages', 'Every chapter of mlfo, grouped as in the sidebar.', items,
                                                 sidebar_html(pages, ''), 'contents.html'))
    print(f'wrote {len(pages)} pages to {out}/ (index.html; contents.html lists them)')


def check() -> int:
    bad = []
    if (NBS / 'sidebar.yml').read_text() != sidebar_yml() if (NBS / 'sidebar.yml').exists() else True: bad.append('nbs/sidebar.yml')
    if not (ROOT / 'README.md').exists() or (ROOT / 'README.md').read_text() != readme_md(): bad.append('README.md')
    if bad: print('out of date (run make docs-offline):', ', '.join(bad))
    return 1 if bad else 0


if __name__ == '__main__':
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument('--check', action='store_true', help='only check that sidebar.yml and README.md are current')
    ap.add_argument('--out', default=str(OUT), help='site folder (default _docs_offline)')
    ap.add_argument('--results', default=str(ROOT / 'results'), help='folder of the generated tables/ and figures/ to show')
    a = ap.parse_args()
    sys.exit(check() if a.check else build(Path(a.out), Path(a.results)))
