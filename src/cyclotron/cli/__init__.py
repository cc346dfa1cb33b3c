"""The ``cyclotron`` command line."""
