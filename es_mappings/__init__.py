"""Index definitions and Kibana saved objects, shipped as package data.

The JSON and NDJSON files beside this one are the source of truth a user can read;
``core/mappings.py`` and ``rrs/kibana.py`` read them with ``importlib.resources``, so an
installed wheel finds them as well as a checkout does.
"""
