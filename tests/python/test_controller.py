# SPDX-License-Identifier: LGPL-2.1-or-later
"""Dispatch.RequestController from Python: abort with and without a
reason, pause and resume from a Python thread while the main loop runs,
wait_if_paused() in a worker thread."""

import threading
import time
import unittest

from dispatchtest import (GLib, Gio, Dispatch, DispatchTestCase, WAIT_MS,
                          PYGOBJECT_NULL_GERROR, abort_without_reason, sha256,
                          main)


def my_reason():
    return GLib.Error.new_literal(Gio.io_error_quark(), 'my reason', Gio.IOErrorEnum.FAILED)


class AbortTests(DispatchTestCase):

    def test_abort_without_reason_is_aborted(self):
        """The library's own ABORTED error reaches the Python handler as a
        GLib.Error that matches Dispatch.error_quark()/ABORTED."""
        rec = self.recorder(response_start=lambda r, c, *a: abort_without_reason(c))
        ctl = self.dispatch(self.request('/stall'), rec)
        self.run_until(lambda: rec.finished)
        self.assert_contract(rec)
        self.assertEqual(rec.events[-1], 'response_error')
        e = rec.error
        self.assertIsInstance(e, GLib.Error)
        self.assertTrue(e.matches(Dispatch.error_quark(), Dispatch.Error.ABORTED),
                        '%s %s %s' % (e.domain, e.code, e.message))
        self.assertEqual(e.domain, 'dispatch-error-quark')
        self.assertEqual(e.code, int(Dispatch.Error.ABORTED))
        self.assertTrue(ctl.get_aborted())
        self.assertTrue(ctl.props.aborted)
        reason = ctl.get_reason()
        self.assertIsInstance(reason, GLib.Error)
        self.assertTrue(reason.matches(Dispatch.error_quark(), Dispatch.Error.ABORTED))
        self.assertTrue(ctl.get_cancellable().is_cancelled())

    @unittest.skipIf(PYGOBJECT_NULL_GERROR is False,
                     'PyGObject %s cannot pass None for a nullable GError '
                     '(RequestController.abort(None)); fixed in PyGObject 3.47'
                     % '.'.join(map(str, __import__('gi').version_info)))
    def test_abort_none_from_python(self):
        rec = self.recorder(request_start=lambda r, c: c.abort(None))
        self.dispatch(self.request('/hello'), rec)
        self.run_until(lambda: rec.finished)
        self.assert_dispatch_error(rec.error, Dispatch.Error.ABORTED)

    def test_abort_with_reason(self):
        """A GLib.Error built in Python is what the handler gets."""
        rec = self.recorder(response_start=lambda r, c, *a: c.abort(my_reason()))
        ctl = self.dispatch(self.request('/stall'), rec)
        self.run_until(lambda: rec.finished)
        self.assert_contract(rec)
        e = rec.error
        self.assertIsInstance(e, GLib.Error)
        self.assertTrue(e.matches(Gio.io_error_quark(), Gio.IOErrorEnum.FAILED))
        self.assertEqual(e.message, 'my reason')
        self.assertFalse(e.matches(Dispatch.error_quark(), Dispatch.Error.ABORTED))
        self.assertEqual(ctl.get_reason().message, 'my reason')

    def test_abort_is_not_reentrant_and_first_wins(self):
        rec = self.recorder()
        ctl = self.dispatch(self.request('/hang'), rec)
        self.run_until(lambda: self.server.held, what='the server to get the request')
        ctl.abort(my_reason())
        # Delivered later from the main loop, never inside abort().
        self.assertFalse(rec.finished)
        second = GLib.Error.new_literal(Gio.io_error_quark(), 'second', Gio.IOErrorEnum.BUSY)
        ctl.abort(second)
        self.run_until(lambda: rec.finished)
        self.assert_contract(rec)
        self.assertEqual(rec.error.message, 'my reason')
        # After the terminal callback abort does nothing.
        ctl.abort(second)
        self.run_for(50)
        self.assertEqual(rec.events.count('response_error'), 1)

    def test_abort_before_start_sends_nothing(self):
        rec = self.recorder(request_start=lambda r, c: c.abort(my_reason()))
        self.dispatch(self.request('/hello'), rec)
        self.run_until(lambda: rec.finished)
        self.assert_contract(rec)
        self.assertEqual(rec.events, ['request_start', 'response_error'])
        self.assertEqual(rec.error.message, 'my reason')
        self.run_for(50)
        self.assertEqual(self.server.requests, 0)

    def test_abort_from_python_thread(self):
        rec = self.recorder()
        ctl = self.dispatch(self.request('/hang'), rec)
        self.run_until(lambda: self.server.held, what='the server to get the request')
        thread = threading.Thread(target=lambda: ctl.abort(my_reason()))
        thread.start()
        self.run_until(lambda: rec.finished)
        thread.join(WAIT_MS / 1000)
        self.assert_contract(rec)
        self.assertEqual(rec.error.message, 'my reason')


