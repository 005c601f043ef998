"""Kibana saved objects: the ``rrs kibana`` commands."""

commands: list = []
