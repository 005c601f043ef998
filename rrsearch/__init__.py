"""rrsearch: Retrieve & Re-Rank search on Elasticsearch, under one import name.

The subpackages live in the repository's top-level folders (``core/``, ``service/``,
``ingest/``, ``evaluation/``, ``training/``, ``rrs/``, ``es_mappings/``); each one is linked
here (``rrsearch/core -> ../core``), so ``rrsearch.core.settings`` is ``rrsearch/core/settings.py``
for Python and for every static reader alike, and an installed wheel holds only ``rrsearch``::

    from rrsearch.service.fusion import rrf
    python -m rrsearch serve          # the same as the `rrs` console script
"""

__all__: list[str] = []
