// The dashboard in the browser: one Server-Sent Event a second (a Tick, src/monitor/board.ts),
// the last two minutes of it in uPlot charts, and tables of the latest figures.
'use strict'

const POINTS = 120
const $ = (id) => document.getElementById(id)
const fixed = (n, digits = 0) => (Number.isFinite(n) ? n.toLocaleString('en-US', { maximumFractionDigits: digits, minimumFractionDigits: digits }) : '–')
const mb = (bytes) => bytes / 1048576

/** A chart of several series over time; `pick` maps a tick to one value per series. */
function chart(id, series, pick) {
  const el = $(id)
  const data = [[], ...series.map(() => [])]
  const plot = new uPlot({
    width: el.clientWidth || 440,
    height: 200,
    scales: { x: { time: true } },
    axes: [{}, { size: 60 }],
    series: [{}, ...series.map(([label, stroke]) => ({ label, stroke, width: 1.5 }))],
  }, data, el)
  return {
    plot,
    push(tick) {
      data[0].push(tick.atMs / 1000)
      pick(tick).forEach((v, i) => data[i + 1].push(v))
      if (data[0].length > POINTS) for (const column of data) column.shift()
      plot.setData(data)
    },
    resize() {
      plot.setSize({ width: el.clientWidth || 440, height: 200 })
    },
  }
}

const charts = [
  chart('chart-rps', [['requests/s', '#1f6feb'], ['4xx/s', '#b08800'], ['5xx/s', '#cf222e']], (t) => [t.rates.requestsPerS, t.rates.responsesPerS[3], t.rates.responsesPerS[4]]),
  chart('chart-latency', [['p50', '#2da44e'], ['p90', '#bf8700'], ['p99', '#cf222e']], (t) => [t.rates.latencyMs.p50, t.rates.latencyMs.p90, t.rates.latencyMs.p99]),
  chart('chart-conns', [['active', '#1f6feb'], ['idle', '#8250df']], (t) => [t.totals.connections.active, t.totals.connections.idle]),
  chart('chart-cpu', [['server', '#1f6feb'], ['machine (all cores)', '#6e7781']], (t) => {
    const all = t.system.cpus[0]
    const cores = Math.max(1, t.system.cpus.length - 1)
    return [t.rates.cpuPct, all ? (100 - all.idlePct) * cores : 0]
  }),
  chart('chart-memory', [['RSS', '#1f6feb'], ['heap used', '#2da44e']], (t) => [mb(t.totals.memory.rss), mb(t.totals.memory.heapUsed)]),
]
window.addEventListener('resize', () => charts.forEach((c) => c.resize()))

function rows(tbody, list) {
  tbody.replaceChildren(...list.map((cells) => {
    const tr = document.createElement('tr')
    for (const cell of cells) {
      const td = document.createElement('td')
      td.textContent = cell
      tr.append(td)
    }
    return tr
  }))
}

function uptime(ms) {
  const s = Math.floor(ms / 1000)
  return s < 120 ? `${s}s` : s < 7200 ? `${Math.floor(s / 60)}m` : `${Math.floor(s / 3600)}h`
}

function render(tick) {
  const { totals, rates, system } = tick
  $('rps').textContent = fixed(rates.requestsPerS)
  $('p99').textContent = `${fixed(rates.latencyMs.p99, 2)} ms`
  $('conns').textContent = `${fixed(totals.connections.active)} (${fixed(totals.connections.idle)} idle)`
  $('cpu').textContent = `${fixed(rates.cpuPct)}%`
  $('rss').textContent = `${fixed(mb(totals.memory.rss))} MB`
  $('total').textContent = fixed(totals.requests)
  for (const c of charts) c.push(tick)
  rows($('processes').tBodies[0], tick.processes.map((p) => [
    p.worker === null ? 'single' : String(p.worker), String(p.pid), fixed(p.requestsPerS), `${fixed(p.cpuPct)}%`, fixed(mb(p.memory.rss), 1),
    fixed(mb(p.memory.heapUsed), 1), fixed(p.connections.active), fixed(p.connections.idle), fixed(p.eventLoop.delayP99Ms, 2),
    `${fixed(p.eventLoop.utilization * 100)}%`, fixed(p.timers), fixed(p.fds), uptime(p.atMs - p.startedAtMs),
  ]))
  rows($('cpus').tBodies[0], system.cpus.map((c) => [c.name === 'cpu' ? 'all' : c.name, `${fixed(c.userPct, 1)}%`, `${fixed(c.systemPct, 1)}%`, `${fixed(c.iowaitPct, 1)}%`, `${fixed(c.idlePct, 1)}%`]))
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
  rows($('ifaces').tBodies[0], system.interfaces.map((i) => [i.name, fixed(i.rxBytesPerS / 1024, 1), fixed(i.txBytesPerS / 1024, 1), fixed(i.rxPacketsPerS), fixed(i.txPacketsPerS)]))
  rows($('tcp').tBodies[0], Object.entries(system.tcp).flatMap(([port, states]) => Object.entries(states).map(([state, n]) => [port, state, fixed(n)])))
  rows($('fds').tBodies[0], system.fds.map((f) => [String(f.pid), fixed(f.open)]))
  window.petrelDashboard.ticks++
}

window.petrelDashboard = { ticks: 0, charts: charts.map((c) => c.plot) }
const status = $('status')
const events = new EventSource('/events')
events.onopen = () => {
  status.textContent = 'live'
  status.className = 'status live'
}
events.onerror = () => {
  status.textContent = 'reconnecting…'
  status.className = 'status'
}
events.onmessage = (message) => render(JSON.parse(message.data))
