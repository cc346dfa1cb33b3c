"""``python -m cyclotron``."""

from cyclotron.cli.main import app

app()
