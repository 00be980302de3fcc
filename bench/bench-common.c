/* bench-common.c — command line, clocks, memory and socket statistics
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 */

#include "bench-common.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

/* TCP_ESTABLISHED of the kernel's socket state enum. */
#define BENCH_TCP_ESTABLISHED 1

static const struct
{
  const char *name;
  BenchMode   mode;
  long        default_requests;
} modes[] = {
  { "small", BENCH_MODE_SMALL, 20000 },
  { "stream", BENCH_MODE_STREAM, 1 },
  { "pause", BENCH_MODE_PAUSE, 1 },
  { "resume-latency", BENCH_MODE_RESUME_LATENCY, 200 },
  { "abort-latency", BENCH_MODE_ABORT_LATENCY, 20 },
  { "many-paused", BENCH_MODE_MANY_PAUSED, 1000 },
};

static void
usage (const char *program,
       int         status)
{
  fprintf (status == 0 ? stdout : stderr,
           "Usage: %s --url http://127.0.0.1:PORT/PATH --mode MODE [OPTION…]\n"
           "\n"
           "Modes: small, stream, pause, resume-latency, abort-latency, many-paused\n"
           "\n"
           "  --requests N      small: GETs measured (20000); resume-latency: cycles (200);\n"
           "                    abort-latency: samples (20); many-paused: downloads (1000)\n"
           "  --concurrency C   small: requests in flight (1)\n"
           "  --connections P   connections per origin (small: C; many-paused: N; else 1)\n"
           "  --warmup W        small: unmeasured GETs first (max (2 C, 200))\n"
           "  --pause-s S       pause: seconds paused (5)\n"
           "  --pause-after B   pause, abort-latency: bytes delivered first (1 MiB)\n"
           "  --head-bytes B    size of the response head (0)\n"
           "  --buffer-size B   curl: CURLOPT_BUFFERSIZE (512 KiB for downloads)\n"
           "  --contract-costs 0|1\n"
           "                    bench-soup only: also pay what libdispatch-gobject's\n"
           "                    contract costs outside its own code (0)\n"
           "  --timeout-s S     give up after S seconds (120)\n"
           "\n"
           "Prints one JSON line.\n",
           program);
  exit (status);
}

static long
parse_long (const char *program,
            const char *option,
            const char *value)
{
  char *end = NULL;
  long v;

  errno = 0;
  v = strtol (value, &end, 10);
  if (errno != 0 || end == value || *end != '\0' || v < 0)
    {
      fprintf (stderr, "%s: %s wants a non-negative integer, not “%s”\n", program, option, value);
      exit (2);
    }
  return v;
}

static double
parse_double (const char *program,
              const char *option,
              const char *value)
{
  char *end = NULL;
  double v = strtod (value, &end);

  if (end == value || *end != '\0' || v < 0)
    {
      fprintf (stderr, "%s: %s wants a non-negative number, not “%s”\n", program, option, value);
      exit (2);
    }
  return v;
}

static void
split_url (const char *program,
           BenchArgs  *args)
{
  const char *p = args->url;
  const char *host;
  const char *slash;
  const char *colon;

  if (strncmp (p, "http://", 7) != 0)
    goto bad;
  host = p + 7;
  slash = strchr (host, '/');
  if (slash == NULL)
    slash = host + strlen (host);
  if ((size_t) (slash - p) >= sizeof args->origin || strlen (slash) >= sizeof args->path)
    goto bad;

  memcpy (args->origin, p, slash - p);
  args->origin[slash - p] = '\0';
  snprintf (args->path, sizeof args->path, "%s", *slash ? slash : "/");

  colon = memchr (host, ':', slash - host);
  args->port = colon ? atoi (colon + 1) : 80;
  if (args->port <= 0 || args->port > 65535)
    goto bad;
  return;

bad:
  fprintf (stderr, "%s: --url wants http://HOST:PORT/PATH, not “%s”\n", program, args->url);
  exit (2);
}

