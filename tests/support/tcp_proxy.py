"""A TCP proxy a test can cut, to make a server's database unreachable on purpose; that holds
a request half sent (``stall_once``), to catch a client in the middle of an upload; or that
drops the answer to a request the server received whole (``drop_reply_once``), as a server
killed or a network cut after the server acted but before the client heard."""

from __future__ import annotations

import contextlib
import socket
import threading

from support.live import free_port


class TcpProxy:
    def __init__(self, target_host: str, target_port: int) -> None:
        self.target = (target_host, target_port)
        self.port = free_port()
        self._listener: socket.socket | None = None
        self._connections: list[socket.socket] = []
        self._lock = threading.Lock()
        self._open = threading.Event()
        self._stall_on: bytes | None = None
        self._held = threading.Event()  # set: every held request goes on
        self.stalled = threading.Event()
        self._drop_on: bytes | None = None
        self._dropping: set[socket.socket] = set()  # clients whose next answer is dropped
        self.dropped = threading.Event()

    def __enter__(self) -> TcpProxy:
        self.restore()
        return self

    def __exit__(self, *exc: object) -> None:
        self.cut()

    def restore(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()

    def stall_once(self, marker: bytes) -> None:
        """Hold the next request whose first bytes read hold ``marker``: those bytes reach the
        target, nothing after them does (``stalled`` is set) until ``cut``."""
        with self._lock:
            self._stall_on = marker
            self._held.clear()
            self.stalled.clear()

    def drop_reply_once(self, marker: bytes) -> None:
        """Close, instead of answering, the connection of the next request holding ``marker``
        once the target starts answering it (``dropped`` is set)."""
        with self._lock:
            self._drop_on = marker
            self.dropped.clear()

    def cut(self) -> None:
        """Close the listener and every open connection: nothing reaches the target."""
        self._held.set()
        with self._lock:
            if self._listener is not None:
                # shutdown() wakes the thread blocked in accept(); close() alone does not.
                with contextlib.suppress(OSError):
                    self._listener.shutdown(socket.SHUT_RDWR)
                self._listener.close()
                self._listener = None
            for conn in self._connections:
                with contextlib.suppress(OSError):
                    conn.shutdown(socket.SHUT_RDWR)
                conn.close()
            self._connections.clear()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            with self._lock:
                self._connections += [client, upstream]
            for a, b, out in ((client, upstream, True), (upstream, client, False)):
                threading.Thread(target=self._pipe, args=(a, b, out), daemon=True).start()

    def _holds(self, data: bytes) -> bool:
        """Whether this request's bytes are the ones to hold (once)."""
        with self._lock:
            if self._stall_on is None or self._stall_on not in data:
                return False
            self._stall_on = None
            return True

    def _marks_for_drop(self, client: socket.socket, data: bytes) -> None:
        with self._lock:
            if self._drop_on is not None and self._drop_on in data:
                self._drop_on = None
                self._dropping.add(client)

    def _drops(self, client: socket.socket) -> bool:
        with self._lock:
            if client not in self._dropping:
                return False
            self._dropping.discard(client)
            return True

    def _pipe(self, source: socket.socket, sink: socket.socket, outgoing: bool) -> None:
        try:
            while data := source.recv(65536):
                if outgoing:
                    self._marks_for_drop(source, data)
                elif self._drops(sink):
                    self.dropped.set()
                    return  # both ends are closed below, the answer unsent
                sink.sendall(data)
                if outgoing and self._holds(data):
                    self.stalled.set()
                    self._held.wait()
        except OSError:
            pass
        finally:
            for s in (source, sink):
                with contextlib.suppress(OSError):
                    s.shutdown(socket.SHUT_RDWR)
