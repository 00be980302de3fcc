# SPDX-License-Identifier: LGPL-2.1-or-later
"""Validation errors reach a Python handler through do_on_response_error
(never as an exception from dispatch(), never re-entrantly, nothing sent,
no CRITICAL: the tests run with G_DEBUG=fatal-criticals)."""

from dispatchtest import GLib, Dispatch, DispatchTestCase, main


class ValidationTests(DispatchTestCase):

    def fails_with(self, req, code, field=None):
        rec = self.recorder()
        ctl = self.dispatch(req, rec)
        self.assertIsInstance(ctl, Dispatch.RequestController)
        self.assertEqual(rec.events, [])
        self.run_until(lambda: rec.finished)
        self.assert_contract(rec)
        self.assertEqual(rec.events, ['request_start', 'response_error'])
        self.assert_dispatch_error(rec.error, code)
        if field is not None:
            self.assertIn(field, rec.error.message)
        self.run_for(20)
        self.assertEqual(self.server.requests, 0, 'something was sent')
        return rec.error

    def test_bad_origin(self):
        for origin in ('ftp://127.0.0.1', 'not a url', 'http://', 'http://127.0.0.1:99999',
                       self.server.origin + '/path'):
            with self.subTest(origin=origin):
                req = Dispatch.Request.new('GET', origin, '/')
                self.fails_with(req, Dispatch.Error.INVALID_ARGUMENT, 'origin')

    def test_validate_raises(self):
        req = Dispatch.Request.new('GET', 'ftp://127.0.0.1', '/')
        with self.assertRaises(GLib.Error) as cm:
            req.validate()
        self.assert_dispatch_error(cm.exception, Dispatch.Error.INVALID_ARGUMENT)
        self.assertTrue(self.request('/hello').validate())

    def test_bad_path(self):
        self.fails_with(self.request('no-slash'), Dispatch.Error.INVALID_ARGUMENT, 'path')

    def test_bad_method(self):
        self.fails_with(self.request('/', 'GE T'), Dispatch.Error.INVALID_ARGUMENT, 'method')
        self.fails_with(self.request('/', 'CONNECT'), Dispatch.Error.INVALID_ARGUMENT, 'method')

    def test_bad_header(self):
        req = self.request('/hello')
        req.add_header('x-bad', 'a\r\nb')   # add_header does not validate
        self.fails_with(req, Dispatch.Error.INVALID_ARGUMENT, 'header')
        req = self.request('/hello')
        req.add_header('content-length', '5')
        self.fails_with(req, Dispatch.Error.INVALID_ARGUMENT, 'header')

    def test_expect_not_supported(self):
        req = self.request('/hello')
        req.add_header('expect', '100-continue')
        self.fails_with(req, Dispatch.Error.NOT_SUPPORTED)

    def test_headers_append_validates(self):
        headers = Dispatch.Headers.new()
        with self.assertRaises(GLib.Error) as cm:
            headers.append('bad name', 'v')
        self.assert_dispatch_error(cm.exception, Dispatch.Error.INVALID_ARGUMENT)
        with self.assertRaises(GLib.Error):
            headers.set('x-ok', 'bad\nvalue')
        self.assertEqual(headers.get_length(), 0)
        self.assertTrue(headers.append('X-OK', 'v'))
        self.assertEqual(headers.get_names(), ['x-ok'])


if __name__ == '__main__':
    main()
