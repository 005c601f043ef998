"""rrsearch: Retrieve & Re-Rank search on Elasticsearch, under one import name.

The subpackages live in the repository's top-level folders (``core/``, ``service/``,
``ingest/``, ``evaluation/``, ``training/``, ``rrs/``, ``es_mappings/``); ``pyproject.toml``
maps each one under this name (setuptools ``package-dir``), so an installed wheel holds only
``rrsearch``::

    from rrsearch.service.fusion import rrf
    python -m rrsearch serve          # the same as the `rrs` console script
"""

from pathlib import Path

__all__: list[str] = []

# Imported from a checkout that is not installed (a clone on sys.path, e.g. the working
# directory of `python -m`), the subpackages are this folder's siblings: look there too.
_checkout = Path(__file__).resolve().parent.parent
if (_checkout / "pyproject.toml").is_file() and (_checkout / "core" / "__init__.py").is_file():
    __path__.append(str(_checkout))
