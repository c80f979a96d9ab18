"""The subcommands of ``transferlab``: one module per command, named after it.

A module here is a command: it defines ``USAGE`` (its synopsis after ``transferlab``), ``SUMMARY`` (one
line), ``ORDER`` (its place in ``transferlab --help``) and ``main(argv)``. The dispatcher
(:mod:`transferlab.cli.main`) lists this package, so a new command is one new file.
"""
