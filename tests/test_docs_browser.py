"""The offline docs in a real browser (`make docs`; skipped without --docs): headless chromium
screenshots of the index, an equation chapter and a table page, math rendered as MathML, generated
tables and figures on the results pages, the sidebar on every page, no Quarto attribute litter,
and every internal link and anchor resolving. Screenshots go to _docs_offline/screenshots/."""
import re, shutil, subprocess, sys
from html.parser import HTMLParser
from pathlib import Path

import pytest

pytestmark = pytest.mark.docs
ROOT = Path(__file__).resolve().parent.parent
SITE = ROOT / '_docs_offline'
CHROMIUM = shutil.which('chromium') or shutil.which('chromium-browser') or shutil.which('google-chrome')
TABLE = """# Table 2: multi-level constraints (a test table)

| Constraint | UCF top-1 | HMDB top-1 |
|---|---|---|
| w/o (multi-level ✗) | 31.2 ± 0.4 | 18.0 ± 0.2 |
| Combined (multi-level ✓) | 35.9 ± 0.3 | 21.4 ± 0.5 |
"""


def chromium(*args, timeout=180) -> subprocess.CompletedProcess:
    if not CHROMIUM: pytest.fail('chromium is missing: `make docs-deps` installs it (apt-get install chromium)')
    return subprocess.run([CHROMIUM, '--headless', '--no-sandbox', '--disable-gpu', '--hide-scrollbars',
                           '--force-device-scale-factor=1', *args], capture_output=True, text=True, timeout=timeout)


def dom(page: Path) -> str:
    "The page's DOM after chromium parsed it."
    r = chromium('--dump-dom', page.as_uri())
    assert r.returncode == 0 and '<html' in r.stdout, r.stderr[-2000:]
    return r.stdout


def screenshot(page: Path, out: Path, height: int = 1400) -> Path:
    out.parent.mkdir(parents=True, exist_ok=True)
    r = chromium(f'--screenshot={out}', f'--window-size=1280,{height}', page.as_uri())
    assert out.exists(), r.stderr[-2000:]
    return out


@pytest.fixture(scope='module')
def site() -> Path:
    "The site `make docs-offline` built (built here when missing)."
    if not (SITE / 'index.html').exists():
        r = subprocess.run([sys.executable, str(ROOT / 'tools' / 'docs_offline.py')], capture_output=True, text=True, cwd=ROOT)
        assert r.returncode == 0, r.stderr[-4000:]
    return SITE


@pytest.fixture(scope='module')
def fake_site(tmp_path_factory) -> Path:
    "The site built from a made-up results folder: one table, one figure (the real results/ is the suite's)."
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    tmp = tmp_path_factory.mktemp('docs')
    (tmp / 'results' / 'tables').mkdir(parents=True); (tmp / 'results' / 'figures').mkdir()
    (tmp / 'results' / 'tables' / 'table2_constraints.md').write_text(TABLE)
    fig, ax = plt.subplots(figsize=(4, 3)); ax.plot([0, 1, 2], [30, 33, 35]); ax.set_title('a test figure')
    fig.savefig(tmp / 'results' / 'figures' / 'figure3_k_and_e.png', dpi=80)
    r = subprocess.run([sys.executable, str(ROOT / 'tools' / 'docs_offline.py'), '--out', str(tmp / 'site'),
                        '--results', str(tmp / 'results')], capture_output=True, text=True, cwd=ROOT)
    assert r.returncode == 0, r.stderr[-4000:]
    return tmp / 'site'


def _blank(png: Path) -> bool:
    from PIL import Image
    im = Image.open(png).convert('L').resize((160, 175))
    return sum(1 for n in im.histogram() if n) < 8


def test_screenshots(site, fake_site):
    "The index, an equation chapter and a table page, as a reader sees them."
    table_page = site / 'table2_constraints.html'
    if 'class="generated"' not in table_page.read_text() or '<table' not in table_page.read_text():
        table_page = fake_site / 'table2_constraints.html'   # no table generated yet under results/: the made-up one
    shots = {'index': site / 'index.html', 'graph': site / 'graph.html', 'table2': table_page}
    for name, page in shots.items():
        png = screenshot(page, SITE / 'screenshots' / f'{name}.png')
        assert png.stat().st_size > 20_000 and not _blank(png), png


def test_math_is_mathml_and_rendered_without_network(site):
    page = dom(site / 'graph.html')
    assert page.count('<math') > 20
    text = re.sub(r'<math.*?</math>', '', page, flags=re.S)
    for raw in ('$$', '\\mathcal', '\\frac', '\\begin{cases}'): assert raw not in text, raw
    assert not re.search(r'<script[^>]*src="https?://', page) and 'mathjax' not in page.lower()


def test_generated_tables_and_figures_are_shown(fake_site):
    table = dom(fake_site / 'table2_constraints.html')
    box = table[table.index('class="generated"'):]
    assert '<table' in box and 'Combined (multi-level ✓)' in box and '35.9 ± 0.3' in box
    fig = dom(fake_site / 'figure3_k_and_e.html')
    assert 'src="artefacts/figure3_k_and_e.png"' in fig and (fake_site / 'artefacts' / 'figure3_k_and_e.png').exists()
    assert 'Nothing generated yet' in dom(fake_site / 'table1_action_recognition.html')


def test_every_page_has_title_description_sidebar_and_no_litter(site):
    import yaml
    side = yaml.safe_load((ROOT / 'nbs' / 'sidebar.yml').read_text())['website']['sidebar']['contents']
    listed = sum(1 if isinstance(e, str) else len(e['contents']) for e in side)
    for page in sorted(site.rglob('*.html')):
        text = page.read_text()
        assert re.search(r'<h1 class="title">[^<]+</h1>', text), page.name
        assert re.search(r'<title>[^<]+ – mlfo</title>', text) and 'citation_title' in text, page.name
        if page.name != 'contents.html': assert re.search(r'<meta name="description" content="[^"]+">', text), page.name
        nav = re.search(r'<nav class="sidebar".*?</nav>', text, re.S).group(0)
        assert len(re.findall(r'<li><a href=', nav)) == listed + 1, page.name   # every sidebar.yml entry, and All pages
        for litter in ('source{', '{target=', '{.', ':::'): assert litter not in re.sub(r'<pre.*?</pre>', '', text, flags=re.S), (page.name, litter)


class _Links(HTMLParser):
    def __init__(self):
        super().__init__(); self.links, self.ids = [], set()
    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if 'id' in a: self.ids.add(a['id'])
        for k in ('href', 'src'):
            if a.get(k): self.links.append(a[k])


def test_links_and_anchors_resolve(site):
    import posixpath
    parsed = {}
    for page in site.rglob('*.html'):   # pages in folders (experiments/) too, keyed by their path in the site
        p = _Links(); p.feed(page.read_text()); parsed[page.relative_to(site).as_posix()] = p
    broken, internal = [], 0
    for name, p in parsed.items():
        for link in p.links:
            if re.match(r'(https?:|mailto:|data:)', link): continue
            internal += 1
            target, _, anchor = link.partition('#')
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), target)) if target else name
            if not (site / target).exists(): broken.append(f'{name}: {link}'); continue
            if anchor and target.endswith('.html') and anchor not in parsed[target].ids: broken.append(f'{name}: {link} (no anchor)')
    assert internal > 500 and not broken, broken[:20]
