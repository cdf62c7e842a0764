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


def check_choices(*given: tuple[str, str | None, tuple[str, ...]]) -> None:
    """Refuse a filter's value that nothing can have (a typo would otherwise read as "none found"), naming the
    field and what it may be: each given as (field, value or None, the values it may take)."""
    for name, value, allowed in given:
        if value is not None and value not in allowed:
            raise ValidationFailed([f"{name}: {value!r} is not one of {', '.join(allowed)}"])


class Busy(TenureError):
    """Someone else holds what this needs (a billing run of the same period) for longer than we may wait;
    trying again later is the answer. The API answers 409."""


class Conflict(TenureError):
    """What was asked cannot be done to the object as it stands (a billed agreement's fee changed without a
    date, a purchase deleted); the message says what to do instead. The API answers 409."""


class Stale(TenureError):
    """A change made on data that changed since it was read (its version or `If-Match` is not current).
    The API answers 412."""