void
bench_parse_args (int          argc,
                  char       **argv,
                  BenchArgs   *args,
                  const char  *program)
{
  const char *mode = NULL;
  long requests = -1;
  long concurrency = -1;
  long connections = -1;

  memset (args, 0, sizeof *args);
  args->warmup = -1;
  args->pause_s = 5;
  args->pause_after = BENCH_MIB;
  args->timeout_s = 120;

  for (int i = 1; i < argc; i++)
    {
      const char *opt = argv[i];
      const char *val;

      if (strcmp (opt, "--help") == 0 || strcmp (opt, "-h") == 0)
        usage (program, 0);
      if (i + 1 >= argc)
        {
          fprintf (stderr, "%s: %s wants a value\n", program, opt);
          usage (program, 2);
        }
      val = argv[++i];

      if (strcmp (opt, "--url") == 0)
        args->url = val;
      else if (strcmp (opt, "--mode") == 0)
        mode = val;
      else if (strcmp (opt, "--requests") == 0)
        requests = parse_long (program, opt, val);
      else if (strcmp (opt, "--concurrency") == 0)
        concurrency = parse_long (program, opt, val);
      else if (strcmp (opt, "--connections") == 0)
        connections = parse_long (program, opt, val);
      else if (strcmp (opt, "--warmup") == 0)
        args->warmup = parse_long (program, opt, val);
      else if (strcmp (opt, "--pause-s") == 0)
        args->pause_s = parse_double (program, opt, val);
      else if (strcmp (opt, "--pause-after") == 0)
        args->pause_after = parse_long (program, opt, val);
      else if (strcmp (opt, "--head-bytes") == 0)
        args->head_bytes = parse_long (program, opt, val);
      else if (strcmp (opt, "--buffer-size") == 0)
        args->buffer_size = parse_long (program, opt, val);
      else if (strcmp (opt, "--timeout-s") == 0)
        args->timeout_s = parse_double (program, opt, val);
      else if (strcmp (opt, "--contract-costs") == 0)
        {
          if (strcmp (program, "bench-soup") != 0)
            {
              fprintf (stderr, "%s: only bench-soup takes %s\n", program, opt);
              exit (2);
            }
          if (strcmp (val, "0") != 0 && strcmp (val, "1") != 0)
            {
              fprintf (stderr, "%s: %s wants 0 or 1, not “%s”\n", program, opt, val);
              exit (2);
            }
          args->contract_costs = val[0] == '1';
        }
      else
        {
          fprintf (stderr, "%s: unknown option %s\n", program, opt);
          usage (program, 2);
        }
    }

  if (args->url == NULL || mode == NULL)
    usage (program, 2);
  split_url (program, args);

  for (size_t i = 0; i < sizeof modes / sizeof modes[0]; i++)
    if (strcmp (mode, modes[i].name) == 0)
      {
        args->mode = modes[i].mode;
        args->mode_name = modes[i].name;
        if (requests < 0)
          requests = modes[i].default_requests;
      }
  if (args->mode_name == NULL)
    {
      fprintf (stderr, "%s: unknown mode “%s”\n", program, mode);
      usage (program, 2);
    }

  if (requests < 1)
    requests = 1;
  args->requests = requests;

  if (args->mode == BENCH_MODE_MANY_PAUSED)
    concurrency = requests;
  else if (args->mode != BENCH_MODE_SMALL || concurrency < 1)
    concurrency = 1;
  if (concurrency > requests)
    concurrency = requests;
  args->concurrency = (int) concurrency;

  if (connections < 1)
    connections = args->concurrency;
  args->connections = (int) connections;

  if (args->warmup < 0)
    args->warmup = args->concurrency * 2 > 200 ? args->concurrency * 2 : 200;
}

