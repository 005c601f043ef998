"""Click commands of the service package (serve, model tools), added to ``rrs`` by ``rrs/cli.py``."""

commands: list = []
