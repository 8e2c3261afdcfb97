"""``python -m orderlane``: the same command line as the ``orderlane`` script."""

from orderlane.cli import main

if __name__ == "__main__":
    main()
