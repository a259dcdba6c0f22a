"""The tiny model and data every test layer shares (imported as ``from tiny_fixtures import ...``:
``tests/`` is on ``sys.path`` once the root ``conftest.py`` is loaded; importing from ``conftest``
breaks when another folder's ``conftest.py`` was loaded first). They live in the public
:mod:`amun_plugin.testing`, which the benchmark scripts measuring these fixtures import too."""

from amun_plugin.testing import TinyNet, make_memorising, make_tiny_data

__all__ = ["TinyNet", "make_memorising", "make_tiny_data"]
