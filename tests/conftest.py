"""pytest setup: the `slow` marker (run with --slow) and a plain closing summary line."""
import pytest


def pytest_addoption(parser):
    parser.addoption('--slow', action='store_true', default=False, help='also run tests marked slow')


def pytest_configure(config):
    config.addinivalue_line('markers', 'slow: long check, run only with --slow (make test-slow)')


def pytest_collection_modifyitems(config, items):
    if config.getoption('--slow'): return
    skip = pytest.mark.skip(reason='slow: run with --slow (make test-slow)')
    for item in items:
        if 'slow' in item.keywords: item.add_marker(skip)


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    stats = terminalreporter.stats
    count = lambda k: len([r for r in stats.get(k, []) if getattr(r, 'when', 'call') in ('call', 'setup')])
    passed, failed, skipped = count('passed'), count('failed') + count('error'), count('skipped')
    terminalreporter.write_line(f'{passed} passed, {failed} failed, {skipped} skipped')
