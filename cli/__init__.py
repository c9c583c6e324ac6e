"""The ``ecsspot`` command line: a click front end over :class:`ecsspot.Manager`.

Installed as the ``ecsspot`` console script (``ecsspot_cli.main:main``); the import name is
``ecsspot_cli`` so the generic directory name ``cli`` never lands in site-packages.
"""
