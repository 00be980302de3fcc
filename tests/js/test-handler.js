// SPDX-License-Identifier: LGPL-2.1-or-later
//
// A Dispatch.Handler implemented in JS: callback order, status, reason,
// headers, body, trailers; every callback on the main thread.

import {
    GLib, GObject, Dispatch, Recorder, assert, assertEqual, assertThrows, assertContract,
    assertDispatchError, onMainThread, runTests, sha256, waitFor, wake,
} from './harness.js';

runTests(import.meta.url, [
    ['get: order, status, reason, body', async t => {
        const [rec, ctl] = await t.fetch('/hello');
        assertEqual(rec.events[0], 'request_start');
        assertEqual(rec.events[1], 'response_start');
        assertEqual(rec.events[rec.events.length - 1], 'response_end');
        assert(rec.events.slice(2, -1).every(e => e === 'response_data'), `${rec.events}`);
        assertEqual(rec.status, 299);
        assertEqual(rec.reason, 'Custom Reason');
        assertEqual(rec.text, 'hello world');
        assertEqual(rec.error, null);
        assertEqual(ctl.get_finished(), true);
        assertEqual(ctl.aborted, false);
        assertEqual(ctl.get_reason(), null);
        assertEqual(ctl.paused, false);
    }],

    ['data chunks are GLib.Bytes', async t => {
        let chunks = 0;
        const [rec] = await t.fetch('/big', {
            response_data: (r, c, chunk) => {
                chunks++;
                assert(chunk instanceof GLib.Bytes, 'chunk is not a GLib.Bytes');
                assert(chunk.toArray() instanceof Uint8Array, 'toArray() is not a Uint8Array');
                assertEqual(chunk.get_size(), chunk.toArray().length);
            },
        });
        assert(chunks > 0);
        assertEqual(rec.status, 200);
        assertEqual(rec.length, t.server.big.length);
        assertEqual(rec.bodySha256, sha256(t.server.big));
    }],

    ['multi-value headers', async t => {
        const [rec] = await t.fetch('/hello');
        const h = rec.headers;
        assert(h instanceof Dispatch.Headers, 'headers is not a Dispatch.Headers');
        const cookies = h.get_all('set-cookie');
        assert(Array.isArray(cookies), 'get_all() is not an Array');
        assertEqual(cookies, ['a=1', 'b=2']);
        assertEqual(h.get_all('Set-Cookie'), ['a=1', 'b=2']);
        assertEqual(h.get_all('x-custom'), ['one', 'two']);
        assertEqual(h.get('x-custom'), 'two');
        assertEqual(h.get('content-length'), '11');
        assertEqual(h.get('x-missing'), null);
        assertEqual(h.get_all('x-missing'), []);
        assertEqual(h.contains('SET-COOKIE'), true);
        const names = h.get_names();
        assertEqual(names, names.map(n => n.toLowerCase()));
        assertEqual(new Set(names).size, names.length, 'get_names() repeats a name');
        for (const n of ['set-cookie', 'x-custom', 'content-type', 'content-length'])
            assert(names.includes(n), `${n} missing from ${names}`);
        const cookiesByIndex = [];
        for (let i = 0; i < h.get_length(); i++) {
            if (h.get_name(i) === 'set-cookie')
                cookiesByIndex.push(h.get_value(i));
        }
        assertEqual(cookiesByIndex, ['a=1', 'b=2']);
        assertEqual(h.get_name(h.get_length()), null);
    }],

    ['response headers are read-only', async t => {
        const errors = [];
        const [rec] = await t.fetch('/hello', {
            response_start: (r, c, status, headers) => {
                assertEqual(headers.is_read_only(), true);
                errors.push(assertThrows(() => headers.append('x-new', 'v')));
                errors.push(assertThrows(() => headers.set('x-custom', 'v')));
                const copy = headers.copy();
                assertEqual(copy.is_read_only(), false);
                assertEqual(copy.append('x-new', 'v'), true);
                assertEqual(copy.get('x-new'), 'v');
            },
        });
        assertEqual(errors.length, 2);
        for (const e of errors)
            assertDispatchError(e, Dispatch.Error.NOT_SUPPORTED);
        assertEqual(rec.headers.get('x-new'), null);
        assertEqual(rec.headers.get_all('set-cookie'), ['a=1', 'b=2']);
        assertThrows(() => rec.headers.append('x-late', 'v'));
    }],

    ['trailers are empty and read-only', async t => {
        const [rec] = await t.fetch('/hello');
        assert(rec.trailers instanceof Dispatch.Headers);
        assertEqual(rec.trailers.get_length(), 0);
        assertEqual(rec.trailers.is_read_only(), true);
        assertThrows(() => rec.trailers.append('x-trailer', 'v'),
            e => assertDispatchError(e, Dispatch.Error.NOT_SUPPORTED));
    }],

    ['404 is a response', async t => {
        const [rec] = await t.fetch('/nope');
        assertEqual(rec.status, 404);
        assertEqual(rec.events[rec.events.length - 1], 'response_end');
    }],

    ['callbacks on the main thread', async t => {
        let calls = 0;
        const note = (r, c) => {
            calls++;
            assert(onMainThread(), 'the main context is not owned by this thread');
            assert(c.get_context().is_owner(), 'the dispatch context is not owned by this thread');
        };
        const [rec] = await t.fetch('/big', {
            request_start: note, response_start: note, response_data: note, response_end: note,
        });
        // A callback GJS blocked (off the main thread) would be missing.
        assertEqual(calls, rec.events.length);
        assert(calls >= 3);
    }],

    ['dispatch() never calls the handler re-entrantly', async t => {
        const rec = new Recorder();
        const ctl = t.dispatch(t.request('/hello'), rec);
        assertEqual(rec.events, []);
        assert(ctl instanceof Dispatch.RequestController);
        await waitFor(() => rec.finished);
        assertContract(rec);
    }],

    ['a handler that overrides only some vfuncs', async t => {
        let done = false;
        let text = '';
        const Minimal = GObject.registerClass({
            Implements: [Dispatch.Handler],
        }, class Minimal extends GObject.Object {
            vfunc_on_response_data(controller, chunk) {
                text += new TextDecoder().decode(chunk.toArray());
            }

            vfunc_on_response_end() {
                done = true;
                wake();
            }
        });
        t.dispatch(t.request('/hello'), new Minimal());
        await waitFor(() => done, 'on_response_end');
        assertEqual(text, 'hello world');
    }],
]);
