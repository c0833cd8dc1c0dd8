/**
 * The status page: one self-contained HTML document (no build step, no external
 * assets) that polls `/status/data.json` and draws the mirror table and an SVG
 * chart of recent publish-to-visible latency. Text is inserted with
 * textContent only, so mirror ids and URLs cannot inject markup.
 */
export const STATUS_PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>metasync status</title>
<style>
  body { font: 14px/1.4 system-ui, sans-serif; margin: 2rem; color: #1d2330; background: #f7f8fa; }
  h1 { font-size: 1.4rem; margin: 0 0 .25rem; }
  .summary { color: #555; margin-bottom: 1.5rem; }
  table { border-collapse: collapse; width: 100%; background: #fff; box-shadow: 0 1px 2px #0001; }
  th, td { text-align: left; padding: .45rem .7rem; border-bottom: 1px solid #e6e8ec; }
  th { background: #eef0f4; font-weight: 600; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; }
  .healthy { color: #12813a; font-weight: 600; }
  .unhealthy { color: #b42318; font-weight: 600; }
  section { margin-top: 2rem; }
  svg { background: #fff; box-shadow: 0 1px 2px #0001; }
  .empty { color: #777; font-style: italic; }
</style>
</head>
<body>
<h1>metasync status</h1>
<div class="summary" id="summary">loading...</div>
<div class="summary" id="source"></div>
<div class="summary" id="upstream"></div>
<table id="mirrors">
  <thead><tr><th>mirror</th><th>region</th><th>endpoint</th><th>applied seq</th><th>lag (seq)</th><th>lag (ms)</th><th>health</th></tr></thead>
  <tbody></tbody>
</table>
<section>
  <h2>Publish to visible (recent acknowledgements)</h2>
  <div id="latency-summary" class="summary"></div>
  <svg id="latency-chart" width="720" height="220" role="img" aria-label="publish to visible latency chart"></svg>
</section>
<script>
const SVG_NS = 'http://www.w3.org/2000/svg';
function cell(row, text, className) {
  const td = document.createElement('td');
  td.textContent = String(text);
  if (className) td.className = className;
  row.appendChild(td);
}
function svgEl(name, attrs) {
  const el = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attrs)) el.setAttribute(key, String(value));
  return el;
}
function drawChart(samples) {
  const svg = document.getElementById('latency-chart');
  svg.replaceChildren();
  const width = 720, height = 220, pad = 36;
  if (samples.length === 0) {
    const text = svgEl('text', { x: pad, y: height / 2, class: 'empty' });
    text.textContent = 'no acknowledgements yet';
    svg.appendChild(text);
    return;
  }
  const maxMs = Math.max(1, ...samples.map((s) => s.latencyMs));
  const x = (i) => pad + (samples.length === 1 ? 0 : (i * (width - 2 * pad)) / (samples.length - 1));
  const y = (ms) => height - pad - (ms / maxMs) * (height - 2 * pad);
  svg.appendChild(svgEl('line', { x1: pad, y1: height - pad, x2: width - pad, y2: height - pad, stroke: '#999' }));
  svg.appendChild(svgEl('line', { x1: pad, y1: pad, x2: pad, y2: height - pad, stroke: '#999' }));
  const label = svgEl('text', { x: 4, y: pad - 8, 'font-size': 11, fill: '#555' });
  label.textContent = maxMs + ' ms';
  svg.appendChild(label);
  const points = samples.map((s, i) => x(i).toFixed(1) + ',' + y(s.latencyMs).toFixed(1)).join(' ');
  svg.appendChild(svgEl('polyline', { points, fill: 'none', stroke: '#2f6fdb', 'stroke-width': 1.5, 'data-points': samples.length }));
  samples.forEach((s, i) => {
    const dot = svgEl('circle', { cx: x(i), cy: y(s.latencyMs), r: 2.5, fill: '#2f6fdb', class: 'sample' });
    const title = svgEl('title', {});
    title.textContent = s.mirrorId + ' seq ' + s.seq + ': ' + s.latencyMs + ' ms';
    dot.appendChild(title);
    svg.appendChild(dot);
  });
}
async function refresh() {
  let data;
  try {
    const response = await fetch('/status/data.json', { cache: 'no-store' });
    data = await response.json();
  } catch (err) {
    document.getElementById('summary').textContent = 'primary unreachable: ' + err;
    return;
  }
  const healthy = data.mirrors.filter((m) => m.healthy).length;
  document.getElementById('summary').textContent =
    'head seq ' + data.seq + ', committed ' + new Date(data.time).toISOString() + ' - ' +
    healthy + ' of ' + data.mirrors.length + ' mirrors healthy (stale after ' + data.staleAfterMs + ' ms)';
  const source = document.getElementById('source');
  const src = data.source;
  source.className = src && src.degraded ? 'summary unhealthy' : 'summary';
  source.textContent = !src ? ''
    : src.degraded
      ? 'source watch degraded (' + src.degraded.reason + ' at ' + (src.degraded.directory || '.') + '): ' + src.watches +
        ' directories watched, whole tree scanned every ' + src.scanIntervalMs + ' ms'
      : 'source: ' + src.watches + ' directories watched' + (src.scanIntervalMs > 0 ? ', rescanned every ' + src.scanIntervalMs + ' ms' : '') +
        (src.startup && !src.startup.finished ? ', reconciling the tree since ' + new Date(src.startup.startedAtMs).toISOString() : '');
  const upstream = document.getElementById('upstream');
  const up = data.upstream;
  upstream.className = up && !up.fresh ? 'summary unhealthy' : 'summary';
  upstream.textContent = !up ? ''
    : 'upstream ' + up.upstream + ': ' + up.phase + (up.fresh ? ', fresh' : ', stale (' + up.staleReason + ')') +
      (up.progress ? ', ' + up.progress.done + ' of ' + up.progress.total + ' files (' + up.progress.failed + ' failed)' : '');
  const body = document.querySelector('#mirrors tbody');
  body.replaceChildren();
  if (data.mirrors.length === 0) {
    const row = document.createElement('tr');
    cell(row, 'no mirror has connected yet', 'empty');
    body.appendChild(row);
  }
  for (const m of data.mirrors) {
    const row = document.createElement('tr');
    row.dataset.mirror = m.mirrorId;
    cell(row, m.mirrorId);
    cell(row, m.region || '-');
    cell(row, m.url || '-');
    cell(row, m.seq, 'num');
    cell(row, m.lagSeq, 'num');
    cell(row, m.lagMs, 'num');
    cell(row, m.healthy ? 'healthy' : (m.connected ? 'lagging' : 'disconnected'), m.healthy ? 'healthy' : 'unhealthy');
    body.appendChild(row);
  }
  const v = data.visible;
  document.getElementById('latency-summary').textContent = v.samples.length === 0
    ? 'no samples yet'
    : v.samples.length + ' samples, p50 ' + v.p50Ms + ' ms, p99 ' + v.p99Ms + ' ms';
  drawChart(v.samples);
}
refresh();
setInterval(refresh, 2000);
</script>
</body>
</html>
`;
