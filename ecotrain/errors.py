"""Errors that mean "the user asked for something wrong": one line, exit code 2."""


class UserError(Exception):
    """A mistake in the user's input (option, config, region, URL); printed as one line."""

    exit_code = 2
