/* dispatch-agent.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/**
 * DispatchAgent:
 *
 * The [iface@Dispatch.Dispatcher] that sends requests over HTTP with
 * libsoup (undici's `Agent`).
 *
 * An agent owns one `SoupSession` and its connection pool, keeps
 * connections alive between requests to the same origin, and applies its
 * timeouts and limits to every request unless the request overrides them.
 * Over HTTP/1.1 it also keeps up to 64 `SoupMessage`s of requests that
 * ended cleanly and sends later requests in them, which libsoup allows
 * once it is done with a message; a response head a handler kept is
 * copied first. Its properties are set at construction:
 *
 * ```c
 * g_autoptr(DispatchAgent) agent =
 *   g_object_new (DISPATCH_TYPE_AGENT,
 *                 "connections", 8,
 *                 "headers-timeout", 30000,
 *                 NULL);
 * ```
 *
 * Create the agent in a thread whose main context is iterated (usually
 * the main thread): libsoup reaps idle connections there. Requests may be
 * dispatched from any thread whose thread-default main context is
 * iterated; each request runs in the context it was dispatched from.
 *
 * Transfers use HTTP/1.1 unless [property@Dispatch.Agent:allow-h2] is
 * set: libsoup before 3.6.3 has no HTTP/2 flow control, so pausing an h2
 * response would buffer it in memory.
 *
 * Settings that cannot be applied (a malformed
 * [property@Dispatch.Agent:proxy-uri] or
 * [property@Dispatch.Agent:local-address], an unreadable
 * [property@Dispatch.Agent:ca-file]) make every dispatch fail with
 * %DISPATCH_ERROR_INVALID_ARGUMENT naming the property.
 *
 * Since: 0.1
 */

#include "config.h"

#include <gio/gunixsocketaddress.h>
#include <libsoup/soup.h>

#include "dispatch-agent-private.h"
#include "dispatch-agent.h"
#include "dispatch-error.h"
#include "dispatch-exchange-private.h"

G_DEFINE_FINAL_TYPE_WITH_CODE (DispatchAgent, dispatch_agent, G_TYPE_OBJECT,
                               G_IMPLEMENT_INTERFACE (DISPATCH_TYPE_DISPATCHER,
                                                      dispatch_agent_dispatcher_iface_init))

enum {
  PROP_0,
  PROP_CONNECTIONS,
  PROP_MAX_CONNECTIONS,
  PROP_KEEP_ALIVE_TIMEOUT,
  PROP_CONNECT_TIMEOUT,
  PROP_HEADERS_TIMEOUT,
  PROP_BODY_TIMEOUT,
  PROP_TIMEOUT,
  PROP_MAX_RESPONSE_SIZE,
  PROP_MAX_HEADER_SIZE,
  PROP_ALLOW_H2,
  PROP_USER_AGENT,
  PROP_PROXY_URI,
  PROP_USE_SYSTEM_PROXY,
  PROP_TLS_DATABASE,
  PROP_CA_FILE,
  PROP_REJECT_UNAUTHORIZED,
  PROP_TLS_CERTIFICATE,
  PROP_LOCAL_ADDRESS,
  PROP_SOCKET_PATH,
  PROP_CLOSED,
  PROP_DESTROYED,
  N_PROPS
};

static GParamSpec *properties[N_PROPS];

static gboolean
runtime_soup_has_h2_flow_control (void)
{
  guint major = soup_get_major_version ();
  guint minor = soup_get_minor_version ();
  guint micro = soup_get_micro_version ();

  return major > 3 || (major == 3 && (minor > 6 || (minor == 6 && micro >= 3)));
}

static void
set_config_error (DispatchAgent *self,
                  GError        *error)
{
  if (self->config_error == NULL)
    self->config_error = error;
  else
    g_error_free (error);
}

