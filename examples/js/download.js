// SPDX-License-Identifier: LGPL-2.1-or-later
//
// Stream a download to a file with backpressure, from GJS.
//
//     gjs -m download.js [SIZE_MIB]
//
// Starts a Soup.Server on 127.0.0.1 (port 0) that serves SIZE_MIB (default
// 32) MiB, downloads it with a Dispatch.Agent into a file in a temporary
// directory and checks the file. Exits 0 on success.
//
// The body is written with Gio.OutputStream.write_bytes_async(). A stream
// takes one write at a time, so chunks wait in a queue. When the queue holds
// HIGH_WATER chunks the disk has fallen behind the network: the handler
// pauses the request (libdispatch-gobject then reads nothing more from the
// socket, TCP flow control holds the server back and memory stays bounded)
// and resumes it once the queue has drained to LOW_WATER.

import GLib from 'gi://GLib';
import GObject from 'gi://GObject';
import Gio from 'gi://Gio';
import Soup from 'gi://Soup?version=3.0';
import Dispatch from 'gi://Dispatch?version=1';
import System from 'system';

const HIGH_WATER = 4;   // chunks queued or being written: pause
const LOW_WATER = 1;    // drained to this: resume

const FileWriter = GObject.registerClass({
    Implements: [Dispatch.Handler],
}, class FileWriter extends GObject.Object {
    constructor(stream, onDone) {
        super();
        this.stream = stream;
        this.onDone = onDone;
        this.queue = [];
        this.writing = false;
        this.controller = null;
        this.cancellable = null;
        this.ended = false;
        this.error = null;
        this.received = 0;
        this.written = 0;
        this.pauses = 0;
        this.maxOutstanding = 0;
    }

    get outstanding() {
        return this.queue.length + (this.writing ? 1 : 0);
    }

    vfunc_on_request_start(controller) {
        this.controller = controller;
        // Cancelled when the request is aborted, times out or is destroyed.
        this.cancellable = controller.get_cancellable();
    }

    vfunc_on_response_start(controller, status, headers, reason) {
        print(`HTTP ${status} ${reason ?? ''}, content-length ${headers.get('content-length')}`);
        if (status !== 200)
            controller.abort(new GLib.Error(Gio.IOErrorEnum, Gio.IOErrorEnum.FAILED,
                `HTTP ${status}`));
    }

    vfunc_on_response_data(controller, chunk) {
        // GJS does not copy boxed vfunc arguments: `chunk` is only valid
        // during this call. new_from_bytes() over the whole chunk returns a
        // new reference to the same data (no copy) that we own.
        const bytes = chunk.new_from_bytes(0, chunk.get_size());
        this.received += bytes.get_size();
        this.queue.push(bytes);
        this.maxOutstanding = Math.max(this.maxOutstanding, this.outstanding);
        this._writeNext();
        if (this.outstanding >= HIGH_WATER && !controller.get_paused()) {
            // Takes effect when this callback returns.
            controller.pause();
            this.pauses++;
        }
    }

    vfunc_on_response_end() {
        this.ended = true;
        this._writeNext();
    }

    vfunc_on_response_error(controller, error) {
        this._finish(error);
    }

    _writeNext() {
        if (this.writing)
            return;
        if (this.queue.length === 0) {
            if (this.ended) {
                this.ended = false;
                this.stream.close_async(GLib.PRIORITY_DEFAULT, null, (stream, result) => {
                    try {
                        stream.close_finish(result);
                        this._finish(null);
                    } catch (e) {
                        this._finish(e);
                    }
                });
            }
            return;
        }
        const bytes = this.queue.shift();
        this.writing = true;
        this.stream.write_bytes_async(bytes, GLib.PRIORITY_DEFAULT, this.cancellable,
            (stream, result) => this._onWritten(stream, result, bytes));
    }

    _onWritten(stream, result, bytes) {
        this.writing = false;
        let n;
        try {
            n = stream.write_bytes_finish(result);
        } catch (e) {
            // Stop the download with the disk error as the reason; the
            // handler's on_response_error gets it.
            this.controller.abort(e);
            return;
        }
        this.written += n;
        if (n < bytes.get_size())
            this.queue.unshift(bytes.new_from_bytes(n, bytes.get_size() - n));
        if (this.controller.get_paused() && this.outstanding <= LOW_WATER)
            this.controller.resume();
        this._writeNext();
    }

    _finish(error) {
        this.error ??= error;
        this.onDone();
    }
});

function makeBody(size) {
    const out = new Uint8Array(size);
    let x = 42;
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

function sha256(data) {
    return GLib.compute_checksum_for_bytes(GLib.ChecksumType.SHA256, new GLib.Bytes(data));
}

const size = (ARGV.length > 0 ? parseInt(ARGV[0]) : 32) * 1024 * 1024;
const body = makeBody(size);

const server = new Soup.Server();
server.add_handler('/file', (srv, msg) => {
    msg.set_status(200, null);
    msg.set_response('application/octet-stream', Soup.MemoryUse.COPY, body);
});
server.listen_local(0, Soup.ServerListenOptions.IPV4_ONLY);
const origin = `http://127.0.0.1:${server.get_uris()[0].get_port()}`;

const loop = new GLib.MainLoop(null, false);
const dir = Gio.File.new_for_path(GLib.dir_make_tmp('dispatch-download-XXXXXX'));
const file = dir.get_child('file.bin');
const stream = file.replace(null, false, Gio.FileCreateFlags.PRIVATE, null);

const agent = new Dispatch.Agent({body_timeout: 10000});
const writer = new FileWriter(stream, () => loop.quit());
const request = Dispatch.Request.new('GET', origin, '/file');
request.set_timeout(60000);  // the whole download, pauses included
agent.dispatch(request, writer);
loop.run();

let ok = false;
if (writer.error) {
    printerr(`download failed: ${writer.error.message}`);
} else {
    const [, contents] = GLib.file_get_contents(file.get_path());
    print(`received ${writer.received} bytes, wrote ${writer.written} bytes to ${file.get_path()}`);
    print(`paused ${writer.pauses} times ` +
        `(at most ${writer.maxOutstanding} chunks waiting for the disk)`);
    ok = contents.length === size && sha256(contents) === sha256(body);
    print(ok ? 'file matches the server body' : 'FILE DIFFERS FROM THE BODY');
}

file.delete(null);
dir.delete(null);
agent.close_async(null, (source, result) => {
    source.close_finish(result);
    loop.quit();
});
loop.run();
server.disconnect();
System.exit(ok ? 0 : 1);
