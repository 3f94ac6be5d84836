"""Rotation: the Secrets Manager rotation handlers and the protocol they follow.

Owns the four steps (create, set, test, finish) for the database password (``postgres``)
and the JWT key (``jwt``), their checks of the protocol (``protocol``), the metrics they
publish as EMF (``emf``), the periods (``schedule``) and the driver that runs them without a
Lambda (``driver``, for ``ecomind secrets rotate --local``). Packaged alone as the rotation
Lambda (scripts/build-lambda.sh): no FastAPI import here.

May import: data's failure classifier and role writer, the secret layer and the signal catalog.
"""

__all__: list[str] = []
