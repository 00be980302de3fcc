/* get.vala — GET a page with libdispatch-gobject from Vala
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Starts a Soup.Server on 127.0.0.1 (port 0) in this process, so the
 * example works offline, sends GET /hello to it through a Dispatch.Agent
 * and prints the status line, the response headers and the body. Exits 0
 * on success. With a URL argument it fetches that URL instead.
 *
 * The handler is a Vala class implementing Dispatch.Handler; every
 * callback runs in this thread's main context.
 */

class Printer : Object, Dispatch.Handler {
    public MainLoop loop { get; construct; }
    public bool ok { get; private set; default = false; }
    public size_t received { get; private set; default = 0; }

    public Printer (MainLoop loop) {
        Object (loop: loop);
    }

    /* The vapi marks every Dispatch.Handler vfunc abstract, so a Vala
     * handler has to implement all of them (in C they default to no-ops). */
    public void on_request_start (Dispatch.RequestController controller) {
    }

    public void on_response_informational (Dispatch.RequestController controller,
                                           uint status,
                                           Dispatch.Headers headers) {
    }

    public void on_response_start (Dispatch.RequestController controller,
                                   uint status,
                                   Dispatch.Headers headers,
                                   string? reason) {
        stdout.printf ("HTTP %u %s\n", status, reason ?? "");
        for (uint i = 0; i < headers.get_length (); i++)
            stdout.printf ("%s: %s\n", headers.get_name (i), headers.get_value (i));
        stdout.printf ("\n");
    }

    public void on_response_data (Dispatch.RequestController controller, Bytes chunk) {
        received += chunk.get_size ();
        stdout.write (chunk.get_data ());
    }

    public void on_response_end (Dispatch.RequestController controller,
                                 Dispatch.Headers trailers) {
        stdout.printf ("\n-- %zu bytes\n", received);
        ok = true;
        loop.quit ();
    }

    public void on_response_error (Dispatch.RequestController controller, Error error) {
        if (error is Dispatch.Error.HEADERS_TIMEOUT)
            stderr.printf ("error: no response head in time\n");
        stderr.printf ("error: %s (%s, %d)\n", error.message,
                       error.domain.to_string (), error.code);
        loop.quit ();
    }
}

static Soup.Server start_server () throws Error {
    var server = new Soup.Server ("server-header", "vala-get-example");
    server.add_handler ("/hello", (server, msg, path, query) => {
        msg.set_status (200, null);
        msg.get_response_headers ().append ("Set-Cookie", "a=1");
        msg.get_response_headers ().append ("Set-Cookie", "b=2");
        msg.set_response ("text/plain", Soup.MemoryUse.COPY, "Hello from Vala!\n".data);
    });
    server.listen_local (0, Soup.ServerListenOptions.IPV4_ONLY);
    return server;
}

int main (string[] args) {
    var loop = new MainLoop (null, false);
    Soup.Server? server = null;
    string origin, path;

    try {
        if (args.length > 1) {
            var uri = Uri.parse (args[1], UriFlags.NONE);
            origin = uri.get_port () > 0
                ? "%s://%s:%d".printf (uri.get_scheme (), uri.get_host (), uri.get_port ())
                : "%s://%s".printf (uri.get_scheme (), uri.get_host ());
            path = uri.get_path () != "" ? uri.get_path () : "/";
        } else {
            server = start_server ();
            origin = "http://127.0.0.1:%d".printf (server.get_uris ().data.get_port ());
            path = "/hello";
        }
    } catch (Error e) {
        stderr.printf ("%s\n", e.message);
        return 1;
    }

    var agent = new Dispatch.Agent ();
    var request = new Dispatch.Request ("GET", origin, path);
    request.add_header ("Accept", "text/plain");
    var printer = new Printer (loop);
    var controller = agent.dispatch (request, printer);

    /* Every wait is bounded: give up after 30 s. */
    Timeout.add_seconds (30, () => {
        controller.abort (new IOError.TIMED_OUT ("gave up after 30 s"));
        return Source.REMOVE;
    });
    loop.run ();

    /* Close the agent; wait for it with an async callback. */
    agent.close_async.begin (null, (obj, res) => {
        try {
            agent.close_async.end (res);
        } catch (Error e) {
            stderr.printf ("close: %s\n", e.message);
        }
        loop.quit ();
    });
    loop.run ();

    if (server != null)
        server.disconnect ();
    return printer.ok ? 0 : 1;
}
