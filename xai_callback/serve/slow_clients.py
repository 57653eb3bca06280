"""Slow clients: a request's headers must arrive within a time limit.

uvicorn closes idle keep-alive connections (`timeout_keep_alive`), but any
byte that arrives re-arms nothing: a client trickling its request headers a
byte a second holds a connection for as long as it likes, and many of them
hold the server's connections. `HeaderTimeout` subclasses uvicorn's HTTP
protocol (httptools when installed, else h11): from a connection's start,
and again after each answer, the next request's headers must be complete
within `seconds`, else it is answered 408 and closed. A request's body is
held to `--body-timeout-seconds` by `bodies.read_json` (also 408).
"""

import json

try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol as _Base
except ImportError:  # httptools not installed: uvicorn's pure-Python h11 protocol
    from uvicorn.protocols.http.h11_impl import H11Protocol as _Base


def header_timeout_protocol(seconds):
    """The uvicorn `http=` protocol class closing connections whose headers take longer than `seconds`.

    Example:

    ```python
    uvicorn.Config(app, http=header_timeout_protocol(10.0))
    ```
    """
    body = json.dumps({"error": f"The request headers did not arrive within {seconds:g} s "
                                "(--header-timeout-seconds)."}).encode()
    answer = (b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\n"
              b"content-length: %d\r\n\r\n%s" % (len(body), body))

    class HeaderTimeout(_Base):
        _header_timer = None
        _waiting_cycle = None

        def connection_made(self, transport):
            super().connection_made(transport)
            self._arm()

        def on_response_complete(self):
            super().on_response_complete()
            self._arm()

        def connection_lost(self, exc):
            self._disarm()
            super().connection_lost(exc)

        def _arm(self):
            self._disarm()
            self._waiting_cycle = self.cycle  # a new request's headers make a new cycle
            self._header_timer = self.loop.call_later(seconds, self._expired)

        def _disarm(self):
            if self._header_timer is not None:
                self._header_timer.cancel()
                self._header_timer = None

        def _expired(self):
            self._header_timer = None
            if self.cycle is not self._waiting_cycle or self.transport.is_closing():
                return  # the headers came: a request runs or ran
            self.transport.write(answer)
            self.transport.close()

    HeaderTimeout.__name__ = f"HeaderTimeout{_Base.__name__}"
    return HeaderTimeout
