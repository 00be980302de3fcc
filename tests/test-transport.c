/* test-transport.c — TLS trust and client certificates, proxies, Unix
 * sockets, local address, HTTP/2 opt-in, user agent and keep-alive
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Certificates are made for the run with openssl in a temporary directory;
 * every server listens on 127.0.0.1 (or a Unix socket in that directory).
 */

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <string.h>
#include <sys/socket.h>
#include <arpa/inet.h>
#include <unistd.h>

#include <gio/gunixsocketaddress.h>
#include <glib/gstdio.h>
#include <libsoup/soup.h>

#include "test-util.h"

static char *certdir;

static char *
cert_path (const char *name)
{
  return g_build_filename (certdir, name, NULL);
}

static void
run_openssl (const char *args)
{
  g_autofree char *cmd = g_strdup_printf ("openssl %s", args);
  g_autofree char *err = NULL;
  g_autoptr(GError) error = NULL;
  int status = 0;

  if (!g_spawn_command_line_sync (cmd, NULL, &err, &status, &error) ||
      !g_spawn_check_wait_status (status, NULL))
    g_error ("openssl failed: %s\n%s\n%s", cmd, error ? error->message : "", err ? err : "");
}

static void
write_file (const char *name,
            const char *contents)
{
  g_autofree char *path = cert_path (name);
  g_autoptr(GError) error = NULL;

  g_file_set_contents (path, contents, -1, &error);
  g_assert_no_error (error);
}

/* A CA, a server certificate for 127.0.0.1, one for another host name and
 * a client certificate, all signed by the CA, valid for two days. */
