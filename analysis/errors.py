"""
errors - the analysis's name, its exit statuses and the three ways it stops:
bad data (one line, exit 1), partial results refused (one line, exit 3) and
a bad command line (the usage, exit 2). Everything below raises these; only
analyze_results.py's main() turns them into messages and statuses.
"""

PROG = "analyze_results.py"

EXIT_OK = 0
EXIT_BAD_DATA = 1
EXIT_USAGE = 2  # argparse's own status for usage errors
EXIT_PARTIAL = 3


class DataError(Exception):
    """Unusable input: reported as one line on stderr, exit status 1."""


class PartialError(Exception):
    """Partial or mixed results without --allow-partial: one line, exit 3."""


class UsageError(Exception):
    """Bad command line: reported with the usage, exit status 2."""
