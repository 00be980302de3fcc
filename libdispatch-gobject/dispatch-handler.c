/* dispatch-handler.c
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/**
 * DispatchHandler:
 *
 * Receives the life of one dispatched request (undici's
 * `DispatchHandler`).
 *
 * The dispatcher calls, in this order and always in the request's
 * dispatch context (the thread-default main context of the thread that
 * called [method@Dispatch.Dispatcher.dispatch]):
 *
 * 1. `on_request_start` — first and exactly once: when the request is
 *    about to be written (it has a connection), or right before the
 *    error of a request that fails earlier (invalid, dispatcher closed,
 *    refused, aborted). Aborting here sends nothing.
 * 2. `on_response_informational` — for each 1xx head (103 Early Hints…).
 * 3. `on_response_start` — at most once, with the final status, the
 *    read-only response headers and the server's reason phrase.
 * 4. `on_response_data` — zero or more times, one `GBytes` per chunk.
 * 5. exactly one terminal call: `on_response_end` (success, with the
 *    trailers) or `on_response_error` (a %DISPATCH_ERROR error).
 *
 * Nothing is called after the terminal call. Every virtual method has a
 * default that does nothing, so an implementation overrides only what it
 * needs. In Python, implement `do_on_response_data` and friends on a
 * `GObject.Object` subclass that lists `Dispatch.Handler`; in GJS,
 * `vfunc_on_response_data` on a class registered with
 * `Implements: [Dispatch.Handler]`.
 *
 * Since: 0.1
 */

#include "config.h"

#include "dispatch-handler.h"

G_DEFINE_INTERFACE (DispatchHandler, dispatch_handler, G_TYPE_OBJECT)

static void
default_on_request_start (DispatchHandler           *self,
                          DispatchRequestController *controller)
{
}

static void
default_on_response_informational (DispatchHandler           *self,
                                   DispatchRequestController *controller,
                                   guint                      status,
                                   DispatchHeaders           *headers)
{
}

static void
default_on_response_start (DispatchHandler           *self,
                           DispatchRequestController *controller,
                           guint                      status,
                           DispatchHeaders           *headers,
                           const char                *reason)
{
}

static void
default_on_response_data (DispatchHandler           *self,
                          DispatchRequestController *controller,
                          GBytes                    *chunk)
{
}

static void
default_on_response_end (DispatchHandler           *self,
                         DispatchRequestController *controller,
                         DispatchHeaders           *trailers)
{
}

static void
default_on_response_error (DispatchHandler           *self,
                           DispatchRequestController *controller,
                           const GError              *error)
{
}

static void
dispatch_handler_default_init (DispatchHandlerInterface *iface)
{
  iface->on_request_start = default_on_request_start;
  iface->on_response_informational = default_on_response_informational;
  iface->on_response_start = default_on_response_start;
  iface->on_response_data = default_on_response_data;
  iface->on_response_end = default_on_response_end;
  iface->on_response_error = default_on_response_error;
}

/**
 * dispatch_handler_on_request_start:
 * @self: a #DispatchHandler
 * @controller: the request's controller
 *
 * Called first, once, when the request is about to be written, or right
 * before the error of a request that fails earlier.
 *
 * Since: 0.1
 */
void
dispatch_handler_on_request_start (DispatchHandler           *self,
                                   DispatchRequestController *controller)
{
  g_return_if_fail (DISPATCH_IS_HANDLER (self));
  g_return_if_fail (DISPATCH_IS_REQUEST_CONTROLLER (controller));

  DISPATCH_HANDLER_GET_IFACE (self)->on_request_start (self, controller);
}

/**
 * dispatch_handler_on_response_informational:
 * @self: a #DispatchHandler
 * @controller: the request's controller
 * @status: the 1xx status code
 * @headers: the read-only headers of the 1xx head
 *
 * Called for each informational (1xx) response head, before
 * `on_response_start`.
 *
 * Since: 0.1
 */
