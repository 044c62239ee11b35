"""Repository-level checks: pins agree, docs build offline, the command line works from a shell."""
import json, re, subprocess, sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / 'tools'))


def test_environment_yml_matches_settings_ini():
    import write_environment
    req, dev, py = write_environment.pins()
    env = (ROOT / 'environment.yml').read_text()
    assert env == write_environment.render(), 'environment.yml is stale: run python tools/write_environment.py'
    listed = re.findall(r'^\s+- ([A-Za-z0-9_.-]+==\S+)$', env, re.M)
    assert sorted(listed) == sorted(req + dev)
    assert f'python={py}' in env
    assert all('==' in r for r in req + dev), 'every requirement is pinned'


def test_sidebar_and_readme_current():
    r = subprocess.run([sys.executable, str(ROOT / 'tools' / 'docs_offline.py'), '--check'], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_readme_results_come_from_the_records():
    "The index's results line becomes a table read from the run records and the verdicts folded by artefact; the README stays short."
    import json, docs_offline
    from mlfo.results import metric, read_records
    generated = docs_offline.results_section()
    text = docs_offline.readme_md(generated)
    assert docs_offline.RESULTS_MARKER in (ROOT / 'nbs' / 'index.ipynb').read_text() and docs_offline.RESULTS_MARKER not in text
    records = read_records(ROOT / 'results' / 'runs')
    ref = json.loads((ROOT / 'results' / 'reference' / 'mlfo-tiny-reference.json').read_text())['key']
    row = next(line for line in text.splitlines() if line.startswith('|') and f'`{ref}`' in line)
    cells = [c.strip() for c in row.strip('|').split('|')][1:-1]
    assert cells == [f'{100 * metric(records[ref], p):.1f}' for p in docs_offline.RESULT_COLUMNS.values()]
    assert '(no record)' not in text
    assert 'results/tables/claims.md' in text and 'undecided' in text   # every claim with its interval, linked
    from mlfo.claims import claims_summary_markdown, decide_claims
    assert claims_summary_markdown(decide_claims(records)) in text   # the verdicts, folded by artefact, from the same records
    assert docs_offline.suite_status(records) in text   # how much of the suite is recorded, from the same records
    from mlfo.suite import suite, unique_runs
    keys = [k for k, _, _ in unique_runs(suite())]
    assert docs_offline.suite_status({}).startswith(f"0 of the suite's {len(keys)} runs are recorded;")
    assert docs_offline.suite_status({k: {} for k in keys[1:]}).startswith(f"{len(keys) - 1} of the suite's {len(keys)}")
    assert docs_offline.suite_status({k: {} for k in keys}) == f"Every one of the suite's {len(keys)} runs is recorded."
    prose = len(text.split()) - len(generated.split())
    assert prose <= 1200, f'README.md has {prose} words of prose: move detail to its chapter'
    assert len(generated.split()) <= 500, f'the generated results section has {len(generated.split())} words: fold it further'


def test_docs_offline_has_a_page_per_notebook_with_api_reference(tmp_path):
    import shutil
    if not shutil.which('pandoc'): pytest.skip('pandoc is missing: `make docs-deps` installs it (apt-get install pandoc)')
    r = subprocess.run([sys.executable, str(ROOT / 'tools' / 'docs_offline.py')], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-4000:]
    out, nbs_dir = ROOT / '_docs_offline', ROOT / 'nbs'
    nbs = sorted(p.relative_to(nbs_dir).as_posix() for p in [*nbs_dir.glob('*.ipynb'), *(nbs_dir / 'experiments').glob('*.ipynb')]
                 if not p.name.startswith(('_', '.')))
    # the Quarto build's names (doc_host URLs); a notebook of nbs/experiments/ gets a page in experiments/
    page = lambda nb: re.sub(r'(^|/)\d+[a-z]?_', r'\1', nb[:-len('.ipynb')]) + '.html'
    pages = sorted(p.relative_to(out).as_posix() for p in out.rglob('*.html') if p.stem != 'contents')
    assert pages == sorted(page(nb) for nb in nbs)
    contents = (out / 'contents.html').read_text()
    for nb in nbs:
        if nb != 'index.ipynb': assert f'href="{page(nb)}"' in contents, nb
    # the API reference (show_doc) of an exported function is rendered into its page
    cfg = (out / 'config.html').read_text()
    assert re.search(r'<h3 id="get_preset">get_preset', cfg), 'show_doc heading for get_preset missing'
    assert 'one of `PRESETS`' in cfg or 'one of <code>PRESETS</code>' in cfg, 'docments of get_preset missing'
    def defines(nb):   # a chapter whose exported cells define a function or class (mlfo.results only re-exports)
        cells = json.loads((ROOT / 'nbs' / nb).read_text())['cells']
        return any(re.search(r'^(def|class) ', ''.join(c['source']), re.M) for c in cells if ''.join(c['source']).startswith('#| export'))
    for mod_nb in [p for p in nbs if defines(p)]:   # chapters that export a function or class
        html = (out / page(mod_nb)).read_text()
        assert re.search(r'<h[34][^>]*>', html), f'{mod_nb}: no API reference headings'
    graph = (out / 'graph.html').read_text()
    assert '<math' in graph and '$$' not in graph and 'mathjax' not in graph.lower()   # MathML, no script from a CDN
    assert '<h1 class="title">Distribution graphs' in graph and '<meta name="description"' in graph
    assert 'href="distributed.html#rank_slice"' in graph                               # doc_host links made relative
    assert 'citation_title' in graph and 'href="contents.html"' in graph                # citation metadata, navigation
    assert not [p.name for p in out.rglob('*.html') if 'source{' in p.read_text() or '{target=' in p.read_text()]
    for sub in [p for p in out.rglob('*.html') if p.parent != out]:   # a page in a folder reaches the site's root by ../
        assert 'href="../site.css"' in sub.read_text() and 'href="../index.html"' in sub.read_text(), sub
    # a link between notebooks, [text](experiments/x.ipynb), becomes a link to that page
    assert 'href="experiments/synthetic_benchmark_bar.html"' in (out / 'synthetic.html').read_text()
    assert 'Generated output' in (out / 'report.html').read_text()


def test_citation_metadata_agrees():
    "CITATION.cff (GitHub's 'Cite this repository', the offline pages) and the Quarto citation block name one paper."
    import yaml, docs_offline
    cff = docs_offline.citation()
    q = yaml.safe_load((ROOT / 'nbs' / '_quarto.yml').read_text())['citation']
    assert q['title'] == cff['title'] and q['issued'] == int(cff['year']) and q['container-title'] == cff['conference']
    assert [f"{a['family']}, {a['given']}" for a in q['author']] == cff['authors']
    assert cff['title'] in (ROOT / 'README.md').read_text()


def test_quarto_config_points_at_the_sidebar():
    q = (ROOT / 'nbs' / '_quarto.yml').read_text()
    assert 'sidebar.yml' in q and 'nbdev.yml' in q
    side = (ROOT / 'nbs' / 'sidebar.yml').read_text()
    for g in ('Method', 'Training'): assert f'section: {g}' in side


def test_cli_from_a_shell():
    mlfo = Path(sys.executable).parent / 'mlfo'
    r = subprocess.run([str(mlfo), 'config', '--preset', 'ucf101-r3d18', 'K=200'], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert 'K: 200' in r.stdout and 'epochs: 300' in r.stdout
    r = subprocess.run([str(mlfo), 'config', 'E=1.5'], capture_output=True, text=True)
    assert r.returncode == 2 and 'loss.E' in r.stderr


def test_docs_exec_check_finds_a_name_the_docs_build_never_defines(tmp_path):
    "nbdev's docs build runs only cells that export or import: a test cell that imports must not need a plain cell's names."
    import nbformat, check_nbdev
    def notebook(cells):
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(s) for s in cells])
        p = tmp_path / 'nb.ipynb'
        nbformat.write(nb, p)
        return p
    plain = '#| export\ndef f(): return 1'
    bad = notebook([plain, 'helper = 2', 'from math import pi\nassert helper == 2'])
    [problem] = check_nbdev.docs_exec_problems(bad)
    assert 'cell 2' in problem and 'cell 1' in problem and '`helper`' in problem
    assert check_nbdev.docs_exec_problems(notebook([plain, 'helper = 2', 'from math import pi', 'assert helper == 2'])) == []
    assert check_nbdev.docs_exec_problems(notebook(['helper = 2', 'from math import pi\nassert helper == 2'])) == []   # no API docs: not run
    # an exported function's argument of the same name is not a notebook name: the cell still fails in the docs build
    [problem] = check_nbdev.docs_exec_problems(notebook(['#| export\ndef g(helper): return helper', 'helper = 2', 'import math\nassert helper == 2']))
    assert '`helper`' in problem
