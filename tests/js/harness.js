// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Shared helpers for the GJS tests of libdispatch-gobject (gjs -m).
//
// * runTests(import.meta.url, tests): runs the file again as a child
//   process and fails if the child logs any CRITICAL or WARNING (GJS logs a
//   CRITICAL "Attempting to run a JS callback on a different thread" when
//   C code calls into JS off the main thread, and then *skips* the call);
//   the child runs each test with a fresh fixture, prints TAP and exits
//   non-zero on failure. meson also sets G_DEBUG=fatal-criticals, so such
//   a CRITICAL aborts the child.
// * TestServer: a Soup.Server on 127.0.0.1, port 0, in the main context.
// * Recorder: a Dispatch.Handler implemented in JS
//   (GObject.registerClass({Implements: [Dispatch.Handler]}, ...)) that
//   records each callback and checks that it runs on the thread that owns
//   the main context.
// * assert helpers; every wait is bounded (waitFor).

import GLib from 'gi://GLib';
import GObject from 'gi://GObject';
import Gio from 'gi://Gio';
import Soup from 'gi://Soup?version=3.0';
import Dispatch from 'gi://Dispatch?version=1';
import System from 'system';

export {GLib, GObject, Gio, Soup, Dispatch};

export const WAIT_MS = 10000;
const TERMINAL = ['response_end', 'response_error'];

// ---------------------------------------------------------------------------
// assertions

export class AssertionError extends Error {}

export function assert(cond, message = 'assertion failed') {
    if (!cond)
        throw new AssertionError(message);
}

function repr(v) {
    if (v instanceof GLib.Error)
        return `GLib.Error(${v.domain}, ${v.code}, ${JSON.stringify(v.message)})`;
    try {
        return JSON.stringify(v);
    } catch {
        return String(v);
    }
}

export function assertEqual(actual, expected, message = '') {
    const a = repr(actual), e = repr(expected);
    if (a !== e || typeof actual !== typeof expected)
        throw new AssertionError(`${message ? `${message}: ` : ''}expected ${e}, got ${a}`);
}

export function assertThrows(fn, check, message = 'expected an exception') {
    let error = null;
    try {
        fn();
    } catch (e) {
        error = e;
    }
    assert(error !== null, message);
    if (check)
        check(error);
    return error;
}

export function assertDispatchError(error, code, message = '') {
    assert(error instanceof GLib.Error, `${message} not a GLib.Error: ${repr(error)}`);
    assert(error.matches(Dispatch.Error, code),
        `${message} expected Dispatch.Error ${code}, got ${repr(error)}`);
}

// ---------------------------------------------------------------------------
// data

// size bytes of reproducible pseudo-random data (xorshift32).
export function makeBody(size, seed = 1) {
    const out = new Uint8Array(size);
    let x = seed >>> 0 || 1;
    for (let i = 0; i < size; i++) {
        x ^= x << 13;
        x >>>= 0;
        x ^= x >>> 17;
        x ^= x << 5;
        x >>>= 0;
        out[i] = x & 0xff;
    }
    return out;
}

export function sha256(data) {
    return GLib.compute_checksum_for_bytes(GLib.ChecksumType.SHA256,
        data instanceof GLib.Bytes ? data : new GLib.Bytes(data));
}

export function ioError(message, code = Gio.IOErrorEnum.FAILED) {
    return new GLib.Error(Gio.IOErrorEnum, code, message);
}

export function onMainThread() {
    return GLib.MainContext.default().is_owner();
}

// ---------------------------------------------------------------------------
// waiting: everything that can make a condition true calls wake()

const waiters = new Set();

export function wake() {
    for (const w of [...waiters]) {
        let ok = false;
        try {
            ok = w.pred();
        } catch (e) {
            waiters.delete(w);
            GLib.source_remove(w.timeout);
            w.reject(e);
            continue;
        }
        if (ok) {
            waiters.delete(w);
            GLib.source_remove(w.timeout);
            w.resolve();
        }
    }
}

// Resolves once pred() is true; rejects after ms.
export function waitFor(pred, what = 'a condition', ms = WAIT_MS) {
    if (pred())
        return Promise.resolve();
    return new Promise((resolve, reject) => {
        const w = {pred, resolve, reject};
        w.timeout = GLib.timeout_add(GLib.PRIORITY_DEFAULT, ms, () => {
            waiters.delete(w);
            reject(new AssertionError(`timed out after ${ms} ms waiting for ${what}`));
            return GLib.SOURCE_REMOVE;
        });
        waiters.add(w);
    });
}

