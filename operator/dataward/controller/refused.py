"""A status write the API server refused for what it says: the last verdicts are not vouched for.

The server read the write and would not take it (`REFUSED`: a malformed patch, an admission
webhook or ValidatingAdmissionPolicy on the status subresource, a status too large, a field the
CRD's schema refuses). The caller's pass fails and is retried with backoff, and the same write
may be refused on every retry while the object's last status, perhaps Ready=True, stands. So
each condition the object shows True is made Unknown (`STATUS_REFUSED`) by a patch of those
conditions alone (`staleness.unverified_patch`: it tests the object's uid and each condition's
type and status first), and the caller still fails its pass. Nothing here writes True: only a
status write the server takes does.

The message names the HTTP status and a fixed text for it, never the server's own text (a
422's can quote the values sent). Not refusals here: a conflict or a gone object (409, 404:
`kube.write_status` reads the object again, and one deleted or replaced stops the pass), no
answer or a server error (0, 5xx: the write may have landed), a throttle (429), lost
credentials (401): the pass is retried as it is.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

from dataward.checks.conditions import STATUS_REFUSED
from dataward.controller.kube import Kube, KubeError
from dataward.controller.staleness import unverified_patch, unverified_transitions

log = logging.getLogger("dataward.refused")

# The answers that refuse a status write for what it says, each with what it means.
REFUSED: dict[int, str] = {
    400: "the write is malformed",
    403: "forbidden, by the operator's RBAC or by an admission webhook or policy on the status",
    413: "the status is too large",
    422: "a field is not valid for the installed CRD or an admission policy",
}


def refused(error: KubeError) -> bool:
    """Whether the API server refused the write for what it says (`REFUSED`)."""
    return error.status in REFUSED


def refused_message(status: int) -> Callable[[str, str], str]:
    """What a condition last True says once a status write was refused with `status`."""

    def message(type_: str, reason: str) -> str:
        return (
            f"The API server refused the operator's status write (HTTP {status}: "
            f"{REFUSED[status]}), so this pass's verdicts are not in status: {type_} was last "
            f"judged True ({reason}) and is not vouched for now. The operator retries with "
            "backoff; its log names the object."
        )

    return message


def mark_refused(
    kube: Kube, kind: str, read: Mapping[str, Any], error: KubeError, stamp: str
) -> tuple[dict[str, Any], list[dict[str, Any]]] | None:
    """After the API server refused a status write of the object `read` (`refused(error)`),
    make each condition it shows True Unknown (`STATUS_REFUSED`), at `stamp`: the API's
    answer and the transitions written (`condition.transition` evidence payloads). None when
    none is True, the object is gone or replaced (its watch event queues it), or this write
    fails too (logged: the last status stands, the operator can do no better)."""
    meta = read["metadata"]
    namespace, name, uid = meta.get("namespace"), str(meta["name"]), meta.get("uid")
    where = f"{kind} {namespace}/{name}" if namespace else f"{kind} {name}"
    try:
        current = kube.get(kind, namespace, name)  # the API's: the cache's may be older
        if current is None or (uid is not None and current["metadata"].get("uid") != uid):
            return None
        status = current.get("status")
        conditions = status.get("conditions") if isinstance(status, Mapping) else None
        if not isinstance(conditions, list):
            return None
        ops = unverified_patch(
            conditions, STATUS_REFUSED, refused_message(error.status), stamp,
            None if uid is None else str(uid),
        )  # fmt: skip
        if not ops:
            return None
        answer = kube.json_patch(kind, namespace, name, ops, "status")
    except KubeError as failed:
        # Statuses only: a server's text is never logged (it can quote what was sent).
        log.error("status write of %s refused (HTTP %d), and its conditions could not be made "
                  "Unknown either (HTTP %d): its last status stands", where, error.status,
                  failed.status)  # fmt: skip
        return None
    log.error("status write of %s refused (HTTP %d: %s): each condition it showed True is "
              "Unknown (%s) until a status write is taken", where, error.status,
              REFUSED[error.status], STATUS_REFUSED)  # fmt: skip
    return answer, unverified_transitions(conditions, ops)
