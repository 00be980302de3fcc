// bench-undici.mjs — the undici 7 contender
//
// SPDX-License-Identifier: LGPL-2.1-or-later
//
// undici's Agent.dispatch() with a minimal handler object on the
// controller API (onRequestStart / onResponseStart / onResponseData /
// onResponseEnd / onResponseError; controller.pause(), resume(), abort()).
// Same command line and JSON line as the C contenders (bench-common.c).
// Run it with --expose-gc so that memory figures are taken after a
// collection. Socket figures come from bench-sockstat (--sockstat PATH or
// $BENCH_SOCKSTAT).

import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { Agent } from 'undici'

const CONTENDER = 'undici'
const MIB = 1024 * 1024

const DEFAULT_REQUESTS = {
  small: 20000,
  stream: 1,
  pause: 1,
  'resume-latency': 200,
  'abort-latency': 20,
  'many-paused': 1000
}

function parseArgs (argv) {
  const args = {
    url: null,
    mode: null,
    requests: -1,
    concurrency: -1,
    connections: -1,
    warmup: -1,
    pauseS: 5,
    pauseAfter: MIB,
    headBytes: 0,
    timeoutS: 120,
    sockstat: process.env.BENCH_SOCKSTAT || null
  }
  const names = {
    '--url': ['url', String],
    '--mode': ['mode', String],
    '--requests': ['requests', Number],
    '--concurrency': ['concurrency', Number],
    '--connections': ['connections', Number],
    '--warmup': ['warmup', Number],
    '--pause-s': ['pauseS', Number],
    '--pause-after': ['pauseAfter', Number],
    '--head-bytes': ['headBytes', Number],
    '--buffer-size': ['bufferSize', Number],
    '--timeout-s': ['timeoutS', Number],
    '--sockstat': ['sockstat', String]
  }
  for (let i = 0; i < argv.length; i += 2) {
    const spec = names[argv[i]]
    if (!spec || i + 1 >= argv.length) {
      console.error(`bench-undici: bad option ${argv[i]}`)
      process.exit(2)
    }
    args[spec[0]] = spec[1](argv[i + 1])
  }
  if (!args.url || !(args.mode in DEFAULT_REQUESTS)) {
    console.error('Usage: bench-undici.mjs --url URL --mode MODE [--requests N] [--concurrency C] [--connections P] …')
    process.exit(2)
  }
  if (args.requests < 1) args.requests = DEFAULT_REQUESTS[args.mode]
  if (args.mode === 'many-paused') args.concurrency = args.requests
  else if (args.mode !== 'small' || args.concurrency < 1) args.concurrency = 1
  args.concurrency = Math.min(args.concurrency, args.requests)
  if (args.connections < 1) args.connections = args.concurrency
  if (args.warmup < 0) args.warmup = Math.max(args.concurrency * 2, 200)
  return args
}

const args = parseArgs(process.argv.slice(2))
const url = new URL(args.url)
const origin = url.origin
const path = url.pathname + url.search
const port = Number(url.port || 80)

const nowUs = () => Number(process.hrtime.bigint()) / 1000
const cpuS = () => {
  const u = process.cpuUsage()
  return (u.user + u.system) / 1e6
}

function procStatusKib (field) {
  const m = readFileSync('/proc/self/status', 'utf8').match(new RegExp(`^${field}:\\s+(\\d+)`, 'm'))
  return m ? Number(m[1]) : -1
}

const rssKib = () => procStatusKib('VmRSS')
const hwmKib = () => procStatusKib('VmHWM')
const gc = () => { if (globalThis.gc) globalThis.gc() }

function sockstat () {
  if (!args.sockstat) return null
  const s = JSON.parse(execFileSync(args.sockstat, [String(port)], { encoding: 'utf8' }))
  return s
}

function percentile (values, p) {
  if (values.length === 0) return -1
  const sorted = Float64Array.from(values).sort()
  const rank = Math.min(sorted.length, Math.max(1, Math.ceil(p / 100 * sorted.length)))
  return sorted[rank - 1]
}

