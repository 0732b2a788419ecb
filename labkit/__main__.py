"""`python -m labkit TASK …` runs the kit's invoke tasks (the same as `./kit TASK …`)."""

import sys

from invoke import Program

from labkit import __version__
from labkit.cli import namespace


def main() -> None:
    Program(namespace=namespace, name="kit", binary="kit", version=__version__).run(sys.argv)


if __name__ == "__main__":
    main()
