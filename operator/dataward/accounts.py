"""User and group names that may be personal data, and how Dataward shows them.

Kubernetes users and groups are names an identity provider chose. A ServiceAccount or a
`system:` user is an account; with OIDC a User is often an e-mail address, and a user or group
name may be a person's name. What Dataward writes about a name (condition messages in status,
the Events about them, logs, the evidence log kept for years) keeps an account name as it is
(`plain`: the characters of Kubernetes account and group names, so never `@` or a space) and
any other name as a digest that an auditor holding the name can check:

    sha256:<hex SHA-256 of `dataward/access-user\\0` followed by the name in UTF-8>

The evidence log's access records (`userDigest`, the hex alone), the words with `@` of its
messages, and the subjects the AccessRestricted condition names all use these functions.
"""

from __future__ import annotations

import hashlib
import re

# Unchanged since the first access records: it is part of every digest they hold.
NAME_DIGEST_DOMAIN = b"dataward/access-user\x00"
# The names kept as they are: accounts and groups, never an address or a sentence.
PLAIN_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,252}")
# How a digest is written in a message.
DIGEST_PREFIX = "sha256:"


def plain(name: str) -> bool:
    """True when `name` is kept as it is (an account or group name, no `@` or space)."""
    return PLAIN_NAME.fullmatch(name) is not None


def name_digest(name: str) -> str:
    """SHA-256 (hex) of a user or group name that is not kept as it is."""
    return hashlib.sha256(NAME_DIGEST_DOMAIN + name.encode("utf-8")).hexdigest()


def shown(name: str) -> str:
    """`name` as Dataward writes it: as it is when `plain`, else `sha256:<name_digest>`.

    A plain name that starts with `sha256:` (any case) is digested too: shown as it is, an
    account named after the digest of someone's address would read as that person. So every
    `sha256:` a message names a subject by is a digest Dataward made. (`plain` itself keeps
    such a name: the access records say which field is a digest, `user` or `userDigest`.)
    """
    if plain(name) and name[: len(DIGEST_PREFIX)].lower() != DIGEST_PREFIX:
        return name
    return f"{DIGEST_PREFIX}{name_digest(name)}"
