# SPDX-License-Identifier: LGPL-2.1-or-later
"""A Dispatch.Dispatcher implemented in Python (an interceptor that
forwards to an agent), and what happens when such a dispatcher is closed
or destroyed."""

from dispatchtest import (GLib, GObject, Gio, Dispatch, DispatchTestCase, main)


class Forward(GObject.Object, Dispatch.Dispatcher):
    """Adds a header, forwards dispatch() to an inner dispatcher. It
    implements only dispatch; the interface must cope with the rest."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def do_dispatch(self, request, handler):
        request.add_header('x-intercepted', 'yes')
        return self.inner.dispatch(request, handler)


class ForwardAll(GObject.Object, Dispatch.Dispatcher):
    """Forwards dispatch and close_async/close_finish (a Python async
    vfunc). Not a subclass of Forward: PyGObject 3.42 would then install
    these vfuncs on Forward's interface vtable as well."""

    def __init__(self, inner):
        super().__init__()
        self.inner = inner

    def do_dispatch(self, request, handler):
        return self.inner.dispatch(request, handler)

    def do_close_async(self, cancellable, callback, *user_data):
        task = Gio.Task.new(self, cancellable, callback)

        def on_inner_closed(inner, result):
            try:
                task.return_boolean(inner.close_finish(result))
            except GLib.Error as e:
                task.return_error(e)
        self.inner.close_async(cancellable, on_inner_closed)

    def do_close_finish(self, result):
        return result.propagate_boolean()


class DispatcherImplTests(DispatchTestCase):

    def finish(self, dispatcher, name, *args):
        out = {}

        def callback(source, result):
            try:
                out['result'] = getattr(Dispatch.Dispatcher, name + '_finish')(source, result)
            except GLib.Error as e:
                out['error'] = e
            self.wake()
        getattr(Dispatch.Dispatcher, name + '_async')(dispatcher, *args, None, callback)
        self.run_until(lambda: out, what=name + '_async')
        return out

    def test_1_forward_dispatch(self):
        interceptor = Forward(self.agent)
        self.assertIsInstance(interceptor, Dispatch.Dispatcher)
        rec = self.recorder()
        # Called through the interface, as C code would call it.
        ctl = Dispatch.Dispatcher.dispatch(interceptor, self.request('/echo'), rec)
        self.assertIsInstance(ctl, Dispatch.RequestController)
        self.run_until(lambda: rec.finished)
        self.assert_contract(rec)
        self.assertEqual(rec.status, 200)
        self.assertEqual(rec.headers.get('x-echo-x-intercepted'), 'yes')
        self.assertIs(rec.controllers[0], ctl)

    def test_2_forward_close_async(self):
        interceptor = ForwardAll(self.agent)
        out = self.finish(interceptor, 'close')
        self.assertIs(out.get('result'), True, out.get('error'))
        self.assertTrue(self.agent.props.closed)

    # Known library bug (reported): DispatchDispatcherInterface has no
    # default close_async/destroy_async and dispatch_dispatcher_close_async()
    # calls the NULL slot, so this crashes with SIGSEGV. Expected: the
    # callback runs (TRUE, or an error such as NOT_SUPPORTED).
    def test_3_close_dispatch_only_dispatcher(self):
        out = self.finish(Forward(self.agent), 'close')
        self.assertTrue('result' in out or 'error' in out)

    def test_4_destroy_dispatch_only_dispatcher(self):
        reason = GLib.Error.new_literal(Gio.io_error_quark(), 'bye', Gio.IOErrorEnum.FAILED)
        out = self.finish(Forward(self.agent), 'destroy', reason)
        self.assertTrue('result' in out or 'error' in out)


if __name__ == '__main__':
    main()
