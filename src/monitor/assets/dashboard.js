// The dashboard in the browser: the server's last five minutes first (an `event: history`),
// then one Server-Sent Event a second (a Tick, src/monitor/board.ts), drawn as uPlot charts,
// and tables of the latest figures.
//
// The stream is read with fetch() rather than EventSource, because EventSource cannot send a
// header: a server started with --admin-token answers 401 without `Authorization: Bearer`, and
// the page then asks for the token and keeps it in sessionStorage. That storage belongs to this
// origin (scheme, host and port) and this tab, and is gone when the tab closes; a cookie would
// instead go along to every port of the host (the public server's CGI scripts among them) and
// with requests other sites make the browser send.
'use strict'

/** The charts' time window, in seconds: the history the server keeps (ADMIN_DEFAULTS.historyPoints). */
const WINDOW_S = 300
/** The shortest window drawn, so that a young server's first points are not a range of milliseconds. */
const MIN_WINDOW_S = 60
/** Time-axis steps, in seconds: whole seconds only, never fractions of one. */
const WHOLE_SECOND_STEPS = [1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600]
const TOKEN_KEY = 'petrel-admin-token'
const $ = (id) => document.getElementById(id)
const fixed = (n, digits = 0) => (Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '–')
const mb = (bytes) => bytes / 1048576
const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms))

/**
 * Which points to draw as dots: those with a gap on both sides (one second with responses
 * between seconds without), which a line alone would not show. Where uPlot shows every point
 * (few points, far apart), nothing more is needed.
 */
function isolatedPoints(u, seriesIdx, showAll) {
  if (showAll) return null
  const ys = u.data[seriesIdx]
  const idxs = []
  for (let i = 0; i < ys.length; i++) if (ys[i] != null && ys[i - 1] == null && ys[i + 1] == null) idxs.push(i)
  return idxs.length > 0 ? idxs : null
}

/**
 * A chart of several series over the last WINDOW_S seconds; `pick` maps a history point to one
 * value per series. A null value (latency in a second without responses) is drawn as a gap.
 */
function chart(id, series, pick) {
  const el = $(id)
  let data = [[], ...series.map(() => [])]
  const plot = new uPlot(
    {
      width: el.clientWidth || 440,
      height: 200,
      scales: {
        x: {
          time: true,
          // The points there are, ending at the newest, but at least a minute: one point or two
          // are not a range of years or of milliseconds.
          range: (_u, min, max) => {
            const end = max ?? Date.now() / 1000
            const span = Math.min(WINDOW_S, Math.max(MIN_WINDOW_S, end - (min ?? end)))
            return [end - span, end]
          },
        },
      },
      axes: [{ incrs: WHOLE_SECOND_STEPS }, { size: 60 }],
      series: [{}, ...series.map(([label, stroke]) => ({ label, stroke, width: 1.5, points: { filter: isolatedPoints } }))],
    },
    data,
    el,
  )
  return {
    plot,
    /** Replace everything with the server's history (a new page, or a reconnection after a gap). */
    reset(points) {
      data = [points.map((p) => p.atMs / 1000), ...series.map((_, i) => points.map((p) => pick(p)[i]))]
      plot.setData(data)
    },
    push(point) {
      const x = point.atMs / 1000
      const times = data[0]
      // The stream's first tick is the history's last point.
      if (times.length > 0 && x <= times[times.length - 1]) return
      times.push(x)
      pick(point).forEach((v, i) => data[i + 1].push(v))
      while (times.length > 0 && times[0] < x - WINDOW_S) for (const column of data) column.shift()
      plot.setData(data)
    },
    resize() {
      plot.setSize({ width: el.clientWidth || 440, height: 200 })
    },
  }
}

