# SPDX-License-Identifier: LGPL-2.1-or-later
"""Shared helpers for the Python tests of libdispatch-gobject.

Every test file imports this module (it sits next to them, so the script
directory on sys.path finds it). It provides:

* TestServer: a Soup.Server on 127.0.0.1, port 0, in the main context of
  the test process, with a few routes (see TestServer.__init__);
* Recorder: a Dispatch.Handler implemented in Python that records every
  callback, the thread it ran on, the status, reason, headers and body, and
  runs optional per-test hooks;
* DispatchTestCase: a unittest.TestCase with a GLib.MainLoop, a server and
  an agent per test, `run_until()` (every wait is bounded) and
  `assert_contract()` (the handler contract of the library).

Run the tests with /usr/bin/python3 (the Python with PyGObject), with
GI_TYPELIB_PATH and LD_LIBRARY_PATH pointing at the build's
libdispatch-gobject/ directory; meson test does this.
"""

import ctypes
import hashlib
import random
import threading
import traceback
import unittest

import gi

gi.require_version('GLib', '2.0')
gi.require_version('Gio', '2.0')
gi.require_version('Soup', '3.0')
gi.require_version('Dispatch', '1')

from gi.repository import GLib, GObject, Gio, Soup, Dispatch  # noqa: E402

# Every wait is bounded by this unless a test says otherwise.
WAIT_MS = 10000

TERMINAL = ('response_end', 'response_error')

__all__ = ['GLib', 'GObject', 'Gio', 'Soup', 'Dispatch', 'WAIT_MS',
           'make_body', 'sha256', 'TestServer', 'Recorder', 'DispatchTestCase',
           'on_main_thread', 'abort_without_reason', 'destroy_without_reason',
           'PYGOBJECT_NULL_GERROR', 'main']


# PyGObject before 3.47 cannot pass None for a nullable GError argument
# (TypeError "Must be GLib.Error, not NoneType"; fixed upstream by commit
# 22ae4d6b "Handle a specific case where the error is None"). That hits
# RequestController.abort(None) and Dispatcher.destroy_async(None, ...).
PYGOBJECT_NULL_GERROR = gi.version_info >= (3, 47, 0)


def _c_pointer(obj):
    get = ctypes.pythonapi.PyCapsule_GetPointer
    get.restype = ctypes.c_void_p
    get.argtypes = [ctypes.py_object, ctypes.c_char_p]
    return get(obj.__gpointer__, None)


def _libdispatch():
    return ctypes.CDLL('libdispatch-gobject-1.so.0')


def abort_without_reason(controller):
    """controller.abort(None), through ctypes where PyGObject cannot pass
    None for the GError."""
    if PYGOBJECT_NULL_GERROR:
        controller.abort(None)
        return
    fn = _libdispatch().dispatch_request_controller_abort
    fn.restype = None
    fn.argtypes = [ctypes.c_void_p, ctypes.c_void_p]
    fn(_c_pointer(controller), None)


def destroy_without_reason(agent):
    """agent.destroy_async(None, None, None), through ctypes where PyGObject
    cannot pass None for the GError. Join it with a second destroy_async()
    to learn when it completes."""
    if PYGOBJECT_NULL_GERROR:
        agent.destroy_async(None, None, None)
        return
    fn = _libdispatch().dispatch_dispatcher_destroy_async
    fn.restype = None
    fn.argtypes = [ctypes.c_void_p] * 5
    fn(_c_pointer(agent), None, None, None, None)


def make_body(size, seed=1):
    """size bytes of reproducible pseudo-random data."""
    return random.Random(seed).randbytes(size)


def sha256(data):
    return hashlib.sha256(data).hexdigest()


def on_main_thread():
    return threading.current_thread() is threading.main_thread()


