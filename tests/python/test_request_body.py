# SPDX-License-Identifier: LGPL-2.1-or-later
"""Request bodies from Python: GLib.Bytes, a Gio.MemoryInputStream with a
known length (Content-Length) and with -1 (chunked); query parameters."""

from dispatchtest import GLib, Gio, DispatchTestCase, make_body, sha256, main


class RequestBodyTests(DispatchTestCase):

    def post(self, configure):
        req = self.request('/echo', 'POST')
        configure(req)
        rec, _ = self.fetch(request=req)
        self.assertEqual(rec.events[-1], 'response_end', rec.error)
        self.assertEqual(rec.status, 200)
        return rec

    def test_body_from_bytes(self):
        payload = make_body(100 * 1024, seed=7)
        body = GLib.Bytes.new(payload)
        rec = self.post(lambda req: req.set_body(body))
        self.assertEqual(rec.headers.get('x-method'), 'POST')
        self.assertEqual(rec.headers.get('x-request-encoding'), 'content-length')
        self.assertEqual(rec.headers.get('x-request-length'), str(len(payload)))
        self.assertEqual(sha256(bytes(rec.body)), sha256(payload))

    def test_body_bytes_property(self):
        def configure(req):
            req.props.body = GLib.Bytes.new(b'via property')
            self.assertEqual(req.get_body().get_data(), b'via property')
        rec = self.post(configure)
        self.assertEqual(bytes(rec.body), b'via property')

    def test_body_from_stream_with_length(self):
        payload = make_body(300 * 1024, seed=8)

        def configure(req):
            stream = Gio.MemoryInputStream.new_from_bytes(GLib.Bytes.new(payload))
            req.set_body_stream(stream, len(payload))
            self.assertEqual(req.props.body_length, len(payload))
            self.assertIs(req.props.body_stream, stream)
        rec = self.post(configure)
        self.assertEqual(rec.headers.get('x-request-encoding'), 'content-length')
        self.assertEqual(rec.headers.get('x-request-length'), str(len(payload)))
        self.assertEqual(sha256(bytes(rec.body)), sha256(payload))

    def test_body_from_stream_chunked(self):
        payload = make_body(300 * 1024, seed=9)

        def configure(req):
            stream = Gio.MemoryInputStream.new_from_bytes(GLib.Bytes.new(payload))
            req.set_body_stream(stream, -1)
            self.assertEqual(req.get_body_length(), -1)
        rec = self.post(configure)
        self.assertEqual(rec.headers.get('x-request-encoding'), 'chunked')
        self.assertEqual(rec.headers.get('x-request-length'), str(len(payload)))
        self.assertEqual(sha256(bytes(rec.body)), sha256(payload))

    def test_stream_properties_chunked(self):
        payload = b'set through properties'

        def configure(req):
            stream = Gio.MemoryInputStream.new_from_bytes(GLib.Bytes.new(payload))
            req.props.body_stream = stream
            req.props.body_length = -1
        rec = self.post(configure)
        self.assertEqual(rec.headers.get('x-request-encoding'), 'chunked')
        self.assertEqual(bytes(rec.body), payload)

    def test_empty_post(self):
        rec = self.post(lambda req: None)
        self.assertEqual(rec.headers.get('x-request-length'), '0')
        self.assertEqual(bytes(rec.body), b'')

    def test_query_and_headers(self):
        req = self.request('/echo')
        req.add_query('q', 'a b&c')
        req.add_query('empty', None)
        req.add_header('X-Thing', 'one')
        req.get_headers().append('x-other', 'two')
        rec, _ = self.fetch(request=req)
        self.assertEqual(rec.headers.get('x-query'), req.get_query())
        self.assertIn('q=a', req.get_query())
        self.assertNotIn(' ', req.get_query())
        self.assertEqual(rec.headers.get('x-echo-x-thing'), 'one')
        self.assertEqual(rec.headers.get('x-echo-x-other'), 'two')


if __name__ == '__main__':
    main()
