// bench-dispatch.js — ours, through a GJS handler
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// The small-GET run of bench-dispatch.c (mode "small" only) with the
// handler written in JavaScript (GJS), to show what the binding costs per
// request. Needs the typelib of the build:
//   GI_TYPELIB_PATH=BUILD/libdispatch-gobject LD_LIBRARY_PATH=BUILD/libdispatch-gobject
//   gjs bench-dispatch.js --url URL --requests N --concurrency C [--connections P]
// Prints the same JSON line as the C contenders.

imports.gi.versions.Dispatch = '1';
imports.gi.versions.GLib = '2.0';
const {Dispatch, GLib, GObject} = imports.gi;
const System = imports.system;

const CONTENDER = 'ours-gjs';

function parseArgs(argv) {
    const args = {url: null, mode: 'small', requests: 20000, concurrency: 1,
        connections: -1, warmup: -1, timeoutS: 120};
    const names = {'--url': 'url', '--mode': 'mode', '--requests': 'requests',
        '--concurrency': 'concurrency', '--connections': 'connections',
        '--warmup': 'warmup', '--timeout-s': 'timeoutS'};
    for (let i = 0; i < argv.length; i += 2) {
        const name = names[argv[i]];
        if (!name || i + 1 >= argv.length) {
            printerr(`bench-dispatch.js: bad option ${argv[i]}`);
            System.exit(2);
        }
        args[name] = name === 'url' || name === 'mode' ? argv[i + 1] : Number(argv[i + 1]);
    }
    if (!args.url || args.mode !== 'small') {
        printerr('Usage: gjs bench-dispatch.js --url URL [--requests N] [--concurrency C] [--connections P]');
        System.exit(2);
    }
    args.concurrency = Math.max(1, Math.min(args.concurrency, args.requests));
    if (args.connections < 1)
        args.connections = args.concurrency;
    if (args.warmup < 0)
        args.warmup = Math.max(2 * args.concurrency, 200);
    return args;
}

// user + system time of the whole process (all threads), from /proc
function cpuS() {
    const [, bytes] = GLib.file_get_contents('/proc/self/stat');
    const text = new TextDecoder().decode(bytes);
    const fields = text.slice(text.lastIndexOf(')') + 2).split(' ');
    // fields[0] is the state (field 3): utime is field 14, stime 15
    return (Number(fields[11]) + Number(fields[12])) / 100;
}

const args = parseArgs(ARGV);
const match = /^(https?:\/\/[^/]+)(\/.*)?$/.exec(args.url);
const origin = match[1];
const path = match[2] || '/';

const loop = new GLib.MainLoop(null, false);
const agent = new Dispatch.Agent({
    connections: args.connections,
    max_connections: Math.max(256, args.connections),
});

const total = args.warmup + args.requests;
let started = 0, completed = 0, failed = 0, bytes = 0;
let firstError = null;
let t0 = GLib.get_monotonic_time(), cpu0 = cpuS(), t1 = 0, cpu1 = 0;

const Handler = GObject.registerClass({
    Implements: [Dispatch.Handler],
}, class Handler extends GObject.Object {
    _init() {
        super._init();
        this.received = 0;
    }

    vfunc_on_response_data(controller, chunk) {
        this.received += chunk.get_size();
    }

    vfunc_on_response_end(controller, trailers) {
        done(this, null);
    }

    vfunc_on_response_error(controller, error) {
        done(this, error);
    }
});

function startNext() {
    if (started >= total)
        return;
    started++;
    const request = Dispatch.Request.new('GET', origin, path);
    agent.dispatch(request, new Handler());
}

function done(handler, error) {
    completed++;
    bytes += handler.received;
    if (error) {
        failed++;
        firstError ??= error.message;
    }
    if (completed === total - args.requests) {
        t0 = GLib.get_monotonic_time();
        cpu0 = cpuS();
    }
    if (completed === total) {
        t1 = GLib.get_monotonic_time();
        cpu1 = cpuS();
        loop.quit();
    } else {
        startNext();
    }
}

GLib.timeout_add_seconds(GLib.PRIORITY_DEFAULT, args.timeoutS, () => {
    print(JSON.stringify({contender: CONTENDER, mode: 'small', error: 'timed out'}));
    System.exit(1);
});

for (let i = 0; i < args.concurrency; i++)
    startNext();
loop.run();

const seconds = (t1 - t0) / 1e6;
const cpu = cpu1 - cpu0;
let out = {
    contender: CONTENDER, mode: 'small', requests: args.requests,
    concurrency: args.concurrency, connections: args.connections, errors: failed,
    seconds, rps: args.requests / seconds, cpu_s: cpu,
    cpu_ms_per_1000: cpu * 1e6 / args.requests, bytes,
};
if (firstError)
    out.first_error = firstError;
if (failed === completed)
    out = {contender: CONTENDER, mode: 'small', error: firstError};
print(JSON.stringify(out));
System.exit(out.error ? 1 : 0);