static GProxyResolver *
make_proxy_resolver (DispatchAgent *self)
{
  if (self->proxy_uri != NULL)
    {
      g_autoptr(GUri) uri = NULL;
      g_autoptr(GError) error = NULL;
      const char *scheme;

      uri = g_uri_parse (self->proxy_uri, G_URI_FLAGS_NONE, &error);
      scheme = uri ? g_uri_get_scheme (uri) : NULL;
      if (uri == NULL || g_uri_get_host (uri) == NULL ||
          (g_strcmp0 (scheme, "http") != 0 && g_strcmp0 (scheme, "https") != 0 &&
           g_strcmp0 (scheme, "socks") != 0 && g_strcmp0 (scheme, "socks5") != 0))
        {
          set_config_error (self, g_error_new (DISPATCH_ERROR, DISPATCH_ERROR_INVALID_ARGUMENT,
                                               "proxy-uri: “%s” is not an http://, https:// "
                                               "or socks:// URI with a host%s%s",
                                               self->proxy_uri,
                                               error ? ": " : "",
                                               error ? error->message : ""));
          return NULL;
        }

      return g_simple_proxy_resolver_new (self->proxy_uri, NULL);
    }

  if (self->use_system_proxy)
    return g_object_ref (g_proxy_resolver_get_default ());

  return NULL;
}

static gboolean
proxy_uri_has_credentials (const char *proxy_uri)
{
  g_autoptr(GUri) uri = NULL;

  if (proxy_uri == NULL)
    return FALSE;

  uri = g_uri_parse (proxy_uri, G_URI_FLAGS_NONE, NULL);
  return uri != NULL && g_uri_get_user (uri) != NULL;
}

static void
dispatch_agent_constructed (GObject *object)
{
  DispatchAgent *self = (DispatchAgent *) object;
  g_autoptr(GProxyResolver) resolver = NULL;
  g_autoptr(GTlsDatabase) database = NULL;
  g_autoptr(GSocketAddress) local = NULL;
  g_autoptr(GSocketConnectable) remote = NULL;

  G_OBJECT_CLASS (dispatch_agent_parent_class)->constructed (object);

  self->context = g_main_context_ref_thread_default ();

  resolver = make_proxy_resolver (self);

  if (self->tls_database != NULL)
    database = g_object_ref (self->tls_database);
  else if (self->ca_file != NULL)
    {
      g_autoptr(GError) error = NULL;

      database = g_tls_file_database_new (self->ca_file, &error);
      if (database == NULL)
        set_config_error (self, g_error_new (DISPATCH_ERROR, DISPATCH_ERROR_INVALID_ARGUMENT,
                                             "ca-file: cannot load “%s”: %s",
                                             self->ca_file, error->message));
    }

  if (self->local_address != NULL)
    {
      local = g_inet_socket_address_new_from_string (self->local_address, 0);
      if (local == NULL)
        set_config_error (self, g_error_new (DISPATCH_ERROR, DISPATCH_ERROR_INVALID_ARGUMENT,
                                             "local-address: “%s” is not an IP address",
                                             self->local_address));
    }

  if (self->socket_path != NULL)
    {
      if (self->socket_path[0] == '\0')
        set_config_error (self, g_error_new_literal (DISPATCH_ERROR,
                                                     DISPATCH_ERROR_INVALID_ARGUMENT,
                                                     "socket-path: must not be empty"));
      else
        remote = G_SOCKET_CONNECTABLE (g_unix_socket_address_new (self->socket_path));
    }

  self->session = g_object_new (SOUP_TYPE_SESSION,
                                "max-conns", self->max_connections,
                                "max-conns-per-host", self->connections,
                                "timeout", 0,
                                "idle-timeout", self->keep_alive_timeout / 1000 + (self->keep_alive_timeout % 1000 != 0),
                                "proxy-resolver", resolver,
                                "local-address", local,
                                "remote-connectable", remote,
                                NULL);
  if (database != NULL)
    soup_session_set_tls_database (self->session, database);

  /* undici passes the body through undecoded and does no auth dance. The
   * auth manager stays only to answer a proxy's 407 with the credentials
   * of proxy-uri (origins cannot carry credentials, and nobody answers
   * SoupMessage::authenticate, so it never acts for them). */
  soup_session_remove_feature_by_type (self->session, SOUP_TYPE_CONTENT_DECODER);
  self->config.proxy_auth = proxy_uri_has_credentials (self->proxy_uri);

  /* The messages of requests that ended cleanly are sent again for later
   * ones (dispatch-message-pool.c). Not with HTTP/2, whose messages
   * libsoup 3.2 ties to per-stream state we have not audited for reuse. */
  if (!self->config.allow_h2)
    self->messages = _dispatch_message_pool_new ();

  self->config.session = self->session;
  self->config.origins = self->origins;
  self->config.messages = self->messages;
  self->config.accept_any_certificate = !self->reject_unauthorized;
  self->config.tls_certificate = self->tls_certificate;
  self->config.user_agent = self->user_agent;
  self->config.via_proxy = resolver != NULL;
}

