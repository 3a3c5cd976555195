try:  # the repo root on sys.path (python -m pytest, PYTHONPATH=.)
    from tests.pg import postgres_url, store_url  # noqa: F401
except ModuleNotFoundError:  # a bare `pytest`: only tests/ itself is on sys.path
    from pg import postgres_url, store_url  # noqa: F401
