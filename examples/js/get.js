// SPDX-License-Identifier: LGPL-2.1-or-later
//
// GET a page with libdispatch-gobject from GJS and print its status line,
// headers and body.
//
//     gjs -m get.js [URL]
//
// Without a URL it starts a Soup.Server on 127.0.0.1 (port 0) in this
// process and fetches /hello from it, so it works offline. Exits 0 on
// success.
//
// The handler is a JS class implementing Dispatch.Handler and overriding
// only the vfuncs it needs. Every callback runs on the main thread (GJS
// could not run it anywhere else).

import GLib from 'gi://GLib';
import GObject from 'gi://GObject';
import Gio from 'gi://Gio';
import Soup from 'gi://Soup?version=3.0';
import Dispatch from 'gi://Dispatch?version=1';
import System from 'system';

const Printer = GObject.registerClass({
    Implements: [Dispatch.Handler],
}, class Printer extends GObject.Object {
    constructor(loop) {
        super();
        this.loop = loop;
        this.ok = false;
        this.received = 0;
        this.parts = [];
    }

    vfunc_on_response_start(controller, status, headers, reason) {
        // `headers` is only valid during this call (GJS does not copy boxed
        // vfunc arguments): read it here, or keep headers.ref().
        print(`HTTP ${status} ${reason ?? ''}`);
        for (let i = 0; i < headers.get_length(); i++)
            print(`${headers.get_name(i)}: ${headers.get_value(i)}`);
        print('');
    }

    vfunc_on_response_data(controller, chunk) {
        // The chunk object is only valid during this call, but the Uint8Array
        // from toArray() holds its own reference to the data: keep that.
        const data = chunk.toArray();
        this.received += data.length;
        this.parts.push(data);
    }

    vfunc_on_response_end() {
        const body = new Uint8Array(this.received);
        let offset = 0;
        for (const part of this.parts) {
            body.set(part, offset);
            offset += part.length;
        }
        print(new TextDecoder().decode(body));
        print(`-- ${this.received} bytes`);
        this.ok = true;
        this.loop.quit();
    }

    vfunc_on_response_error(controller, error) {
        // error is a GLib.Error; match library errors like this:
        if (error.matches(Dispatch.Error, Dispatch.Error.SOCKET))
            printerr('error: could not connect');
        printerr(`error: ${error.message} (${error.domain}, ${error.code})`);
        this.loop.quit();
    }
});

function startServer() {
    const server = new Soup.Server();
    server.add_handler('/hello', (srv, msg) => {
        msg.set_status(200, null);
        const headers = msg.get_response_headers();
        headers.append('Set-Cookie', 'a=1');
        headers.append('Set-Cookie', 'b=2');
        msg.set_response('text/plain', Soup.MemoryUse.COPY,
            new TextEncoder().encode('Hello from GJS!\n'));
    });
    server.listen_local(0, Soup.ServerListenOptions.IPV4_ONLY);
    return server;
}

function splitUrl(url) {
    const uri = GLib.Uri.parse(url, GLib.UriFlags.ENCODED);
    let origin = `${uri.get_scheme()}://${uri.get_host()}`;
    if (uri.get_port() > 0)
        origin += `:${uri.get_port()}`;
    return [origin, uri.get_path() || '/', uri.get_query()];
}

let server = null;
let origin, path, query = null;
if (ARGV.length > 0) {
    [origin, path, query] = splitUrl(ARGV[0]);
} else {
    server = startServer();
    origin = `http://127.0.0.1:${server.get_uris()[0].get_port()}`;
    path = '/hello';
}

const loop = new GLib.MainLoop(null, false);
const agent = new Dispatch.Agent({headers_timeout: 10000});
const request = Dispatch.Request.new('GET', origin, path);
if (query)
    request.set_query(query);
request.add_header('Accept', 'text/plain');
const printer = new Printer(loop);
const controller = agent.dispatch(request, printer);

// Every wait is bounded: give up after 30 s.
GLib.timeout_add_seconds(GLib.PRIORITY_DEFAULT, 30, () => {
    controller.abort(new GLib.Error(Gio.IOErrorEnum, Gio.IOErrorEnum.TIMED_OUT,
        'gave up after 30 s'));
    return GLib.SOURCE_REMOVE;
});
loop.run();

// Close the agent: later requests would fail, in-flight ones finish.
agent.close_async(null, (source, result) => {
    source.close_finish(result);
    loop.quit();
});
loop.run();

server?.disconnect();
System.exit(printer.ok ? 0 : 1);
