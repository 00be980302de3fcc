// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Request bodies from JS: GLib.Bytes, a Gio.MemoryInputStream with a known
// length (Content-Length) and with -1 (chunked); query and headers.

import {GLib, Gio, assert, assertEqual, makeBody, runTests, sha256} from './harness.js';

async function post(t, configure) {
    const req = t.request('/echo', 'POST');
    configure(req);
    const [rec] = await t.fetch(req);
    assertEqual(rec.events[rec.events.length - 1], 'response_end', `${rec.error}`);
    assertEqual(rec.status, 200);
    return rec;
}

runTests(import.meta.url, [
    ['body from GLib.Bytes', async t => {
        const payload = makeBody(100 * 1024, 7);
        const rec = await post(t, req => req.set_body(new GLib.Bytes(payload)));
        assertEqual(rec.headers.get('x-method'), 'POST');
        assertEqual(rec.headers.get('x-request-encoding'), 'content-length');
        assertEqual(rec.headers.get('x-request-length'), String(payload.length));
        assertEqual(rec.bodySha256, sha256(payload));
    }],

    ['body property', async t => {
        const rec = await post(t, req => {
            req.body = new GLib.Bytes(new TextEncoder().encode('via property'));
            assertEqual(new TextDecoder().decode(req.get_body().toArray()), 'via property');
        });
        assertEqual(rec.text, 'via property');
    }],

    ['body from a stream with a length', async t => {
        const payload = makeBody(300 * 1024, 8);
        const rec = await post(t, req => {
            const stream = Gio.MemoryInputStream.new_from_bytes(new GLib.Bytes(payload));
            req.set_body_stream(stream, payload.length);
            assertEqual(req.body_length, payload.length);
            assert(req.body_stream === stream, 'body-stream is another object');
        });
        assertEqual(rec.headers.get('x-request-encoding'), 'content-length');
        assertEqual(rec.headers.get('x-request-length'), String(payload.length));
        assertEqual(rec.bodySha256, sha256(payload));
    }],

    ['body from a stream, chunked (-1)', async t => {
        const payload = makeBody(300 * 1024, 9);
        const rec = await post(t, req => {
            req.set_body_stream(Gio.MemoryInputStream.new_from_bytes(new GLib.Bytes(payload)), -1);
            assertEqual(req.get_body_length(), -1);
        });
        assertEqual(rec.headers.get('x-request-encoding'), 'chunked');
        assertEqual(rec.headers.get('x-request-length'), String(payload.length));
        assertEqual(rec.bodySha256, sha256(payload));
    }],

    ['stream through properties, chunked', async t => {
        const rec = await post(t, req => {
            req.body_stream = Gio.MemoryInputStream.new_from_bytes(
                new GLib.Bytes(new TextEncoder().encode('set through properties')));
            req.body_length = -1;
        });
        assertEqual(rec.headers.get('x-request-encoding'), 'chunked');
        assertEqual(rec.text, 'set through properties');
    }],

    ['empty POST', async t => {
        const rec = await post(t, () => {});
        assertEqual(rec.headers.get('x-request-length'), '0');
        assertEqual(rec.length, 0);
    }],

    ['query and headers', async t => {
        const req = t.request('/echo');
        req.add_query('q', 'a b&c');
        req.add_query('empty', null);
        req.add_header('X-Thing', 'one');
        req.get_headers().append('x-other', 'two');
        const [rec] = await t.fetch(req);
        assertEqual(rec.headers.get('x-query'), req.get_query());
        assert(req.query.includes('q=a') && !req.query.includes(' '), req.query);
        assertEqual(rec.headers.get('x-echo-x-thing'), 'one');
        assertEqual(rec.headers.get('x-echo-x-other'), 'two');
    }],
]);