class PauseTests(DispatchTestCase):

    def test_pause_resume_from_python_thread(self):
        """A Python thread pauses the request after the first chunk while
        the main loop runs; the server then sends the rest, nothing is
        delivered until the thread resumes, and the body arrives intact."""
        server = self.server
        state = {'first_data': threading.Event(), 'paused_seen': threading.Event(),
                 'server_sent_more': threading.Event(),
                 'chunks_at_pause': None, 'chunks_while_paused': None,
                 'written_while_paused': None, 'paused_values': []}

        def on_data(rec, ctl, chunk):
            state['first_data'].set()

        def on_paused(ctl, pspec):
            # notify::paused comes in the dispatch context (main thread).
            state['paused_values'].append((ctl.props.paused,
                                           threading.current_thread() is threading.main_thread()))
            if ctl.props.paused and state['chunks_at_pause'] is None:
                state['chunks_at_pause'] = rec.chunks
                server.release_stream()
                state['paused_seen'].set()

        def on_stream_written(total):
            # The server has pushed a good part of the rest to its socket.
            if state['chunks_at_pause'] is not None and total >= server.stream_first + 64 * 1024:
                state['server_sent_more'].set()
        server.on_stream_written = on_stream_written

        def worker():
            try:
                if not state['first_data'].wait(WAIT_MS / 1000):
                    state['error'] = 'no data'
                    return
                ctl.pause()
                ctl.pause()  # idempotent
                if not state['paused_seen'].wait(WAIT_MS / 1000):
                    state['error'] = 'no notify::paused'
                    return
                if not state['server_sent_more'].wait(WAIT_MS / 1000):
                    state['error'] = 'the server did not send more'
                    return
                # The data is in the client's socket buffer now; give the
                # client time to (wrongly) read it while paused.
                time.sleep(0.2)
                state['chunks_while_paused'] = rec.chunks - state['chunks_at_pause']
                state['written_while_paused'] = server.stream_written
                ctl.resume()
                ctl.resume()  # idempotent
            finally:
                GLib.idle_add(self.wake)

        rec = self.recorder(response_data=on_data)
        ctl = self.dispatch(self.request('/stream'), rec)
        ctl.connect('notify::paused', on_paused)
        thread = threading.Thread(target=worker, name='pauser')
        thread.start()
        self.run_until(lambda: rec.finished, what='the end of the body')
        thread.join(WAIT_MS / 1000)
        self.assertNotIn('error', state)
        self.assert_contract(rec)
        self.assertEqual(rec.events[-1], 'response_end', rec.error)
        self.assertEqual(state['chunks_while_paused'], 0,
                         'on_response_data while paused')
        self.assertGreater(state['written_while_paused'], server.stream_first,
                           'the server sent more while the client was paused')
        self.assertEqual(len(rec.body), len(server.stream_body))
        self.assertEqual(sha256(bytes(rec.body)), sha256(server.stream_body))
        self.assertEqual(state['paused_values'], [(True, True), (False, True)])
        self.assertFalse(ctl.get_paused())

    def test_pause_in_callback_then_resume_from_thread(self):
        """Pausing inside on_response_start; a thread resumes."""
        def on_start(rec, ctl, *args):
            ctl.pause()
            threading.Thread(target=lambda: (time.sleep(0.1), ctl.resume())).start()
        rec, ctl = self.fetch('/big', response_start=on_start)
        self.assertEqual(rec.events[-1], 'response_end')
        self.assertEqual(sha256(bytes(rec.body)), sha256(self.server.big))


