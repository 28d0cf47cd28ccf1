"""Command-line entry points: thin argument parsing and progress over library functions."""
