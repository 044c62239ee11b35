"""pytest setup: the `slow` marker (run with --slow), the `docs` marker (run with --docs: `make docs`)
and a plain closing summary line."""
import pytest


def pytest_addoption(parser):
    parser.addoption('--slow', action='store_true', default=False, help='also run tests marked slow')
    parser.addoption('--docs', action='store_true', default=False, help='also run the docs checks in headless chromium (make docs)')


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: long check, run only with --slow (make test-slow)')
    config.addinivalue_line('markers', 'docs: the offline docs in headless chromium, run only with --docs (make docs)')


def pytest_collection_modifyitems(config, items):
    skip_docs = pytest.mark.skip(reason='docs: run with --docs (make docs)')
    for item in items:
        if 'docs' in item.keywords and not config.getoption('--docs'): item.add_marker(skip_docs)
    if config.getoption('--slow'): return
    skip = pytest.mark.skip(reason='slow: run with --slow (make test-slow)')
    for item in items:
        if 'slow' in item.keywords: item.add_marker(skip)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    stats = terminalreporter.stats
    count = lambda k: len([r for r in stats.get(k, []) if getattr(r, 'when', 'call') in ('call', 'setup')])
    passed, failed, skipped = count('passed'), count('failed') + count('error'), count('skipped')
    terminalreporter.write_line(f'{passed} passed, {failed} failed, {skipped} skipped')