class WaitIfPausedTests(DispatchTestCase):

    def _paused_request(self, path='/stream'):
        rec = self.recorder(response_start=lambda r, c, *a: c.pause())
        ctl = self.dispatch(self.request(path), rec)
        self.run_until(lambda: 'response_start' in rec.events or rec.finished)
        self.assertTrue(ctl.get_paused())
        return rec, ctl

    def _waiter(self, ctl, cancellable=None):
        out = {}

        def run():
            started = time.monotonic()
            out['on_main'] = threading.current_thread() is threading.main_thread()
            try:
                out['result'] = ctl.wait_if_paused(cancellable)
            except GLib.Error as e:
                out['error'] = e
            out['elapsed'] = time.monotonic() - started
            GLib.idle_add(self.wake)
        thread = threading.Thread(target=run, name='waiter')
        thread.start()
        return thread, out

    def test_not_paused_returns_at_once(self):
        rec = self.recorder()
        ctl = self.dispatch(self.request('/stall'), rec)
        thread, out = self._waiter(ctl)
        self.run_until(lambda: 'result' in out or 'error' in out)
        thread.join(WAIT_MS / 1000)
        self.assertIs(out.get('result'), True)
        ctl.abort(my_reason())
        self.run_until(lambda: rec.finished)

    def test_true_after_resume(self):
        rec, ctl = self._paused_request()
        thread, out = self._waiter(ctl)
        # The main loop keeps running while the thread is blocked (the GIL
        # is released in the C call); resume from a timeout.
        resumed = []
        GLib.timeout_add(200, lambda: resumed.append(ctl.resume()) and False)
        self.run_until(lambda: 'result' in out or 'error' in out, what='wait_if_paused')
        thread.join(WAIT_MS / 1000)
        self.assertFalse(out['on_main'])
        self.assertEqual(len(resumed), 1)
        self.assertIs(out.get('result'), True, out.get('error'))
        self.assertGreaterEqual(out['elapsed'], 0.1, 'wait_if_paused did not block')
        self.server.release_stream()
        self.run_until(lambda: rec.finished)
        self.assert_contract(rec)
        self.assertEqual(sha256(bytes(rec.body)), sha256(self.server.stream_body))

    def test_false_with_error_on_abort(self):
        rec, ctl = self._paused_request()
        thread, out = self._waiter(ctl)
        GLib.timeout_add(100, lambda: ctl.abort(my_reason()) or False)
        self.run_until(lambda: ('result' in out or 'error' in out) and rec.finished)
        thread.join(WAIT_MS / 1000)
        self.assertNotIn('result', out)
        self.assertIsInstance(out['error'], GLib.Error)
        self.assertEqual(out['error'].message, 'my reason')
        self.assertTrue(out['error'].matches(Gio.io_error_quark(), Gio.IOErrorEnum.FAILED))
        self.assertEqual(rec.error.message, 'my reason')

    def test_false_when_cancellable_fires(self):
        rec, ctl = self._paused_request()
        cancellable = Gio.Cancellable()
        thread, out = self._waiter(ctl, cancellable)
        GLib.timeout_add(100, lambda: cancellable.cancel() or False)
        self.run_until(lambda: 'result' in out or 'error' in out)
        thread.join(WAIT_MS / 1000)
        self.assertTrue(out['error'].matches(Gio.io_error_quark(), Gio.IOErrorEnum.CANCELLED),
                        out.get('error'))
        # The request itself is still paused and alive.
        self.assertTrue(ctl.get_paused())
        self.assertFalse(rec.finished)
        ctl.abort(my_reason())
        self.run_until(lambda: rec.finished)


if __name__ == '__main__':
    main()
