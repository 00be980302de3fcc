/* dispatch-deadlines-private.h — one timer source per main context
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _DispatchDeadlines DispatchDeadlines;

typedef void (*DispatchDeadlineFunc) (gpointer data);

/* A deadline, embedded in its owner. Not queued while index is
 * DISPATCH_DEADLINE_IDLE. */
typedef struct
{
  gint64               when;   /* monotonic µs */
  guint                index;  /* in the queue's heap */
  DispatchDeadlineFunc func;
  gpointer             data;
} DispatchDeadline;

#define DISPATCH_DEADLINE_IDLE G_MAXUINT

#define DISPATCH_DEADLINE_INIT(f, d) ((DispatchDeadline) { 0, DISPATCH_DEADLINE_IDLE, (f), (d) })

/* Queued, to fire at deadline->when. Taken out before its func runs. */
static inline gboolean
_dispatch_deadline_is_queued (const DispatchDeadline *deadline)
{
  return deadline->index != DISPATCH_DEADLINE_IDLE;
}

DispatchDeadlines *_dispatch_deadlines_ref_for_context (GMainContext      *context);
void               _dispatch_deadlines_unref           (DispatchDeadlines *self);
void               _dispatch_deadlines_set             (DispatchDeadlines *self,
                                                        DispatchDeadline  *deadline,
                                                        gint64             when);
void               _dispatch_deadlines_remove          (DispatchDeadlines *self,
                                                        DispatchDeadline  *deadline);

G_END_DECLS
