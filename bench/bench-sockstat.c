/* bench-sockstat.c — the sock_diag view of a server port, for bench-undici.mjs
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Usage: bench-sockstat PORT
 * Prints one JSON object: the established TCP sockets connected to PORT
 * ("client") and bound to it ("server"), with their byte counters and
 * queues (see bench_sockstat()).
 */

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "bench-common.h"

int
main (int    argc,
      char **argv)
{
  BenchSockStat stat;
  int port;

  if (argc != 2 || (port = atoi (argv[1])) <= 0 || port > 65535)
    {
      fprintf (stderr, "Usage: %s PORT\n", argv[0]);
      return 2;
    }

  if (bench_sockstat (port, &stat) < 0)
    {
      perror ("sock_diag");
      return 1;
    }

  printf ("{\"n_client\": %d, \"n_server\": %d, \"client_bytes_received\": %" PRIu64
          ", \"client_recv_queue\": %" PRIu64 ", \"client_read\": %" PRIu64
          ", \"server_bytes_acked\": %" PRIu64 ", \"server_send_queue\": %" PRIu64 "}\n",
          stat.n_client, stat.n_server, stat.client_bytes_received, stat.client_recv_queue,
          bench_sockstat_read (&stat), stat.server_bytes_acked, stat.server_send_queue);

  return 0;
}
