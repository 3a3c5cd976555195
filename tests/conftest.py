from tests.pg import postgres_url, store_url  # noqa: F401  (fixtures shared by every test folder)
