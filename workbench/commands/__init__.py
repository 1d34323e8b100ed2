"""Feature subcommands of `cmkd`; each module exposes `register(subparsers)`."""