class TestServer:
    """A Soup.Server on 127.0.0.1:0 serving these routes:

    /hello         299 "Custom Reason", two Set-Cookie field lines (a=1,
                   b=2), X-Custom: one / X-Custom: two, body "hello world"
                   (Content-Length)
    /big           200 with self.big (1 MiB, Content-Length)
    /stream        200 chunked: the first self.stream_first bytes of
                   self.stream_body at once, the rest only after
                   release_stream() (the message stays paused until then)
    /hang          never answers (the message is paused and held)
    /stall         200 chunked, sends "hello" and then nothing
    /slow?ms=N     the response head and "slow" only after N ms
    /echo          200, the request body as the response body, with
                   x-request-length, x-request-encoding (chunked,
                   content-length or none), x-method, x-query and
                   x-echo-NAME for every request header NAME starting
                   with x-
    anything else  404

    `requests` counts the requests seen; `stream_written` counts /stream
    body bytes the server has written to its socket (on_stream_written,
    if set, is called with it after each write). on_request, if set, is
    called after each request has been routed.
    """

    def __init__(self):
        self.requests = 0
        self.held = []
        self.stream_msgs = []
        self.stream_written = 0
        self.on_stream_written = None
        self.on_request = None
        self.big = make_body(1024 * 1024, seed=2)
        self.stream_first = 64 * 1024
        self.stream_body = make_body(4 * 1024 * 1024, seed=3)
        self.routes = {
            '/hello': self._hello,
            '/big': self._big,
            '/stream': self._stream,
            '/hang': self._hang,
            '/stall': self._stall,
            '/slow': self._slow,
            '/echo': self._echo,
        }
        self.server = Soup.Server()
        self.server.add_handler(None, self._handle)
        self.server.listen_local(0, Soup.ServerListenOptions.IPV4_ONLY)
        self.port = self.server.get_uris()[0].get_port()
        self.origin = 'http://127.0.0.1:%d' % self.port

    def close(self):
        for msg in self.held:
            # Unblock held messages so the server can let go of them.
            msg.set_status(503, None)
            msg.unpause()
        self.held = []
        self.stream_msgs = []
        self.server.disconnect()

    def _handle(self, server, msg, path, query):
        self.requests += 1
        route = self.routes.get(path)
        if route is None:
            msg.set_status(404, None)
        else:
            route(msg, query or {})
        if self.on_request is not None:
            self.on_request()

    def _hello(self, msg, query):
        msg.set_status(299, 'Custom Reason')
        headers = msg.get_response_headers()
        headers.append('Set-Cookie', 'a=1')
        headers.append('Set-Cookie', 'b=2')
        headers.append('X-Custom', 'one')
        headers.append('X-Custom', 'two')
        msg.set_response('text/plain', Soup.MemoryUse.COPY, b'hello world')

    def _big(self, msg, query):
        msg.set_status(200, None)
        msg.set_response('application/octet-stream', Soup.MemoryUse.COPY, self.big)

    def _stream(self, msg, query):
        msg.set_status(200, None)
        msg.get_response_headers().set_encoding(Soup.Encoding.CHUNKED)
        msg.get_response_body().append_bytes(
            GLib.Bytes.new(self.stream_body[:self.stream_first]))

        def on_wrote_body_data(m, n):
            self.stream_written += n
            if self.on_stream_written is not None:
                self.on_stream_written(self.stream_written)
        msg.connect('wrote-body-data', on_wrote_body_data)
        # When the appended data runs out the message pauses by itself
        # until release_stream() appends the rest.
        self.stream_msgs.append(msg)

    def release_stream(self):
        """Send the rest of every /stream response seen so far."""
        for msg in self.stream_msgs:
            body = msg.get_response_body()
            body.append_bytes(GLib.Bytes.new(self.stream_body[self.stream_first:]))
            body.complete()
            msg.unpause()
        self.stream_msgs = []

    def _hang(self, msg, query):
        msg.pause()
        self.held.append(msg)

    def _stall(self, msg, query):
        msg.set_status(200, None)
        msg.get_response_headers().set_encoding(Soup.Encoding.CHUNKED)
        msg.get_response_body().append_bytes(GLib.Bytes.new(b'hello'))
        self.held.append(msg)

    def _slow(self, msg, query):
        ms = int(query.get('ms', '100'))
        msg.pause()
        self.held.append(msg)

        def answer():
            if msg in self.held:
                self.held.remove(msg)
                msg.set_status(200, None)
                msg.set_response('text/plain', Soup.MemoryUse.COPY, b'slow')
                msg.unpause()
            return GLib.SOURCE_REMOVE
        GLib.timeout_add(ms, answer)

    def _echo(self, msg, query):
        req_headers = msg.get_request_headers()
        encoding = req_headers.get_encoding()
        if encoding == Soup.Encoding.CHUNKED:
            enc = 'chunked'
        elif encoding == Soup.Encoding.CONTENT_LENGTH:
            enc = 'content-length'
        else:
            enc = 'none'
        body = msg.get_request_body().flatten().get_data() or b''
        msg.set_status(200, None)
        headers = msg.get_response_headers()
        headers.append('X-Request-Length', str(len(body)))
        headers.append('X-Request-Encoding', enc)
        headers.append('X-Method', msg.get_method())
        uri_query = msg.get_uri().get_query()
        headers.append('X-Query', uri_query or '')

        def echo_header(name, value):
            if name.lower().startswith('x-'):
                headers.append('X-Echo-' + name, value)
        req_headers.foreach(echo_header)
        msg.set_response('application/octet-stream', Soup.MemoryUse.COPY, body)