static gboolean
release_session_cb (gpointer data)
{
  SoupSession *session = data;

  soup_session_abort (session);
  g_object_unref (session);

  return G_SOURCE_REMOVE;
}

static void
dispatch_agent_finalize (GObject *object)
{
  DispatchAgent *self = (DispatchAgent *) object;

  g_assert (g_queue_is_empty (&self->in_flight));

  g_clear_pointer (&self->messages, _dispatch_message_pool_free);

  /* The last reference may go in another thread (an exchange's, when its
   * request ends there); libsoup wants its session torn down where it was
   * made. */
  if (self->session != NULL)
    g_main_context_invoke_full (self->context, G_PRIORITY_DEFAULT,
                                release_session_cb, g_steal_pointer (&self->session), NULL);
  g_clear_pointer (&self->context, g_main_context_unref);
  g_clear_pointer (&self->origins, _dispatch_origin_cache_free);
  g_clear_error (&self->config_error);
  g_clear_error (&self->destroy_reason);
  g_clear_pointer (&self->close_tasks, g_ptr_array_unref);
  g_clear_pointer (&self->destroy_tasks, g_ptr_array_unref);
  g_clear_pointer (&self->user_agent, g_free);
  g_clear_pointer (&self->proxy_uri, g_free);
  g_clear_pointer (&self->ca_file, g_free);
  g_clear_pointer (&self->local_address, g_free);
  g_clear_pointer (&self->socket_path, g_free);
  g_clear_object (&self->tls_database);
  g_clear_object (&self->tls_certificate);
  g_mutex_clear (&self->mutex);

  G_OBJECT_CLASS (dispatch_agent_parent_class)->finalize (object);
}

