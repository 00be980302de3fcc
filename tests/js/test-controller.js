// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Dispatch.RequestController from JS: abort with and without a reason,
// pause and resume from GLib timeouts (GJS has no threads), the paused and
// aborted properties, wait_if_paused() when not paused.

import {
    GLib, Gio, Dispatch, Recorder, assert, assertEqual, assertContract, assertDispatchError,
    delay, ioError, runTests, sha256, waitFor,
} from './harness.js';

function timeout(ms, fn) {
    GLib.timeout_add(GLib.PRIORITY_DEFAULT, ms, () => {
        fn();
        return GLib.SOURCE_REMOVE;
    });
}

runTests(import.meta.url, [
    ['abort without a reason: ABORTED', async t => {
        const [rec, ctl] = await t.fetch('/stall', {
            response_start: (r, c) => c.abort(null),
        });
        assertEqual(rec.events[rec.events.length - 1], 'response_error');
        const e = rec.error;
        assert(e instanceof GLib.Error, 'not a GLib.Error');
        assert(e.matches(Dispatch.Error, Dispatch.Error.ABORTED), `${e}`);
        assertEqual(e.code, Dispatch.Error.ABORTED);
        assertEqual(e.domain, Dispatch.error_quark());
        assertEqual(ctl.get_aborted(), true);
        assertEqual(ctl.aborted, true);
        assert(ctl.get_reason().matches(Dispatch.Error, Dispatch.Error.ABORTED));
        assertEqual(ctl.get_cancellable().is_cancelled(), true);
        assertEqual(ctl.cancellable.is_cancelled(), true);
    }],

    ['abort with a reason', async t => {
        const [rec, ctl] = await t.fetch('/stall', {
            response_start: (r, c) => c.abort(ioError('my reason')),
        });
        const e = rec.error;
        assert(e.matches(Gio.IOErrorEnum, Gio.IOErrorEnum.FAILED), `${e}`);
        assertEqual(e.message, 'my reason');
        assert(!e.matches(Dispatch.Error, Dispatch.Error.ABORTED));
        assertEqual(ctl.get_reason().message, 'my reason');
    }],

    ['abort is delivered later; the first call wins', async t => {
        const rec = new Recorder();
        const ctl = t.dispatch(t.request('/hang'), rec);
        await waitFor(() => t.server.held.length > 0, 'the server to get the request');
        let notified = 0;
        ctl.connect('notify::aborted', () => notified++);
        ctl.abort(ioError('my reason'));
        assertEqual(rec.finished, false, 'abort() called the handler re-entrantly');
        ctl.abort(ioError('second', Gio.IOErrorEnum.BUSY));
        await waitFor(() => rec.finished);
        assertContract(rec);
        assertEqual(rec.error.message, 'my reason');
        assertEqual(notified, 1);
        ctl.abort(null);
        await delay(50);
        assertEqual(rec.events.filter(e => e === 'response_error').length, 1);
    }],

    ['abort in on_request_start sends nothing', async t => {
        const [rec] = await t.fetch('/hello', {
            request_start: (r, c) => c.abort(ioError('early')),
        });
        assertEqual(rec.events, ['request_start', 'response_error']);
        assertEqual(rec.error.message, 'early');
        await delay(50);
        assertEqual(t.server.requests, 0);
    }],

    ['abort from a timeout while waiting for headers', async t => {
        const rec = new Recorder();
        const ctl = t.dispatch(t.request('/hang'), rec);
        await waitFor(() => t.server.held.length > 0, 'the server to get the request');
        timeout(20, () => ctl.abort(null));
        await waitFor(() => rec.finished);
        assertContract(rec);
        assertEqual(rec.events, ['request_start', 'response_error']);
        assertDispatchError(rec.error, Dispatch.Error.ABORTED);
    }],

    ['pause and resume from GLib timeouts', async t => {
        const server = t.server;
        let chunksAtPause = null, chunksWhilePaused = null, writtenWhilePaused = null;
        const pausedValues = [];
        const rec = new Recorder({
            response_data: (r, c) => {
                if (r.chunks === 1)
                    timeout(10, () => c.pause());
            },
        });
        const ctl = t.dispatch(t.request('/stream'), rec);
        ctl.connect('notify::paused', () => {
            pausedValues.push(ctl.paused);
            if (ctl.paused && chunksAtPause === null) {
                chunksAtPause = rec.chunks;
                server.releaseStream();
            }
        });
        await waitFor(() => chunksAtPause !== null, 'notify::paused');
        assertEqual(ctl.get_paused(), true);
        // The server pushes the rest to its socket; the client must not read.
        await waitFor(() => server.streamWritten >= server.streamFirst + 64 * 1024,
            'the server to send more');
        await delay(200);
        chunksWhilePaused = rec.chunks - chunksAtPause;
        writtenWhilePaused = server.streamWritten;
        timeout(10, () => {
            ctl.resume();
            ctl.resume();
        });
        await waitFor(() => rec.finished, 'the end of the body');
        assertContract(rec);
        assertEqual(rec.events[rec.events.length - 1], 'response_end', `${rec.error}`);
        assertEqual(chunksWhilePaused, 0, 'on_response_data while paused');
        assert(writtenWhilePaused > server.streamFirst, 'the server did not send more');
        assertEqual(rec.length, server.streamBody.length);
        assertEqual(rec.bodySha256, sha256(server.streamBody));
        assertEqual(pausedValues, [true, false]);
    }],

    ['pause in on_response_start, resume from a timeout', async t => {
        const [rec] = await t.fetch('/big', {
            response_start: (r, c) => {
                c.pause();
                c.pause();
                timeout(100, () => c.resume());
            },
        });
        assertEqual(rec.events[rec.events.length - 1], 'response_end');
        assertEqual(rec.bodySha256, sha256(t.server.big));
    }],

    ['abort while paused', async t => {
        const rec = new Recorder({
            response_start: (r, c) => {
                c.pause();
                timeout(50, () => c.abort(ioError('while paused')));
            },
        });
        t.dispatch(t.request('/stream'), rec);
        await waitFor(() => rec.finished);
        assertContract(rec);
        assertEqual(rec.events, ['request_start', 'response_start', 'response_error']);
        assertEqual(rec.error.message, 'while paused');
    }],

    ['wait_if_paused returns true when not paused', async t => {
        const rec = new Recorder();
        const ctl = t.dispatch(t.request('/stall'), rec);
        assertEqual(ctl.wait_if_paused(null), true);
        ctl.abort(null);
        await waitFor(() => rec.finished);
    }],
]);
