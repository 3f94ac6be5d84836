"""``python -m app.cli``: the same as the ``ecomind`` script."""

from .main import main

main()