// Resolves after ms (only for checks that something must NOT happen).
export function delay(ms) {
    return new Promise(resolve => {
        GLib.timeout_add(GLib.PRIORITY_DEFAULT, ms, () => {
            resolve();
            return GLib.SOURCE_REMOVE;
        });
    });
}

// ---------------------------------------------------------------------------
// the server

// Routes:
//   /hello   299 "Custom Reason", Set-Cookie: a=1 and b=2 (two field lines),
//            X-Custom: one / two, body "hello world"
//   /big     200, this.big (1 MiB, Content-Length)
//   /stream  200 chunked: the first streamFirst bytes of streamBody, the
//            rest only after releaseStream()
//   /hang    never answers
//   /stall   200 chunked, "hello", then nothing
//   /slow?ms=N  answers "slow" after N ms
//   /echo    the request body back, with x-request-length,
//            x-request-encoding (chunked/content-length/none), x-method,
//            x-query and x-echo-NAME for request headers NAME starting x-
export class TestServer {
    constructor() {
        this.requests = 0;
        this.held = [];
        this.streamMsgs = [];
        this.streamWritten = 0;
        this.big = makeBody(1024 * 1024, 2);
        this.streamFirst = 64 * 1024;
        this.streamBody = makeBody(4 * 1024 * 1024, 3);
        this.routes = {
            '/hello': msg => this._hello(msg),
            '/big': msg => this._big(msg),
            '/stream': msg => this._stream(msg),
            '/hang': msg => this._hang(msg),
            '/stall': msg => this._stall(msg),
            '/slow': (msg, query) => this._slow(msg, query),
            '/echo': msg => this._echo(msg),
        };
        this.server = new Soup.Server();
        this.server.add_handler(null, (server, msg, path, query) => {
            this.requests++;
            const route = this.routes[path];
            if (route)
                route(msg, query ?? {});
            else
                msg.set_status(404, null);
            wake();
        });
        this.server.listen_local(0, Soup.ServerListenOptions.IPV4_ONLY);
        this.port = this.server.get_uris()[0].get_port();
        this.origin = `http://127.0.0.1:${this.port}`;
    }

    close() {
        for (const msg of this.held) {
            msg.set_status(503, null);
            msg.unpause();
        }
        this.held = [];
        this.streamMsgs = [];
        this.server.disconnect();
    }

    _hello(msg) {
        msg.set_status(299, 'Custom Reason');
        const h = msg.get_response_headers();
        h.append('Set-Cookie', 'a=1');
        h.append('Set-Cookie', 'b=2');
        h.append('X-Custom', 'one');
        h.append('X-Custom', 'two');
        msg.set_response('text/plain', Soup.MemoryUse.COPY,
            new TextEncoder().encode('hello world'));
    }

    _big(msg) {
        msg.set_status(200, null);
        msg.set_response('application/octet-stream', Soup.MemoryUse.COPY, this.big);
    }

    _stream(msg) {
        msg.set_status(200, null);
        msg.get_response_headers().set_encoding(Soup.Encoding.CHUNKED);
        const first = this.streamBody.subarray(0, this.streamFirst);
        msg.get_response_body().append_bytes(new GLib.Bytes(first));
        msg.connect('wrote-body-data', (m, n) => {
            this.streamWritten += n;
            wake();
        });
        this.streamMsgs.push(msg);
    }

    releaseStream() {
        for (const msg of this.streamMsgs) {
            const body = msg.get_response_body();
            body.append_bytes(new GLib.Bytes(this.streamBody.subarray(this.streamFirst)));
            body.complete();
            msg.unpause();
        }
        this.streamMsgs = [];
    }

    _hang(msg) {
        msg.pause();
        this.held.push(msg);
    }

    _stall(msg) {
        msg.set_status(200, null);
        msg.get_response_headers().set_encoding(Soup.Encoding.CHUNKED);
        msg.get_response_body().append_bytes(new GLib.Bytes(new TextEncoder().encode('hello')));
        this.held.push(msg);
    }

    _slow(msg, query) {
        const ms = parseInt(query.ms ?? '100');
        msg.pause();
        this.held.push(msg);
        GLib.timeout_add(GLib.PRIORITY_DEFAULT, ms, () => {
            const i = this.held.indexOf(msg);
            if (i >= 0) {
                this.held.splice(i, 1);
                msg.set_status(200, null);
                msg.set_response('text/plain', Soup.MemoryUse.COPY,
                    new TextEncoder().encode('slow'));
                msg.unpause();
            }
            return GLib.SOURCE_REMOVE;
        });
    }