static void
dispatch_agent_get_property (GObject    *object,
                             guint       prop_id,
                             GValue     *value,
                             GParamSpec *pspec)
{
  DispatchAgent *self = DISPATCH_AGENT (object);

  switch (prop_id)
    {
    case PROP_CONNECTIONS:
      g_value_set_int (value, self->connections);
      break;

    case PROP_MAX_CONNECTIONS:
      g_value_set_int (value, self->max_connections);
      break;

    case PROP_KEEP_ALIVE_TIMEOUT:
      g_value_set_uint (value, self->keep_alive_timeout);
      break;

    case PROP_CONNECT_TIMEOUT:
      g_value_set_uint (value, self->config.connect_timeout);
      break;

    case PROP_HEADERS_TIMEOUT:
      g_value_set_uint (value, self->config.headers_timeout);
      break;

    case PROP_BODY_TIMEOUT:
      g_value_set_uint (value, self->config.body_timeout);
      break;

    case PROP_TIMEOUT:
      g_value_set_uint (value, self->config.timeout);
      break;

    case PROP_MAX_RESPONSE_SIZE:
      g_value_set_int64 (value, self->config.max_response_size);
      break;

    case PROP_MAX_HEADER_SIZE:
      g_value_set_uint (value, self->config.max_header_size);
      break;

    case PROP_ALLOW_H2:
      g_value_set_boolean (value, self->config.allow_h2);
      break;

    case PROP_USER_AGENT:
      g_value_set_string (value, self->user_agent);
      break;

    case PROP_PROXY_URI:
      g_value_set_string (value, self->proxy_uri);
      break;

    case PROP_USE_SYSTEM_PROXY:
      g_value_set_boolean (value, self->use_system_proxy);
      break;

    case PROP_TLS_DATABASE:
      g_value_set_object (value, self->tls_database);
      break;

    case PROP_CA_FILE:
      g_value_set_string (value, self->ca_file);
      break;

    case PROP_REJECT_UNAUTHORIZED:
      g_value_set_boolean (value, self->reject_unauthorized);
      break;

    case PROP_TLS_CERTIFICATE:
      g_value_set_object (value, self->tls_certificate);
      break;

    case PROP_LOCAL_ADDRESS:
      g_value_set_string (value, self->local_address);
      break;

    case PROP_SOCKET_PATH:
      g_value_set_string (value, self->socket_path);
      break;

    case PROP_CLOSED:
      g_value_set_boolean (value, dispatch_agent_get_closed (self));
      break;

    case PROP_DESTROYED:
      g_value_set_boolean (value, dispatch_agent_get_destroyed (self));
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dispatch_agent_set_property (GObject      *object,
                             guint         prop_id,
                             const GValue *value,
                             GParamSpec   *pspec)
{
  DispatchAgent *self = DISPATCH_AGENT (object);

  switch (prop_id)
    {
    case PROP_CONNECTIONS:
      self->connections = g_value_get_int (value);
      break;

    case PROP_MAX_CONNECTIONS:
      self->max_connections = g_value_get_int (value);
      break;

    case PROP_KEEP_ALIVE_TIMEOUT:
      self->keep_alive_timeout = g_value_get_uint (value);
      break;

    case PROP_CONNECT_TIMEOUT:
      self->config.connect_timeout = g_value_get_uint (value);
      break;

    case PROP_HEADERS_TIMEOUT:
      self->config.headers_timeout = g_value_get_uint (value);
      break;

    case PROP_BODY_TIMEOUT:
      self->config.body_timeout = g_value_get_uint (value);
      break;

    case PROP_TIMEOUT:
      self->config.timeout = g_value_get_uint (value);
      break;

    case PROP_MAX_RESPONSE_SIZE:
      self->config.max_response_size = g_value_get_int64 (value);
      break;

    case PROP_MAX_HEADER_SIZE:
      self->config.max_header_size = g_value_get_uint (value);
      break;

    case PROP_ALLOW_H2:
      self->config.allow_h2 = g_value_get_boolean (value);
      break;

    case PROP_USER_AGENT:
      g_free (self->user_agent);
      self->user_agent = g_value_dup_string (value);
      break;

    case PROP_PROXY_URI:
      g_free (self->proxy_uri);
      self->proxy_uri = g_value_dup_string (value);
      break;

    case PROP_USE_SYSTEM_PROXY:
      self->use_system_proxy = g_value_get_boolean (value);
      break;

    case PROP_TLS_DATABASE:
      g_set_object (&self->tls_database, g_value_get_object (value));
      break;

    case PROP_CA_FILE:
      g_free (self->ca_file);
      self->ca_file = g_value_dup_string (value);
      break;

    case PROP_REJECT_UNAUTHORIZED:
      self->reject_unauthorized = g_value_get_boolean (value);
      break;

    case PROP_TLS_CERTIFICATE:
      g_set_object (&self->tls_certificate, g_value_get_object (value));
      break;

    case PROP_LOCAL_ADDRESS:
      g_free (self->local_address);
      self->local_address = g_value_dup_string (value);
      break;

    case PROP_SOCKET_PATH:
      g_free (self->socket_path);
      self->socket_path = g_value_dup_string (value);
      break;

    default:
      G_OBJECT_WARN_INVALID_PROPERTY_ID (object, prop_id, pspec);
    }
}

static void
dispatch_agent_class_init (DispatchAgentClass *klass)
{
  GObjectClass *object_class = G_OBJECT_CLASS (klass);
  const GParamFlags flags = G_PARAM_READWRITE | G_PARAM_CONSTRUCT_ONLY | G_PARAM_STATIC_STRINGS;
  const GParamFlags ro_flags = G_PARAM_READABLE | G_PARAM_STATIC_STRINGS | G_PARAM_EXPLICIT_NOTIFY;

  object_class->constructed = dispatch_agent_constructed;
  object_class->finalize = dispatch_agent_finalize;
  object_class->get_property = dispatch_agent_get_property;
  object_class->set_property = dispatch_agent_set_property;

  /**
   * DispatchAgent:connections:
   *
   * The most connections per origin (libsoup's `max-conns-per-host`).
   * libsoup probes every idle pooled connection on each request, so a
   * larger pool costs CPU per request; see the benchmarks before raising
   * it.
   *
   * Since: 0.1
   */
  properties[PROP_CONNECTIONS] =
    g_param_spec_int ("connections", NULL, NULL, 1, G_MAXINT, 16, flags);

  /**
   * DispatchAgent:max-connections:
   *
   * The most connections in total.
   *
   * Since: 0.1
   */
  properties[PROP_MAX_CONNECTIONS] =
    g_param_spec_int ("max-connections", NULL, NULL, 1, G_MAXINT, 256, flags);

  /**
   * DispatchAgent:keep-alive-timeout:
   *
   * How long an idle keep-alive connection is kept, in milliseconds
   * (libsoup counts whole seconds: the value is rounded up).
   *
   * Since: 0.1
   */
  properties[PROP_KEEP_ALIVE_TIMEOUT] =
    g_param_spec_uint ("keep-alive-timeout", NULL, NULL, 0, G_MAXUINT, 4000, flags);

  /**
   * DispatchAgent:connect-timeout:
   *
   * The time allowed for resolving, connecting and the TLS handshake, in
   * milliseconds; 0 disables it. Fails with
   * %DISPATCH_ERROR_CONNECT_TIMEOUT.
   *
   * Since: 0.1
   */
  properties[PROP_CONNECT_TIMEOUT] =
    g_param_spec_uint ("connect-timeout", NULL, NULL, 0, G_MAXUINT, 10000, flags);

  /**
   * DispatchAgent:headers-timeout:
   *
   * The time allowed between the request being fully written and the
   * response head arriving, in milliseconds; 0 disables it. Fails with
   * %DISPATCH_ERROR_HEADERS_TIMEOUT.
   *
   * Since: 0.1
   */
  properties[PROP_HEADERS_TIMEOUT] =
    g_param_spec_uint ("headers-timeout", NULL, NULL, 0, G_MAXUINT, 300000, flags);

  /**
   * DispatchAgent:body-timeout:
   *
   * The longest idle gap while reading the body, in milliseconds; not
   * counted while the request is paused; 0 disables it. Fails with
   * %DISPATCH_ERROR_BODY_TIMEOUT.
   *
   * Since: 0.1
   */
  properties[PROP_BODY_TIMEOUT] =
    g_param_spec_uint ("body-timeout", NULL, NULL, 0, G_MAXUINT, 300000, flags);

  /**
   * DispatchAgent:timeout:
   *
   * A deadline for the whole request, pauses included, in milliseconds;
   * 0 (the default) disables it. Fails with %DISPATCH_ERROR_TIMEOUT.
   *
   * Since: 0.1
   */
  properties[PROP_TIMEOUT] =
    g_param_spec_uint ("timeout", NULL, NULL, 0, G_MAXUINT, 0, flags);

  /**
   * DispatchAgent:max-response-size:
   *
   * The most response body bytes accepted, or -1 for no limit. Fails with
   * %DISPATCH_ERROR_RESPONSE_TOO_LARGE.
   *
   * Since: 0.1
   */
  properties[PROP_MAX_RESPONSE_SIZE] =
    g_param_spec_int64 ("max-response-size", NULL, NULL, -1, G_MAXINT64, -1, flags);

  /**
   * DispatchAgent:max-header-size:
   *
   * The most bytes of response header fields accepted (names, values and
   * their separators; libsoup 3.2 also stops at 64 KiB on its own). Fails
   * with %DISPATCH_ERROR_HEADERS_OVERFLOW.
   *
   * Since: 0.1
   */
  properties[PROP_MAX_HEADER_SIZE] =
    g_param_spec_uint ("max-header-size", NULL, NULL, 1, G_MAXUINT, 16384, flags);

  /**
   * DispatchAgent:allow-h2:
   *
   * Whether to offer HTTP/2 in TLS ALPN. The default is %FALSE on libsoup
   * before 3.6.3, whose HTTP/2 has no flow control (pausing would buffer
   * the body in memory, and trailers hang), %TRUE from 3.6.3.
   *
   * Since: 0.1
   */
  properties[PROP_ALLOW_H2] =
    g_param_spec_boolean ("allow-h2", NULL, NULL,
                          runtime_soup_has_h2_flow_control (), flags);

  /**
   * DispatchAgent:user-agent:
   *
   * The `User-Agent` sent with every request that does not set its own;
   * %NULL or empty sends none.
   *
   * Since: 0.1
   */
  properties[PROP_USER_AGENT] =
    g_param_spec_string ("user-agent", NULL, NULL, DISPATCH_USER_AGENT, flags);

  /**
   * DispatchAgent:proxy-uri:
   *
   * An explicit proxy for every request, e.g. `http://user:pass@proxy:3128`;
   * https origins go through a CONNECT tunnel. %NULL means no proxy.
   *
   * Since: 0.1
   */
  properties[PROP_PROXY_URI] =
    g_param_spec_string ("proxy-uri", NULL, NULL, NULL, flags);

  /**
   * DispatchAgent:use-system-proxy:
   *
   * Whether to use GLib's default proxy resolver (GNOME settings or the
   * environment) when [property@Dispatch.Agent:proxy-uri] is unset. Off
   * by default, so behaviour does not depend on the environment.
   *
   * Since: 0.1
   */
  properties[PROP_USE_SYSTEM_PROXY] =
    g_param_spec_boolean ("use-system-proxy", NULL, NULL, FALSE, flags);

  /**
   * DispatchAgent:tls-database:
   *
   * The trust store for server certificates; %NULL uses the system's.
   *
   * Since: 0.1
   */
  properties[PROP_TLS_DATABASE] =
    g_param_spec_object ("tls-database", NULL, NULL, G_TYPE_TLS_DATABASE, flags);

  /**
   * DispatchAgent:ca-file:
   *
   * A PEM file of CA certificates to trust instead of the system's, when
   * [property@Dispatch.Agent:tls-database] is unset.
   *
   * Since: 0.1
   */
  properties[PROP_CA_FILE] =
    g_param_spec_string ("ca-file", NULL, NULL, NULL, flags);

  /**
   * DispatchAgent:reject-unauthorized:
   *
   * Whether to reject server certificates that do not verify. %FALSE
   * accepts any certificate (and says so in a debug message): for tests
   * and development only.
   *
   * Since: 0.1
   */
  properties[PROP_REJECT_UNAUTHORIZED] =
    g_param_spec_boolean ("reject-unauthorized", NULL, NULL, TRUE, flags);

  /**
   * DispatchAgent:tls-certificate:
   *
   * A client certificate (with its private key) presented when a server
   * asks for one (mutual TLS).
   *
   * Since: 0.1
   */
  properties[PROP_TLS_CERTIFICATE] =
    g_param_spec_object ("tls-certificate", NULL, NULL, G_TYPE_TLS_CERTIFICATE, flags);

  /**
   * DispatchAgent:local-address:
   *
   * The local IP address to connect from, e.g. `127.0.0.2`.
   *
   * Since: 0.1
   */
  properties[PROP_LOCAL_ADDRESS] =
    g_param_spec_string ("local-address", NULL, NULL, NULL, flags);

  /**
   * DispatchAgent:socket-path:
   *
   * A Unix domain socket every request is sent through, whatever its
   * origin (which still sets the `Host` header).
   *
   * Since: 0.1
   */
  properties[PROP_SOCKET_PATH] =
    g_param_spec_string ("socket-path", NULL, NULL, NULL, flags);

  /**
   * DispatchAgent:closed:
   *
   * Whether [method@Dispatch.Dispatcher.close_async] (or destroy) was
   * called.
   *
   * Since: 0.1
   */
  properties[PROP_CLOSED] =
    g_param_spec_boolean ("closed", NULL, NULL, FALSE, ro_flags);

  /**
   * DispatchAgent:destroyed:
   *
   * Whether [method@Dispatch.Dispatcher.destroy_async] was called.
   *
   * Since: 0.1
   */
  properties[PROP_DESTROYED] =
    g_param_spec_boolean ("destroyed", NULL, NULL, FALSE, ro_flags);

  g_object_class_install_properties (object_class, N_PROPS, properties);
}

static void
dispatch_agent_init (DispatchAgent *self)
{
  g_mutex_init (&self->mutex);
  self->origins = _dispatch_origin_cache_new ();
  self->connections = 16;
  self->max_connections = 256;
  self->keep_alive_timeout = 4000;
  self->config.connect_timeout = 10000;
  self->config.headers_timeout = 300000;
  self->config.body_timeout = 300000;
  self->config.max_response_size = -1;
  self->config.max_header_size = 16384;
  self->reject_unauthorized = TRUE;
  self->config.allow_h2 = runtime_soup_has_h2_flow_control ();
  self->user_agent = g_strdup (DISPATCH_USER_AGENT);
}

/**
 * dispatch_agent_new:
 *
 * Creates an agent with the default settings.
 *
 * Returns: (transfer full): a new #DispatchAgent
 *
 * Since: 0.1
 */
DispatchAgent *
dispatch_agent_new (void)
{
  return g_object_new (DISPATCH_TYPE_AGENT, NULL);
}

/* For dispatch-agent-dispatcher.c: properties[] stays in this file. */

void
_dispatch_agent_notify_closed (DispatchAgent *self)
{
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_CLOSED]);
}

