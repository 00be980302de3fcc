#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Abort a request from a timer, from Python.

Starts a Soup.Server on 127.0.0.1 (port 0) whose /ticker sends a line every
100 ms and never finishes, streams it with a Dispatch.Agent, and aborts the
request after 550 ms with a reason of our own. The handler's
on_response_error gets exactly that reason (a GLib.Error) and nothing comes
after it. Exits 0 when that is what happened.

(RequestController.abort() also takes no reason, giving a
Dispatch.Error.ABORTED error; PyGObject before 3.47 cannot pass None for a
GError argument, so this example always gives one.)
"""

import sys

import gi

gi.require_version('Soup', '3.0')
gi.require_version('Dispatch', '1')

from gi.repository import GLib, GObject, Gio, Soup, Dispatch  # noqa: E402

ABORT_AFTER_MS = 550


class Ticker(GObject.Object, Dispatch.Handler):
    def __init__(self, loop):
        super().__init__()
        self.loop = loop
        self.lines = 0
        self.error = None
        self.ended = False

    def do_on_response_start(self, controller, status, headers, reason):
        print('HTTP %d, streaming...' % status)

    def do_on_response_data(self, controller, chunk):
        text = chunk.get_data().decode()
        self.lines += text.count('\n')
        print('  got %r' % text)

    def do_on_response_end(self, controller, trailers):
        self.ended = True
        self.loop.quit()

    def do_on_response_error(self, controller, error):
        self.error = error
        self.loop.quit()


def start_server():
    def ticker(server, msg, path, query):
        msg.set_status(200, None)
        msg.get_response_headers().set_encoding(Soup.Encoding.CHUNKED)
        count = [0]

        def tick():
            count[0] += 1
            msg.get_response_body().append_bytes(GLib.Bytes.new(b'tick %d\n' % count[0]))
            msg.unpause()
            return GLib.SOURCE_CONTINUE

        source = GLib.timeout_add(100, tick)
        # Stop ticking once the client has gone away.
        msg.connect('finished', lambda m: GLib.source_remove(source))

    server = Soup.Server()
    server.add_handler('/ticker', ticker)
    server.listen_local(0, Soup.ServerListenOptions.IPV4_ONLY)
    return server


def main():
    server = start_server()
    origin = 'http://127.0.0.1:%d' % server.get_uris()[0].get_port()
    loop = GLib.MainLoop()
    agent = Dispatch.Agent()
    handler = Ticker(loop)
    controller = agent.dispatch(Dispatch.Request.new('GET', origin, '/ticker'), handler)

    reason = GLib.Error.new_literal(Gio.io_error_quark(), 'enough ticks',
                                    Gio.IOErrorEnum.CANCELLED)

    def stop():
        print('aborting after %d ms' % ABORT_AFTER_MS)
        # Safe from any thread and in every phase; the handler hears about
        # it later, from the main loop, never inside abort().
        controller.abort(reason)
        return GLib.SOURCE_REMOVE

    GLib.timeout_add(ABORT_AFTER_MS, stop)
    GLib.timeout_add_seconds(30, lambda: loop.quit() or GLib.SOURCE_REMOVE)  # bound
    loop.run()

    error = handler.error
    if error is None:
        print('the request was not aborted', file=sys.stderr)
        return 1
    print('on_response_error: %s (%s %d) after %d lines'
          % (error.message, error.domain, error.code, handler.lines))
    print('controller: aborted=%s, cancellable cancelled=%s'
          % (controller.props.aborted, controller.get_cancellable().is_cancelled()))

    agent.close_async(None, lambda a, r: (a.close_finish(r), loop.quit()))
    loop.run()
    server.disconnect()

    ok = (error.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED)
          and error.message == 'enough ticks' and controller.props.aborted
          and not handler.ended and handler.lines >= 1)
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main())
