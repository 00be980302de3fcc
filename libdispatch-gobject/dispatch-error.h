/* dispatch-error.h
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#if !defined(DISPATCH_INSIDE) && !defined(DISPATCH_COMPILATION)
# error "Only <libdispatch-gobject/dispatch.h> can be included directly."
#endif

#include <glib.h>

#include "dispatch-version-macros.h"

G_BEGIN_DECLS

/**
 * DISPATCH_ERROR:
 *
 * The error domain of libdispatch-gobject. Errors in this domain are from
 * the [error@Dispatch.Error] enumeration.
 *
 * Since: 0.1
 */
#define DISPATCH_ERROR (dispatch_error_quark ())

/**
 * DispatchError:
 * @DISPATCH_ERROR_ABORTED: the request was aborted with
 *   [method@Dispatch.RequestController.abort] and no reason was given.
 * @DISPATCH_ERROR_TIMEOUT: the whole-request deadline (`timeout`) passed.
 * @DISPATCH_ERROR_CONNECT_TIMEOUT: resolving, connecting and the TLS
 *   handshake took longer than `connect-timeout`.
 * @DISPATCH_ERROR_HEADERS_TIMEOUT: the response head did not arrive within
 *   `headers-timeout` of the request being fully written.
 * @DISPATCH_ERROR_BODY_TIMEOUT: no body data arrived for `body-timeout`
 *   while the request was not paused.
 * @DISPATCH_ERROR_SOCKET: the connection was refused, reset or closed by the
 *   peer; the message keeps the underlying GIO error.
 * @DISPATCH_ERROR_DNS: the host name could not be resolved.
 * @DISPATCH_ERROR_TLS: the TLS handshake failed or the certificate was
 *   rejected.
 * @DISPATCH_ERROR_PROXY: the proxy refused or failed the request.
 * @DISPATCH_ERROR_PARSE: the server sent malformed HTTP.
 * @DISPATCH_ERROR_HEADERS_OVERFLOW: the response header section exceeded
 *   `max-header-size` (or libsoup's own limit).
 * @DISPATCH_ERROR_RESPONSE_TOO_LARGE: the response body exceeded
 *   `max-response-size`.
 * @DISPATCH_ERROR_RESPONSE_LENGTH_MISMATCH: the response body was shorter
 *   or longer than its Content-Length.
 * @DISPATCH_ERROR_REQUEST_BODY_NOT_REPLAYABLE: the request had to be sent
 *   again (its connection went stale) but its body is a stream that was
 *   already consumed.
 * @DISPATCH_ERROR_INVALID_ARGUMENT: the request is invalid; the message
 *   names the field.
 * @DISPATCH_ERROR_NOT_SUPPORTED: the request asks for something this
 *   library does not do (an `Upgrade` or `Expect` request header), or an
 *   operation the object does not allow (appending to read-only headers).
 * @DISPATCH_ERROR_CLOSED: the dispatcher was closed.
 * @DISPATCH_ERROR_DESTROYED: the dispatcher was destroyed.
 *
 * Error codes in the %DISPATCH_ERROR domain. Every failure of a dispatched
 * request reaches the handler's `on_response_error` exactly once with one
 * of these codes.
 *
 * Since: 0.1
 */
typedef enum
{
  DISPATCH_ERROR_ABORTED,
  DISPATCH_ERROR_TIMEOUT,
  DISPATCH_ERROR_CONNECT_TIMEOUT,
  DISPATCH_ERROR_HEADERS_TIMEOUT,
  DISPATCH_ERROR_BODY_TIMEOUT,
  DISPATCH_ERROR_SOCKET,
  DISPATCH_ERROR_DNS,
  DISPATCH_ERROR_TLS,
  DISPATCH_ERROR_PROXY,
  DISPATCH_ERROR_PARSE,
  DISPATCH_ERROR_HEADERS_OVERFLOW,
  DISPATCH_ERROR_RESPONSE_TOO_LARGE,
  DISPATCH_ERROR_RESPONSE_LENGTH_MISMATCH,
  DISPATCH_ERROR_REQUEST_BODY_NOT_REPLAYABLE,
  DISPATCH_ERROR_INVALID_ARGUMENT,
  DISPATCH_ERROR_NOT_SUPPORTED,
  DISPATCH_ERROR_CLOSED,
  DISPATCH_ERROR_DESTROYED,
} DispatchError;

DISPATCH_AVAILABLE_IN_ALL
GQuark dispatch_error_quark (void);

G_END_DECLS