void
_dispatch_agent_notify_destroyed (DispatchAgent *self)
{
  g_object_notify_by_pspec (G_OBJECT (self), properties[PROP_DESTROYED]);
}

/* Getters */

#define DEFINE_GETTER(type, name, fail_value)             \
type                                                      \
dispatch_agent_get_##name (DispatchAgent *self)           \
{                                                         \
  g_return_val_if_fail (DISPATCH_IS_AGENT (self), fail_value); \
  return self->name;                                      \
}

/* settings kept only in the exchanges' view of them */
#define DEFINE_CONFIG_GETTER(type, name, fail_value)      \
type                                                      \
dispatch_agent_get_##name (DispatchAgent *self)           \
{                                                         \
  g_return_val_if_fail (DISPATCH_IS_AGENT (self), fail_value); \
  return self->config.name;                               \
}

/**
 * dispatch_agent_get_connections:
 * @self: a #DispatchAgent
 *
 * Gets [property@Dispatch.Agent:connections].
 *
 * Returns: [property@Dispatch.Agent:connections]
 *
 * Since: 0.1
 */
DEFINE_GETTER (int, connections, 0)

/**
 * dispatch_agent_get_max_connections:
 * @self: a #DispatchAgent
 *
 * Gets [property@Dispatch.Agent:max-connections].
 *
 * Returns: [property@Dispatch.Agent:max-connections]
 *
 * Since: 0.1
 */
