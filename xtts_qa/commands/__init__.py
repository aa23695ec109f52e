"""The ``xtts-qa`` sub-commands, one module per command family (each has ``register(subparsers)``)."""
