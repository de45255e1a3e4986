"""`python -m specc` (and `torchrun -m specc`): the same as the `specc` command."""

from specc.cli.main import entry

entry()