DEFINE_GETTER (int, max_connections, 0)

/**
 * dispatch_agent_get_keep_alive_timeout:
 * @self: a #DispatchAgent
 *
 * Gets [property@Dispatch.Agent:keep-alive-timeout], in ms.
 *
 * Returns: [property@Dispatch.Agent:keep-alive-timeout], in ms
 *
 * Since: 0.1
 */
DEFINE_GETTER (guint, keep_alive_timeout, 0)

/**
 * dispatch_agent_get_connect_timeout:
 * @self: a #DispatchAgent
 *
 * Gets [property@Dispatch.Agent:connect-timeout], in ms.
 *
 * Returns: [property@Dispatch.Agent:connect-timeout], in ms
 *
 * Since: 0.1
 */
DEFINE_CONFIG_GETTER (guint, connect_timeout, 0)

/**
 * dispatch_agent_get_headers_timeout:
 * @self: a #DispatchAgent
 *
 * Gets [property@Dispatch.Agent:headers-timeout], in ms.
 *
 * Returns: [property@Dispatch.Agent:headers-timeout], in ms
 *
 * Since: 0.1
 */
DEFINE_CONFIG_GETTER (guint, headers_timeout, 0)

/**
 * dispatch_agent_get_body_timeout:
 * @self: a #DispatchAgent
 *
 * Gets [property@Dispatch.Agent:body-timeout], in ms.
 *
 * Returns: [property@Dispatch.Agent:body-timeout], in ms
 *
 * Since: 0.1
 */
