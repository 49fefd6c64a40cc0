"""``python -m bastion``: the same as the ``bastion`` command."""

from bastion.cli.main import main

main()
