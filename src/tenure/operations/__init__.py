"""Running Tenure: `/metrics`, one JSON log line per request, problem details for every HTTP error, and
`tenure backup` / `tenure restore`."""

from tenure.operations.http import install

__all__ = ["install"]
