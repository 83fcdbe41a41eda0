"""Subcommands of the ``swinir`` CLI, one module each (see ``swinir.cli``)."""
