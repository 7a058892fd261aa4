"""CCGate operations: ``python cli.py --help`` (the same commands as ``flask ccgate``)."""
from ccgate.cli import cli

if __name__ == "__main__":
    cli()