class Recorder(GObject.Object, Dispatch.Handler):
    """Records every callback. `hooks` maps a callback name (request_start,
    response_start, response_data, response_end, response_error) to a
    function called with (recorder, controller, *args) after recording.
    Exceptions in hooks are collected in `failures` (PyGObject would only
    print them). `on_event` is called after every callback (the test case
    uses it to stop its main loop)."""

    def __init__(self, hooks=None, on_event=None):
        super().__init__()
        self.hooks = hooks or {}
        self.on_event = on_event
        self.events = []
        self.off_main = []
        self.failures = []
        self.status = None
        self.reason = None
        self.headers = None
        self.body = bytearray()
        self.chunks = 0
        self.trailers = None
        self.error = None
        self.controllers = []

    @property
    def finished(self):
        return any(e in TERMINAL for e in self.events)

    def _record(self, name, controller, *args):
        self.events.append(name)
        self.controllers.append(controller)
        if not on_main_thread():
            self.off_main.append((name, threading.current_thread().name))
        hook = self.hooks.get(name)
        if hook is not None:
            try:
                hook(self, controller, *args)
            except Exception:  # noqa: BLE001 - reported by assert_contract
                self.failures.append(traceback.format_exc())
        if self.on_event is not None:
            self.on_event()

    def do_on_request_start(self, controller):
        self._record('request_start', controller)

    def do_on_response_informational(self, controller, status, headers):
        self._record('response_informational', controller, status, headers)

    def do_on_response_start(self, controller, status, headers, reason):
        self.status = status
        self.reason = reason
        self.headers = headers
        self._record('response_start', controller, status, headers, reason)

    def do_on_response_data(self, controller, chunk):
        self.body += chunk.get_data()
        self.chunks += 1
        self._record('response_data', controller, chunk)

    def do_on_response_end(self, controller, trailers):
        self.trailers = trailers
        self._record('response_end', controller, trailers)

    def do_on_response_error(self, controller, error):
        self.error = error
        self._record('response_error', controller, error)


