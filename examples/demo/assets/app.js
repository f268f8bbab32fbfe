// weft demo dashboard. Plain browser JavaScript: no libraries, no build step.
//
// State for tests and curious humans: window.weftDemo (see `state` below). Stable element ids:
// #conn-state[data-state=connecting|live|reconnecting][data-resumed=<id>], #backend[data-backend],
// #rps #connections #sse-subs #allocs #dropped #rpc #uptime, #workers .worker,
// #jobs .job[data-id][data-status] .view[data-view=sse|poll|longpoll][data-status][data-progress],
// #event-log li[data-kind=event|gap|resume][data-id].
'use strict';

(() => {
  const $ = (sel) => document.querySelector(sel);
  const HISTORY_MS = 60000;
  const MAX_LOG = 200;

  const state = {
    metricsCount: 0,
    lastMetricsT: 0,     // the server's "t" of the last metrics event (ms since the epoch)
    lastMetrics: null,
    lastMetricsReceived: 0,  // Date.now() when it arrived
    events: [],          // topic demo: {id, data, at}, oldest first
    resumes: 0,          // reconnects of any stream after an error
    resumeLog: [],       // {topic, before: lastEventId before the error, after: first id after reopening, at}
    gaps: [],            // weft.gap markers: {topic, reason, missed, at}
    jobs: {},            // id -> {id, duration_ms, status, sse, poll, longpoll}
    streams: {},         // topic -> {state, lastEventId, opens, errors}
    errors: [],          // failed requests, for debugging
  };
  window.weftDemo = state;

  // ---- formatting ---------------------------------------------------------------------------
  const nf = new Intl.NumberFormat('en-US');
  const fmtInt = (n) => (typeof n === 'number' && isFinite(n) ? nf.format(Math.round(n)) : '–');
  const fmtRate = (n) => (typeof n !== 'number' || !isFinite(n) ? '–' : n < 100 ? n.toFixed(1) : nf.format(Math.round(n)));
  const pad2 = (n) => String(n).padStart(2, '0');
  const fmtUptime = (s) => {
    if (typeof s !== 'number' || !isFinite(s)) return '–';
    s = Math.floor(s);
    const d = Math.floor(s / 86400), h = Math.floor(s / 3600) % 24, m = Math.floor(s / 60) % 60;
    const hms = `${pad2(h)}:${pad2(m)}:${pad2(s % 60)}`;
    return d ? `${d}d ${hms}` : hms;
  };
  const clock = (d = new Date()) => `${pad2(d.getHours())}:${pad2(d.getMinutes())}:${pad2(d.getSeconds())}`;
  const el = (tag, cls, text) => {
    const e = document.createElement(tag);
    if (cls) e.className = cls;
    if (text !== undefined) e.textContent = text;
    return e;
  };
  const setText = (sel, text) => {
    const e = $(sel);
    if (e && e.textContent !== text) {
      e.textContent = text;
      e.classList.remove('flash');
      void e.offsetWidth;  // restart the animation
      e.classList.add('flash');
    }
  };

  // ---- streams: EventSource with reconnect/resume tracking -------------------------------------
  // EventSource reconnects by itself (network errors, the server restarting) and sends
  // Last-Event-ID, so the server replays what we missed (or sends weft.gap). We only watch:
  // an error remembers the last id; the next open counts as a resume.
  function openStream(topic, handlers) {
    const s = { state: 'connecting', lastEventId: '', opens: 0, errors: 0, pending: null };
    state.streams[topic] = s;
    const track = (fn) => (e) => {
      if (e.lastEventId) {
        s.lastEventId = e.lastEventId;
        if (s.pending && !s.pending.after) s.pending.after = e.lastEventId;
      }
      fn(e);
    };
    const connect = () => {
      const es = new EventSource(`/events/${encodeURIComponent(topic)}`);
      s.es = es;
      es.onopen = () => {
        s.opens += 1;
        if (s.state === 'reconnecting') {
          state.resumes += 1;
          s.pending = { topic, before: s.lastEventId, after: '', at: Date.now() };
          state.resumeLog.push(s.pending);
          onResume(s.pending);
        }
        s.state = 'open';
        updateConnState();
      };
      es.onerror = () => {
        s.errors += 1;
        if (s.state !== 'reconnecting') s.state = 'reconnecting';
        if (es.readyState === EventSource.CLOSED) {
          // A non-200 answer (e.g. 503 while the server starts) ends an EventSource for good:
          // start a new one. It cannot send Last-Event-ID; the server sees a fresh subscriber.
          setTimeout(connect, 2000);
        }
        updateConnState();
      };
      for (const [name, fn] of Object.entries(handlers)) {
        if (name === 'message') es.onmessage = track(fn);
        else es.addEventListener(name, track(fn));
      }
      es.addEventListener('weft.gap', (e) => {
        let info = {};
        try { info = JSON.parse(e.data); } catch (_) { info = { reason: String(e.data) }; }
        const gap = { topic, reason: info.reason || 'unknown', missed: info.missed, at: Date.now() };
        state.gaps.push(gap);
        if (s.pending) s.pending.gap = gap.reason;
        onGap(gap);
      });
    };
    connect();
    return s;
  }

  let resumedTimer = 0;
  function updateConnState() {
    const pill = $('#conn-state');
    const streams = Object.values(state.streams);
    let st = 'live';
    if (streams.some((s) => s.state === 'reconnecting')) st = 'reconnecting';
    else if (streams.some((s) => s.state !== 'open')) st = 'connecting';
    pill.dataset.state = st;
    const last = state.resumeLog[state.resumeLog.length - 1];
    let text = { live: 'live', reconnecting: 'reconnecting…', connecting: 'connecting…' }[st];
    if (st === 'live' && pill.dataset.resumed !== undefined && last) {
      text = `live · resumed after id ${last.before || '(none)'}`;
    }
    pill.querySelector('.text').textContent = text;
    pill.title = last ? `${state.resumes} resume(s); last: ${last.topic} after id ${last.before || '(none)'} at ${clock(new Date(last.at))}` : 'Server-Sent Events connection';
    document.body.toggleAttribute('data-stale', st !== 'live');
  }

  function onResume(r) {
    const pill = $('#conn-state');
    pill.dataset.resumed = r.before || '';
    clearTimeout(resumedTimer);
    resumedTimer = setTimeout(() => { delete pill.dataset.resumed; updateConnState(); }, 15000);
    if (r.topic === 'demo') {
      logNote('resume', r.before || '—', `stream resumed after id ${r.before || '(none)'}: missed events are replayed or a gap is marked`);
    }
  }

  function onGap(g) {
    if (g.topic !== 'demo') return;
    const missed = g.missed !== undefined ? `, ${g.missed} missed` : '';
    const why = { ring_overflow: 'the ring overflowed', slow_consumer: 'this client was too slow', unknown_id: 'the server does not know the last id (restarted?)' }[g.reason] || g.reason;
    logNote('gap', 'weft.gap', `gap: ${g.reason}${missed} — ${why}`);
  }

  // ---- metrics -------------------------------------------------------------------------------
  const history = [];  // {t, rps, conn}

  function onMetrics(e) {
    let m;
    try { m = JSON.parse(e.data); } catch (_) { return; }
    state.metricsCount += 1;
    state.lastMetricsT = m.t;
    state.lastMetricsReceived = Date.now();
    if (state.streams.metrics?.state === 'open' && !Object.values(state.streams).some((s) => s.state !== 'open')) {
      document.body.removeAttribute('data-stale');
    }
    state.lastMetrics = m;

    setText('#rps', fmtRate(m.requests_per_s));
    setText('#connections', fmtInt(m.connections));
    setText('#sse-subs', fmtInt(m.sse_subscribers));
    setText('#dropped', fmtInt(m.dropped_events));
    setText('#rpc', fmtInt(m.rpc_calls));
    $('#uptime').textContent = fmtUptime(m.uptime_s);
    $('#requests-total').textContent = `${fmtInt(m.requests_total)} total`;
    $('#jobs-running').textContent = `${fmtInt(m.jobs_running)} job(s) running`;
    // Negative: the server is still warming up (the count starts a few seconds after start).
    const warming = typeof m.allocations_after_warmup === 'number' && m.allocations_after_warmup < 0;
    setText('#allocs', warming ? 'warming up' : fmtInt(m.allocations_after_warmup));
    $('#allocs-card').dataset.zero = warming ? 'unknown' : String(m.allocations_after_warmup === 0);
    $('#allocs-total').textContent = typeof m.allocations_since_start === 'number'
      ? ` · ${fmtInt(m.allocations_since_start)} since start` : '';

    const badge = $('#backend');
    badge.dataset.backend = m.backend || '';
    badge.textContent = m.backend || 'backend ?';
    const reason = $('#backend-reason');
    reason.textContent = m.backend_reason ? `epoll: ${m.backend_reason}` : '';
    reason.hidden = !m.backend_reason;
    badge.title = m.backend_reason ? `event backend: ${m.backend} (${m.backend_reason})` : `event backend: ${m.backend}`;

    if (typeof m.t === 'number') {
      // A resumed stream may replay older samples: keep the history sorted and unique by t.
      if (!history.length || m.t > history[history.length - 1].t) history.push({ t: m.t, rps: m.requests_per_s, conn: m.connections });
      while (history.length && history[0].t < m.t - HISTORY_MS - 2000) history.shift();
    }
    renderWorkers(m.workers || []);
    drawCharts();
  }

  function renderWorkers(workers) {
    const box = $('#workers');
    const max = Math.max(1, ...workers.map((w) => w.requests_per_s || 0));
    if (box.children.length !== workers.length || box.querySelector('.empty')) {
      box.replaceChildren(...workers.map(() => {
        const row = el('div', 'worker');
        row.append(el('div', 'who'), el('div', 'bar'), el('div', 'num'));
        row.children[1].append(el('span'));
        return row;
      }));
      if (!workers.length) box.replaceChildren(el('p', 'empty', 'no workers reported'));
    }
    workers.forEach((w, i) => {
      const row = box.children[i];
      row.dataset.index = w.index;
      row.dataset.cpu = w.cpu;
      row.children[0].innerHTML = '';
      row.children[0].append(el('b', '', `worker ${w.index}`), document.createTextNode(typeof w.cpu === 'number' && w.cpu >= 0 ? ` · cpu ${w.cpu}` : ' · not pinned'));
      row.children[1].firstChild.style.width = `${Math.max(0.5, (100 * (w.requests_per_s || 0)) / max)}%`;
      row.children[2].replaceChildren(document.createTextNode(`${fmtRate(w.requests_per_s)}/s`), el('small', '', `${fmtInt(w.connections)} conn`));
    });
  }

  // ---- charts (hand-written canvas) ------------------------------------------------------------
  // A maximum of 4 equal steps of 1, 2 or 5 times a power of ten (integers only for counts).
  function niceMax(v, integer) {
    const raw = Math.max(v, integer ? 4 : 1) / 4;
    const p = 10 ** Math.floor(Math.log10(raw));
    for (const f of [1, 2, 2.5, 5, 10]) {
      const step = f * p;
      if (integer && !Number.isInteger(step)) continue;
      if (step >= raw) return 4 * step;
    }
    return 40 * p;
  }
  const fmtAxis = (v) => (v >= 1000 ? `${+(v / 1000).toFixed(1)}k` : `${+v.toFixed(1)}`);

  function drawChart(canvas, key, color, fmt, integer) {
    const dpr = window.devicePixelRatio || 1;
    const w = canvas.clientWidth, h = canvas.clientHeight;
    if (!w || !h) return;
    if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
      canvas.width = Math.round(w * dpr);
      canvas.height = Math.round(h * dpr);
    }
    const ctx = canvas.getContext('2d');
    ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
    ctx.clearRect(0, 0, w, h);
    const left = 44, right = 10, top = 10, bottom = 22;
    const pw = w - left - right, ph = h - top - bottom;
    const now = history.length ? history[history.length - 1].t : Date.now();
    const pts = history.filter((p) => p.t >= now - HISTORY_MS && typeof p[key] === 'number');
    const max = niceMax(Math.max(0, ...pts.map((p) => p[key])) * 1.08, integer);
    const x = (t) => left + pw * (1 - (now - t) / HISTORY_MS);
    const y = (v) => top + ph * (1 - v / max);

    ctx.font = '11px ui-monospace, "DejaVu Sans Mono", monospace';
    ctx.lineWidth = 1;
    ctx.fillStyle = '#8296a8';
    ctx.textAlign = 'right';
    ctx.textBaseline = 'middle';
    for (let i = 0; i <= 4; i++) {
      const v = (max * i) / 4, yy = Math.round(y(v)) + 0.5;
      ctx.strokeStyle = i === 0 ? '#2c3e50' : 'rgba(34,49,64,0.7)';
      ctx.beginPath(); ctx.moveTo(left, yy); ctx.lineTo(w - right, yy); ctx.stroke();
      ctx.fillText(fmtAxis(v), left - 6, yy);
    }
    ctx.textAlign = 'center';
    ctx.textBaseline = 'top';
    for (const s of [60, 45, 30, 15, 0]) ctx.fillText(s ? `-${s}s` : 'now', Math.min(x(now - s * 1000), w - right - 12), h - bottom + 6);

    if (pts.length < 2) {
      ctx.fillText(pts.length ? fmt(pts[0][key]) : 'waiting for data…', left + pw / 2, top + ph / 2 - 6);
      return;
    }
    const grad = ctx.createLinearGradient(0, top, 0, top + ph);
    grad.addColorStop(0, color + '55');
    grad.addColorStop(1, color + '00');
    ctx.beginPath();
    pts.forEach((p, i) => (i ? ctx.lineTo(x(p.t), y(p[key])) : ctx.moveTo(x(p.t), y(p[key]))));
    ctx.lineTo(x(pts[pts.length - 1].t), top + ph);
    ctx.lineTo(x(pts[0].t), top + ph);
    ctx.closePath();
    ctx.fillStyle = grad;
    ctx.fill();
    ctx.beginPath();
    pts.forEach((p, i) => (i ? ctx.lineTo(x(p.t), y(p[key])) : ctx.moveTo(x(p.t), y(p[key]))));
    ctx.strokeStyle = color;
    ctx.lineWidth = 2;
    ctx.lineJoin = 'round';
    ctx.stroke();
    const lp = pts[pts.length - 1];
    ctx.beginPath();
    ctx.arc(x(lp.t), y(lp[key]), 3.5, 0, Math.PI * 2);
    ctx.fillStyle = color;
    ctx.fill();
  }

  function drawCharts() {
    drawChart($('#chart-rps'), 'rps', '#4fd1c5', fmtRate, false);
    drawChart($('#chart-conn'), 'conn', '#7aa2ff', fmtInt, true);
  }
  window.addEventListener('resize', drawCharts);

  // ---- event log (topic demo) ----------------------------------------------------------------
  function addLog(kind, id, text) {
    const log = $('#event-log');
    const li = el('li');
    li.dataset.kind = kind;
    if (id) li.dataset.id = id;
    li.append(el('span', 'time', clock()), el('span', 'id', id || ''), el('span', 'data', text));
    log.prepend(li);
    while (log.children.length > MAX_LOG) log.lastChild.remove();
  }
  const logNote = (kind, id, text) => addLog(kind, id, text);

  function onDemo(e) {
    state.events.push({ id: e.lastEventId, data: e.data, at: Date.now() });
    if (state.events.length > MAX_LOG) state.events.shift();
    addLog('event', e.lastEventId, e.data);
  }

  $('#publish-form').addEventListener('submit', async (ev) => {
    ev.preventDefault();
    const text = $('#publish-text').value;
    const status = $('#publish-status');
    try {
      const r = await fetch('/publish/demo', { method: 'POST', body: text, headers: { 'Content-Type': 'text/plain; charset=utf-8' } });
      status.textContent = r.ok ? `published (${r.status})` : `failed: HTTP ${r.status}`;
    } catch (err) {
      status.textContent = `failed: ${err.message}`;
      state.errors.push(`publish: ${err.message}`);
    }
  });

  // ---- jobs: one job, three ways to follow it -----------------------------------------------
  const VIEWS = [['sse', 'SSE', 'events'], ['poll', 'short poll', 'GETs'], ['longpoll', 'long poll', 'GETs']];
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

  function jobCard(job) {
    const card = el('div', 'job');
    card.dataset.id = job.id;
    card.dataset.status = 'running';
    const head = el('div', 'job-head');
    const title = el('span');
    title.append(el('b', '', `job ${job.id}`), document.createTextNode(` · ${job.duration_ms} ms`));
    head.append(title, el('span', 'started', `started ${clock()}`));
    const views = el('div', 'views');
    for (const [key, label, unit] of VIEWS) {
      const v = el('div', 'view');
      v.dataset.view = key;
      v.dataset.status = 'waiting';
      v.dataset.progress = '0';
      const t = el('div', 'title');
      t.append(el('span', '', label), el('span', 'pct', '0 %'));
      const bar = el('div', 'bar');
      bar.append(el('span'));
      const meta = el('div', 'meta');
      meta.append(el('span', 'st', 'waiting'), el('span', 'reqs', `0 ${unit}`));
      v.append(t, bar, meta);
      views.append(v);
      job[key] = { status: 'waiting', progress: 0, requests: 0, unit };
    }
    card.append(head, views);
    const box = $('#jobs');
    box.querySelector('.empty')?.remove();
    box.prepend(card);
    return card;
  }

  function updateView(job, card, key, doc, error) {
    const v = job[key];
    if (error) v.status = 'error';
    else if (doc) {
      v.status = doc.status;
      v.progress = Math.max(0, Math.min(100, Number(doc.progress) || 0));
      if (doc.status === 'done') v.progress = 100;
    }
    const node = card.querySelector(`.view[data-view="${key}"]`);
    node.dataset.status = v.status;
    node.dataset.progress = String(v.progress);
    node.querySelector('.bar span').style.width = `${v.progress}%`;
    node.querySelector('.pct').textContent = `${v.progress} %`;
    node.querySelector('.st').textContent = error ? `error: ${error}` : v.status;
    node.querySelector('.reqs').textContent = key === 'sse' ? `1 request · ${v.requests} events` : `${v.requests} ${v.unit}`;
    const all = VIEWS.map(([k]) => job[k].status);
    job.status = all.every((s) => s === 'done') ? 'done' : all.some((s) => s === 'error') ? 'failed' : 'running';
    card.dataset.status = job.status;
    updateJobButton();
  }

  // One job at a time: a browser opens at most 6 HTTP/1.1 connections to a host; the page's two
  // topic streams plus a job's stream, long poll and short polls leave no room for a second job
  // (its short polls would wait for a free connection and the comparison would be unfair).
  function updateJobButton() {
    const busy = Object.values(state.jobs).some((j) => j.status === 'running');
    const button = $('#job-submit');
    button.disabled = busy;
    button.title = busy ? 'one job at a time: the browser allows 6 connections to this server' : '';
  }

  function followSse(job, card) {
    const es = new EventSource(`/jobs/${encodeURIComponent(job.id)}/events`);
    es.addEventListener('progress', (e) => {
      job.sse.requests += 1;
      let doc;
      try { doc = JSON.parse(e.data); } catch (_) { return; }
      updateView(job, card, 'sse', doc);
      if (doc.status === 'done') es.close();  // else EventSource would reconnect when the server ends the stream
    });
    es.onerror = () => {
      if (job.sse.status === 'done') return es.close();
      if (es.readyState === EventSource.CLOSED) updateView(job, card, 'sse', null, 'stream failed');
    };
    job.sse.requests = 0;
  }

  async function getJob(job, url) {
    const r = await fetch(url, { cache: 'no-store' });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    return r.json();
  }

  async function followPoll(job, card) {
    const deadline = Date.now() + job.duration_ms + 60000;
    while (Date.now() < deadline) {
      try {
        job.poll.requests += 1;
        const doc = await getJob(job, `/jobs/${encodeURIComponent(job.id)}`);
        updateView(job, card, 'poll', doc);
        if (doc.status === 'done') return;
      } catch (err) {
        if (/HTTP 404/.test(err.message)) return updateView(job, card, 'poll', null, 'unknown job');
        updateView(job, card, 'poll', null);  // network trouble: keep polling
      }
      await sleep(500);
    }
    updateView(job, card, 'poll', null, 'timed out');
  }

  async function followLongPoll(job, card) {
    const deadline = Date.now() + job.duration_ms + 60000;
    while (Date.now() < deadline) {
      try {
        job.longpoll.requests += 1;
        const doc = await getJob(job, `/jobs/${encodeURIComponent(job.id)}?wait=10`);
        updateView(job, card, 'longpoll', doc);
        if (doc.status === 'done') return;
      } catch (err) {
        if (/HTTP 404/.test(err.message)) return updateView(job, card, 'longpoll', null, 'unknown job');
        await sleep(1000);
      }
    }
    updateView(job, card, 'longpoll', null, 'timed out');
  }

  async function startJob(durationMs) {
    const r = await fetch('/jobs', {
      method: 'POST', headers: { 'Content-Type': 'application/json' },
      body: JSON.stringify({ duration_ms: durationMs }),
    });
    if (r.status !== 202 && r.status !== 201 && r.status !== 200) throw new Error(`POST /jobs: HTTP ${r.status}`);
    const { id } = await r.json();
    const job = { id: String(id), duration_ms: durationMs, status: 'running', location: r.headers.get('Location') };
    state.jobs[job.id] = job;
    const card = jobCard(job);
    updateJobButton();
    followSse(job, card);
    followPoll(job, card);
    followLongPoll(job, card);
    return job.id;
  }
  state.startJob = startJob;  // for tests: await weftDemo.startJob(2000)

  $('#job-form').addEventListener('submit', (ev) => {
    ev.preventDefault();
    const ms = Math.max(100, Math.min(600000, Number($('#job-duration').value) || 2000));
    startJob(ms).catch((err) => {
      state.errors.push(err.message);
      const box = $('#jobs');
      box.prepend(el('p', 'empty', `could not start a job: ${err.message}`));
    });
  });

  // ---- start ----------------------------------------------------------------------------------
  openStream('metrics', { metrics: onMetrics });
  openStream('demo', { message: onDemo });
  updateConnState();
  drawCharts();
  // Mark the page stale when metrics stop arriving while the stream claims to be open.
  setInterval(() => {
    const m = state.streams.metrics;
    if (m && m.state === 'open' && state.lastMetricsReceived && Date.now() - state.lastMetricsReceived > 5000) {
      document.body.setAttribute('data-stale', '');
    }
  }, 1000);
})();
