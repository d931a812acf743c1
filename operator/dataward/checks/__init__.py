"""Pure checks: observed state in, one condition each out.

The controller reads the cluster into the values of `dataward.checks.observed`, calls one
function per condition, then `ready` and `merge_conditions` to write status.
"""

from __future__ import annotations

from dataward.checks.access import access_restricted
from dataward.checks.conditions import Condition, merge_conditions, ready, transitions
from dataward.checks.encryption import encryption_key_ready
from dataward.checks.network import network_isolated
from dataward.checks.policy import policy_compliant
from dataward.checks.purge import purge_scheduled, purge_succeeded

__all__ = [
    "Condition",
    "access_restricted",
    "encryption_key_ready",
    "merge_conditions",
    "network_isolated",
    "policy_compliant",
    "purge_scheduled",
    "purge_succeeded",
    "ready",
    "transitions",
]
