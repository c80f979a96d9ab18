"""The ``transferlab`` command line: one module per subcommand."""
