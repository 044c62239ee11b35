# Packaging for nbdev 2 (settings.ini is the single source of metadata and pins).
from configparser import ConfigParser
import setuptools

cfg = ConfigParser(delimiters=['='])
cfg.read('settings.ini', encoding='utf-8')
c = cfg['DEFAULT']

setuptools.setup(
    name=c['lib_name'], version=c['version'], description=c['description'],
    license='Apache-2.0', author=c['author'], author_email=c['author_email'],
    packages=setuptools.find_packages(include=['mlfo', 'mlfo.*']),
    include_package_data=True, python_requires=f">={c['min_python']}",
    install_requires=c.get('requirements', '').split(),
    extras_require={'dev': c.get('dev_requirements', '').split()},
    entry_points={'console_scripts': c.get('console_scripts', '').split(),
                  'nbdev': [f"{c['lib_path']}={c['lib_path']}._modidx:d"]},
    zip_safe=False,
)
