// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Timeouts from JS: agent properties given to the constructor and
// per-request overrides.

import {Dispatch, assert, assertEqual, assertDispatchError, runTests} from './harness.js';

const fastAgent = {agentProps: {headers_timeout: 200, body_timeout: 200}};

runTests(import.meta.url, [
    ['agent properties', t => {
        assertEqual(t.agent.headers_timeout, 200);
        assertEqual(t.agent.get_headers_timeout(), 200);
        assertEqual(t.agent.body_timeout, 200);
        assertEqual(t.agent.connections, 16);
        assertEqual(t.agent.max_response_size, -1);
        assertEqual(t.agent.allow_h2, false);
        assertEqual(t.agent.closed, false);
        assertEqual(t.agent.destroyed, false);
    }, fastAgent],

    ['headers-timeout: HEADERS_TIMEOUT', async t => {
        const started = Date.now();
        const [rec, ctl] = await t.fetch('/hang');
        const elapsed = Date.now() - started;
        assertEqual(rec.events, ['request_start', 'response_error']);
        assertDispatchError(rec.error, Dispatch.Error.HEADERS_TIMEOUT);
        assert(elapsed >= 150 && elapsed < 5000, `took ${elapsed} ms`);
        assertEqual(ctl.aborted, false);
        assertEqual(ctl.get_cancellable().is_cancelled(), true);
    }, fastAgent],

    ['body-timeout: BODY_TIMEOUT', async t => {
        const [rec] = await t.fetch('/stall');
        assertEqual(rec.status, 200);
        assertEqual(rec.text, 'hello');
        assertDispatchError(rec.error, Dispatch.Error.BODY_TIMEOUT);
    }, fastAgent],

    ['request headers-timeout 0 disables the agent\'s', async t => {
        const req = t.request('/slow?ms=400');
        req.headers_timeout = 0;
        assertEqual(req.get_headers_timeout(), 0);
        const [rec] = await t.fetch(req);
        assertEqual(rec.events[rec.events.length - 1], 'response_end', `${rec.error}`);
        assertEqual(rec.text, 'slow');
    }, fastAgent],

    ['request headers-timeout', async t => {
        const req = t.request('/hang');
        assertEqual(req.headers_timeout, -1);
        req.set_headers_timeout(150);
        const [rec] = await t.fetch(req);
        assertDispatchError(rec.error, Dispatch.Error.HEADERS_TIMEOUT);
    }],

    ['request timeout: TIMEOUT, pauses included', async t => {
        const req = t.request('/big');
        req.timeout = 200;
        const [rec] = await t.fetch(req, {response_start: (r, c) => c.pause()});
        assertEqual(rec.events, ['request_start', 'response_start', 'response_error']);
        assertDispatchError(rec.error, Dispatch.Error.TIMEOUT);
    }],
]);