DEFINE_CONFIG_GETTER (guint, body_timeout, 0)

/**
 * dispatch_agent_get_timeout:
 * @self: a #DispatchAgent
 *
 * Gets [property@Dispatch.Agent:timeout], in ms.
 *
 * Returns: [property@Dispatch.Agent:timeout], in ms
 *
 * Since: 0.1
 */
DEFINE_CONFIG_GETTER (guint, timeout, 0)

/**
 * dispatch_agent_get_max_response_size:
 * @self: a #DispatchAgent
 *
 * Gets [property@Dispatch.Agent:max-response-size].
 *
 * Returns: [property@Dispatch.Agent:max-response-size]
 *
 * Since: 0.1
 */
DEFINE_CONFIG_GETTER (gint64, max_response_size, -1)

/**
 * dispatch_agent_get_max_header_size:
 * @self: a #DispatchAgent
 *
 * Gets [property@Dispatch.Agent:max-header-size].
 *
 * Returns: [property@Dispatch.Agent:max-header-size]
 *
 * Since: 0.1
 */
DEFINE_CONFIG_GETTER (guint, max_header_size, 0)

/**
 * dispatch_agent_get_allow_h2:
 * @self: a #DispatchAgent
 *
 * Gets [property@Dispatch.Agent:allow-h2].
 *
 * Returns: [property@Dispatch.Agent:allow-h2]
 *
 * Since: 0.1
 */
