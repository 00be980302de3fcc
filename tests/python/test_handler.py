# SPDX-License-Identifier: LGPL-2.1-or-later
"""A Dispatch.Handler implemented in Python: callback order, status,
reason, headers, body, trailers, the thread callbacks run on."""

import threading

from dispatchtest import (GLib, Dispatch, DispatchTestCase, Recorder,
                          sha256, main)


class HandlerTests(DispatchTestCase):

    def test_get_order_status_reason_body(self):
        rec, ctl = self.fetch('/hello')
        self.assertEqual(rec.events[0], 'request_start')
        self.assertEqual(rec.events[1], 'response_start')
        self.assertEqual(rec.events[-1], 'response_end')
        self.assertTrue(all(e == 'response_data' for e in rec.events[2:-1]), rec.events)
        self.assertEqual(rec.status, 299)
        self.assertEqual(rec.reason, 'Custom Reason')
        self.assertEqual(bytes(rec.body), b'hello world')
        self.assertIsNone(rec.error)
        self.assertTrue(ctl.get_finished())
        self.assertFalse(ctl.get_aborted())
        self.assertIsNone(ctl.get_reason())
        self.assertFalse(ctl.props.paused)

    def test_data_chunks_are_glib_bytes(self):
        seen = []

        def on_data(rec, ctl, chunk):
            seen.append(type(chunk))
            self.assertIsInstance(chunk.get_data(), bytes)
            self.assertEqual(chunk.get_size(), len(chunk.get_data()))
        rec, ctl = self.fetch('/big', response_data=on_data)
        self.assertTrue(seen)
        self.assertTrue(all(t is GLib.Bytes for t in seen), seen)
        self.assertEqual(rec.status, 200)
        self.assertEqual(len(rec.body), len(self.server.big))
        self.assertEqual(sha256(bytes(rec.body)), sha256(self.server.big))

    def test_multi_value_headers(self):
        rec, _ = self.fetch('/hello')
        headers = rec.headers
        self.assertIsInstance(headers, Dispatch.Headers)
        cookies = headers.get_all('set-cookie')
        self.assertIsInstance(cookies, list)
        self.assertEqual(cookies, ['a=1', 'b=2'])
        # Lookup is case-insensitive; names are reported in lower case.
        self.assertEqual(headers.get_all('Set-Cookie'), ['a=1', 'b=2'])
        self.assertEqual(headers.get_all('x-custom'), ['one', 'two'])
        self.assertEqual(headers.get('x-custom'), 'two')
        self.assertEqual(headers.get('content-length'), '11')
        self.assertIsNone(headers.get('x-missing'))
        self.assertEqual(headers.get_all('x-missing'), [])
        self.assertTrue(headers.contains('SET-COOKIE'))
        names = headers.get_names()
        self.assertIsInstance(names, list)
        self.assertEqual(names, [n.lower() for n in names])
        self.assertEqual(len(names), len(set(names)), 'get_names() lists each name once')
        for name in ('set-cookie', 'x-custom', 'content-type', 'content-length'):
            self.assertIn(name, names)
        pairs = [(headers.get_name(i), headers.get_value(i))
                 for i in range(headers.get_length())]
        self.assertEqual([v for n, v in pairs if n == 'set-cookie'], ['a=1', 'b=2'])
        self.assertIsNone(headers.get_name(headers.get_length()))

    def test_response_headers_read_only(self):
        errors = []

        def on_start(rec, ctl, status, headers, reason):
            self.assertTrue(headers.is_read_only())
            with self.assertRaises(GLib.Error) as cm:
                headers.append('x-new', 'v')
            errors.append(cm.exception)
            with self.assertRaises(GLib.Error) as cm:
                headers.set('x-custom', 'v')
            errors.append(cm.exception)
            # A copy is mutable.
            copy = headers.copy()
            self.assertFalse(copy.is_read_only())
            self.assertTrue(copy.append('x-new', 'v'))
            self.assertEqual(copy.get('x-new'), 'v')
        rec, _ = self.fetch('/hello', response_start=on_start)
        self.assertEqual(len(errors), 2)
        for e in errors:
            self.assert_dispatch_error(e, Dispatch.Error.NOT_SUPPORTED)
        self.assertIsNone(rec.headers.get('x-new'))
        # After the request the headers are still readable and still
        # read-only.
        self.assertEqual(rec.headers.get_all('set-cookie'), ['a=1', 'b=2'])
        with self.assertRaises(GLib.Error):
            rec.headers.append('x-late', 'v')

    def test_trailers_empty_read_only(self):
        rec, _ = self.fetch('/hello')
        self.assertIsInstance(rec.trailers, Dispatch.Headers)
        self.assertEqual(rec.trailers.get_length(), 0)
        self.assertTrue(rec.trailers.is_read_only())
        with self.assertRaises(GLib.Error) as cm:
            rec.trailers.append('x-trailer', 'v')
        self.assert_dispatch_error(cm.exception, Dispatch.Error.NOT_SUPPORTED)

    def test_not_found_is_a_response(self):
        rec, _ = self.fetch('/nope')
        self.assertEqual(rec.status, 404)
        self.assertEqual(rec.events[-1], 'response_end')

    def test_callbacks_on_main_thread(self):
        threads = []

        def note(rec, ctl, *args):
            threads.append(threading.current_thread())
            self.assertTrue(ctl.get_context().is_owner())
        rec, _ = self.fetch('/big', request_start=note, response_start=note,
                            response_data=note, response_end=note)
        self.assertGreaterEqual(len(threads), 3)
        self.assertTrue(all(t is threading.main_thread() for t in threads), threads)

    def test_callbacks_never_reentrant(self):
        """dispatch() never calls the handler before it returns."""
        rec = self.recorder()
        ctl = self.dispatch(self.request('/hello'), rec)
        self.assertEqual(rec.events, [])
        self.assertIsInstance(ctl, Dispatch.RequestController)
        self.run_until(lambda: rec.finished)
        self.assert_contract(rec)

    def test_dispatch_from_python_thread(self):
        """A request dispatched from a worker thread with its own main
        context gets every callback on that thread."""
        result = {}

        def worker():
            ctx = GLib.MainContext.new()
            ctx.push_thread_default()
            try:
                loop = GLib.MainLoop.new(ctx, False)
                names = []

                def on_event():
                    names.append(threading.current_thread().name)
                    if rec.finished:
                        loop.quit()
                rec = Recorder(on_event=on_event)
                agent = Dispatch.Agent()
                agent.dispatch(self.request('/hello'), rec)
                timeout = GLib.timeout_source_new(5000)
                timeout.set_callback(lambda *a: loop.quit() or GLib.SOURCE_REMOVE)
                timeout.attach(ctx)
                loop.run()
                timeout.destroy()
                result['rec'] = rec
                result['names'] = names
                done = []
                agent.close_async(None, lambda a, r: done.append(a.close_finish(r)))
                while not done:
                    ctx.iteration(True)
            finally:
                ctx.pop_thread_default()
                GLib.idle_add(self.wake)

        thread = threading.Thread(target=worker, name='dispatch-worker')
        thread.start()
        self.run_until(lambda: not thread.is_alive() or 'names' in result,
                       what='the worker thread')
        thread.join(10)
        self.assertFalse(thread.is_alive())
        rec = result['rec']
        self.assertEqual(rec.events[-1], 'response_end', rec.events)
        self.assertEqual(set(result['names']), {'dispatch-worker'})
        self.assertEqual(bytes(rec.body), b'hello world')


if __name__ == '__main__':
    main()
