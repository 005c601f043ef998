from rrsearch.rrs.cli import main

main()
