"""The API's JSON decoded by orjson (`kube.loads`) is what `json.loads` gives, and request
bodies encoded by orjson (`kube.dumps`) read back as what was meant (issue 11).

Every answer and watch event is decoded; orjson does it in about half the CPU. The API server
sends what Go encodes (valid UTF-8, integers within 64 bits); what orjson refuses all the
same goes to `json.loads`, so no answer decodes differently, or fails, for the speed.
"""

from __future__ import annotations

import json
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from dataward.controller.kube import Kube, dumps, loads
from tests.controller.test_timeouts import RecordingApi

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@given(json_values, st.booleans())
def test_loads_gives_what_json_loads_gives(value: Any, ascii_only: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only).encode()
    assert loads(text) == json.loads(text)


def test_what_orjson_refuses_is_decoded_by_json_loads() -> None:
    for text in (b'{"a":"\\ud800"}', b'{"a":1e400}'):
        assert repr(loads(text)) == repr(json.loads(text))


def test_an_answer_is_decoded_by_loads() -> None:
    class Answering(RecordingApi):
        def request(self, *args: Any, **kwargs: Any) -> Any:
            super().request(*args, **kwargs)

            class Response:
                status, reason = 200, "OK"
                data = '{"metadata":{"name":"s","resourceVersion":"7"},"x":"é"}'.encode()

                def __init__(self) -> None:
                    self.headers: dict[str, str] = {}

            return Response()

    got = Kube(Answering()).get("PersonalDataStore", "ns", "s")  # type: ignore[arg-type]
    assert got == {"metadata": {"name": "s", "resourceVersion": "7"}, "x": "é"}


@given(json_values)
def test_a_body_reads_back_as_what_was_meant(value: Any) -> None:
    body = dumps(value)
    assert isinstance(body, bytes)
    assert json.loads(body) == value


def test_what_orjson_refuses_to_encode_is_encoded_by_json_dumps() -> None:
    # A lone surrogate (decoded from an escape by `loads`' fallback) and an integer past 64
    # bits: orjson raises for both; the body must still go out, as `json.dumps` writes it.
    for value in ({"a": "\ud800"}, {"a": 2**70}):
        assert repr(json.loads(dumps(value))) == repr(value)

