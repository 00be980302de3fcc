# SPDX-License-Identifier: LGPL-2.1-or-later
"""Closing and destroying an agent from Python with the async API
(close_async/close_finish, destroy_async/destroy_finish, callbacks)."""

from dispatchtest import (GLib, Gio, Dispatch, DispatchTestCase,
                          destroy_without_reason, on_main_thread, main)


class LifecycleTests(DispatchTestCase):

    def _async(self, start, finish, *args):
        """Call start(*args, None, callback); return a dict filled by the
        callback with 'result' or 'error' (and 'on_main')."""
        out = {}

        def callback(source, result):
            out['source'] = source
            out['on_main'] = on_main_thread()
            try:
                out['result'] = finish(result)
            except GLib.Error as e:
                out['error'] = e
            self.wake()
        start(*args, None, callback)
        return out

    def close(self):
        return self._async(self.agent.close_async, self.agent.close_finish)

    def destroy(self, reason):
        return self._async(self.agent.destroy_async, self.agent.destroy_finish, reason)

    def test_close_idle_agent(self):
        out = self.close()
        self.assertEqual(out, {}, 'close_async completed re-entrantly')
        self.run_until(lambda: out, what='close_async')
        self.assertIs(out['result'], True)
        self.assertIs(out['source'], self.agent)
        self.assertTrue(out['on_main'])
        self.assertTrue(self.agent.props.closed)

    def test_close_lets_in_flight_finish(self):
        rec = self.recorder()
        self.dispatch(self.request('/slow?ms=200'), rec)
        order = []
        rec.hooks['response_end'] = lambda r, c, t: order.append('end')
        out = self.close()
        self.run_until(lambda: out, what='close_async')
        order.append('closed')
        self.assert_contract(rec)
        self.assertEqual(rec.events[-1], 'response_end', rec.error)
        self.assertEqual(bytes(rec.body), b'slow')
        self.assertEqual(order, ['end', 'closed'])
        self.assertIs(out['result'], True)

    def test_dispatch_after_close_fails_closed(self):
        out = self.close()
        rec, _ = self.fetch('/hello')
        self.assertEqual(rec.events, ['request_start', 'response_error'])
        self.assert_dispatch_error(rec.error, Dispatch.Error.CLOSED)
        self.run_until(lambda: out)
        self.assertEqual(self.server.requests, 0)

    def test_close_is_joinable(self):
        first, second = self.close(), self.close()
        self.run_until(lambda: first and second)
        self.assertIs(first['result'], True)
        self.assertIs(second['result'], True)

    def test_destroy_with_reason(self):
        rec = self.recorder()
        self.dispatch(self.request('/hang'), rec)
        self.run_until(lambda: self.server.held, what='the server to get the request')
        reason = GLib.Error.new_literal(Gio.io_error_quark(), 'going away',
                                        Gio.IOErrorEnum.CONNECTION_CLOSED)
        out = self.destroy(reason)
        # Delivered after destroy_async() has returned.
        self.assertFalse(rec.finished)
        self.run_until(lambda: out and rec.finished, what='destroy_async')
        self.assert_contract(rec)
        self.assertTrue(rec.error.matches(Gio.io_error_quark(), Gio.IOErrorEnum.CONNECTION_CLOSED))
        self.assertEqual(rec.error.message, 'going away')
        self.assertIs(out['result'], True)
        self.assertTrue(self.agent.props.destroyed)

    def test_destroy_without_reason(self):
        """In-flight requests fail with DESTROYED; a second destroy_async
        joins the first."""
        rec = self.recorder()
        self.dispatch(self.request('/hang'), rec)
        self.run_until(lambda: self.server.held, what='the server to get the request')
        destroy_without_reason(self.agent)
        self.assertFalse(rec.finished)
        other = GLib.Error.new_literal(Gio.io_error_quark(), 'ignored', Gio.IOErrorEnum.FAILED)
        out = self.destroy(other)
        self.run_until(lambda: out and rec.finished)
        self.assert_contract(rec)
        self.assert_dispatch_error(rec.error, Dispatch.Error.DESTROYED)
        self.assertIs(out['result'], True)

    def test_after_destroy(self):
        reason = GLib.Error.new_literal(Gio.io_error_quark(), 'bye', Gio.IOErrorEnum.FAILED)
        destroyed = self.destroy(reason)
        self.run_until(lambda: destroyed)
        # dispatch after destroy: DESTROYED
        rec, _ = self.fetch('/hello')
        self.assertEqual(rec.events, ['request_start', 'response_error'])
        self.assert_dispatch_error(rec.error, Dispatch.Error.DESTROYED)
        # close after destroy: close_finish raises DESTROYED
        out = self.close()
        self.run_until(lambda: out)
        self.assertNotIn('result', out)
        self.assert_dispatch_error(out['error'], Dispatch.Error.DESTROYED)


if __name__ == '__main__':
    main()
