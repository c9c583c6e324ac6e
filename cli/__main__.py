"""``python -m ecsspot_cli`` runs the CLI, like the installed ``ecsspot`` script."""

from ecsspot_cli.main import main

main()
