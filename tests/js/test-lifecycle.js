// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Closing and destroying an agent from JS: close_async/close_finish and
// destroy_async/destroy_finish with callbacks.

import {
    Gio, Dispatch, Recorder, assert, assertEqual, assertContract, assertDispatchError,
    ioError, onMainThread, runTests, waitFor, wake,
} from './harness.js';

// Start an async operation with a callback; the returned object is filled
// by the callback.
function start(agent, name, ...args) {
    const out = {};
    agent[`${name}_async`](...args, null, (source, result) => {
        out.source = source;
        out.onMain = onMainThread();
        try {
            out.result = source[`${name}_finish`](result);
        } catch (e) {
            out.error = e;
        }
        out.done = true;
        wake();
    });
    return out;
}

runTests(import.meta.url, [
    ['close an idle agent', async t => {
        const out = start(t.agent, 'close');
        assertEqual(out.done, undefined, 'close_async completed re-entrantly');
        await waitFor(() => out.done, 'close_async');
        assertEqual(out.result, true);
        assert(out.source === t.agent, 'callback source is not the agent');
        assert(out.onMain);
        assertEqual(t.agent.closed, true);
    }],

    ['close lets in-flight requests finish', async t => {
        const order = [];
        const rec = new Recorder({response_end: () => order.push('end')});
        t.dispatch(t.request('/slow?ms=200'), rec);
        const out = start(t.agent, 'close');
        await waitFor(() => out.done, 'close_async');
        order.push('closed');
        assertContract(rec);
        assertEqual(rec.text, 'slow');
        assertEqual(order, ['end', 'closed']);
        assertEqual(out.result, true);
    }],

    ['dispatch after close: CLOSED', async t => {
        const out = start(t.agent, 'close');
        const [rec] = await t.fetch('/hello');
        assertEqual(rec.events, ['request_start', 'response_error']);
        assertDispatchError(rec.error, Dispatch.Error.CLOSED);
        await waitFor(() => out.done);
        assertEqual(t.server.requests, 0);
    }],

    ['close is joinable', async t => {
        const a = start(t.agent, 'close'), b = start(t.agent, 'close');
        await waitFor(() => a.done && b.done);
        assertEqual([a.result, b.result], [true, true]);
    }],

    ['destroy with a reason', async t => {
        const rec = new Recorder();
        t.dispatch(t.request('/hang'), rec);
        await waitFor(() => t.server.held.length > 0, 'the server to get the request');
        const out = start(t.agent, 'destroy',
            ioError('going away', Gio.IOErrorEnum.CONNECTION_CLOSED));
        assertEqual(rec.finished, false, 'destroy_async failed requests re-entrantly');
        await waitFor(() => out.done && rec.finished, 'destroy_async');
        assertContract(rec);
        assert(rec.error.matches(Gio.IOErrorEnum, Gio.IOErrorEnum.CONNECTION_CLOSED),
            `${rec.error}`);
        assertEqual(rec.error.message, 'going away');
        assertEqual(out.result, true);
        assertEqual(t.agent.destroyed, true);
    }],

    ['destroy without a reason: DESTROYED; joinable', async t => {
        const rec = new Recorder();
        t.dispatch(t.request('/hang'), rec);
        await waitFor(() => t.server.held.length > 0, 'the server to get the request');
        const a = start(t.agent, 'destroy', null);
        const b = start(t.agent, 'destroy', ioError('ignored'));
        await waitFor(() => a.done && b.done && rec.finished);
        assertContract(rec);
        assertDispatchError(rec.error, Dispatch.Error.DESTROYED);
        assertEqual([a.result, b.result], [true, true]);
    }],

    ['after destroy: dispatch and close fail with DESTROYED', async t => {
        const d = start(t.agent, 'destroy', null);
        await waitFor(() => d.done);
        const [rec] = await t.fetch('/hello');
        assertEqual(rec.events, ['request_start', 'response_error']);
        assertDispatchError(rec.error, Dispatch.Error.DESTROYED);
        const c = start(t.agent, 'close');
        await waitFor(() => c.done);
        assertEqual(c.result, undefined);
        assertDispatchError(c.error, Dispatch.Error.DESTROYED);
    }],

    ['Gio._promisify works on close_async', async t => {
        Gio._promisify(Dispatch.Agent.prototype, 'close_async', 'close_finish');
        const result = await t.agent.close_async(null);
        assertEqual(result, true);
        assertEqual(t.agent.closed, true);
    }],
]);
