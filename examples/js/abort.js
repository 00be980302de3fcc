// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Abort a request from a timer, from GJS.
//
// Starts a Soup.Server on 127.0.0.1 (port 0) whose /ticker sends a line
// every 100 ms and never finishes, streams it with a Dispatch.Agent and
// aborts the request after 550 ms. The handler's on_response_error gets a
// Dispatch.Error.ABORTED error (abort(null)) and nothing comes after it.
// Then a second request is aborted with a reason of our own, which is what
// its handler gets. Exits 0 when that is what happened.

import GLib from 'gi://GLib';
import GObject from 'gi://GObject';
import Gio from 'gi://Gio';
import Soup from 'gi://Soup?version=3.0';
import Dispatch from 'gi://Dispatch?version=1';
import System from 'system';

const ABORT_AFTER_MS = 550;

const Ticker = GObject.registerClass({
    Implements: [Dispatch.Handler],
}, class Ticker extends GObject.Object {
    constructor(loop) {
        super();
        this.loop = loop;
        this.lines = 0;
        this.error = null;
        this.ended = false;
    }

    vfunc_on_response_start(controller, status) {
        print(`HTTP ${status}, streaming...`);
    }

    vfunc_on_response_data(controller, chunk) {
        const text = new TextDecoder().decode(chunk.toArray());
        this.lines += text.split('\n').length - 1;
        print(`  got ${JSON.stringify(text)}`);
    }

    vfunc_on_response_end() {
        this.ended = true;
        this.loop.quit();
    }

    vfunc_on_response_error(controller, error) {
        this.error = error;
        this.loop.quit();
    }
});

const server = new Soup.Server();
server.add_handler('/ticker', (srv, msg) => {
    msg.set_status(200, null);
    msg.get_response_headers().set_encoding(Soup.Encoding.CHUNKED);
    let count = 0;
    const source = GLib.timeout_add(GLib.PRIORITY_DEFAULT, 100, () => {
        count++;
        const line = new TextEncoder().encode(`tick ${count}\n`);
        msg.get_response_body().append_bytes(new GLib.Bytes(line));
        msg.unpause();
        return GLib.SOURCE_CONTINUE;
    });
    // Stop ticking once the client has gone away.
    msg.connect('finished', () => GLib.source_remove(source));
});
server.listen_local(0, Soup.ServerListenOptions.IPV4_ONLY);
const origin = `http://127.0.0.1:${server.get_uris()[0].get_port()}`;

const loop = new GLib.MainLoop(null, false);
const agent = new Dispatch.Agent();

// Dispatch /ticker and abort it from a timer with `reason` (null: none).
function tickAndAbort(reason) {
    const handler = new Ticker(loop);
    const controller = agent.dispatch(Dispatch.Request.new('GET', origin, '/ticker'), handler);
    GLib.timeout_add(GLib.PRIORITY_DEFAULT, ABORT_AFTER_MS, () => {
        print(`aborting after ${ABORT_AFTER_MS} ms`);
        // Safe in every phase; the handler hears about it later, from the
        // main loop, never inside abort().
        controller.abort(reason);
        return GLib.SOURCE_REMOVE;
    });
    const bound = GLib.timeout_add_seconds(GLib.PRIORITY_DEFAULT, 30, () => {
        loop.quit();
        return GLib.SOURCE_REMOVE;
    });
    loop.run();
    GLib.source_remove(bound);
    const e = handler.error;
    if (e) {
        print(`on_response_error: ${e.message} (${GLib.quark_to_string(e.domain)}, ` +
            `code ${e.code}) after ${handler.lines} lines`);
    }
    return [handler, controller];
}

let ok = true;

// 1. No reason: the handler gets Dispatch.Error.ABORTED.
let [handler, controller] = tickAndAbort(null);
ok &&= handler.error !== null &&
    handler.error.matches(Dispatch.Error, Dispatch.Error.ABORTED) &&
    controller.aborted && !handler.ended && handler.lines >= 1;

// 2. Our own reason: the handler gets exactly that error.
const reason = new GLib.Error(Gio.IOErrorEnum, Gio.IOErrorEnum.CANCELLED, 'enough ticks');
[handler, controller] = tickAndAbort(reason);
ok &&= handler.error !== null &&
    handler.error.matches(Gio.IOErrorEnum, Gio.IOErrorEnum.CANCELLED) &&
    handler.error.message === 'enough ticks' && controller.get_cancellable().is_cancelled();

agent.close_async(null, (source, result) => {
    source.close_finish(result);
    loop.quit();
});
loop.run();
server.disconnect();
System.exit(ok ? 0 : 1);
