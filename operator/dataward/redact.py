"""Failures described by where and what, never by the data they were about.

The inputs these describe can hold what must never reach a log: a Secret manifest in a GitOps
directory, a kubeconfig, a row of a customer table. Each function here keeps the position,
the kind of failure and the names the program chose, and drops any text the input supplied.
"""

from __future__ import annotations

import logging
import re
import textwrap
import traceback
from pathlib import Path
from types import TracebackType
from typing import IO, Any

import yaml
from yaml.composer import ComposerError
from yaml.constructor import ConstructorError
from yaml.events import AliasEvent
from yaml.nodes import CollectionNode, MappingNode, Node

# A fragment the library quoted from the input ('x', "x"): a character, a tag, an alias.
_QUOTED = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
# What the library names itself, quoted too: PyYAML's token kinds ('<block mapping start>'),
# read from PyYAML (a pattern of their form would keep a tag the input spells `<like this>`).
_OWN = frozenset(
    f"'{kind}'"
    for kind in (getattr(token, "id", None) for token in vars(yaml.tokens).values())
    if isinstance(kind, str) and kind.startswith("<")
)


# A byte of the input, as a decoding error PyYAML passes on names it ("byte 0xe9").
_BYTE = re.compile(r"\b0x[0-9a-fA-F]+\b")


def unquoted(text: str) -> str:
    """`text` on one line with every quoted fragment of the input replaced by `'…'`, and
    every byte value by `0x…`."""
    kept = _QUOTED.sub(lambda m: m[0] if m[0] in _OWN else "'…'", text)
    kept = _BYTE.sub("0x…", kept)
    return " ".join(kept.split())


def yaml_problem(file: Path | str, error: yaml.YAMLError) -> str:
    """A YAML error as `file:line:column: cannot be read as YAML: problem (context)`.

    Not the offending line (PyYAML's snippet) nor what PyYAML quotes from it: the line can be
    a Secret's password in a directory `dataward check` reads for CI.
    """
    mark = getattr(error, "problem_mark", None)
    problem = getattr(error, "problem", None)
    if mark is None or not isinstance(problem, str):
        return f"{file}: cannot be read as YAML ({type(error).__name__})"
    context = getattr(error, "context", None)
    context_mark = getattr(error, "context_mark", None)
    where = (
        f" ({unquoted(context)} at line {context_mark.line + 1}, column {context_mark.column + 1})"
        if isinstance(context, str) and context_mark is not None
        else ""
    )
    return (
        f"{file}:{mark.line + 1}:{mark.column + 1}: cannot be read as YAML: "
        f"{unquoted(problem)}{where}"
    )


class NestedTooDeeply(yaml.YAMLError):
    """YAML nested deeper than PyYAML's composer can recurse (its RecursionError)."""


# The nodes aliases may add to one document, over those written: a manifest that shares a
# list between two places is far below it; ten levels of ten aliases (10^10 nodes once
# walked, from a few hundred bytes) far above.
ALIASED_NODES = 100_000


class _Loader(yaml.SafeLoader):
    """PyYAML's safe loader whose every failure is a YAMLError (so `yaml_problem` locates it).

    A value the safe loader cannot convert (`!!int x`, `!!float x`, a date such as 2001-02-30)
    raises ValueError in PyYAML, with the value in its text: here a ConstructorError at the
    value, naming its kind only.

    Aliases are bounded: one inside the node it names (PyYAML would build a list holding
    itself, which overflows the C stack of whatever walks it) is refused, and so is a
    document whose aliases add more than ALIASED_NODES nodes (as Kubernetes' YAML decoder
    refuses "excessive aliasing").
    """

    def compose_document(self) -> Node | None:
        self._open: set[str] = set()  # the anchors of the nodes being composed
        self._sizes: dict[int, int] = {}  # nodes once expanded, by id() of the node
        self._aliased = 0
        return super().compose_document()

    def compose_node(self, parent: Node | None, index: Any) -> Node | None:
        event: Any = self.peek_event()  # type: ignore[no-untyped-call]
        if isinstance(event, AliasEvent):
            mark: Any = event.start_mark
            if event.anchor in self._open:
                raise ComposerError(
                    None, None, "an alias inside the node it names", mark
                )
            node = super().compose_node(parent, index)
            self._aliased += self._size(node) if node is not None else 0
            if self._aliased > ALIASED_NODES:
                raise ComposerError(
                    None, None,
                    f"aliases expand the document by more than {ALIASED_NODES} nodes",
                    mark,
                )
            return node
        anchor = getattr(event, "anchor", None)
        if anchor is not None:
            self._open.add(anchor)
        try:
            return super().compose_node(parent, index)
        finally:
            self._open.discard(anchor)

    def _size(self, node: Node) -> int:
        """How many nodes `node` is once its aliases are expanded (at least 1)."""
        known = self._sizes.get(id(node))
        if known is not None:
            return known
        size = 1
        if isinstance(node, MappingNode):
            size += sum(self._size(key) + self._size(value) for key, value in node.value)
        elif isinstance(node, CollectionNode):
            size += sum(self._size(item) for item in node.value)
        self._sizes[id(node)] = size
        return size

    def construct_mapping(self, node: MappingNode, deep: bool = False) -> dict[Any, Any]:
        """The mapping, refused when it writes a key twice (PyYAML keeps the last silently;
        a reader sees the first). Keys merged in with `<<` may be overridden, as YAML says."""
        seen: set[Any] = set()
        for key_node, _ in node.value:
            if key_node.tag == _STANDARD_TAG + "merge":
                continue
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
                seen.add(key)
            except TypeError:  # unhashable: PyYAML refuses it below
                continue
            if duplicate:
                raise ConstructorError(
                    "while reading a mapping", node.start_mark,
                    "found a key already written in it", key_node.start_mark,
                )
        return super().construct_mapping(node, deep)

    def construct_object(self, node: Node, deep: bool = False) -> Any:
        try:
            return super().construct_object(node, deep)
        except (ValueError, OverflowError) as error:
            tag = str(node.tag)
            kind = tag.removeprefix(_STANDARD_TAG) if tag.startswith(_STANDARD_TAG) else "tagged"
            raise ConstructorError(
                None, None, f"cannot convert this {kind} value ({type(error).__name__})",
                node.start_mark,
            ) from None


