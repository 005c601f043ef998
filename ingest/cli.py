"""Click commands of the ingest package, added to ``rrs`` by ``rrs/cli.py``."""

commands: list = []