DEFINE_CONFIG_GETTER (gboolean, allow_h2, FALSE)

/**
 * dispatch_agent_get_user_agent:
 * @self: a #DispatchAgent
 *
 * Gets [property@Dispatch.Agent:user-agent].
 *
 * Returns: (nullable): [property@Dispatch.Agent:user-agent]
 *
 * Since: 0.1
 */
DEFINE_GETTER (const char *, user_agent, NULL)

/**
 * dispatch_agent_get_proxy_uri:
 * @self: a #DispatchAgent
 *
 * Gets [property@Dispatch.Agent:proxy-uri].
 *
 * Returns: (nullable): [property@Dispatch.Agent:proxy-uri]
 *
 * Since: 0.1
 */
DEFINE_GETTER (const char *, proxy_uri, NULL)

/**
 * dispatch_agent_get_use_system_proxy:
 * @self: a #DispatchAgent
 *
 * Gets [property@Dispatch.Agent:use-system-proxy].
 *
 * Returns: [property@Dispatch.Agent:use-system-proxy]
 *
 * Since: 0.1
 */
DEFINE_GETTER (gboolean, use_system_proxy, FALSE)

/**
 * dispatch_agent_get_tls_database:
 * @self: a #DispatchAgent
 *
 * Gets [property@Dispatch.Agent:tls-database].
 *
 * Returns: (nullable) (transfer none): [property@Dispatch.Agent:tls-database]
 *
 * Since: 0.1
 */
DEFINE_GETTER (GTlsDatabase *, tls_database, NULL)

/**
 * dispatch_agent_get_ca_file:
 * @self: a #DispatchAgent
 *
 * Gets [property@Dispatch.Agent:ca-file].
 *
 * Returns: (nullable): [property@Dispatch.Agent:ca-file]
 *
 * Since: 0.1
 */
DEFINE_GETTER (const char *, ca_file, NULL)

/**
 * dispatch_agent_get_reject_unauthorized:
 * @self: a #DispatchAgent
 *
 * Gets [property@Dispatch.Agent:reject-unauthorized].
 *
 * Returns: [property@Dispatch.Agent:reject-unauthorized]
 *
 * Since: 0.1
 */
DEFINE_GETTER (gboolean, reject_unauthorized, TRUE)

/**
 * dispatch_agent_get_tls_certificate:
 * @self: a #DispatchAgent
 *
 * Gets [property@Dispatch.Agent:tls-certificate].
 *
 * Returns: (nullable) (transfer none): [property@Dispatch.Agent:tls-certificate]
 *
 * Since: 0.1
 */
DEFINE_GETTER (GTlsCertificate *, tls_certificate, NULL)

/**
 * dispatch_agent_get_local_address:
 * @self: a #DispatchAgent
 *
 * Gets [property@Dispatch.Agent:local-address].
 *
 * Returns: (nullable): [property@Dispatch.Agent:local-address]
 *
 * Since: 0.1
 */
DEFINE_GETTER (const char *, local_address, NULL)

/**
 * dispatch_agent_get_socket_path:
 * @self: a #DispatchAgent
 *
 * Gets [property@Dispatch.Agent:socket-path].
 *
 * Returns: (nullable): [property@Dispatch.Agent:socket-path]
 *
 * Since: 0.1
 */
DEFINE_GETTER (const char *, socket_path, NULL)

/**
 * dispatch_agent_get_closed:
 * @self: a #DispatchAgent
 *
 * Gets [property@Dispatch.Agent:closed].
 *
 * Returns: [property@Dispatch.Agent:closed]
 *
 * Since: 0.1
 */
gboolean
dispatch_agent_get_closed (DispatchAgent *self)
{
  g_return_val_if_fail (DISPATCH_IS_AGENT (self), FALSE);

  return g_atomic_int_get (&self->closed);
}

/**
 * dispatch_agent_get_destroyed:
 * @self: a #DispatchAgent
 *
 * Gets [property@Dispatch.Agent:destroyed].
 *
 * Returns: [property@Dispatch.Agent:destroyed]
 *
 * Since: 0.1
 */
gboolean
dispatch_agent_get_destroyed (DispatchAgent *self)
{
  g_return_val_if_fail (DISPATCH_IS_AGENT (self), FALSE);

  return g_atomic_int_get (&self->destroyed);
}