    _echo(msg) {
        const req = msg.get_request_headers();
        const encoding = {
            [Soup.Encoding.CHUNKED]: 'chunked',
            [Soup.Encoding.CONTENT_LENGTH]: 'content-length',
        }[req.get_encoding()] ?? 'none';
        const body = msg.get_request_body().flatten();
        msg.set_status(200, null);
        const h = msg.get_response_headers();
        h.append('X-Request-Length', String(body.get_size()));
        h.append('X-Request-Encoding', encoding);
        h.append('X-Method', msg.get_method());
        h.append('X-Query', msg.get_uri().get_query() ?? '');
        req.foreach((name, value) => {
            if (name.toLowerCase().startsWith('x-'))
                h.append(`X-Echo-${name}`, value);
        });
        msg.set_response('application/octet-stream', Soup.MemoryUse.COPY, body.toArray());
    }
}

// ---------------------------------------------------------------------------
// the recording handler

export const Recorder = GObject.registerClass({
    GTypeName: 'DispatchTestRecorder',
    Implements: [Dispatch.Handler],
}, class Recorder extends GObject.Object {
    // hooks: {request_start, response_start, response_data, response_end,
    // response_error}: functions called with (recorder, controller, ...args)
    // after recording; exceptions are collected in `failures`.
    constructor(hooks = {}) {
        super();
        this.hooks = hooks;
        this.events = [];
        this.offMain = [];
        this.failures = [];
        this.controllers = [];
        this.status = null;
        this.reason = null;
        this.headers = null;
        this.chunks = 0;
        this.length = 0;
        this.checksum = new GLib.Checksum(GLib.ChecksumType.SHA256);
        this.parts = [];
        this.trailers = null;
        this.error = null;
    }

    get finished() {
        return this.events.some(e => TERMINAL.includes(e));
    }

    get text() {
        return new TextDecoder().decode(concat(this.parts));
    }

    get bodySha256() {
        return this.checksum.get_string();
    }

    _record(name, controller, ...args) {
        this.events.push(name);
        this.controllers.push(controller);
        if (!onMainThread() || !controller.get_context().is_owner())
            this.offMain.push(name);
        const hook = this.hooks[name];
        if (hook) {
            try {
                hook(this, controller, ...args);
            } catch (e) {
                this.failures.push(`${name}: ${e}\n${e.stack ?? ''}`);
            }
        }
        wake();
    }

    vfunc_on_request_start(controller) {
        this._record('request_start', controller);
    }

    vfunc_on_response_informational(controller, status, headers) {
        this._record('response_informational', controller, status, headers);
    }

    vfunc_on_response_start(controller, status, headers, reason) {
        this.status = status;
        this.reason = reason;
        // GJS does not copy boxed arguments of vfuncs: the wrapper points at
        // C memory that is only valid during the call. ref() gives the JS
        // object a reference of its own.
        this.headers = headers.ref();
        this._record('response_start', controller, status, headers, reason);
    }

    vfunc_on_response_data(controller, chunk) {
        const data = chunk.toArray();
        this.chunks++;
        this.length += data.length;
        this.checksum.update(data);
        if (this.length <= 64 * 1024)
            this.parts.push(data);
        this._record('response_data', controller, chunk);
    }

    vfunc_on_response_end(controller, trailers) {
        this.trailers = trailers.ref();
        this._record('response_end', controller, trailers);
    }

    vfunc_on_response_error(controller, error) {
        this.error = error;
        this._record('response_error', controller, error);
    }
});

function concat(parts) {
    const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
    let o = 0;
    for (const p of parts) {
        out.set(p, o);
        o += p.length;
    }
    return out;
}

// The handler contract: request_start first, at most one response_start
// before any data, exactly one terminal callback and nothing after it,
// every callback on the main thread, the same controller every time, no
// failed hook.
export function assertContract(rec) {
    const ev = rec.events;
    assertEqual(rec.failures, [], 'callback hooks failed');
    assertEqual(rec.offMain, [], 'callbacks ran off the main thread');
    assert(ev.length > 0, 'no callback at all');
    assertEqual(ev[0], 'request_start', `first callback (${ev})`);
    assertEqual(ev.filter(e => e === 'request_start').length, 1, `request_start count (${ev})`);
    assert(ev.filter(e => e === 'response_start').length <= 1, `response_start count (${ev})`);
    assertEqual(ev.filter(e => TERMINAL.includes(e)).length, 1, `terminal count (${ev})`);
    assert(TERMINAL.includes(ev[ev.length - 1]), `last callback (${ev})`);
    if (ev.includes('response_data')) {
        const start = ev.indexOf('response_start');
        assert(start >= 0 && start < ev.indexOf('response_data'), `data before start (${ev})`);
    }
    assert(rec.controllers.every(c => c === rec.controllers[0]), 'controllers differ');
}