function emit (obj) {
  process.stdout.write(JSON.stringify({ contender: CONTENDER, mode: args.mode, ...obj }) + '\n')
}

function fail (message) {
  emit({ error: String(message) })
  process.exit(1)
}

const deadline = setTimeout(() => fail('timed out'), args.timeoutS * 1000)

const agent = new Agent({
  connections: args.connections,
  pipelining: 1,
  keepAliveTimeout: 4000
})

// The handler: one per request, as an application writes it.
class Handler {
  constructor (onData, onDone) {
    this.controller = null
    this.received = 0
    this.onData = onData
    this.onDone = onDone
  }

  onRequestStart (controller, context) {
    this.controller = controller
  }

  onResponseStart (controller, statusCode, headers, statusMessage) {}

  onResponseData (controller, chunk) {
    this.received += chunk.length
    if (this.onData) this.onData(this, controller, chunk)
  }

  onResponseEnd (controller, trailers) {
    this.onDone(this, null)
  }

  onResponseError (controller, err) {
    this.onDone(this, err)
  }
}

function dispatch (handler) {
  agent.dispatch({ origin, path, method: 'GET' }, handler)
}

function finish (obj, exitNow = false) {
  clearTimeout(deadline)
  emit(obj)
  if (exitNow) process.exit(0)
  agent.destroy().catch(() => {}).finally(() => process.exit(0))
}

function runSmall () {
  const total = args.warmup + args.requests
  let started = 0
  let completed = 0
  let failed = 0
  let bytes = 0
  let firstError = null
  let t0 = nowUs()
  let cpu0 = cpuS()

  const done = (h, err) => {
    completed++
    bytes += h.received
    if (err) {
      failed++
      firstError ??= err.message
    }
    if (completed === total - args.requests) {
      t0 = nowUs()
      cpu0 = cpuS()
    }
    if (completed === total) {
      const seconds = (nowUs() - t0) / 1e6
      const cpu = cpuS() - cpu0
      if (failed === completed) fail(firstError)
      const out = {
        requests: args.requests,
        concurrency: args.concurrency,
        connections: args.connections,
        errors: failed,
        seconds,
        rps: args.requests / seconds,
        cpu_s: cpu,
        cpu_ms_per_1000: cpu * 1e6 / args.requests,
        bytes
      }
      if (firstError) out.first_error = firstError
      finish(out)
    } else {
      next()
    }
  }
  const next = () => {
    if (started >= total) return
    started++
    dispatch(new Handler(null, done))
  }
  for (let i = 0; i < args.concurrency; i++) next()
}

function runStream () {
  const t0 = nowUs()
  const cpu0 = cpuS()
  dispatch(new Handler(null, (h, err) => {
    if (err) fail(err.message)
    const seconds = (nowUs() - t0) / 1e6
    finish({
      bytes: h.received,
      seconds,
      mb_per_s: h.received / 1e6 / seconds,
      peak_rss_kib: hwmKib(),
      cpu_s: cpuS() - cpu0
    })
  }))
}

function runPause () {
  let acted = false
  let resumedOk = false
  let deliveredAtPause = 0
  let deliveredEnd = 0
  let rssAtPause = 0
  let rssEnd = 0
  let stat0 = null
  let stat1 = null

  const onData = (h, controller) => {
    if (!acted && h.received >= args.pauseAfter) {
      acted = true
      controller.pause()
      deliveredAtPause = h.received
      gc()
      rssAtPause = rssKib()
      stat0 = sockstat()
      setTimeout(() => {
        deliveredEnd = h.received
        gc()
        rssEnd = rssKib()
        stat1 = sockstat()
        controller.resume()
      }, args.pauseS * 1000)
    } else if (acted && rssEnd !== 0 && !resumedOk) {
      resumedOk = true
      controller.abort(new Error('done'))
    }
  }
  dispatch(new Handler(onData, (h, err) => {
    if (!err) fail('the download ended early')
    if (!resumedOk) fail(err.message)
    const read0 = stat0 ? stat0.client_read - args.headBytes : -1
    const read1 = stat1 ? stat1.client_read - args.headBytes : -1
    finish({
      pause_s: args.pauseS,
      delivered_at_pause: deliveredAtPause,
      delivered_during_pause: deliveredEnd - deliveredAtPause,
      read_at_pause: read0,
      held_at_pause: read0 - deliveredAtPause,
      held_end: read1 - deliveredEnd,
      server_sent_during_pause: stat1 ? stat1.server_bytes_acked - stat0.server_bytes_acked : -1,
      kernel_buffered_end: stat1 ? stat1.client_recv_queue + stat1.server_send_queue : -1,
      rss_at_pause_kib: rssAtPause,
      rss_growth_kib: rssEnd - rssAtPause,
      connections_seen: stat0 ? stat0.n_client : -1,
      resumed: resumedOk
    })
  }))
}

