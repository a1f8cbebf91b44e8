"""The toolkit's error type for bad input: a ValueError that names the offending field."""

from __future__ import annotations


class ConfigError(ValueError):
    """Invalid user input (a parameter, config key or CLI argument).

    The message always names the field and says what is allowed. The CLI turns it into one
    line on stderr and exit code 2.
    """
