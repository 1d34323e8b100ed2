"""A headless Streamlit client over the app's own websocket protocol, for load tests.

It speaks what the browser speaks: BackMsg.rerun_script with the widget states, and reads the
ForwardMsg deltas back until the script run finishes. Widgets are found by the user `key` they
were created with (Streamlit ends a keyed widget's id with `-<key>`), so a test drives a page
by the same keys its code uses. One instance is one browser session; it is not thread-safe,
so run one per thread.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from streamlit.proto.BackMsg_pb2 import BackMsg
from streamlit.proto.ForwardMsg_pb2 import ForwardMsg
from streamlit.proto.WidgetStates_pb2 import WidgetState
from websockets.sync.client import ClientConnection, connect

FINISHED_EARLY_FOR_RERUN = ForwardMsg.ScriptFinishedStatus.FINISHED_EARLY_FOR_RERUN
FRAGMENT_RUN = ForwardMsg.ScriptFinishedStatus.FINISHED_FRAGMENT_RUN_SUCCESSFULLY


class SessionError(RuntimeError):
    """The app showed an exception or an error box, or a widget the test needs is missing."""


@dataclass
class RunResult:
    seconds: float  # from sending the rerun to the end of the (last) script run
    elements: list[tuple[str, Any]] = field(default_factory=list)  # (element type, proto)

    def texts(self) -> list[str]:
        """Body text of markdown, alerts and captions, in page order."""
        return [getattr(p, "body", "") for _, p in self.elements if getattr(p, "body", "")]

    def errors(self) -> list[str]:
        """Exceptions and st.error boxes shown by the run."""
        out = [f"exception: {p.message}" for t, p in self.elements if t == "exception"]
        out += [p.body for t, p in self.elements if t == "alert" and p.format == p.ERROR]
        return out


class StreamlitSession:
    def __init__(self, base_url: str, timeout_s: float = 60.0) -> None:
        ws_url = base_url.rstrip("/").replace("http://", "ws://") + "/_stcore/stream"
        self._ws: ClientConnection = connect(
            ws_url, subprotocols=["streamlit"], max_size=None, open_timeout=timeout_s
        )
        self._timeout_s = timeout_s
        self._widgets: dict[str, Any] = {}  # widget id -> element proto of the last run
        self._pages: dict[str, str] = {}  # url path name -> page script hash
        self._page_hash = ""

    def close(self) -> None:
        self._ws.close()

    def __enter__(self) -> StreamlitSession:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ runs

    def run(
        self,
        page: str | None = None,
        values: dict[str, Any] | None = None,
        click: str | None = None,
        submit: str | None = None,
    ) -> RunResult:
        """Rerun the script: on `page` (url path name) if given, with text/select `values` by
        widget key, `click`ing the button with that key or `submit`ting the form with that
        key (its submit button)."""
        msg = BackMsg()
        state = msg.rerun_script
        if page is not None:
            if page not in self._pages:
                raise SessionError(f"no page {page!r}; pages: {sorted(self._pages)}")
            self._page_hash = self._pages[page]
            self._widgets.clear()  # widget values belong to the page they were made on
        state.page_script_hash = self._page_hash
        for key, value in (values or {}).items():
            ws = state.widget_states.widgets.add()
            ws.id = self._widget_id(key)
            _set_value(ws, value)
        for button in filter(
            None, (click and self._widget_id(click), submit and self._submit(submit))
        ):
            ws = state.widget_states.widgets.add()
            ws.id = button
            ws.trigger_value = True
        start = time.perf_counter()
        self._ws.send(msg.SerializeToString())
        return self._read_until_finished(start)

    def _widget_id(self, key: str) -> str:
        for wid in self._widgets:
            if wid.endswith(f"-{key}"):
                return wid
        raise SessionError(f"no widget with key {key!r} on the page")

    def _submit(self, form: str) -> str:
        for wid, proto in self._widgets.items():
            if getattr(proto, "is_form_submitter", False) and proto.form_id == form:
                return wid
        raise SessionError(f"no submit button of form {form!r} on the page")

    def _read_until_finished(self, start: float) -> RunResult:
        result = RunResult(0.0)
        while True:
            fwd = ForwardMsg()
            fwd.ParseFromString(self._ws.recv(timeout=self._timeout_s))
            kind = fwd.WhichOneof("type")
            if kind == "navigation":
                for p in fwd.navigation.app_pages:
                    self._pages[p.url_pathname] = p.page_script_hash
                if not self._page_hash:
                    self._page_hash = fwd.navigation.page_script_hash
            elif kind == "delta" and fwd.delta.WhichOneof("type") == "new_element":
                element = fwd.delta.new_element
                etype = element.WhichOneof("type")
                proto = getattr(element, etype)
                result.elements.append((etype, proto))
                if getattr(proto, "id", ""):
                    self._widgets[proto.id] = proto
            elif kind == "script_finished" and fwd.script_finished not in (
                FINISHED_EARLY_FOR_RERUN,
                FRAGMENT_RUN,
            ):
                result.seconds = time.perf_counter() - start
                return result
            elif kind == "page_not_found":
                raise SessionError(f"page not found: {fwd.page_not_found.page_name}")


def _set_value(ws: WidgetState, value: Any) -> None:
    if isinstance(value, bool):
        ws.bool_value = value
    elif isinstance(value, int):
        ws.int_value = value
    elif isinstance(value, float):
        ws.double_value = value
    elif isinstance(value, str):
        ws.string_value = value
    else:
        raise TypeError(f"unsupported widget value {value!r}")
