"""The ``partner-billing`` command."""
