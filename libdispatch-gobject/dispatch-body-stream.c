/* dispatch-body-stream.c — a request body stream held to its declared
 * length
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

/* libsoup 3.2 sends a Content-Length request body by splicing the stream
 * into the connection. If the stream is longer than the declared length,
 * libsoup silently drops the rest; if it is shorter, the server waits for
 * bytes that never come. This filter counts what the caller's stream gives
 * and fails the read instead, with an error naming the field, which then
 * fails the request. */

#include "config.h"

#include "dispatch-body-stream-private.h"
#include "dispatch-error.h"

struct _DispatchBodyStream
{
  GFilterInputStream parent_instance;

  gint64             length;
  gint64             read;
};

G_DEFINE_FINAL_TYPE (DispatchBodyStream, dispatch_body_stream, G_TYPE_FILTER_INPUT_STREAM)

/* Accounts for a read of @n bytes (0 = end of stream); FALSE with @error
 * set if the stream broke its declared length. */
static gboolean
account (DispatchBodyStream  *self,
         gssize               n,
         GError             **error)
{
  if (n > 0)
    {
      self->read += n;
      if (self->read > self->length)
        {
          g_set_error (error, DISPATCH_ERROR, DISPATCH_ERROR_INVALID_ARGUMENT,
                       "body-stream: gave more than the %" G_GINT64_FORMAT
                       " bytes declared in body-length", self->length);
          return FALSE;
        }
    }
  else if (n == 0 && self->read < self->length)
    {
      g_set_error (error, DISPATCH_ERROR, DISPATCH_ERROR_INVALID_ARGUMENT,
                   "body-stream: ended after %" G_GINT64_FORMAT " of the %"
                   G_GINT64_FORMAT " bytes declared in body-length",
                   self->read, self->length);
      return FALSE;
    }

  return TRUE;
}

static GInputStream *
base_stream (DispatchBodyStream *self)
{
  return g_filter_input_stream_get_base_stream (G_FILTER_INPUT_STREAM (self));
}

static gssize
dispatch_body_stream_read (GInputStream  *stream,
                           void          *buffer,
                           gsize          count,
                           GCancellable  *cancellable,
                           GError       **error)
{
  DispatchBodyStream *self = DISPATCH_BODY_STREAM (stream);
  gssize n;

  n = g_input_stream_read (base_stream (self), buffer, count, cancellable, error);
  if (n >= 0 && !account (self, n, error))
    return -1;

  return n;
}

static void
read_cb (GObject      *source,
         GAsyncResult *result,
         gpointer      user_data)
{
  g_autoptr(GTask) task = user_data;
  DispatchBodyStream *self = g_task_get_source_object (task);
  GError *error = NULL;
  gssize n;

  n = g_input_stream_read_finish (G_INPUT_STREAM (source), result, &error);
  if (n < 0 || !account (self, n, &error))
    g_task_return_error (task, error);
  else
    g_task_return_int (task, n);
}

/* Forwarded, so the caller's stream keeps its own asynchronous behaviour
 * (GInputStream's default would run the blocking read in a thread). */
static void
dispatch_body_stream_read_async (GInputStream        *stream,
                                 void                *buffer,
                                 gsize                count,
                                 int                  io_priority,
                                 GCancellable        *cancellable,
                                 GAsyncReadyCallback  callback,
                                 gpointer             user_data)
{
  DispatchBodyStream *self = DISPATCH_BODY_STREAM (stream);
  GTask *task = g_task_new (self, cancellable, callback, user_data);

  g_task_set_source_tag (task, dispatch_body_stream_read_async);
  g_input_stream_read_async (base_stream (self), buffer, count, io_priority,
                             cancellable, read_cb, task);
}

static gssize
dispatch_body_stream_read_finish (GInputStream  *stream,
                                  GAsyncResult  *result,
                                  GError       **error)
{
  g_return_val_if_fail (g_task_is_valid (result, stream), -1);

  return g_task_propagate_int (G_TASK (result), error);
}

static void
dispatch_body_stream_class_init (DispatchBodyStreamClass *klass)
{
  GInputStreamClass *stream_class = G_INPUT_STREAM_CLASS (klass);

  stream_class->read_fn = dispatch_body_stream_read;
  stream_class->read_async = dispatch_body_stream_read_async;
  stream_class->read_finish = dispatch_body_stream_read_finish;
}

static void
dispatch_body_stream_init (DispatchBodyStream *self)
{
}

GInputStream *
_dispatch_body_stream_new (GInputStream *base,
                           gint64        length)
{
  DispatchBodyStream *self;

  g_return_val_if_fail (G_IS_INPUT_STREAM (base), NULL);
  g_return_val_if_fail (length >= 0, NULL);

  self = g_object_new (DISPATCH_TYPE_BODY_STREAM,
                       "base-stream", base,
                       "close-base-stream", TRUE,
                       NULL);
  self->length = length;

  return G_INPUT_STREAM (self);
}
