/* fuzz-replay.c — runs a fuzz target over its corpus as a GTest program
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Linked with one fuzz-*.c instead of libFuzzer, in every build, so the
 * seed corpus and every crash reproducer stay regression tests even where
 * there is no clang. One test case per corpus file:
 * /fuzz/<target>/replay/<file name>.
 *
 *   fuzz-request-replay                 the corpus built in (FUZZ_CORPUS_DIR)
 *   fuzz-request-replay FILE-OR-DIR...  those files instead (e.g. a crash)
 *
 * An input that breaks an invariant aborts the program (see fuzz-common.h);
 * the TAP output names the file that did it.
 */

#include <string.h>

#include <glib.h>
#include <glib/gstdio.h>

#include "fuzz-common.h"

#ifndef FUZZ_TARGET_NAME
# error "FUZZ_TARGET_NAME must be defined"
#endif
#ifndef FUZZ_CORPUS_DIR
# error "FUZZ_CORPUS_DIR must be defined"
#endif

static void
replay_file (gconstpointer data)
{
  const char *path = data;
  g_autoptr(GError) error = NULL;
  g_autofree char *contents = NULL;
  gsize length = 0;
  int ret;

  g_test_summary ("Replays one corpus file through the fuzz target: it must "
                  "not crash, leak under ASan, log a warning or break an "
                  "invariant of the code under test.");

  g_file_get_contents (path, &contents, &length, &error);
  g_assert_no_error (error);

  g_test_message ("replaying %s (%" G_GSIZE_FORMAT " bytes)", path, length);

  /* libFuzzer hands the target a buffer of exactly `length` bytes; a
   * copy of that size lets ASan catch reads past the end here too. */
  {
    guint8 *exact = g_memdup2 (contents, length);

    ret = LLVMFuzzerTestOneInput (exact, length);
    g_free (exact);
  }

  g_assert_cmpint (ret, ==, 0);
}

static void
add_file (GPtrArray  *paths,
          const char *path)
{
  g_ptr_array_add (paths, g_strdup (path));
}

static int
compare_names (gconstpointer a,
               gconstpointer b)
{
  return strcmp (*(const char * const *) a, *(const char * const *) b);
}

static void
add_path (GPtrArray  *paths,
          const char *path)
{
  g_autoptr(GError) error = NULL;
  g_autoptr(GPtrArray) names = NULL;
  GDir *dir;
  const char *name;

  if (!g_file_test (path, G_FILE_TEST_IS_DIR))
    {
      add_file (paths, path);
      return;
    }

  dir = g_dir_open (path, 0, &error);
  g_assert_no_error (error);

  names = g_ptr_array_new_with_free_func (g_free);
  while ((name = g_dir_read_name (dir)) != NULL)
    if (name[0] != '.')
      g_ptr_array_add (names, g_strdup (name));
  g_dir_close (dir);

  /* a stable order, whatever the file system's */
  g_ptr_array_sort (names, compare_names);

  for (guint i = 0; i < names->len; i++)
    {
      g_autofree char *file = g_build_filename (path, g_ptr_array_index (names, i), NULL);

      add_file (paths, file);
    }
}

int
main (int    argc,
      char **argv)
{
  g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func (g_free);

  g_test_init (&argc, &argv, NULL);
  LLVMFuzzerInitialize (&argc, &argv);

  /* what g_test_init() left are our arguments */
  for (int i = 1; i < argc; i++)
    add_path (paths, argv[i]);
  if (paths->len == 0)
    add_path (paths, FUZZ_CORPUS_DIR);

  g_assert_cmpuint (paths->len, >, 0);

  for (guint i = 0; i < paths->len; i++)
    {
      const char *path = g_ptr_array_index (paths, i);
      g_autofree char *base = g_path_get_basename (path);
      g_autofree char *test_path = NULL;

      test_path = g_strdup_printf ("/fuzz/%s/replay/%s", FUZZ_TARGET_NAME, base);
      g_test_add_data_func (test_path, path, replay_file);
    }

  return g_test_run ();
}
