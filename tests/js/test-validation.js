// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Validation errors reach a JS handler through vfunc_on_response_error:
// never thrown by dispatch(), never re-entrant, nothing sent, nothing
// logged (the runner fails on any CRITICAL or WARNING).

import {
    GLib, Dispatch, Recorder, assert, assertEqual, assertContract, assertDispatchError,
    assertThrows, delay, runTests, waitFor,
} from './harness.js';

async function failsWith(t, req, code, field = null) {
    const rec = new Recorder();
    const ctl = t.dispatch(req, rec);
    assert(ctl instanceof Dispatch.RequestController);
    assertEqual(rec.events, []);
    await waitFor(() => rec.finished);
    assertContract(rec);
    assertEqual(rec.events, ['request_start', 'response_error']);
    assertDispatchError(rec.error, code);
    if (field !== null)
        assert(rec.error.message.includes(field), `"${field}" not in "${rec.error.message}"`);
    await delay(20);
    assertEqual(t.server.requests, 0, 'something was sent');
}

runTests(import.meta.url, [
    ['bad origin: INVALID_ARGUMENT', async t => {
        for (const origin of ['ftp://127.0.0.1', 'not a url', 'http://', 'http://127.0.0.1:99999',
            `${t.server.origin}/path`]) {
            // eslint-disable-next-line no-await-in-loop
            await failsWith(t, Dispatch.Request.new('GET', origin, '/'),
                Dispatch.Error.INVALID_ARGUMENT, 'origin');
        }
    }],

    ['validate() throws', t => {
        const req = Dispatch.Request.new('GET', 'ftp://127.0.0.1', '/');
        assertThrows(() => req.validate(),
            e => assertDispatchError(e, Dispatch.Error.INVALID_ARGUMENT));
        assertEqual(t.request('/hello').validate(), true);
    }],

    ['bad path', async t => {
        await failsWith(t, t.request('no-slash'), Dispatch.Error.INVALID_ARGUMENT, 'path');
    }],

    ['bad method and CONNECT', async t => {
        await failsWith(t, t.request('/', 'GE T'), Dispatch.Error.INVALID_ARGUMENT, 'method');
        await failsWith(t, t.request('/', 'CONNECT'), Dispatch.Error.INVALID_ARGUMENT, 'method');
    }],

    ['bad header values and framing headers', async t => {
        let req = t.request('/hello');
        req.add_header('x-bad', 'a\r\nb');
        await failsWith(t, req, Dispatch.Error.INVALID_ARGUMENT, 'header');
        req = t.request('/hello');
        req.add_header('content-length', '5');
        await failsWith(t, req, Dispatch.Error.INVALID_ARGUMENT, 'header');
    }],

    ['expect: NOT_SUPPORTED', async t => {
        const req = t.request('/hello');
        req.add_header('expect', '100-continue');
        await failsWith(t, req, Dispatch.Error.NOT_SUPPORTED);
    }],

    ['Headers.append validates', () => {
        const headers = new Dispatch.Headers();
        assertThrows(() => headers.append('bad name', 'v'),
            e => {
                assert(e instanceof GLib.Error);
                assertDispatchError(e, Dispatch.Error.INVALID_ARGUMENT);
            });
        assertThrows(() => headers.set('x-ok', 'bad\nvalue'));
        assertEqual(headers.get_length(), 0);
        assertEqual(headers.append('X-OK', 'v'), true);
        assertEqual(headers.get_names(), ['x-ok']);
    }],
]);