function runResumeLatency () {
  const samples = []
  let waiting = false
  let mark = 0
  let finished = false

  const onData = (h, controller) => {
    if (finished) return
    if (waiting) {
      waiting = false
      samples.push(nowUs() - mark)
      if (samples.length >= args.requests) {
        finished = true
        controller.abort(new Error('done'))
        return
      }
    }
    controller.pause()
    setTimeout(() => {
      waiting = true
      mark = nowUs()
      controller.resume()
    }, 1)
  }
  dispatch(new Handler(onData, (h, err) => {
    if (!finished) fail(err ? err.message : 'the download ended early')
    finish({
      samples: samples.length,
      p50_us: percentile(samples, 50),
      p99_us: percentile(samples, 99),
      max_us: percentile(samples, 100)
    })
  }))
}

function runAbortLatency () {
  const samples = []
  let closed = 0

  const cycle = () => {
    let acted = false
    let mark = 0
    const onData = (h, controller) => {
      if (!acted && h.received >= args.pauseAfter) {
        acted = true
        setImmediate(() => {
          mark = nowUs()
          controller.abort(new Error('aborted'))
        })
      }
    }
    dispatch(new Handler(onData, (h, err) => {
      if (!err || mark === 0) fail(err ? err.message : 'the download ended early')
      samples.push(nowUs() - mark)
      setTimeout(() => {
        const s = sockstat()
        if (s && s.n_client === 0) closed++
        if (samples.length >= args.requests) {
          finish({
            samples: samples.length,
            p50_us: percentile(samples, 50),
            p99_us: percentile(samples, 99),
            max_us: percentile(samples, 100),
            closed
          })
        } else {
          cycle()
        }
      }, 20)
    }))
  }
  cycle()
}

function runManyPaused () {
  // one whole download first, so that "before" includes the code
  dispatch(new Handler(null, (warm, err) => {
    if (err) fail(err.message)
    gc()
    const rssBefore = rssKib()
    let paused = 0
    let deliveredTotal = 0

    const onData = (h, controller) => {
      if (h.acted) return
      h.acted = true
      controller.pause()
      deliveredTotal += h.received
      if (++paused === args.requests) {
        setImmediate(() => {
          gc()
          const rssAfter = rssKib()
          const s = sockstat()
          const held = s
            ? s.client_read - args.headBytes * (args.requests + 1) - warm.received - deliveredTotal
            : 0
          finish({
            requests: args.requests,
            rss_before_kib: rssBefore,
            rss_after_kib: rssAfter,
            bytes_per_request: (rssAfter - rssBefore) * 1024 / args.requests,
            delivered_per_request: deliveredTotal / args.requests,
            held_per_request: held / args.requests,
            connections_seen: s ? s.n_client : -1
          }, true)
        })
      }
    }
    for (let i = 0; i < args.requests; i++) {
      dispatch(new Handler(onData, (h, err2) => fail(err2 ? err2.message : 'a download ended unpaused')))
    }
  }))
}

switch (args.mode) {
  case 'small': runSmall(); break
  case 'stream': runStream(); break
  case 'pause': runPause(); break
  case 'resume-latency': runResumeLatency(); break
  case 'abort-latency': runAbortLatency(); break
  case 'many-paused': runManyPaused(); break
}