// ---------------------------------------------------------------------------
// fixture and runner

export class Fixture {
    constructor(agentProps = {}) {
        this.server = new TestServer();
        this.agent = new Dispatch.Agent(agentProps);
    }

    request(path = '/hello', method = 'GET') {
        return Dispatch.Request.new(method, this.server.origin, path);
    }

    dispatch(request, handler, agent = this.agent) {
        return agent.dispatch(request, handler);
    }

    // Dispatch, wait for the terminal callback, check the contract.
    async fetch(pathOrRequest = '/hello', hooks = {}) {
        const req = typeof pathOrRequest === 'string' ? this.request(pathOrRequest) : pathOrRequest;
        const rec = new Recorder(hooks);
        const ctl = this.dispatch(req, rec);
        await waitFor(() => rec.finished, 'the terminal callback');
        assertContract(rec);
        return [rec, ctl];
    }

    async teardown() {
        let done = false;
        this.agent.destroy_async(ioError('test teardown', Gio.IOErrorEnum.CANCELLED), null,
            (agent, result) => {
                try {
                    agent.destroy_finish(result);
                } finally {
                    done = true;
                    wake();
                }
            });
        await waitFor(() => done, 'agent teardown');
        this.server.close();
        const ctx = GLib.MainContext.default();
        for (let i = 0; i < 100 && ctx.iteration(false); i++)
            ;
    }
}

// Promise-returning wrapper of an _async/_finish pair.
export function callAsync(obj, name, ...args) {
    return new Promise((resolve, reject) => {
        obj[`${name}_async`](...args, null, (source, result) => {
            try {
                resolve(source[`${name}_finish`](result));
            } catch (e) {
                reject(e);
            } finally {
                wake();
            }
        });
    });
}

function superviseSelf(url) {
    // Run this file again as a child and watch its stderr.
    const path = Gio.File.new_for_uri(url).get_path();
    const gjs = GLib.file_read_link('/proc/self/exe');
    const launcher = new Gio.SubprocessLauncher({flags: Gio.SubprocessFlags.STDERR_PIPE});
    launcher.setenv('DISPATCH_JS_CHILD', '1', true);
    const proc = launcher.spawnv([gjs, '-m', path]);
    const [, , stderr] = proc.communicate_utf8(null, null);
    if (stderr)
        printerr(stderr.trimEnd());
    const bad = (stderr ?? '').split('\n').filter(l =>
        /CRITICAL|WARNING|JS ERROR|different thread/.test(l));
    let status = 0;
    if (!proc.get_if_exited()) {
        print(`# child killed by signal ${proc.get_term_sig()}`);
        status = 1;
    } else if (proc.get_exit_status() !== 0) {
        print(`# child exited with status ${proc.get_exit_status()}`);
        status = 1;
    }
    if (bad.length > 0) {
        print(`# FAIL: ${bad.length} CRITICAL/WARNING line(s) logged:`);
        for (const l of bad)
            print(`#   ${l}`);
        status = 1;
    }
    System.exit(status);
}

// tests: array of [name, async fn(fixture)] or [name, fn, {agentProps}]
export function runTests(url, tests) {
    if (GLib.getenv('DISPATCH_JS_CHILD') !== '1') {
        superviseSelf(url);
        return;
    }
    const only = GLib.getenv('DISPATCH_JS_ONLY');
    const loop = new GLib.MainLoop(null, false);
    let failed = 0;

    async function runAll() {
        print(`1..${tests.length}`);
        let n = 0;
        for (const [name, fn, opts = {}] of tests) {
            n++;
            if (only && !name.includes(only)) {
                print(`ok ${n} - ${name} # SKIP not selected`);
                continue;
            }
            print(`# ${name}`);
            const fixture = new Fixture(opts.agentProps ?? {});
            let error = null;
            try {
                // eslint-disable-next-line no-await-in-loop
                await fn(fixture);
            } catch (e) {
                error = e;
            }
            try {
                // eslint-disable-next-line no-await-in-loop
                await fixture.teardown();
            } catch (e) {
                error ??= e;
            }
            if (error === null) {
                print(`ok ${n} - ${name}`);
            } else {
                failed++;
                print(`not ok ${n} - ${name}`);
                for (const line of `${error}\n${error.stack ?? ''}`.trimEnd().split('\n'))
                    print(`#   ${line}`);
            }
        }
    }

    runAll().catch(e => {
        failed++;
        print(`Bail out! ${e}\n${e.stack}`);
    }).finally(() => loop.quit());
    loop.run();
    System.exit(failed > 0 ? 1 : 0);
}
