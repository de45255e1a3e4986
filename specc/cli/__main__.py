"""`python -m specc.cli`: the same as the `specc` command."""

from specc.cli.main import entry

entry()
