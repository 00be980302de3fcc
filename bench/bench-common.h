/* bench-common.h — what every C contender of bench/run shares
 *
 * SPDX-License-Identifier: LGPL-2.1-or-later
 *
 * Plain C (no GLib), so that the libcurl contender does not pay for a
 * library it does not use.
 */

#pragma once

#include <stddef.h>
#include <stdint.h>

#define BENCH_KIB 1024
#define BENCH_MIB (1024 * 1024)

typedef enum
{
  BENCH_MODE_SMALL,
  BENCH_MODE_STREAM,
  BENCH_MODE_PAUSE,
  BENCH_MODE_RESUME_LATENCY,
  BENCH_MODE_ABORT_LATENCY,
  BENCH_MODE_MANY_PAUSED,
} BenchMode;

typedef struct
{
  /* --url http://127.0.0.1:PORT/path, split */
  const char *url;
  char        origin[128];
  char        path[256];
  int         port;

  BenchMode   mode;
  const char *mode_name;

  long        requests;      /* small: measured GETs; resume-latency: cycles;
                              * abort-latency: samples; many-paused: downloads */
  int         concurrency;   /* small: requests in flight */
  int         connections;   /* per-origin pool size */
  long        warmup;        /* small: unmeasured GETs first (-1 = auto) */
  double      pause_s;       /* pause: how long to stay paused */
  long        pause_after;   /* pause, abort-latency: bytes before acting */
  long        head_bytes;    /* size of the response head, for held bytes */
  long        buffer_size;   /* curl: CURLOPT_BUFFERSIZE (0 = mode default) */
  int         contract_costs; /* bench-soup: pay what the library's contract
                               * costs outside its own code (see bench-soup.c) */
  double      timeout_s;     /* whole run; the program gives up after it */
} BenchArgs;

/* Parses the common command line; exits with status 2 on a bad one. */
void     bench_parse_args    (int          argc,
                              char       **argv,
                              BenchArgs   *args,
                              const char  *program);

int64_t  bench_now_us        (void);
double   bench_cpu_s         (void);  /* user + system, all threads */
long     bench_rss_kib       (void);  /* VmRSS */
long     bench_hwm_kib       (void);  /* VmHWM, the peak */

/* Sorts @values and returns the @p-th percentile (0..100), nearest rank. */
double   bench_percentile    (double      *values,
                              size_t       n,
                              double       p);

/* TCP sockets on 127.0.0.1 of a server port, read with sock_diag
 * (the same kernel view `ss -ti` prints). "client" sockets are those
 * connected to @port, "server" sockets those bound to it. Counts only
 * ESTABLISHED ones. */
typedef struct
{
  int      n_client;
  int      n_server;
  uint64_t client_bytes_received;  /* Σ tcpi_bytes_received */
  uint64_t client_recv_queue;      /* Σ Recv-Q: received, not yet read */
  uint64_t server_bytes_acked;     /* Σ tcpi_bytes_acked */
  uint64_t server_send_queue;      /* Σ Send-Q: written, not yet acked */
} BenchSockStat;

int      bench_sockstat      (int            port,
                              BenchSockStat *out);

/* Bytes the client process has read(2) from its sockets to @port:
 * received by the kernel minus still queued. */
uint64_t bench_sockstat_read (const BenchSockStat *stat);

/* The result lines, one JSON object on stdout per run: bench/run keeps
 * the last line starting with `{` and bench/report.py reads the keys.
 * Every C contender prints them through these, so that the keys, their
 * order and their formats stay the same for all. */

/* small: @cpu_s is the CPU time of the measured part; @first_error is
 * NULL or "" when every request succeeded. */
void     bench_report_small       (const BenchArgs *args,
                                   const char      *contender,
                                   long             failed,
                                   double           seconds,
                                   double           cpu_s,
                                   uint64_t         bytes,
                                   const char      *first_error);

/* stream: peak_rss_kib is read here (VmHWM). */
void     bench_report_stream      (const BenchArgs *args,
                                   const char      *contender,
                                   uint64_t         bytes,
                                   double           seconds,
                                   double           cpu_s);

/* pause: what reached the handler and the sockets at the pause and at
 * the end (args->head_bytes is taken off what the client read). */
void     bench_report_pause       (const BenchArgs     *args,
                                   const char          *contender,
                                   uint64_t             delivered_at_pause,
                                   uint64_t             delivered_end,
                                   const BenchSockStat *stat_at_pause,
                                   const BenchSockStat *stat_end,
                                   long                 rss_at_pause_kib,
                                   long                 rss_end_kib,
                                   int                  resumed);

/* resume-latency, abort-latency: sorts @samples (µs); "closed" only for
 * abort-latency. */
void     bench_report_latency     (const BenchArgs *args,
                                   const char      *contender,
                                   double          *samples,
                                   long             n_samples,
                                   long             n_closed);

/* many-paused, once every request is paused: reads RSS and the sockets
 * of args->port now. @warmup_bytes is the body of the one download done
 * before @rss_before_kib, over one of the same connections. */
void     bench_report_many_paused (const BenchArgs *args,
                                   const char      *contender,
                                   long             rss_before_kib,
                                   uint64_t         delivered_total,
                                   uint64_t         warmup_bytes);

/* Prints `{"error": MESSAGE, ...}` as the result line and exits 1. */
void     bench_fail          (const BenchArgs *args,
                              const char      *contender,
                              const char      *message);
