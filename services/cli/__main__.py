"""`python -m services.cli`: the `shoebox` command."""

from services.cli import main

main()
