"""Errors a user can act on. Every shell prints them as one line and exits non-zero."""


class TenureError(Exception):
    """A problem with what the user asked for; the message says what and where."""


class NotFound(TenureError):
    pass


class ValidationFailed(TenureError):
    """Input that breaks a rule; `problems` holds every `place: message` found."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        first = problems[0] if problems else "invalid input"
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        super().__init__(first + more)