static void
make_certificates (void)
{
  const char *key = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
  g_autofree char *cmd = NULL;

  certdir = g_dir_make_tmp ("dispatch-transport-XXXXXX", NULL);
  g_assert_nonnull (certdir);

  write_file ("server.ext", "subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                            "extendedKeyUsage=serverAuth\n");
  write_file ("wrong.ext", "subjectAltName=DNS:wrong.example\nextendedKeyUsage=serverAuth\n");
  write_file ("client.ext", "extendedKeyUsage=clientAuth\n");

#define P(name) certdir, name
  cmd = g_strdup_printf ("req -x509 %s -keyout %s/ca.key -out %s/ca.pem -days 2 -subj /CN=dispatch-test-ca",
                         key, certdir, certdir);
  run_openssl (cmd);

  for (guint i = 0; i < 3; i++)
    {
      const char *names[] = { "server", "wrong", "client" };
      const char *cns[] = { "127.0.0.1", "wrong.example", "dispatch-test-client" };
      g_autofree char *req = NULL;
      g_autofree char *sign = NULL;

      req = g_strdup_printf ("req %s -keyout %s/%s.key -out %s/%s.csr -subj /CN=%s",
                             key, P (names[i]), P (names[i]), cns[i]);
      run_openssl (req);
      sign = g_strdup_printf ("x509 -req -in %s/%s.csr -CA %s/ca.pem -CAkey %s/ca.key "
                              "-CAcreateserial -out %s/%s.pem -days 2 -extfile %s/%s.ext",
                              P (names[i]), certdir, certdir, P (names[i]), P (names[i]));
      run_openssl (sign);
    }
#undef P
}

static GTlsCertificate *
load_certificate (const char *name)
{
  g_autofree char *pem = NULL;
  g_autofree char *keyfile = NULL;
  g_autofree char *base = g_strdup_printf ("%s.pem", name);
  g_autofree char *keybase = g_strdup_printf ("%s.key", name);
  g_autoptr(GError) error = NULL;
  GTlsCertificate *cert;

  pem = cert_path (base);
  keyfile = cert_path (keybase);
  cert = g_tls_certificate_new_from_files (pem, keyfile, &error);
  g_assert_no_error (error);

  return cert;
}

/* ------------------------------------------------------------------------
 * A SoupServer in a thread of its own, configurable for TLS, client
 * certificates and Unix sockets. Every response is 200 with the body
 * "secure" (GET) or "posted N" (POST with N body bytes) and headers
 * x-peer (the client's address) and x-user-agent.
 * ------------------------------------------------------------------------ */

typedef struct
{
  GTlsCertificate *certificate;   /* TLS if set */
  gboolean         require_client_certificate;
  char            *unix_path;     /* listen there instead of TCP */
  const char      *bind_address;  /* default 127.0.0.1 */
} ServerConfig;

typedef struct
{
  ServerConfig  config;
  GThread      *thread;
  GMainContext *context;
  GMainLoop    *loop;
  SoupServer   *server;
  char         *origin;
  GMutex        mutex;
  GCond         cond;
  gboolean      ready;
  int           requests;
} Server;

static void
server_handler (SoupServer        *soup,
                SoupServerMessage *msg,
                const char        *path,
                GHashTable        *query,
                gpointer           user_data)
{
  Server *server = user_data;
  SoupMessageHeaders *headers = soup_server_message_get_response_headers (msg);
  GSocketAddress *remote = soup_server_message_get_remote_address (msg);
  g_autofree char *peer = NULL;
  g_autofree char *body = NULL;
  const char *ua;

  g_atomic_int_inc (&server->requests);

  if (G_IS_INET_SOCKET_ADDRESS (remote))
    {
      GInetSocketAddress *inet = G_INET_SOCKET_ADDRESS (remote);
      g_autofree char *ip = g_inet_address_to_string (g_inet_socket_address_get_address (inet));

      peer = g_strdup_printf ("%s:%u", ip, g_inet_socket_address_get_port (inet));
    }
  else
    peer = g_strdup ("unix");

  ua = soup_message_headers_get_one (soup_server_message_get_request_headers (msg), "User-Agent");

  if (g_strcmp0 (soup_server_message_get_method (msg), "POST") == 0)
    body = g_strdup_printf ("posted %" G_GOFFSET_FORMAT,
                            soup_server_message_get_request_body (msg)->length);
  else
    body = g_strdup ("secure");

  soup_message_headers_append (headers, "X-Peer", peer);
  soup_message_headers_append (headers, "X-User-Agent", ua ? ua : "");
  soup_server_message_set_status (msg, 200, NULL);
  soup_server_message_set_response (msg, "text/plain", SOUP_MEMORY_COPY, body, strlen (body));
}

/* glib-networking's server side checks a client certificate like a server
 * one (identity included) and rejects it; accept it when it chains to our
 * CA, which is what "required" means here. */
static gboolean
accept_client_certificate_cb (SoupServerMessage    *msg,
                              GTlsCertificate      *peer,
                              GTlsCertificateFlags  errors,
                              gpointer              user_data)
{
  g_autofree char *ca_path = cert_path ("ca.pem");
  g_autoptr(GTlsCertificate) ca = g_tls_certificate_new_from_file (ca_path, NULL);

  return peer != NULL && ca != NULL && g_tls_certificate_verify (peer, NULL, ca) == 0;
}

static void
request_started_cb (SoupServer        *soup,
                    SoupServerMessage *msg,
                    gpointer           user_data)
{
  g_signal_connect (msg, "accept-certificate", G_CALLBACK (accept_client_certificate_cb), NULL);
}

static gpointer
server_thread (gpointer data)
{
  Server *server = data;
  g_autoptr(GError) error = NULL;
  g_autoptr(GTlsDatabase) client_ca = NULL;
  gboolean ok;

  g_main_context_push_thread_default (server->context);

  if (server->config.require_client_certificate)
    {
      g_autofree char *ca = cert_path ("ca.pem");

      client_ca = g_tls_file_database_new (ca, &error);
      g_assert_no_error (error);
    }

  server->server = soup_server_new ("tls-certificate", server->config.certificate,
                                    "tls-database", client_ca,
                                    "tls-auth-mode", server->config.require_client_certificate
                                                       ? G_TLS_AUTHENTICATION_REQUIRED
                                                       : G_TLS_AUTHENTICATION_NONE,
                                    NULL);
  soup_server_add_handler (server->server, NULL, server_handler, server, NULL);
  if (server->config.require_client_certificate)
    g_signal_connect (server->server, "request-started", G_CALLBACK (request_started_cb), NULL);

  if (server->config.unix_path != NULL)
    {
      g_autoptr(GSocketAddress) address = g_unix_socket_address_new (server->config.unix_path);

      ok = soup_server_listen (server->server, address, 0, &error);
      server->origin = g_strdup ("http://localhost");
    }
  else
    {
      const char *ip = server->config.bind_address ? server->config.bind_address : "127.0.0.1";
      g_autoptr(GSocketAddress) address = g_inet_socket_address_new_from_string (ip, 0);
      GSList *uris;

      ok = soup_server_listen (server->server, address,
                               server->config.certificate ? SOUP_SERVER_LISTEN_HTTPS : 0,
                               &error);
      g_assert_no_error (error);
      uris = soup_server_get_uris (server->server);
      server->origin = g_strdup_printf ("%s://127.0.0.1:%d",
                                        server->config.certificate ? "https" : "http",
                                        g_uri_get_port (uris->data));
      g_slist_free_full (uris, (GDestroyNotify) g_uri_unref);
    }
  g_assert_no_error (error);
  g_assert_true (ok);

  g_mutex_lock (&server->mutex);
  server->ready = TRUE;
  g_cond_signal (&server->cond);
  g_mutex_unlock (&server->mutex);

  g_main_loop_run (server->loop);

  soup_server_disconnect (server->server);
  g_clear_object (&server->server);
  /* let handshakes and closes the clients left behind finish, so that
   * nothing of theirs is left in the context when it goes */
  while (g_main_context_iteration (server->context, FALSE))
    ;
  g_main_context_pop_thread_default (server->context);

  return NULL;
}

static Server *
server_new (const ServerConfig *config)
{
  Server *server = g_new0 (Server, 1);

  server->config = *config;
  if (config->certificate)
    g_object_ref (config->certificate);
  server->config.unix_path = g_strdup (config->unix_path);
  server->context = g_main_context_new ();
  server->loop = g_main_loop_new (server->context, FALSE);
  g_mutex_init (&server->mutex);
  g_cond_init (&server->cond);
  server->thread = g_thread_new ("transport-server", server_thread, server);

  g_mutex_lock (&server->mutex);
  while (!server->ready)
    g_cond_wait (&server->cond, &server->mutex);
  g_mutex_unlock (&server->mutex);

  return server;
}

static gboolean
quit_cb (gpointer data)
{
  g_main_loop_quit (data);
  return G_SOURCE_REMOVE;
}

static void
server_free (Server *server)
{
  g_main_context_invoke (server->context, quit_cb, server->loop);
  g_thread_join (server->thread);
  g_main_loop_unref (server->loop);
  g_main_context_unref (server->context);
  g_clear_object (&server->config.certificate);
  g_free (server->config.unix_path);
  g_free (server->origin);
  g_mutex_clear (&server->mutex);
  g_cond_clear (&server->cond);
  g_free (server);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Server, server_free)

static TestRecorder *
get (DispatchAgent *agent,
     const char    *origin,
     const char    *path)
{
  g_autoptr(DispatchRequest) request = dispatch_request_new ("GET", origin, path);

  return test_dispatch_and_wait (DISPATCH_DISPATCHER (agent), request);
}

/* ------------------------------------------------------------------------
 * TLS
 * ------------------------------------------------------------------------ */

static Server *
tls_server (const char *cert_name,
            gboolean    require_client_certificate)
{
  g_autoptr(GTlsCertificate) cert = load_certificate (cert_name);
  ServerConfig config = { .certificate = cert,
                          .require_client_certificate = require_client_certificate };

  return server_new (&config);
}

static void
test_tls_trusted_ca_file (void)
{
  g_autoptr(Server) server = tls_server ("server", FALSE);
  g_autofree char *ca = cert_path ("ca.pem");
  g_autoptr(DispatchAgent) agent = g_object_new (DISPATCH_TYPE_AGENT, "ca-file", ca, NULL);
  g_autoptr(TestRecorder) rec = NULL;

  g_test_summary ("ca-file trusts a PEM bundle: https to a server it signed succeeds");

  rec = get (agent, server->origin, "/");
  test_recorder_assert_ok (rec, 200, "secure");
  test_recorder_assert_events (rec, TEST_EVENT_REQUEST_START, TEST_EVENT_RESPONSE_START,
                               TEST_EVENT_DATA, TEST_EVENT_END, -1);
}

static void
test_tls_trusted_database (void)
{
  g_autoptr(Server) server = tls_server ("server", FALSE);
  g_autofree char *ca = cert_path ("ca.pem");
  g_autoptr(GError) error = NULL;
  g_autoptr(GTlsDatabase) database = g_tls_file_database_new (ca, &error);
  g_autoptr(DispatchAgent) agent = NULL;
  g_autoptr(TestRecorder) rec = NULL;

  g_test_summary ("tls-database with a GTlsFileDatabase trusts its CA");

  g_assert_no_error (error);
  agent = g_object_new (DISPATCH_TYPE_AGENT, "tls-database", database, NULL);
  g_assert_true (dispatch_agent_get_tls_database (agent) == database);

  rec = get (agent, server->origin, "/");
  test_recorder_assert_ok (rec, 200, "secure");
}

static void
test_tls_untrusted (void)
{
  g_autoptr(Server) server = tls_server ("server", FALSE);
  g_autoptr(DispatchAgent) agent = dispatch_agent_new ();
  g_autoptr(TestRecorder) rec = NULL;

  g_test_summary ("the system trust store rejects the test CA: TLS error naming the "
                  "certificate flags");

  rec = get (agent, server->origin, "/");
  test_recorder_assert_error (rec, DISPATCH_ERROR_TLS);
  test_recorder_assert_events (rec, TEST_EVENT_REQUEST_START, TEST_EVENT_ERROR, -1);
  g_test_message ("error: %s", rec->error->message);
  g_assert_nonnull (strstr (rec->error->message, "G_TLS_CERTIFICATE_UNKNOWN_CA"));
}

static void
test_tls_insecure (void)
{
  g_autoptr(Server) server = tls_server ("wrong", FALSE);
  g_autoptr(DispatchAgent) agent =
    g_object_new (DISPATCH_TYPE_AGENT, "reject-unauthorized", FALSE, NULL);
  g_autoptr(TestRecorder) rec = NULL;

  g_test_summary ("reject-unauthorized FALSE accepts an untrusted certificate for another "
                  "host");

  g_assert_false (dispatch_agent_get_reject_unauthorized (agent));
  rec = get (agent, server->origin, "/");
  test_recorder_assert_ok (rec, 200, "secure");
}

static void
test_tls_wrong_hostname (void)
{
  g_autoptr(Server) server = tls_server ("wrong", FALSE);
  g_autofree char *ca = cert_path ("ca.pem");
  g_autoptr(DispatchAgent) agent = g_object_new (DISPATCH_TYPE_AGENT, "ca-file", ca, NULL);
  g_autoptr(TestRecorder) rec = NULL;

  g_test_summary ("a trusted certificate for another host name fails with TLS "
                  "(BAD_IDENTITY)");

  rec = get (agent, server->origin, "/");
  test_recorder_assert_error (rec, DISPATCH_ERROR_TLS);
  g_test_message ("error: %s", rec->error->message);
  g_assert_nonnull (strstr (rec->error->message, "G_TLS_CERTIFICATE_BAD_IDENTITY"));
}

static void
test_tls_client_certificate (void)
{
  g_autoptr(Server) server = tls_server ("server", TRUE);
  g_autofree char *ca = cert_path ("ca.pem");
  g_autoptr(GTlsCertificate) client = load_certificate ("client");
  g_autoptr(DispatchAgent) with = NULL;
  g_autoptr(DispatchAgent) without = NULL;
  g_autoptr(TestRecorder) ok = NULL;
  g_autoptr(TestRecorder) refused = NULL;

  g_test_summary ("mutual TLS: the server requires a client certificate; with "
                  "tls-certificate the request succeeds, without it it fails");

  with = g_object_new (DISPATCH_TYPE_AGENT, "ca-file", ca, "tls-certificate", client, NULL);
  ok = get (with, server->origin, "/");
  test_recorder_assert_ok (ok, 200, "secure");

  without = g_object_new (DISPATCH_TYPE_AGENT, "ca-file", ca, NULL);
  refused = get (without, server->origin, "/");
  g_assert_nonnull (refused->error);
  g_test_message ("without a client certificate: %s", refused->error->message);
  g_assert_true (refused->error->domain == DISPATCH_ERROR);
  g_assert_true (refused->error->code == DISPATCH_ERROR_TLS ||
                 refused->error->code == DISPATCH_ERROR_SOCKET);
}

static void
test_tls_bad_ca_file (void)
{
  g_autoptr(Server) server = tls_server ("server", FALSE);
  g_autoptr(DispatchAgent) agent =
    g_object_new (DISPATCH_TYPE_AGENT, "ca-file", "/nonexistent/ca.pem", NULL);
  g_autoptr(TestRecorder) rec = NULL;

  g_test_summary ("an unreadable ca-file fails every dispatch with INVALID_ARGUMENT naming "
                  "the property; nothing is sent");

  rec = get (agent, server->origin, "/");
  test_recorder_assert_error (rec, DISPATCH_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (rec->error->message, "ca-file"));
  g_assert_cmpint (g_atomic_int_get (&server->requests), ==, 0);
}

/* ------------------------------------------------------------------------
 * A forwarding and CONNECT proxy on 127.0.0.1, one thread per client
 * connection, optionally requiring Basic credentials ("user:secret").
 * ------------------------------------------------------------------------ */

typedef struct
{
  int        listen_fd;
  int        stop_pipe[2];
  GThread   *thread;
  char      *uri;
  gboolean   require_auth;
  GMutex     mutex;
  GPtrArray *request_lines;   /* first line of every request seen */
  GPtrArray *conn_threads;
} Proxy;

typedef struct
{
  Proxy *proxy;
  int    fd;
} ProxyConn;

static int
connect_to (const char *hostport)
{
  g_autofree char *host = NULL;
  const char *colon = strrchr (hostport, ':');
  struct sockaddr_in sin = { .sin_family = AF_INET };
  int fd;

  if (colon == NULL)
    return -1;
  host = g_strndup (hostport, colon - hostport);
  sin.sin_port = htons (atoi (colon + 1));
  if (inet_pton (AF_INET, g_str_equal (host, "localhost") ? "127.0.0.1" : host,
                 &sin.sin_addr) != 1)
    return -1;
  fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (connect (fd, (struct sockaddr *) &sin, sizeof sin) != 0)
    {
      close (fd);
      return -1;
    }

  return fd;
}

static gboolean
write_all (int         fd,
           const void *data,
           gsize       len)
{
  const char *p = data;

  while (len > 0)
    {
      ssize_t n = send (fd, p, len, MSG_NOSIGNAL);

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        return FALSE;
      p += n;
      len -= n;
    }

  return TRUE;
}

/* Copies bytes both ways until either side closes or the proxy stops. */
static void
relay (Proxy *proxy,
       int    a,
       int    b)
{
  char buffer[16384];

  for (;;)
    {
      struct pollfd fds[3] = {
        { a, POLLIN, 0 }, { b, POLLIN, 0 }, { proxy->stop_pipe[0], POLLIN, 0 },
      };

      if (poll (fds, 3, 10000) <= 0 || fds[2].revents)
        return;

      for (guint i = 0; i < 2; i++)
        {
          if (fds[i].revents & (POLLIN | POLLHUP | POLLERR))
            {
              ssize_t n = recv (fds[i].fd, buffer, sizeof buffer, 0);

              if (n <= 0 || !write_all (i == 0 ? b : a, buffer, n))
                return;
            }
        }
    }
}

static gpointer
proxy_conn_thread (gpointer data)
{
  ProxyConn *conn = data;
  Proxy *proxy = conn->proxy;
  GString *head = g_string_new (NULL);
  g_auto(GStrv) lines = NULL;
  g_auto(GStrv) words = NULL;
  char buffer[4096];
  char *end = NULL;
  int upstream = -1;

  while ((end = strstr (head->str, "\r\n\r\n")) == NULL)
    {
      struct pollfd fds[2] = { { conn->fd, POLLIN, 0 }, { proxy->stop_pipe[0], POLLIN, 0 } };
      ssize_t n;

      if (poll (fds, 2, 10000) <= 0 || fds[1].revents)
        goto out;
      n = recv (conn->fd, buffer, sizeof buffer, 0);
      if (n <= 0)
        goto out;
      g_string_append_len (head, buffer, n);
    }

  lines = g_strsplit (head->str, "\r\n", -1);
  g_mutex_lock (&proxy->mutex);
  g_ptr_array_add (proxy->request_lines, g_strdup (lines[0]));
  g_mutex_unlock (&proxy->mutex);

  if (proxy->require_auth)
    {
      /* "user:secret" in Base64 */
      gboolean authorized = g_strstr_len (head->str, end - head->str,
                                          "Proxy-Authorization: Basic dXNlcjpzZWNyZXQ=") != NULL;

      if (!authorized)
        {
          const char *reply = "HTTP/1.1 407 Proxy Authentication Required\r\n"
                              "Proxy-Authenticate: Basic realm=\"test\"\r\n"
                              "Content-Length: 0\r\nConnection: close\r\n\r\n";

          write_all (conn->fd, reply, strlen (reply));
          goto out;
        }
    }

  words = g_strsplit (lines[0], " ", 3);
  if (g_strv_length (words) != 3)
    goto out;

  if (g_str_equal (words[0], "CONNECT"))
    {
      const char *reply = "HTTP/1.1 200 Connection established\r\n\r\n";

      upstream = connect_to (words[1]);
      if (upstream < 0)
        goto out;
      write_all (conn->fd, reply, strlen (reply));
      relay (proxy, conn->fd, upstream);
    }
  else if (g_str_has_prefix (words[1], "http://"))
    {
      const char *authority = words[1] + strlen ("http://");
      const char *slash = strchr (authority, '/');
      g_autofree char *hostport = g_strndup (authority, slash ? slash - authority : (gssize) -1);
      g_autofree char *first = g_strdup_printf ("%s %s %s", words[0], slash ? slash : "/",
                                                words[2]);
      const char *rest = strstr (head->str, "\r\n");

      upstream = connect_to (hostport);
      if (upstream < 0)
        goto out;
      if (!write_all (upstream, first, strlen (first)) ||
          !write_all (upstream, rest, head->len - (rest - head->str)))
        goto out;
      relay (proxy, conn->fd, upstream);
    }

out:
  if (upstream >= 0)
    close (upstream);
  close (conn->fd);
  g_string_free (head, TRUE);
  g_free (conn);
  return NULL;
}

static gpointer
proxy_accept_thread (gpointer data)
{
  Proxy *proxy = data;

  for (;;)
    {
      struct pollfd fds[2] = { { proxy->listen_fd, POLLIN, 0 }, { proxy->stop_pipe[0], POLLIN, 0 } };
      ProxyConn *conn;
      int fd;

      if (poll (fds, 2, -1) < 0 && errno != EINTR)
        break;
      if (fds[1].revents)
        break;
      if (!(fds[0].revents & POLLIN))
        continue;

      fd = accept (proxy->listen_fd, NULL, NULL);
      if (fd < 0)
        continue;

      conn = g_new0 (ProxyConn, 1);
      conn->proxy = proxy;
      conn->fd = fd;
      g_mutex_lock (&proxy->mutex);
      g_ptr_array_add (proxy->conn_threads, g_thread_new ("proxy-conn", proxy_conn_thread, conn));
      g_mutex_unlock (&proxy->mutex);
    }

  return NULL;
}

static Proxy *
proxy_new (gboolean require_auth)
{
  Proxy *proxy = g_new0 (Proxy, 1);
  struct sockaddr_in sin = { .sin_family = AF_INET, .sin_addr.s_addr = htonl (INADDR_LOOPBACK) };
  socklen_t len = sizeof sin;

  proxy->require_auth = require_auth;
  g_mutex_init (&proxy->mutex);
  proxy->request_lines = g_ptr_array_new_with_free_func (g_free);
  proxy->conn_threads = g_ptr_array_new ();
  g_assert_cmpint (pipe (proxy->stop_pipe), ==, 0);

  proxy->listen_fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  g_assert_cmpint (bind (proxy->listen_fd, (struct sockaddr *) &sin, sizeof sin), ==, 0);
  g_assert_cmpint (listen (proxy->listen_fd, 16), ==, 0);
  g_assert_cmpint (getsockname (proxy->listen_fd, (struct sockaddr *) &sin, &len), ==, 0);
  proxy->uri = g_strdup_printf ("http://%s127.0.0.1:%u", require_auth ? "user:secret@" : "",
                                ntohs (sin.sin_port));
  proxy->thread = g_thread_new ("proxy-accept", proxy_accept_thread, proxy);

  return proxy;
}

static void
proxy_free (Proxy *proxy)
{
  g_assert_cmpint (write (proxy->stop_pipe[1], "x", 1), ==, 1);
  g_thread_join (proxy->thread);
  for (guint i = 0; i < proxy->conn_threads->len; i++)
    g_thread_join (g_ptr_array_index (proxy->conn_threads, i));
  close (proxy->listen_fd);
  close (proxy->stop_pipe[0]);
  close (proxy->stop_pipe[1]);
  g_ptr_array_unref (proxy->conn_threads);
  g_ptr_array_unref (proxy->request_lines);
  g_mutex_clear (&proxy->mutex);
  g_free (proxy->uri);
  g_free (proxy);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (Proxy, proxy_free)

static gboolean
proxy_saw (Proxy      *proxy,
           const char *prefix)
{
  gboolean seen = FALSE;

  g_mutex_lock (&proxy->mutex);
  for (guint i = 0; i < proxy->request_lines->len && !seen; i++)
    seen = g_str_has_prefix (g_ptr_array_index (proxy->request_lines, i), prefix);
  g_mutex_unlock (&proxy->mutex);

  return seen;
}

static void
test_proxy_http_forward (void)
{
  ServerConfig config = { 0 };
  g_autoptr(Server) server = server_new (&config);
  g_autoptr(Proxy) proxy = proxy_new (FALSE);
  g_autoptr(DispatchAgent) agent =
    g_object_new (DISPATCH_TYPE_AGENT, "proxy-uri", proxy->uri, NULL);
  g_autoptr(TestRecorder) rec = NULL;
  g_autofree char *line = NULL;

  g_test_summary ("proxy-uri: an http origin is forwarded through the proxy in absolute "
                  "form");

  rec = get (agent, server->origin, "/via-proxy");
  test_recorder_assert_ok (rec, 200, "secure");
  line = g_strdup_printf ("GET %s/via-proxy ", server->origin);
  g_assert_true (proxy_saw (proxy, line));
}

static void
test_proxy_https_connect (void)
{
  g_autoptr(Server) server = tls_server ("server", FALSE);
  g_autoptr(Proxy) proxy = proxy_new (FALSE);
  g_autofree char *ca = cert_path ("ca.pem");
  g_autoptr(DispatchAgent) agent =
    g_object_new (DISPATCH_TYPE_AGENT, "proxy-uri", proxy->uri, "ca-file", ca, NULL);
  g_autoptr(TestRecorder) rec = NULL;
  g_autofree char *line = NULL;

  g_test_summary ("proxy-uri: an https origin goes through a CONNECT tunnel");

  rec = get (agent, server->origin, "/");
  test_recorder_assert_ok (rec, 200, "secure");
  line = g_strdup_printf ("CONNECT 127.0.0.1:%s ", strrchr (server->origin, ':') + 1);
  g_assert_true (proxy_saw (proxy, line));
}

static void
test_proxy_credentials (void)
{
  g_autoptr(Server) server = tls_server ("server", FALSE);
  g_autoptr(Proxy) proxy = proxy_new (TRUE);
  g_autofree char *ca = cert_path ("ca.pem");
  g_autoptr(DispatchAgent) agent =
    g_object_new (DISPATCH_TYPE_AGENT, "proxy-uri", proxy->uri, "ca-file", ca, NULL);
  g_autoptr(TestRecorder) rec = NULL;

  g_test_summary ("credentials in proxy-uri are sent to a proxy that requires them");

  rec = get (agent, server->origin, "/");
  test_recorder_assert_ok (rec, 200, "secure");
  g_assert_true (proxy_saw (proxy, "CONNECT "));
}

static void
test_proxy_auth_required (void)
{
  g_autoptr(Server) server = tls_server ("server", FALSE);
  ServerConfig plain_config = { 0 };
  g_autoptr(Server) plain = server_new (&plain_config);
  g_autoptr(Proxy) proxy = proxy_new (TRUE);
  g_autofree char *ca = cert_path ("ca.pem");
  g_autofree char *no_auth = NULL;
  g_autoptr(DispatchAgent) agent = NULL;
  g_autoptr(TestRecorder) tunnel = NULL;
  g_autoptr(TestRecorder) forward = NULL;

  g_test_summary ("a proxy answering 407: a CONNECT tunnel fails with PROXY; a forwarded "
                  "http request gets the 407 response itself");

  /* the same proxy, without the credentials */
  no_auth = g_strdup_printf ("http://127.0.0.1:%s", strrchr (proxy->uri, ':') + 1);
  agent = g_object_new (DISPATCH_TYPE_AGENT, "proxy-uri", no_auth, "ca-file", ca, NULL);

  tunnel = get (agent, server->origin, "/");
  g_assert_nonnull (tunnel->error);
  g_test_message ("CONNECT refused: %s", tunnel->error->message);
  test_recorder_assert_error (tunnel, DISPATCH_ERROR_PROXY);

  forward = get (agent, plain->origin, "/");
  test_recorder_assert_ok (forward, 407, NULL);
  g_assert_cmpint (g_atomic_int_get (&plain->requests), ==, 0);
}

static void
test_proxy_invalid_uri (void)
{
  g_autoptr(DispatchAgent) agent =
    g_object_new (DISPATCH_TYPE_AGENT, "proxy-uri", "not a uri", NULL);
  g_autoptr(TestRecorder) rec = NULL;

  g_test_summary ("a malformed proxy-uri fails dispatches with INVALID_ARGUMENT naming it");

  rec = get (agent, "http://127.0.0.1:9", "/");
  test_recorder_assert_error (rec, DISPATCH_ERROR_INVALID_ARGUMENT);
  g_assert_nonnull (strstr (rec->error->message, "proxy-uri"));
}

static void
test_proxy_none_by_default (void)
{
  ServerConfig config = { 0 };
  g_autoptr(Server) server = server_new (&config);
  g_autoptr(DispatchAgent) agent = dispatch_agent_new ();
  g_autoptr(TestRecorder) rec = NULL;

  g_test_summary ("without proxy-uri or use-system-proxy, requests go direct even though "
                  "http_proxy is set in the environment");

  g_assert_nonnull (g_getenv ("http_proxy"));
  g_assert_null (dispatch_agent_get_proxy_uri (agent));
  g_assert_false (dispatch_agent_get_use_system_proxy (agent));
  rec = get (agent, server->origin, "/");
  test_recorder_assert_ok (rec, 200, "secure");
}

/* A GProxyResolver registered on GIO's extension point and selected with
 * GIO_USE_PROXY_RESOLVER, so g_proxy_resolver_get_default() -- what
 * use-system-proxy consults -- is this one: it sends everything to the
 * proxy in system_proxy_uri. */
static char *system_proxy_uri;

#define TEST_TYPE_PROXY_RESOLVER (test_proxy_resolver_get_type ())
G_DECLARE_FINAL_TYPE (TestProxyResolver, test_proxy_resolver, TEST, PROXY_RESOLVER, GObject)

struct _TestProxyResolver
{
  GObject parent_instance;
};

static char **
test_proxy_resolver_lookup (GProxyResolver  *resolver,
                            const char      *uri,
                            GCancellable    *cancellable,
                            GError         **error)
{
  char *proxies[] = { system_proxy_uri ? system_proxy_uri : (char *) "direct://", NULL };

  return g_strdupv (proxies);
}

static void
test_proxy_resolver_lookup_async (GProxyResolver      *resolver,
                                  const char          *uri,
                                  GCancellable        *cancellable,
                                  GAsyncReadyCallback  callback,
                                  gpointer             user_data)
{
  g_autoptr(GTask) task = g_task_new (resolver, cancellable, callback, user_data);

  g_task_return_pointer (task, test_proxy_resolver_lookup (resolver, uri, cancellable, NULL),
                         (GDestroyNotify) g_strfreev);
}

static char **
test_proxy_resolver_lookup_finish (GProxyResolver  *resolver,
                                   GAsyncResult    *result,
                                   GError         **error)
{
  return g_task_propagate_pointer (G_TASK (result), error);
}

static gboolean
test_proxy_resolver_is_supported (GProxyResolver *resolver)
{
  return TRUE;
}

static void
test_proxy_resolver_iface_init (GProxyResolverInterface *iface)
{
  iface->is_supported = test_proxy_resolver_is_supported;
  iface->lookup = test_proxy_resolver_lookup;
  iface->lookup_async = test_proxy_resolver_lookup_async;
  iface->lookup_finish = test_proxy_resolver_lookup_finish;
}

G_DEFINE_FINAL_TYPE_WITH_CODE (TestProxyResolver, test_proxy_resolver, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (G_TYPE_PROXY_RESOLVER,
                                                      test_proxy_resolver_iface_init))

static void
test_proxy_resolver_class_init (TestProxyResolverClass *klass)
{
}

static void
test_proxy_resolver_init (TestProxyResolver *self)
{
}

static void
test_proxy_system (void)
{
  ServerConfig config = { 0 };
  g_autoptr(Server) server = server_new (&config);
  g_autoptr(Proxy) proxy = proxy_new (FALSE);
  g_autoptr(DispatchAgent) system = NULL;
  g_autoptr(DispatchAgent) plain = NULL;
  g_autoptr(TestRecorder) via = NULL;
  g_autoptr(TestRecorder) direct = NULL;
  g_autofree char *line = NULL;

  g_test_summary ("use-system-proxy routes requests through GLib's default proxy "
                  "resolver; without it the same resolver is not consulted");

  g_assert_true (TEST_IS_PROXY_RESOLVER (g_proxy_resolver_get_default ()));
  g_free (system_proxy_uri);
  system_proxy_uri = g_strdup (proxy->uri);

  plain = dispatch_agent_new ();
  direct = get (plain, server->origin, "/direct");
  test_recorder_assert_ok (direct, 200, "secure");
  g_assert_false (proxy_saw (proxy, "GET "));

  system = g_object_new (DISPATCH_TYPE_AGENT, "use-system-proxy", TRUE, NULL);
  via = get (system, server->origin, "/via-system-proxy");
  test_recorder_assert_ok (via, 200, "secure");
  line = g_strdup_printf ("GET %s/via-system-proxy ", server->origin);
  g_assert_true (proxy_saw (proxy, line));

  g_clear_pointer (&system_proxy_uri, g_free);
}

/* ------------------------------------------------------------------------
 * Unix sockets, local address, user agent, keep-alive
 * ------------------------------------------------------------------------ */

static void
test_unix_socket (void)
{
  g_autofree char *path = cert_path ("server.sock");
  ServerConfig config = { .unix_path = path };
  g_autoptr(Server) server = server_new (&config);
  g_autoptr(DispatchAgent) agent = g_object_new (DISPATCH_TYPE_AGENT, "socket-path", path, NULL);
  g_autoptr(TestRecorder) got = NULL;
  g_autoptr(TestRecorder) posted = NULL;
  g_autoptr(DispatchRequest) post = NULL;
  g_autoptr(GBytes) body = g_bytes_new_static ("twelve bytes", 12);

  g_test_summary ("socket-path routes GET and POST through a Unix domain socket");

  g_assert_cmpstr (dispatch_agent_get_socket_path (agent), ==, path);

  /* the origin only names the Host header; nothing listens there */
  got = get (agent, "http://unix.invalid:1", "/");
  test_recorder_assert_ok (got, 200, "secure");
  g_assert_cmpstr (dispatch_headers_get (got->headers, "x-peer"), ==, "unix");

  post = dispatch_request_new ("POST", "http://unix.invalid:1", "/upload");
  dispatch_request_set_body (post, body);
  posted = test_dispatch_and_wait (DISPATCH_DISPATCHER (agent), post);
  test_recorder_assert_ok (posted, 200, "posted 12");
  g_assert_cmpint (g_atomic_int_get (&server->requests), ==, 2);
}

static gboolean
loopback_alias_works (const char *ip)
{
  struct sockaddr_in sin = { .sin_family = AF_INET };
  int fd = socket (AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  gboolean ok;

  inet_pton (AF_INET, ip, &sin.sin_addr);
  ok = bind (fd, (struct sockaddr *) &sin, sizeof sin) == 0;
  close (fd);

  return ok;
}

static void
test_local_address (void)
{
  ServerConfig config = { 0 };
  g_autoptr(Server) server = NULL;
  g_autoptr(DispatchAgent) agent = NULL;
  g_autoptr(TestRecorder) rec = NULL;

  g_test_summary ("local-address binds the client side: the server sees 127.0.0.2");

  if (!loopback_alias_works ("127.0.0.2"))
    {
      g_test_skip ("cannot bind 127.0.0.2 here");
      return;
    }

  server = server_new (&config);
  agent = g_object_new (DISPATCH_TYPE_AGENT, "local-address", "127.0.0.2", NULL);
  rec = get (agent, server->origin, "/");
  test_recorder_assert_ok (rec, 200, "secure");
  g_assert_true (g_str_has_prefix (dispatch_headers_get (rec->headers, "x-peer"), "127.0.0.2:"));
}

static void
test_local_address_invalid (void)
{
  ServerConfig config = { 0 };
  g_autoptr(Server) server = server_new (&config);
  g_autoptr(DispatchAgent) agent =
    g_object_new (DISPATCH_TYPE_AGENT, "local-address", "not-an-ip", NULL);
  g_autoptr(TestRecorder) rec = NULL;

  g_test_summary ("an invalid local-address fails the dispatch with INVALID_ARGUMENT naming "
                  "it, and nothing is sent");

  rec = get (agent, server->origin, "/");
  test_recorder_assert_error (rec, DISPATCH_ERROR_INVALID_ARGUMENT);
  test_recorder_assert_events (rec, TEST_EVENT_REQUEST_START, TEST_EVENT_ERROR, -1);
  g_assert_nonnull (strstr (rec->error->message, "local-address"));
  g_assert_cmpint (g_atomic_int_get (&server->requests), ==, 0);
}

static void
test_user_agent (void)
{
  ServerConfig config = { 0 };
  g_autoptr(Server) server = server_new (&config);
  g_autoptr(DispatchAgent) custom =
    g_object_new (DISPATCH_TYPE_AGENT, "user-agent", "my-app/1.0", NULL);
  g_autoptr(DispatchAgent) plain = dispatch_agent_new ();
  g_autoptr(TestRecorder) a = NULL;
  g_autoptr(TestRecorder) b = NULL;
  g_autoptr(TestRecorder) c = NULL;
  g_autoptr(DispatchRequest) own = NULL;

  g_test_summary ("user-agent is sent as set; the default names the library; a request's "
                  "own User-Agent wins");

  a = get (custom, server->origin, "/");
  g_assert_cmpstr (dispatch_headers_get (a->headers, "x-user-agent"), ==, "my-app/1.0");

  b = get (plain, server->origin, "/");
  g_assert_cmpstr (dispatch_headers_get (b->headers, "x-user-agent"), ==,
                   "libdispatch-gobject/" DISPATCH_VERSION_S);

  own = dispatch_request_new ("GET", server->origin, "/");
  dispatch_request_add_header (own, "User-Agent", "request/2.0");
  c = test_dispatch_and_wait (DISPATCH_DISPATCHER (custom), own);
  g_assert_cmpstr (dispatch_headers_get (c->headers, "x-user-agent"), ==, "request/2.0");

  /* libsoup would append its own name to a session User-Agent ending in
   * a space; an empty one sends none */
  {
    g_autoptr(DispatchAgent) spaced =
      g_object_new (DISPATCH_TYPE_AGENT, "user-agent", "spaced/1.0 ", NULL);
    g_autoptr(DispatchAgent) none =
      g_object_new (DISPATCH_TYPE_AGENT, "user-agent", "", NULL);
    g_autoptr(TestRecorder) d = get (spaced, server->origin, "/");
    g_autoptr(TestRecorder) e = get (none, server->origin, "/");
    g_autofree char *seen = g_strdup (dispatch_headers_get (d->headers, "x-user-agent"));

    g_assert_cmpstr (g_strstrip (seen), ==, "spaced/1.0");
    g_assert_cmpstr (dispatch_headers_get (e->headers, "x-user-agent"), ==, "");
  }
}

static void
test_keep_alive_timeout (void)
{
  ServerConfig config = { 0 };
  g_autoptr(Server) server = server_new (&config);
  g_autoptr(DispatchAgent) agent =
    g_object_new (DISPATCH_TYPE_AGENT, "keep-alive-timeout", 1000, NULL);
  g_autoptr(TestRecorder) first = NULL;
  g_autoptr(TestRecorder) second = NULL;
  g_autoptr(TestRecorder) third = NULL;

  g_test_summary ("a connection is reused within keep-alive-timeout and closed after it: "
                  "the next request opens a new one");

  first = get (agent, server->origin, "/");
  second = get (agent, server->origin, "/");
  g_assert_cmpstr (dispatch_headers_get (first->headers, "x-peer"), ==,
                   dispatch_headers_get (second->headers, "x-peer"));

  /* libsoup counts idle time in whole seconds: wait past two of them */
  test_iterate_for (2500);

  third = get (agent, server->origin, "/");
  g_assert_cmpstr (dispatch_headers_get (second->headers, "x-peer"), !=,
                   dispatch_headers_get (third->headers, "x-peer"));
}

/* ------------------------------------------------------------------------
 * HTTP/2 opt-in, against Node's http2 server
 * ------------------------------------------------------------------------ */

typedef struct
{
  GSubprocess *process;
  char        *origin;
} H2Server;

static H2Server *
h2_server_new (void)
{
  g_autofree char *script = g_test_build_filename (G_TEST_DIST, "h2-server.mjs", NULL);
  g_autofree char *cert = cert_path ("server.pem");
  g_autofree char *key = cert_path ("server.key");
  g_autoptr(GError) error = NULL;
  g_autoptr(GDataInputStream) out = NULL;
  g_autofree char *line = NULL;
  g_autofree char *node = g_find_program_in_path ("node");
  H2Server *h2;

  if (node == NULL)
    return NULL;

  h2 = g_new0 (H2Server, 1);
  h2->process = g_subprocess_new (G_SUBPROCESS_FLAGS_STDIN_PIPE | G_SUBPROCESS_FLAGS_STDOUT_PIPE,
                                  &error, "node", script, cert, key, NULL);
  g_assert_no_error (error);

  out = g_data_input_stream_new (g_subprocess_get_stdout_pipe (h2->process));
  line = g_data_input_stream_read_line (out, NULL, NULL, &error);
  g_assert_no_error (error);
  g_assert_nonnull (line);
  h2->origin = g_strdup_printf ("https://127.0.0.1:%s", line);

  return h2;
}

static void
h2_server_free (H2Server *h2)
{
  /* closing stdin makes it exit */
  g_output_stream_close (g_subprocess_get_stdin_pipe (h2->process), NULL, NULL);
  g_subprocess_wait (h2->process, NULL, NULL);
  g_object_unref (h2->process);
  g_free (h2->origin);
  g_free (h2);
}

G_DEFINE_AUTOPTR_CLEANUP_FUNC (H2Server, h2_server_free)

static void
test_h2 (void)
{
  g_autoptr(H2Server) h2 = h2_server_new ();
  g_autofree char *ca = cert_path ("ca.pem");
  g_autoptr(DispatchAgent) h1_agent = NULL;
  g_autoptr(DispatchAgent) h2_agent = NULL;
  g_autoptr(TestRecorder) h1 = NULL;
  g_autoptr(TestRecorder) h2_rec = NULL;

  g_test_summary ("allow-h2 FALSE keeps HTTP/1.1 although the server offers h2; TRUE "
                  "negotiates h2 and the body arrives intact");

  if (h2 == NULL)
    {
      g_test_skip ("node is not installed");
      return;
    }

  h1_agent = g_object_new (DISPATCH_TYPE_AGENT, "ca-file", ca, "allow-h2", FALSE, NULL);
  h1 = get (h1_agent, h2->origin, "/");
  test_recorder_assert_ok (h1, 200, "1.1");

  h2_agent = g_object_new (DISPATCH_TYPE_AGENT, "ca-file", ca, "allow-h2", TRUE, NULL);
  h2_rec = get (h2_agent, h2->origin, "/");
  test_recorder_assert_ok (h2_rec, 200, "2.0");
}

static void
test_h2_default (void)
{
  g_autoptr(DispatchAgent) agent = dispatch_agent_new ();
  gboolean has_flow_control = soup_check_version (3, 6, 3);

  g_test_summary ("allow-h2 defaults to TRUE only on libsoup ≥ 3.6.3 (HTTP/2 flow control)");

  g_assert_cmpint (dispatch_agent_get_allow_h2 (agent), ==, has_flow_control);
}

static void
remove_dir (const char *path)
{
  g_autoptr(GDir) dir = g_dir_open (path, 0, NULL);
  const char *name;

  if (dir == NULL)
    return;
  while ((name = g_dir_read_name (dir)) != NULL)
    {
      g_autofree char *child = g_build_filename (path, name, NULL);

      g_unlink (child);
    }
  g_rmdir (path);
}

int
main (int    argc,
      char **argv)
{
  int ret;

  /* Set before any thread exists: the agent must ignore it by default. */
  g_setenv ("http_proxy", "http://127.0.0.1:9", TRUE);
  g_setenv ("https_proxy", "http://127.0.0.1:9", TRUE);

  /* GLib's default proxy resolver is ours (use-system-proxy test) */
  g_setenv ("GIO_USE_PROXY_RESOLVER", "dispatch-test", TRUE);
  g_io_extension_point_register (G_PROXY_RESOLVER_EXTENSION_POINT_NAME);
  g_io_extension_point_implement (G_PROXY_RESOLVER_EXTENSION_POINT_NAME,
                                  TEST_TYPE_PROXY_RESOLVER, "dispatch-test", 1000);

  test_init (&argc, &argv);
  make_certificates ();

  g_test_add_func ("/transport/tls/trusted-ca-file", test_tls_trusted_ca_file);
  g_test_add_func ("/transport/tls/trusted-database", test_tls_trusted_database);
  g_test_add_func ("/transport/tls/untrusted", test_tls_untrusted);
  g_test_add_func ("/transport/tls/insecure", test_tls_insecure);
  g_test_add_func ("/transport/tls/wrong-hostname", test_tls_wrong_hostname);
  g_test_add_func ("/transport/tls/client-certificate", test_tls_client_certificate);
  g_test_add_func ("/transport/tls/bad-ca-file", test_tls_bad_ca_file);
  g_test_add_func ("/transport/proxy/http-forward", test_proxy_http_forward);
  g_test_add_func ("/transport/proxy/https-connect", test_proxy_https_connect);
  g_test_add_func ("/transport/proxy/credentials", test_proxy_credentials);
  g_test_add_func ("/transport/proxy/auth-required", test_proxy_auth_required);
  g_test_add_func ("/transport/proxy/invalid-uri", test_proxy_invalid_uri);
  g_test_add_func ("/transport/proxy/none-by-default", test_proxy_none_by_default);
  g_test_add_func ("/transport/proxy/system", test_proxy_system);
  g_test_add_func ("/transport/unix-socket", test_unix_socket);
  g_test_add_func ("/transport/local-address", test_local_address);
  g_test_add_func ("/transport/local-address-invalid", test_local_address_invalid);
  g_test_add_func ("/transport/user-agent", test_user_agent);
  g_test_add_func ("/transport/keep-alive-timeout", test_keep_alive_timeout);
  g_test_add_func ("/transport/h2/opt-in", test_h2);
  g_test_add_func ("/transport/h2/default", test_h2_default);

  ret = g_test_run ();

  remove_dir (certdir);
  g_free (certdir);

  return ret;
}