void
dispatch_handler_on_response_informational (DispatchHandler           *self,
                                            DispatchRequestController *controller,
                                            guint                      status,
                                            DispatchHeaders           *headers)
{
  g_return_if_fail (DISPATCH_IS_HANDLER (self));
  g_return_if_fail (DISPATCH_IS_REQUEST_CONTROLLER (controller));
  g_return_if_fail (headers != NULL);

  DISPATCH_HANDLER_GET_IFACE (self)->on_response_informational (self, controller, status, headers);
}

/**
 * dispatch_handler_on_response_start:
 * @self: a #DispatchHandler
 * @controller: the request's controller
 * @status: the final status code
 * @headers: the read-only response headers, names in lower case
 * @reason: (nullable): the reason phrase from the status line
 *
 * Called once when the final response head has arrived. Pausing here
 * stops the body before its first byte is read.
 *
 * Since: 0.1
 */
void
dispatch_handler_on_response_start (DispatchHandler           *self,
                                    DispatchRequestController *controller,
                                    guint                      status,
                                    DispatchHeaders           *headers,
                                    const char                *reason)
{
  g_return_if_fail (DISPATCH_IS_HANDLER (self));
  g_return_if_fail (DISPATCH_IS_REQUEST_CONTROLLER (controller));
  g_return_if_fail (headers != NULL);

  DISPATCH_HANDLER_GET_IFACE (self)->on_response_start (self, controller, status, headers, reason);
}

/**
 * dispatch_handler_on_response_data:
 * @self: a #DispatchHandler
 * @controller: the request's controller
 * @chunk: the bytes received
 *
 * Called for each chunk of the response body. Chunk boundaries carry no
 * meaning. Pausing here stops reading right after this call returns.
 *
 * Since: 0.1
 */
void
dispatch_handler_on_response_data (DispatchHandler           *self,
                                   DispatchRequestController *controller,
                                   GBytes                    *chunk)
{
  g_return_if_fail (DISPATCH_IS_HANDLER (self));
  g_return_if_fail (DISPATCH_IS_REQUEST_CONTROLLER (controller));
  g_return_if_fail (chunk != NULL);

  DISPATCH_HANDLER_GET_IFACE (self)->on_response_data (self, controller, chunk);
}

/**
 * dispatch_handler_on_response_end:
 * @self: a #DispatchHandler
 * @controller: the request's controller
 * @trailers: the read-only trailers (empty on libsoup 3.2)
 *
 * Called once when the response completed successfully. Terminal.
 *
 * Since: 0.1
 */
void
dispatch_handler_on_response_end (DispatchHandler           *self,
                                  DispatchRequestController *controller,
                                  DispatchHeaders           *trailers)
{
  g_return_if_fail (DISPATCH_IS_HANDLER (self));
  g_return_if_fail (DISPATCH_IS_REQUEST_CONTROLLER (controller));
  g_return_if_fail (trailers != NULL);

  DISPATCH_HANDLER_GET_IFACE (self)->on_response_end (self, controller, trailers);
}

/**
 * dispatch_handler_on_response_error:
 * @self: a #DispatchHandler
 * @controller: the request's controller
 * @error: why the request failed, in the %DISPATCH_ERROR domain (or the
 *   caller's own error given to [method@Dispatch.RequestController.abort]
 *   or [method@Dispatch.Dispatcher.destroy_async])
 *
 * Called once when the request failed. Terminal.
 *
 * Since: 0.1
 */
void
dispatch_handler_on_response_error (DispatchHandler           *self,
                                    DispatchRequestController *controller,
                                    const GError              *error)
{
  g_return_if_fail (DISPATCH_IS_HANDLER (self));
  g_return_if_fail (DISPATCH_IS_REQUEST_CONTROLLER (controller));
  g_return_if_fail (error != NULL);

  DISPATCH_HANDLER_GET_IFACE (self)->on_response_error (self, controller, error);
}
