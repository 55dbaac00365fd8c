"""``python -m forgetkit`` runs the command-line tool."""

from forgetkit.cli import app

app()
