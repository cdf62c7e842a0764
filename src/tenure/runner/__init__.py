"""The durable step executor: steps are rows, claimed under a lease, run once, every attempt recorded."""

from tenure.runner.claim import LEASE_SECONDS, Claimed, claim, worker_id
from tenure.runner.core import Outcome, RetryPolicy, Runner, StepContext

__all__ = ["LEASE_SECONDS", "Claimed", "Outcome", "RetryPolicy", "Runner", "StepContext", "claim", "worker_id"]
