"""Write environment.yml from the pins in settings.ini (one source of truth; a test checks they agree)."""
from configparser import ConfigParser
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def pins():
    cfg = ConfigParser(delimiters=['='])
    cfg.read(ROOT / 'settings.ini')
    c = cfg['DEFAULT']
    return c['requirements'].split(), c['dev_requirements'].split(), c['min_python']


def render():
    req, dev, py = pins()
    lines = ['# conda environment for mlfo: the same pins as settings.ini (tools/write_environment.py writes it).',
             '# conda env create -f environment.yml && conda activate mlfo && pip install -e . --no-deps',
             'name: mlfo', 'channels:', '  - conda-forge', 'dependencies:', f'  - python={py}', '  - pip', '  - make', '  - pip:']
    lines += [f'      - {r}' for r in req + dev]
    return '\n'.join(lines) + '\n'


if __name__ == '__main__':
    (ROOT / 'environment.yml').write_text(render())
    print('wrote environment.yml')
