/* fuzz-common.h — shared pieces of the libFuzzer targets
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Every target defines LLVMFuzzerInitialize() and LLVMFuzzerTestOneInput().
 * The same source is linked either with libFuzzer (-fsanitize=fuzzer, the
 * fuzzer build) or with fuzz-replay.c (every build: a GTest program that
 * feeds each corpus file to LLVMFuzzerTestOneInput()).
 *
 * A target reports a bug by aborting: a failed invariant (fuzz_check) or
 * any WARNING, CRITICAL or ERROR log message (fuzz_install_log_guards). Both
 * print what went wrong first; abort() is what libFuzzer turns into a crash
 * artifact (GLib's own fatal-log path raises SIGTRAP, which it does not).
 */

#pragma once

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib.h>

G_BEGIN_DECLS

int LLVMFuzzerInitialize   (int           *argc,
                            char        ***argv);
int LLVMFuzzerTestOneInput (const guint8  *data,
                            size_t         size);

#define FUZZ_FATAL_LEVELS \
  (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING)

G_GNUC_NORETURN G_GNUC_PRINTF (3, 4) static inline void
fuzz_fail (const char *file,
           int         line,
           const char *format,
           ...)
{
  va_list args;

  fprintf (stderr, "\n*** fuzz invariant failed at %s:%d: ", file, line);
  va_start (args, format);
  vfprintf (stderr, format, args);
  va_end (args);
  fprintf (stderr, "\n");
  fflush (stderr);
  abort ();
}

/* An invariant of the code under test; aborts with the condition text. */
#define fuzz_check(cond) \
  G_STMT_START { \
    if G_UNLIKELY (!(cond)) \
      fuzz_fail (__FILE__, __LINE__, "%s", #cond); \
  } G_STMT_END

/* Same, with a printf-style explanation. */
#define fuzz_checkf(cond, ...) \
  G_STMT_START { \
    if G_UNLIKELY (!(cond)) \
      fuzz_fail (__FILE__, __LINE__, __VA_ARGS__); \
  } G_STMT_END

static inline void
fuzz_log_handler (const char     *log_domain,
                  GLogLevelFlags  log_level,
                  const char     *message,
                  gpointer        user_data)
{
  if ((log_level & FUZZ_FATAL_LEVELS) == 0)
    return;

  fprintf (stderr, "\n*** fuzz: unexpected log message (level 0x%x) from %s: %s\n",
           (unsigned) log_level, log_domain ? log_domain : "(no domain)", message);
  fflush (stderr);
  abort ();
}

static inline GLogWriterOutput
fuzz_log_writer (GLogLevelFlags   log_level,
                 const GLogField *fields,
                 gsize            n_fields,
                 gpointer         user_data)
{
  const char *domain = NULL;
  const char *message = NULL;

  if ((log_level & FUZZ_FATAL_LEVELS) == 0)
    return G_LOG_WRITER_HANDLED;

  for (gsize i = 0; i < n_fields; i++)
    {
      if (g_strcmp0 (fields[i].key, "GLIB_DOMAIN") == 0 && fields[i].length < 0)
        domain = fields[i].value;
      else if (g_strcmp0 (fields[i].key, "MESSAGE") == 0 && fields[i].length < 0)
        message = fields[i].value;
    }

  fuzz_log_handler (domain, log_level, message ? message : "(no message)", NULL);
  return G_LOG_WRITER_HANDLED;
}

/* Any WARNING, CRITICAL or ERROR, through g_log() or structured logging,
 * aborts the process; everything else is dropped (fuzzing is noisy
 * enough). Call once, from LLVMFuzzerInitialize(). */
static inline void
fuzz_install_log_guards (void)
{
  static gboolean installed;

  if (installed)
    return;
  installed = TRUE;

  /* Plain malloc, so ASan sees every GSlice allocation (GLib 2.74 still
   * has the magazine allocator). Must happen before GSlice's first use. */
  g_setenv ("G_SLICE", "always-malloc", TRUE);
  g_setenv ("G_DEBUG", "gc-friendly", TRUE);

  g_log_set_default_handler (fuzz_log_handler, NULL);
  g_log_set_writer_func (fuzz_log_writer, NULL, NULL);
}

/* Reads the input as a sequence of values. Past the end every read gives
 * zeros / empty strings, so a program never runs off its input. */
typedef struct
{
  const guint8 *data;
  gsize         size;
  gsize         pos;
} FuzzReader;

static inline gboolean
fuzz_reader_done (const FuzzReader *reader)
{
  return reader->pos >= reader->size;
}

static inline guint8
fuzz_reader_byte (FuzzReader *reader)
{
  if (reader->pos >= reader->size)
    return 0;

  return reader->data[reader->pos++];
}

/* Up to max_len raw bytes (may contain NUL), as a NUL-terminated copy;
 * *out_len receives the number of bytes taken. */
static inline char *
fuzz_reader_bytes (FuzzReader *reader,
                   gsize       len,
                   gsize      *out_len)
{
  char *copy;

  len = MIN (len, reader->size - MIN (reader->pos, reader->size));
  copy = g_malloc (len + 1);
  if (len > 0)
    memcpy (copy, reader->data + reader->pos, len);
  copy[len] = '\0';
  reader->pos += len;

  if (out_len != NULL)
    *out_len = len;

  return copy;
}

G_END_DECLS