int64_t
bench_now_us (void)
{
  struct timespec ts;

  clock_gettime (CLOCK_MONOTONIC, &ts);
  return (int64_t) ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

double
bench_cpu_s (void)
{
  struct rusage ru;

  getrusage (RUSAGE_SELF, &ru);
  return (double) ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
         (double) ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static long
proc_status_kib (const char *field)
{
  FILE *f = fopen ("/proc/self/status", "re");
  size_t len = strlen (field);
  char line[256];
  long value = -1;

  if (f == NULL)
    return -1;
  while (fgets (line, sizeof line, f) != NULL)
    if (strncmp (line, field, len) == 0 && line[len] == ':')
      {
        value = strtol (line + len + 1, NULL, 10);
        break;
      }
  fclose (f);

  return value;
}

long
bench_rss_kib (void)
{
  return proc_status_kib ("VmRSS");
}

long
bench_hwm_kib (void)
{
  return proc_status_kib ("VmHWM");
}

static int
compare_doubles (const void *a,
                 const void *b)
{
  double x = *(const double *) a;
  double y = *(const double *) b;

  return (x > y) - (x < y);
}

double
bench_percentile (double *values,
                  size_t  n,
                  double  p)
{
  size_t rank;

  if (n == 0)
    return -1;

  qsort (values, n, sizeof *values, compare_doubles);
  rank = (size_t) (p / 100.0 * n + 0.999999);
  if (rank < 1)
    rank = 1;
  if (rank > n)
    rank = n;

  return values[rank - 1];
}

int
bench_sockstat (int            port,
                BenchSockStat *out)
{
  struct
  {
    struct nlmsghdr         nlh;
    struct inet_diag_req_v2 req;
  } request;
  struct sockaddr_nl kernel = { .nl_family = AF_NETLINK };
  static char buf[64 * 1024];
  int fd;
  int done = 0;
  int status = -1;

  memset (out, 0, sizeof *out);

  fd = socket (AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);
  if (fd < 0)
    return -1;

  memset (&request, 0, sizeof request);
  request.nlh.nlmsg_len = sizeof request;
  request.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
  request.nlh.nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP;
  request.req.sdiag_family = AF_INET;
  request.req.sdiag_protocol = IPPROTO_TCP;
  request.req.idiag_states = 1 << BENCH_TCP_ESTABLISHED;
  request.req.idiag_ext = 1 << (INET_DIAG_INFO - 1);

  if (sendto (fd, &request, sizeof request, 0, (struct sockaddr *) &kernel, sizeof kernel) < 0)
    goto out;

  while (!done)
    {
      ssize_t n = recv (fd, buf, sizeof buf, 0);
      struct nlmsghdr *h;

      if (n < 0 && errno == EINTR)
        continue;
      if (n <= 0)
        goto out;

      for (h = (struct nlmsghdr *) buf; NLMSG_OK (h, (size_t) n); h = NLMSG_NEXT (h, n))
        {
          struct inet_diag_msg *msg;
          struct rtattr *attr;
          struct tcp_info info;
          int attr_len;
          int sport;
          int dport;

          if (h->nlmsg_type == NLMSG_DONE)
            {
              done = 1;
              break;
            }
          if (h->nlmsg_type == NLMSG_ERROR)
            goto out;

          msg = NLMSG_DATA (h);
          sport = ntohs (msg->id.idiag_sport);
          dport = ntohs (msg->id.idiag_dport);
          if (sport != port && dport != port)
            continue;

          memset (&info, 0, sizeof info);
          attr = (struct rtattr *) (msg + 1);
          attr_len = (int) h->nlmsg_len - NLMSG_LENGTH (sizeof *msg);
          for (; RTA_OK (attr, attr_len); attr = RTA_NEXT (attr, attr_len))
            if (attr->rta_type == INET_DIAG_INFO)
              {
                size_t len = RTA_PAYLOAD (attr);

                memcpy (&info, RTA_DATA (attr), len < sizeof info ? len : sizeof info);
              }

          if (dport == port)
            {
              out->n_client++;
              out->client_bytes_received += info.tcpi_bytes_received;
              out->client_recv_queue += msg->idiag_rqueue;
            }
          else
            {
              out->n_server++;
              out->server_bytes_acked += info.tcpi_bytes_acked;
              out->server_send_queue += msg->idiag_wqueue;
            }
        }
    }
  status = 0;

out:
  close (fd);
  return status;
}

uint64_t
bench_sockstat_read (const BenchSockStat *stat)
{
  return stat->client_bytes_received - stat->client_recv_queue;
}

void
bench_fail (const BenchArgs *args,
            const char      *contender,
            const char      *message)
{
  printf ("{\"contender\": \"%s\", \"mode\": \"%s\", \"error\": \"", contender,
          args && args->mode_name ? args->mode_name : "?");
  for (const char *p = message; *p; p++)
    {
      if (*p == '"' || *p == '\\')
        printf ("\\%c", *p);
      else if ((unsigned char) *p < 0x20)
        printf ("\\u%04x", *p);
      else
        putchar (*p);
    }
  printf ("\"}\n");
  fflush (stdout);
  exit (1);
}

void
bench_report_small (const BenchArgs *args,
                    const char      *contender,
                    long             failed,
                    double           seconds,
                    double           cpu_s,
                    uint64_t         bytes,
                    const char      *first_error)
{
  int has_error = first_error != NULL && first_error[0] != '\0';

  printf ("{\"contender\": \"%s\", \"mode\": \"small\", \"requests\": %ld, "
          "\"concurrency\": %d, \"connections\": %d, \"errors\": %ld, \"seconds\": %.4f, "
          "\"rps\": %.1f, \"cpu_s\": %.4f, \"cpu_ms_per_1000\": %.2f, "
          "\"bytes\": %" PRIu64 "%s%s%s}\n",
          contender, args->requests, args->concurrency, args->connections,
          failed, seconds, args->requests / seconds, cpu_s,
          cpu_s * 1e6 / args->requests, bytes,
          has_error ? ", \"first_error\": \"" : "", has_error ? first_error : "",
          has_error ? "\"" : "");
}

void
bench_report_stream (const BenchArgs *args,
                     const char      *contender,
                     uint64_t         bytes,
                     double           seconds,
                     double           cpu_s)
{
  (void) args;
  printf ("{\"contender\": \"%s\", \"mode\": \"stream\", \"bytes\": %" PRIu64
          ", \"seconds\": %.4f, \"mb_per_s\": %.1f, \"peak_rss_kib\": %ld, "
          "\"cpu_s\": %.4f}\n",
          contender, bytes, seconds, bytes / 1e6 / seconds, bench_hwm_kib (), cpu_s);
}

void
bench_report_pause (const BenchArgs     *args,
                    const char          *contender,
                    uint64_t             delivered_at_pause,
                    uint64_t             delivered_end,
                    const BenchSockStat *stat_at_pause,
                    const BenchSockStat *stat_end,
                    long                 rss_at_pause_kib,
                    long                 rss_end_kib,
                    int                  resumed)
{
  uint64_t read0 = bench_sockstat_read (stat_at_pause) - args->head_bytes;
  uint64_t read1 = bench_sockstat_read (stat_end) - args->head_bytes;

  printf ("{\"contender\": \"%s\", \"mode\": \"pause\", \"pause_s\": %.1f, "
          "\"delivered_at_pause\": %" PRIu64 ", "
          "\"delivered_during_pause\": %" PRId64 ", "
          "\"read_at_pause\": %" PRIu64 ", "
          "\"held_at_pause\": %" PRId64 ", \"held_end\": %" PRId64 ", "
          "\"server_sent_during_pause\": %" PRId64 ", "
          "\"kernel_buffered_end\": %" PRIu64 ", "
          "\"rss_at_pause_kib\": %ld, \"rss_growth_kib\": %ld, \"connections_seen\": %d, "
          "\"resumed\": %s}\n",
          contender, args->pause_s, delivered_at_pause,
          (int64_t) (delivered_end - delivered_at_pause), read0,
          (int64_t) (read0 - delivered_at_pause),
          (int64_t) (read1 - delivered_end),
          (int64_t) (stat_end->server_bytes_acked - stat_at_pause->server_bytes_acked),
          stat_end->client_recv_queue + stat_end->server_send_queue,
          rss_at_pause_kib, rss_end_kib - rss_at_pause_kib,
          stat_at_pause->n_client, resumed ? "true" : "false");
}

void
bench_report_latency (const BenchArgs *args,
                      const char      *contender,
                      double          *samples,
                      long             n_samples,
                      long             n_closed)
{
  double p50 = bench_percentile (samples, n_samples, 50);
  double p99 = bench_percentile (samples, n_samples, 99);
  double max = bench_percentile (samples, n_samples, 100);

  printf ("{\"contender\": \"%s\", \"mode\": \"%s\", \"samples\": %ld, "
          "\"p50_us\": %.1f, \"p99_us\": %.1f, \"max_us\": %.1f",
          contender, args->mode_name, n_samples, p50, p99, max);
  if (args->mode != BENCH_MODE_RESUME_LATENCY)
    printf (", \"closed\": %ld", n_closed);
  printf ("}\n");
}

void
bench_report_many_paused (const BenchArgs *args,
                          const char      *contender,
                          long             rss_before_kib,
                          uint64_t         delivered_total,
                          uint64_t         warmup_bytes)
{
  BenchSockStat stat = { 0 };
  long rss_after;
  int64_t held;

  rss_after = bench_rss_kib ();
  bench_sockstat (args->port, &stat);
  /* what the client read minus what reached the handlers: the
   * warm-up's response came over one of these connections too */
  held = (int64_t) bench_sockstat_read (&stat)
         - (int64_t) args->head_bytes * (args->requests + 1)
         - (int64_t) warmup_bytes - (int64_t) delivered_total;
  printf ("{\"contender\": \"%s\", \"mode\": \"many-paused\", \"requests\": %ld, "
          "\"rss_before_kib\": %ld, \"rss_after_kib\": %ld, \"bytes_per_request\": %.0f, "
          "\"delivered_per_request\": %.0f, \"held_per_request\": %.0f, "
          "\"connections_seen\": %d}\n",
          contender, args->requests, rss_before_kib, rss_after,
          (rss_after - rss_before_kib) * 1024.0 / args->requests,
          (double) delivered_total / args->requests,
          (double) held / args->requests, stat.n_client);
}