_STANDARD_TAG = "tag:yaml.org,2002:"


def load_all(stream: str | IO[str]) -> list[Any]:
    """Every document of `stream`, read as `yaml.safe_load_all` does; any failure to read it
    is a YAMLError (never the ValueError or RecursionError PyYAML lets through)."""
    try:
        return list(yaml.load_all(stream, Loader=_Loader))
    except RecursionError:
        raise NestedTooDeeply("nested deeper than it can be read") from None


def load(stream: str | IO[str]) -> Any:
    """The one document of `stream` (None when empty), as `yaml.safe_load`; see `load_all`."""
    try:
        return yaml.load(stream, Loader=_Loader)  # noqa: S506 (a SafeLoader)
    except RecursionError:
        raise NestedTooDeeply("nested deeper than it can be read") from None


def unreadable(error: OSError | UnicodeDecodeError) -> str:
    """Why a file cannot be read: the system's reason, or where its text is not UTF-8 (not
    the byte found there, which Python's message names: a byte of a Secret's value)."""
    if isinstance(error, UnicodeDecodeError):
        return f"not UTF-8 text (byte {error.start + 1} is not valid there)"
    return " ".join(str(error).split())


def exception_text(error: BaseException, _seen: set[int] | None = None) -> str:
    """A traceback of `error` and the errors it was raised from, without their messages.

    What a log needs to find the fault (each error's class and the frames it went through)
    and nothing an error's text may carry: a reconcile handles key rings and a purge rows, and
    `ValueError(f"... {value!r}")` is how Python and its libraries describe bad input.
    An error class whose text is built from no input at all says so (`message_is_safe = True`,
    as KubeError: an HTTP status and reason), and keeps it: "HTTP 403 Forbidden" is what a
    person reading the log needs.
    """
    # Every error already written, over the groups too: an error raised again while its
    # group is handled has that group as its context (a loop through the group's errors).
    seen = set() if _seen is None else _seen
    chain: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        chain.append(current)
        cause = current.__cause__
        suppressed = cause is not None or current.__suppress_context__
        current = cause if suppressed else current.__context__
    parts: list[str] = []
    for index, link in enumerate(reversed(chain)):
        if index:
            parts.append("\nwhile handling it, or because of it:\n")
        parts.append("Traceback (most recent call last):\n")
        parts += traceback.format_list(traceback.extract_tb(link.__traceback__))
        name = type(link).__qualname__
        module = type(link).__module__
        qualified = name if module == "builtins" else f"{module}.{name}"
        if getattr(type(link), "message_is_safe", False) is True:
            parts.append(f"{qualified}: {link}")
        else:
            parts.append(f"{qualified} (message withheld)")
        if isinstance(link, BaseExceptionGroup):  # each error it holds, as traceback does
            inner = link.exceptions
            for number, held in enumerate(inner, 1):
                parts.append(f"\n+-- {number} of {len(inner)}:\n")
                parts.append(textwrap.indent(exception_text(held, seen), "| "))
    return "".join(parts)


class Formatter(logging.Formatter):
    """A logging formatter whose exceptions show classes and frames, never messages."""

    def format(self, record: logging.LogRecord) -> str:
        """The line, with the traceback this formatter writes: never the one another
        handler's formatter may have cached on the record (`record.exc_text`), which holds
        the messages. Its own is left cached, so a handler after it writes that too."""
        record.exc_text = None
        return super().format(record)

    def formatException(
        self,
        ei: tuple[type[BaseException], BaseException, TracebackType | None]
        | tuple[None, None, None],
    ) -> str:
        """`exception_text` of the logged error."""
        return exception_text(ei[1]) if ei[1] is not None else ""
