"""Subcommands of the `xai-callback` command line."""
