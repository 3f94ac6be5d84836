"""``python -m app.cli``: the same as the ``ecomind`` script."""

from app.cli.main import main

main()
