from rrs.cli import main

main()