const charts = [
  chart(
    'chart-rps',
    [
      ['requests/s', '#1f6feb'],
      ['4xx/s', '#b08800'],
      ['5xx/s', '#cf222e'],
    ],
    (p) => [p.requestsPerS, p.clientErrorsPerS, p.serverErrorsPerS],
  ),
  chart(
    'chart-latency',
    [
      ['p50', '#2da44e'],
      ['p90', '#bf8700'],
      ['p99', '#cf222e'],
    ],
    (p) => [p.latencyP50Ms, p.latencyP90Ms, p.latencyP99Ms],
  ),
  chart(
    'chart-conns',
    [
      ['active', '#1f6feb'],
      ['idle', '#8250df'],
    ],
    (p) => [p.connectionsActive, p.connectionsIdle],
  ),
  chart(
    'chart-cpu',
    [
      ['server', '#1f6feb'],
      ['machine (all cores)', '#6e7781'],
    ],
    (p) => [p.serverCpuPct, p.machineCpuPct],
  ),
  chart(
    'chart-memory',
    [
      ['RSS', '#1f6feb'],
      ['heap used', '#2da44e'],
    ],
    (p) => [mb(p.rssBytes), mb(p.heapUsedBytes)],
  ),
]
window.addEventListener('resize', () => charts.forEach((c) => c.resize()))

function rows(tbody, list) {
  tbody.replaceChildren(
    ...list.map((cells) => {
      const tr = document.createElement('tr')
      for (const cell of cells) {
        const td = document.createElement('td')
        td.textContent = cell
        tr.append(td)
      }
      return tr
    }),
  )
}

