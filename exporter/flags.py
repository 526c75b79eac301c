"""Flag mistakes as one line naming the flag, for the exporter and its subcommands.

argparse answers a bad flag with its whole usage block and then the error, several
lines in which the flag that is wrong is easy to miss, and a config mistake already
gets one line naming the key (``config.file: ...``). So every flag mistake, from
argparse or from a command's own checks, is one line too: ``flag error: FLAG: why``,
exit status 2. The usage block is printed only when asked for, with ``--help``.

This sits at the top of the package beside ``cli`` and ``log``: ``cli`` and the
commands in ``tools`` both build their parsers from it, and it imports nothing of
the exporter.
"""

from __future__ import annotations

import argparse
import re
from typing import NoReturn

# argparse's messages, as its error() receives them.
_ARGUMENT_RE = re.compile(r"argument (\S+): (.*)", re.DOTALL)
_REQUIRED_RE = re.compile(r"the following arguments are required: (.*)", re.DOTALL)
_UNRECOGNIZED_RE = re.compile(r"unrecognized arguments: (.*)", re.DOTALL)
_AMBIGUOUS_RE = re.compile(r"ambiguous option: (\S+?)(?:=\S*)? could match (.*)", re.DOTALL)


class UsageError(Exception):
    """A bad flag or flag value: one line naming the flag; the command exits 2."""

    def __init__(self, flag: str, message: str) -> None:
        text = f"{flag}: {message}" if flag else message
        super().__init__("flag error: " + " ".join(text.splitlines()))
        self.flag = flag


def _long_name(names: str) -> str:
    """``-q/--quiet`` → ``--quiet``: the name that says what the flag is."""
    options = names.split("/")
    return next((name for name in options if name.startswith("--")), options[-1])


def usage_error(message: str) -> UsageError:
    """argparse's error message as a UsageError naming the flag it is about."""
    if match := _ARGUMENT_RE.fullmatch(message):
        return UsageError(_long_name(match[1]), match[2])
    if match := _REQUIRED_RE.fullmatch(message):
        names = ", ".join(_long_name(name) for name in match[1].split(", "))
        return UsageError(names, "required")
    if match := _UNRECOGNIZED_RE.fullmatch(message):
        first = match[1].split()[0]
        if first.startswith("-"):
            return UsageError(first.partition("=")[0], "unknown flag")
        return UsageError(first, "unexpected argument")
    if match := _AMBIGUOUS_RE.fullmatch(message):
        return UsageError(match[1], f"ambiguous: could match {match[2]}")
    return UsageError("", message)


class FlagParser(argparse.ArgumentParser):
    """An ArgumentParser whose mistakes raise UsageError instead of printing usage.

    ``--help`` and ``--version`` still print and exit 0 through SystemExit, as usual.
    """

    def error(self, message: str) -> NoReturn:
        """Raise the mistake as one line naming the flag; the caller prints it, exits 2."""
        raise usage_error(message)
