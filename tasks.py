"""invoke entry point. The tasks live in labkit/cli.py; run `./kit --list` to see them."""

from labkit.cli import namespace

ns = namespace