function uptime(ms) {
  const s = Math.floor(ms / 1000)
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.floor(s / 60)}m` : `${Math.floor(s / 3600)}h`
}

function render(tick) {
  const { totals, rates, system } = tick
  $('rps').textContent = fixed(rates.requestsPerS)
  $('p99').textContent = rates.latencyMs.p99 === null ? '–' : `${fixed(rates.latencyMs.p99, 2)} ms`
  $('conns').textContent =
    `${fixed(totals.connections.active)} (${fixed(totals.connections.idle)} idle, ${fixed(totals.connections.http2)} h2 with ${fixed(totals.connections.streams)} streams, ${fixed(totals.connections.websockets)} ws)`
  $('cpu').textContent = `${fixed(rates.cpuPct)}%`
  $('rss').textContent = `${fixed(mb(totals.memory.rss))} MB`
  $('total').textContent = fixed(totals.requests)
  for (const c of charts) c.push(tick.point)
  rows(
    $('processes').tBodies[0],
    tick.processes.map((p) => [
      p.worker === null ? 'single' : String(p.worker),
      String(p.pid),
      fixed(p.requestsPerS),
      `${fixed(p.cpuPct)}%`,
      fixed(mb(p.memory.rss), 1),
      fixed(mb(p.memory.heapUsed), 1),
      fixed(p.connections.active),
      fixed(p.connections.idle),
      fixed(p.connections.http2),
      fixed(p.connections.streams),
      fixed(p.connections.websockets),
      fixed(p.eventLoop.delayP99Ms, 2),
      `${fixed(p.eventLoop.utilization * 100)}%`,
      fixed(p.timers),
      fixed(p.fds),
      uptime(p.atMs - p.startedAtMs),
    ]),
  )
  rows(
    $('cpus').tBodies[0],
    system.cpus.map((c) => [
      c.name === 'cpu' ? 'all' : c.name,
      `${fixed(c.userPct, 1)}%`,
      `${fixed(c.systemPct, 1)}%`,
      `${fixed(c.iowaitPct, 1)}%`,
      `${fixed(c.idlePct, 1)}%`,
    ]),
  )
  const m = system.memory
  rows($('vm').tBodies[0], [
    ['memory total', `${fixed(m.totalKb / 1024)} MB`],
    ['available', `${fixed(m.availableKb / 1024)} MB`],
    ['free / buffers / cache', `${fixed(m.freeKb / 1024)} / ${fixed(m.buffersKb / 1024)} / ${fixed(m.cachedKb / 1024)} MB`],
    ['swap used', `${fixed((m.swapTotalKb - m.swapFreeKb) / 1024)} MB`],
    ['load 1 / 5 / 15 min', system.load.map((l) => fixed(l, 2)).join(' / ')],
    ['running / blocked (r / b)', `${system.running} / ${system.blocked}`],
    ['context switches/s', fixed(system.contextSwitchesPerS)],
    ['interrupts/s', fixed(system.interruptsPerS)],
    ['forks/s', fixed(system.forksPerS)],
  ])
  rows(
    $('ifaces').tBodies[0],
    system.interfaces.map((i) => [i.name, fixed(i.rxBytesPerS / 1024, 1), fixed(i.txBytesPerS / 1024, 1), fixed(i.rxPacketsPerS), fixed(i.txPacketsPerS)]),
  )
  rows(
    $('tcp').tBodies[0],
    Object.entries(system.tcp).flatMap(([port, states]) => Object.entries(states).map(([state, n]) => [port, state, fixed(n)])),
  )
  rows(
    $('fds').tBodies[0],
    system.fds.map((f) => [String(f.pid), fixed(f.open)]),
  )
  window.petrelDashboard.ticks++
}

function setStatus(text, live = false) {
  const status = $('status')
  status.textContent = text
  status.className = live ? 'status live' : 'status'
}

/** Show the token form; resolves once a token was entered. `refused`: the last one was wrong. */
function askToken(refused) {
  const form = $('sign-in')
  const input = $('token')
  form.hidden = false
  $('sign-in-problem').textContent = refused ? 'that token was refused' : ''
  input.focus()
  return new Promise((resolve) => {
    form.onsubmit = (event) => {
      event.preventDefault()
      sessionStorage.setItem(TOKEN_KEY, input.value.trim())
      input.value = ''
      form.hidden = true
      resolve()
    }
  })
}

/** One event of the stream (lines of `event:` and `data:`): the history or a tick. */
function dispatch(block) {
  let event = 'message'
  const data = []
  for (const line of block.split('\n')) {
    if (line.startsWith('event:')) event = line.slice(6).trim()
    else if (line.startsWith('data:')) data.push(line.slice(line.startsWith('data: ') ? 6 : 5))
  }
  if (data.length === 0) return
  const payload = JSON.parse(data.join('\n'))
  if (event === 'history') {
    for (const c of charts) c.reset(payload.points)
    window.petrelDashboard.historyPoints = payload.points.length
  } else {
    render(payload)
  }
}

async function readEvents(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader()
  let buffer = ''
  for (;;) {
    const { value, done } = await reader.read()
    if (done) return
    buffer += value
    for (let end = buffer.indexOf('\n\n'); end >= 0; end = buffer.indexOf('\n\n')) {
      dispatch(buffer.slice(0, end))
      buffer = buffer.slice(end + 2)
    }
  }
}

/** Follow /events for as long as the page is open: ask for the token on 401, reconnect after a drop. */
async function follow() {
  for (;;) {
    const token = sessionStorage.getItem(TOKEN_KEY)
    let waitMs = 2000
    try {
      const response = await fetch('/events', { headers: token === null ? {} : { authorization: `Bearer ${token}` }, cache: 'no-store' })
      if (response.status === 401) {
        await response.body?.cancel()
        sessionStorage.removeItem(TOKEN_KEY)
        setStatus('token needed')
        await askToken(token !== null)
        continue
      }
      if (response.ok) {
        setStatus('live', true)
        await readEvents(response.body)
      } else {
        // 503: as many dashboards as the server allows are open; try again a little later.
        await response.body?.cancel()
        setStatus(`server answered ${response.status}`)
        waitMs = 5000
      }
    } catch {
      // The server went away or the stream broke: try again.
    }
    if (!$('status').textContent.startsWith('server answered')) setStatus('reconnecting…')
    await sleep(waitMs)
  }
}

window.petrelDashboard = { ticks: 0, historyPoints: 0, charts: charts.map((c) => c.plot) }
follow()
