/* tsan-glib-shim.c — tells ThreadSanitizer about GLib's synchronisation
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * LD_PRELOAD this into a -fsanitize=thread test binary. GLib is not built
 * with TSan, and on Linux GMutex/GCond/GRecMutex are futex-based inside
 * libglib (not pthread), so TSan sees none of their happens-before edges
 * and reports every access guarded by them. These wrappers add the edges
 * with __tsan_acquire/__tsan_release around the real calls. They catch the
 * calls made from the test binary (the library is linked in statically),
 * libgobject, libgio and libsoup; libglib's calls to itself are bound
 * directly and stay invisible.
 *
 * g_object_unref: the thread that drops the last reference frees the
 * object inside uninstrumented code; an acquire before it (after every
 * other thread's release) gives TSan the edge GObject's atomic refcount
 * provides.
 */

#define _GNU_SOURCE 1
#include <dlfcn.h>
#include <glib.h>
#include <glib-object.h>
#include <sanitizer/tsan_interface.h>

#define REAL(name) \
  static __typeof__ (name) *real_##name; \
  if (real_##name == NULL) \
    real_##name = (__typeof__ (name) *) dlsym (RTLD_NEXT, #name)

void
g_mutex_lock (GMutex *mutex)
{
  REAL (g_mutex_lock);
  real_g_mutex_lock (mutex);
  __tsan_acquire (mutex);
}

void
g_mutex_unlock (GMutex *mutex)
{
  REAL (g_mutex_unlock);
  __tsan_release (mutex);
  real_g_mutex_unlock (mutex);
}

gboolean
g_mutex_trylock (GMutex *mutex)
{
  REAL (g_mutex_trylock);
  if (!real_g_mutex_trylock (mutex))
    return FALSE;
  __tsan_acquire (mutex);
  return TRUE;
}

void
g_rec_mutex_lock (GRecMutex *mutex)
{
  REAL (g_rec_mutex_lock);
  real_g_rec_mutex_lock (mutex);
  __tsan_acquire (mutex);
}

void
g_rec_mutex_unlock (GRecMutex *mutex)
{
  REAL (g_rec_mutex_unlock);
  __tsan_release (mutex);
  real_g_rec_mutex_unlock (mutex);
}

gboolean
g_rec_mutex_trylock (GRecMutex *mutex)
{
  REAL (g_rec_mutex_trylock);
  if (!real_g_rec_mutex_trylock (mutex))
    return FALSE;
  __tsan_acquire (mutex);
  return TRUE;
}

void
g_rw_lock_writer_lock (GRWLock *lock)
{
  REAL (g_rw_lock_writer_lock);
  real_g_rw_lock_writer_lock (lock);
  __tsan_acquire (lock);
}

void
g_rw_lock_writer_unlock (GRWLock *lock)
{
  REAL (g_rw_lock_writer_unlock);
  __tsan_release (lock);
  real_g_rw_lock_writer_unlock (lock);
}

void
g_rw_lock_reader_lock (GRWLock *lock)
{
  REAL (g_rw_lock_reader_lock);
  real_g_rw_lock_reader_lock (lock);
  __tsan_acquire (lock);
}

void
g_rw_lock_reader_unlock (GRWLock *lock)
{
  REAL (g_rw_lock_reader_unlock);
  __tsan_release (lock);
  real_g_rw_lock_reader_unlock (lock);
}

void
g_cond_wait (GCond  *cond,
             GMutex *mutex)
{
  REAL (g_cond_wait);
  __tsan_release (mutex);
  real_g_cond_wait (cond, mutex);
  __tsan_acquire (mutex);
}

gboolean
g_cond_wait_until (GCond  *cond,
                   GMutex *mutex,
                   gint64  end_time)
{
  gboolean ret;

  REAL (g_cond_wait_until);
  __tsan_release (mutex);
  ret = real_g_cond_wait_until (cond, mutex, end_time);
  __tsan_acquire (mutex);
  return ret;
}

void
g_object_unref (gpointer object)
{
  REAL (g_object_unref);
  __tsan_release (object);
  __tsan_acquire (object);
  real_g_object_unref (object);
}

/* GAsyncQueue: push and pop hand data over under libglib's own mutex. */
void
g_async_queue_push (GAsyncQueue *queue,
                    gpointer     data)
{
  REAL (g_async_queue_push);
  __tsan_release (queue);
  real_g_async_queue_push (queue, data);
}

gpointer
g_async_queue_pop (GAsyncQueue *queue)
{
  gpointer data;

  REAL (g_async_queue_pop);
  data = real_g_async_queue_pop (queue);
  __tsan_acquire (queue);
  return data;
}

gpointer
g_async_queue_timeout_pop (GAsyncQueue *queue,
                           guint64      timeout)
{
  gpointer data;

  REAL (g_async_queue_timeout_pop);
  data = real_g_async_queue_timeout_pop (queue, timeout);
  __tsan_acquire (queue);
  return data;
}

gpointer
g_async_queue_try_pop (GAsyncQueue *queue)
{
  gpointer data;

  REAL (g_async_queue_try_pop);
  data = real_g_async_queue_try_pop (queue);
  __tsan_acquire (queue);
  return data;
}
