#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""GET a page with libdispatch-gobject from Python and print its status line,
headers and body.

    get.py [URL]

Without a URL it starts a Soup.Server on 127.0.0.1 (port 0) in this process
and fetches /hello from it, so it works offline. Exits 0 on success.

The handler is a Python class implementing Dispatch.Handler; it overrides
only the callbacks it needs. Every callback runs in the main context of the
thread that called dispatch() (here, the main thread).
"""

import sys

import gi

gi.require_version('Soup', '3.0')
gi.require_version('Dispatch', '1')

from gi.repository import GLib, GObject, Gio, Soup, Dispatch  # noqa: E402


class Printer(GObject.Object, Dispatch.Handler):
    def __init__(self, loop):
        super().__init__()
        self.loop = loop
        self.ok = False
        self.received = 0

    def do_on_response_start(self, controller, status, headers, reason):
        print('HTTP %d %s' % (status, reason or ''))
        # Fields in arrival order; a repeated field (Set-Cookie) stays two
        # lines. headers.get_all('set-cookie') gives them as a list.
        for i in range(headers.get_length()):
            print('%s: %s' % (headers.get_name(i), headers.get_value(i)))
        print()

    def do_on_response_data(self, controller, chunk):
        self.received += chunk.get_size()
        sys.stdout.buffer.write(chunk.get_data())

    def do_on_response_end(self, controller, trailers):
        sys.stdout.flush()
        print('\n-- %d bytes' % self.received)
        self.ok = True
        self.loop.quit()

    def do_on_response_error(self, controller, error):
        # error is a GLib.Error; match library errors like this:
        if error.matches(Dispatch.error_quark(), Dispatch.Error.SOCKET):
            print('error: could not connect', file=sys.stderr)
        print('error: %s (%s, %d)' % (error.message, error.domain, error.code), file=sys.stderr)
        self.loop.quit()


def start_server():
    def hello(server, msg, path, query):
        msg.set_status(200, None)
        headers = msg.get_response_headers()
        headers.append('Set-Cookie', 'a=1')
        headers.append('Set-Cookie', 'b=2')
        msg.set_response('text/plain', Soup.MemoryUse.COPY, b'Hello from Python!\n')

    server = Soup.Server()
    server.add_handler('/hello', hello)
    server.listen_local(0, Soup.ServerListenOptions.IPV4_ONLY)
    return server


def split_url(url):
    """'http://host:port/path?query' -> (origin, path, query)"""
    uri = GLib.Uri.parse(url, GLib.UriFlags.ENCODED)
    origin = '%s://%s' % (uri.get_scheme(), uri.get_host())
    if uri.get_port() > 0:
        origin += ':%d' % uri.get_port()
    return origin, uri.get_path() or '/', uri.get_query()


def main(argv):
    server = None
    if len(argv) > 1:
        origin, path, query = split_url(argv[1])
    else:
        server = start_server()
        origin = 'http://127.0.0.1:%d' % server.get_uris()[0].get_port()
        path, query = '/hello', None

    loop = GLib.MainLoop()
    agent = Dispatch.Agent(headers_timeout=10000)
    request = Dispatch.Request.new('GET', origin, path)
    if query:
        request.set_query(query)
    request.add_header('Accept', 'text/plain')
    printer = Printer(loop)
    controller = agent.dispatch(request, printer)

    # Every wait is bounded: give up after 30 s.
    def give_up():
        controller.abort(GLib.Error.new_literal(Gio.io_error_quark(), 'gave up after 30 s',
                                                Gio.IOErrorEnum.TIMED_OUT))
        return GLib.SOURCE_REMOVE
    GLib.timeout_add_seconds(30, give_up)
    loop.run()

    # Close the agent: later requests would fail, in-flight ones finish.
    def on_closed(agent, result):
        agent.close_finish(result)
        loop.quit()
    agent.close_async(None, on_closed)
    loop.run()

    if server is not None:
        server.disconnect()
    return 0 if printer.ok else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv))
