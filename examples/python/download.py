#!/usr/bin/python3
# SPDX-License-Identifier: LGPL-2.1-or-later
"""Stream a download to a file with backpressure, from Python.

    download.py [SIZE_MIB]

Starts a Soup.Server on 127.0.0.1 (port 0) that serves SIZE_MIB (default
32) MiB, downloads it with a Dispatch.Agent into a file in a temporary
directory and checks the file. Exits 0 on success.

The body is written with Gio.OutputStream.write_bytes_async(). A stream
takes one write at a time, so chunks wait in a queue. When the queue holds
HIGH_WATER chunks the disk has fallen behind the network: the handler
pauses the request (libdispatch-gobject then reads nothing more from the
socket, TCP flow control holds the server back and memory stays bounded)
and resumes it once the queue has drained to LOW_WATER.
"""

import collections
import hashlib
import os
import random
import sys
import tempfile

import gi

gi.require_version('Soup', '3.0')
gi.require_version('Dispatch', '1')

from gi.repository import GLib, GObject, Gio, Soup, Dispatch  # noqa: E402

HIGH_WATER = 4     # chunks queued or being written: pause
LOW_WATER = 1      # drained to this: resume


class FileWriter(GObject.Object, Dispatch.Handler):
    def __init__(self, stream, on_done):
        super().__init__()
        self.stream = stream
        self.on_done = on_done
        self.queue = collections.deque()
        self.writing = False
        self.controller = None
        self.cancellable = None
        self.ended = False
        self.error = None
        self.received = 0
        self.written = 0
        self.pauses = 0
        self.max_outstanding = 0

    def outstanding(self):
        return len(self.queue) + (1 if self.writing else 0)

    # -- Dispatch.Handler ----------------------------------------------------

    def do_on_request_start(self, controller):
        self.controller = controller
        # Cancelled when the request is aborted, times out or is destroyed.
        self.cancellable = controller.get_cancellable()

    def do_on_response_start(self, controller, status, headers, reason):
        print('HTTP %d %s, content-length %s' % (status, reason or '',
                                                 headers.get('content-length')))
        if status != 200:
            controller.abort(GLib.Error.new_literal(Gio.io_error_quark(), 'HTTP %d' % status,
                                                    Gio.IOErrorEnum.FAILED))

    def do_on_response_data(self, controller, chunk):
        self.received += chunk.get_size()
        self.queue.append(chunk)
        self.max_outstanding = max(self.max_outstanding, self.outstanding())
        self._write_next()
        if self.outstanding() >= HIGH_WATER and not controller.get_paused():
            # Takes effect when this callback returns.
            controller.pause()
            self.pauses += 1

    def do_on_response_end(self, controller, trailers):
        self.ended = True
        self._write_next()

    def do_on_response_error(self, controller, error):
        self._finish(error)

    # -- the disk writer -----------------------------------------------------

    def _write_next(self):
        if self.writing:
            return
        if not self.queue:
            if self.ended:
                self.stream.close_async(GLib.PRIORITY_DEFAULT, None, self._on_closed)
                self.ended = False
            return
        chunk = self.queue.popleft()
        self.writing = True
        self.stream.write_bytes_async(chunk, GLib.PRIORITY_DEFAULT, self.cancellable,
                                      self._on_written, chunk)

    def _on_written(self, stream, result, chunk):
        self.writing = False
        try:
            n = stream.write_bytes_finish(result)
        except GLib.Error as e:
            # Stop the download with the disk error as the reason; the
            # handler's on_response_error gets it.
            self.controller.abort(e)
            return
        self.written += n
        if n < chunk.get_size():
            self.queue.appendleft(GLib.Bytes.new_from_bytes(chunk, n, chunk.get_size() - n))
        if self.controller.get_paused() and self.outstanding() <= LOW_WATER:
            self.controller.resume()
        self._write_next()

    def _on_closed(self, stream, result):
        try:
            stream.close_finish(result)
            self._finish(None)
        except GLib.Error as e:
            self._finish(e)

    def _finish(self, error):
        if self.error is None and error is not None:
            self.error = error
        self.on_done()


def main(argv):
    size = int(argv[1]) * 1024 * 1024 if len(argv) > 1 else 32 * 1024 * 1024
    body = random.Random(42).randbytes(size)

    def serve(server, msg, path, query):
        msg.set_status(200, None)
        msg.set_response('application/octet-stream', Soup.MemoryUse.COPY, body)

    server = Soup.Server()
    server.add_handler('/file', serve)
    server.listen_local(0, Soup.ServerListenOptions.IPV4_ONLY)
    origin = 'http://127.0.0.1:%d' % server.get_uris()[0].get_port()

    loop = GLib.MainLoop()
    with tempfile.TemporaryDirectory(prefix='dispatch-download-') as tmp:
        filename = os.path.join(tmp, 'file.bin')
        stream = Gio.File.new_for_path(filename).replace(None, False,
                                                         Gio.FileCreateFlags.PRIVATE, None)
        agent = Dispatch.Agent(body_timeout=10000)
        writer = FileWriter(stream, loop.quit)
        request = Dispatch.Request.new('GET', origin, '/file')
        request.set_timeout(60000)  # the whole download, pauses included
        agent.dispatch(request, writer)
        loop.run()

        if writer.error is not None:
            print('download failed: %s' % writer.error.message, file=sys.stderr)
            return 1
        with open(filename, 'rb') as f:
            data = f.read()
        print('received %d bytes, wrote %d bytes to %s' % (writer.received, writer.written,
                                                          filename))
        print('paused %d times (at most %d chunks waiting for the disk)'
              % (writer.pauses, writer.max_outstanding))
        ok = len(data) == size and hashlib.sha256(data).digest() == hashlib.sha256(body).digest()
        print('file matches the server body' if ok else 'FILE DIFFERS FROM THE BODY')

        agent.close_async(None, lambda a, r: (a.close_finish(r), loop.quit()))
        loop.run()
    server.disconnect()
    return 0 if ok else 1


if __name__ == '__main__':
    sys.exit(main(sys.argv))
