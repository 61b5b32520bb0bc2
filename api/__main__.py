"""``python -m api`` is the ``collabx`` command."""

from api.cli import main

main()
