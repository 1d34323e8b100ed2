"""Makes pytest put the repository root first on sys.path, so that `.venv/bin/pytest
tests/core/...` imports the project's `core` package and not the `tests/core` folder (which has
no __init__.py). Fixtures live in tests/conftest.py."""
