from rrsearch.rrs.cli import run

run()
