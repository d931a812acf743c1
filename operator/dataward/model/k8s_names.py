"""Kubernetes' name rules, as its API server applies them (apimachinery's validation).

One definition each: the offline validation of a resource's metadata and the reading of a
ServiceAccount's username (RBAC subjects, the platform's trusted subjects) both use these.
"""

from __future__ import annotations

import re

_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?")
_DNS_SUBDOMAIN = re.compile(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*")
# A label value, and the name part of a qualified name (a label's or an annotation's key).
_QUALIFIED_PART = re.compile(r"(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?")
MAX_LABEL_VALUE_LENGTH = 63
# apimachinery's TotalAnnotationSizeLimitB: every key and value of one object's annotations.
MAX_ANNOTATIONS_BYTES = 256 * 1024

# serviceaccount.ServiceAccountUsernamePrefix: a ServiceAccount's token authenticates it as
# system:serviceaccount:<namespace>:<name>.
SERVICE_ACCOUNT_USER_PREFIX = "system:serviceaccount:"


def is_dns_label(name: str) -> bool:
    """A DNS-1123 label (a namespace's name): lowercase letters, digits and '-', at most 63."""
    return len(name) <= 63 and _DNS_LABEL.fullmatch(name) is not None


def is_dns_subdomain(name: str) -> bool:
    """A DNS-1123 subdomain (most objects' names, a ServiceAccount's among them): lowercase
    letters, digits, '-' and '.', at most 253."""
    return len(name) <= 253 and _DNS_SUBDOMAIN.fullmatch(name) is not None


def is_label_value(text: str) -> bool:
    """A label's value: empty, or at most 63 letters, digits, '-', '_' and '.', beginning and
    ending with a letter or digit."""
    return len(text) <= MAX_LABEL_VALUE_LENGTH and _QUALIFIED_PART.fullmatch(text) is not None


def is_qualified_name(key: str) -> bool:
    """A label's or an annotation's key: `name` or `prefix/name`, the prefix a DNS
    subdomain, the name a non-empty label value."""
    prefix, slash, name = key.rpartition("/")
    if slash and not is_dns_subdomain(prefix):
        return False
    return 0 < len(name) <= 63 and _QUALIFIED_PART.fullmatch(name) is not None


def service_account_of(username: str) -> tuple[str, str] | None:
    """(namespace, name) of the ServiceAccount whose username `username` is, or None when it
    is no ServiceAccount's: Kubernetes' serviceaccount.SplitUsername, which wants exactly two
    parts after the prefix, a namespace's name and a ServiceAccount's. A User
    `system:serviceaccount:kube-system:x:evil` (a client certificate, a proxy's header or a
    token webhook may name one) is no account of kube-system."""
    if not username.startswith(SERVICE_ACCOUNT_USER_PREFIX):
        return None
    parts = username.removeprefix(SERVICE_ACCOUNT_USER_PREFIX).split(":")
    if len(parts) != 2:
        return None
    namespace, name = parts
    if not is_dns_label(namespace) or not is_dns_subdomain(name):
        return None
    return namespace, name


def service_account_groups(namespace: str) -> frozenset[str]:
    """The groups a ServiceAccount of `namespace` is in, and no other: its token
    authenticates it as system:serviceaccounts and system:serviceaccounts:<namespace>, and
    every authenticated request is system:authenticated's."""
    return frozenset(
        {"system:serviceaccounts", f"system:serviceaccounts:{namespace}", "system:authenticated"}
    )