class DispatchTestCase(unittest.TestCase):
    """A main loop, a TestServer and a default Dispatch.Agent per test."""

    agent_props = {}

    def setUp(self):
        self.loop = GLib.MainLoop()
        self._pred = None
        self.server = TestServer()
        self.server.on_request = self.wake
        self.agent = Dispatch.Agent(**self.agent_props)

    def tearDown(self):
        done = []

        def on_destroyed(agent, result):
            try:
                agent.destroy_finish(result)
            finally:
                done.append(True)
                self.wake()
        reason = GLib.Error.new_literal(Gio.io_error_quark(), 'test teardown',
                                        Gio.IOErrorEnum.CANCELLED)
        self.agent.destroy_async(reason, None, on_destroyed)
        self.run_until(lambda: done, what='agent teardown')
        self.server.close()
        # Let the server and libsoup drop their connections.
        ctx = GLib.MainContext.default()
        for _ in range(100):
            if not ctx.iteration(False):
                break

    # -- loop helpers ------------------------------------------------------

    def wake(self, *args):
        """Re-check the condition run_until() waits for; quit the loop once
        it holds. Safe to pass to GLib.idle_add from another thread."""
        if self._pred is not None and self._pred():
            self.loop.quit()
        return GLib.SOURCE_REMOVE

    def run_until(self, pred, timeout_ms=WAIT_MS, what='a condition'):
        """Run the main loop until pred() is true; fail after timeout_ms."""
        if pred():
            return
        timed_out = []

        def on_timeout():
            timed_out.append(True)
            self.loop.quit()
            return GLib.SOURCE_REMOVE

        self._pred = pred
        source = GLib.timeout_add(timeout_ms, on_timeout)
        try:
            self.loop.run()
        finally:
            self._pred = None
            if not timed_out:
                GLib.source_remove(source)
        if timed_out:
            self.fail('timed out after %d ms waiting for %s' % (timeout_ms, what))

    def run_for(self, ms):
        """Run the main loop for ms milliseconds (only for checks that
        something must NOT happen during that time)."""
        GLib.timeout_add(ms, lambda: self.loop.quit() or GLib.SOURCE_REMOVE)
        self.loop.run()

    # -- dispatch helpers --------------------------------------------------

    def recorder(self, **hooks):
        return Recorder(hooks=hooks, on_event=self.wake)

    def request(self, path='/hello', method='GET'):
        return Dispatch.Request.new(method, self.server.origin, path)

    def dispatch(self, request, handler, agent=None):
        return (agent or self.agent).dispatch(request, handler)

    def fetch(self, path='/hello', method='GET', request=None, **hooks):
        """Dispatch, wait for the terminal callback, check the contract and
        return (recorder, controller)."""
        rec = self.recorder(**hooks)
        ctl = self.dispatch(request or self.request(path, method), rec)
        self.run_until(lambda: rec.finished, what='the terminal callback')
        self.assert_contract(rec)
        return rec, ctl

    def assert_contract(self, rec):
        """The handler contract: request_start first, at most one
        response_start before any data, exactly one terminal callback and
        nothing after it, every callback on the main thread, no failed
        hook."""
        ev = rec.events
        self.assertEqual(rec.failures, [], 'a callback hook failed')
        self.assertEqual(rec.off_main, [], 'callbacks ran off the main thread')
        self.assertTrue(ev, 'no callback at all')
        self.assertEqual(ev[0], 'request_start', ev)
        self.assertEqual(ev.count('request_start'), 1, ev)
        self.assertLessEqual(ev.count('response_start'), 1, ev)
        terminals = [e for e in ev if e in TERMINAL]
        self.assertEqual(len(terminals), 1, ev)
        self.assertIn(ev[-1], TERMINAL, ev)
        if 'response_data' in ev:
            self.assertIn('response_start', ev)
            self.assertLess(ev.index('response_start'), ev.index('response_data'), ev)
        # The same controller comes with every callback.
        self.assertEqual(len(set(id(c) for c in rec.controllers)), 1)

    def assert_dispatch_error(self, error, code, msg=None):
        self.assertIsInstance(error, GLib.Error)
        self.assertTrue(error.matches(Dispatch.error_quark(), code),
                        msg or 'expected %s, got %s: %s (%s)' % (
                            Dispatch.Error(code).value_nick, error.domain,
                            error.message, error.code))


def main():
    unittest.main(verbosity=2)
