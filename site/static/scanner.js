// Stagepass door scanner: a gate account's wallet (the same wasm wallet in a Web Worker as
// the fan app) checks door passes seen by the camera — BarcodeDetector where the browser
// has it, the vendored jsQR decoder where it does not — or typed in. Online, each admitted
// ticket is checked in on the chain through the relay; offline, the wallet admits against
// the door list it loaded (the event's owners) and queues the check-ins, which sync when
// the network returns.
import { $, el, busy } from './dom.js';
import { offerPasskeyUnlock } from './passkey.js';
import { formatDate, short } from './format.js';
import { loadWallet, wireUnlockForms, humanError, showError } from './walletui.js';

const state = {
  wallet: null, accounts: [], events: [], event: null, gate: null, stats: null, online: false,
  stream: null, detector: null, loop: null, checking: false,
  last: '', lastSeen: 0, // the code of the last verdict, while it stays in view
  firstFrameAt: 0, scanned: 0, syncRequest: null,
};

const VIEWS = ['loading', 'restore', 'unlock', 'setup', 'door'];
function show(name) {
  for (const v of VIEWS) $('view-' + v).hidden = v !== name;
  document.body.dataset.view = name;
}

const key = (k) => `stagepass.scanner.${k}`;
const store = {
  get(k, def) { try { return JSON.parse(localStorage.getItem(key(k))) ?? def; } catch { return def; } },
  set(k, v) { localStorage.setItem(key(k), JSON.stringify(v)); },
};

// ---- start ----

async function boot() {
  show('loading');
  const w = state.wallet = await loadWallet();
  if (!w) {
    $('loading-title').textContent = 'The wallet is not built into this server';
    $('loading-detail').textContent = 'Run `go generate ./site` (or ./build.sh) and restart the relay.';
    return;
  }
  w.on('connection', ({ connected }) => {
    setOnline(connected);
    // Back online: reload the door list (it shows what other doors checked in meanwhile —
    // a ticket this door admitted offline among them is a double entry) and sync.
    if (connected && state.event) reopen().then(autoSync);
  });
  w.on('scanner', (st) => renderStats(st));
  w.on('request', (st) => {
    if (st.id !== state.syncRequest) return;
    if (st.state === 'mined') syncStatus('Check-ins confirmed on the chain.', 'mined');
    else if (st.state === 'failed') syncStatus('The check-ins failed (' + (st.reason || 'no reason') + '); they are queued again.', 'failed');
  });
  try {
    const r = await w.accounts({});
    state.accounts = r.accounts;
    show('unlock');
    $('unlock-password').focus();
    offerPasskeyUnlock(w, $('form-unlock'), enter);
  } catch (e) {
    if (e.code !== 'NO_WALLET') throw e;
    show('restore');
  }
  document.body.dataset.ready = 'true';
}

wireUnlockForms(() => state.wallet, (r) => enter(r));

function setOnline(connected) {
  state.online = connected;
  const c = $('conn');
  c.hidden = false;
  c.textContent = connected ? 'Online' : 'Offline';
  c.classList.toggle('up', connected);
  document.body.dataset.online = String(connected);
  renderSnapshot();
}

const relayURL = () => `${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/ws`;

// The browser says the network is gone: work from the door list at once rather than wait for
// the relay's connection to time out; connect again when the network returns.
window.addEventListener('offline', () => {
  if (!state.wallet) return;
  state.wallet.disconnect({}).catch(() => {});
  setOnline(false);
});
window.addEventListener('online', () => {
  if (state.wallet) state.wallet.connect({ url: relayURL() }).catch(showError);
});

async function reopen() {
  try { renderStats(await state.wallet.scannerOpen({ account: state.gate, event: state.event.address })); } catch (e) { showError(e); }
}

// enter connects to the relay and offers the accounts and events; the last door opened on
// this device comes back by itself (offline too: the wallet opens it from its cache).
async function enter({ accounts }) {
  state.accounts = accounts;
  if (navigator.onLine === false) setOnline(false); // connect when the network returns
  else await state.wallet.connect({ url: relayURL() });
  try {
    state.events = (await state.wallet.events({})) || [];
    store.set('events', state.events.map((e) => ({ address: e.address, name: e.name, venue: e.venue, startsAt: e.startsAt, doorsOpenAt: e.doorsOpenAt, tiers: (e.tiers || []).map((t) => ({ name: t.name })) })));
  } catch (e) {
    if (e.code !== 'OFFLINE' && e.code !== 'NOT_CONNECTED') showError(e);
    state.events = store.get('events', []);
  }
  const last = store.get('door', null);
  if (last && state.accounts.some((a) => a.toLowerCase() === last.gate.toLowerCase())) {
    try { await openDoor(last.gate, last.event); return; } catch (e) { showError(e); }
  }
  renderSetup();
  show('setup');
}

$('btn-change-door').onclick = () => {
  stopCamera();
  renderSetup();
  show('setup');
};

function renderSetup() {
  const last = store.get('door', {});
  const acc = $('gate-account');
  acc.replaceChildren(...state.accounts.map((a, i) => el('option', { value: a, selected: a === last.gate }, `Account ${i}: ${short(a)}`)));
  const evs = $('door-event');
  evs.replaceChildren(...state.events.map((e) => el('option', { value: e.address, selected: e.address === last.event },
    `${e.name} · ${formatDate(e.startsAt)}`)));
  if (!state.events.length) evs.append(el('option', { value: '' }, 'No events (connect once to load them)'));
}

$('btn-add-account').onclick = () => busy($('btn-add-account'), async () => {
  try {
    const { address } = await state.wallet.addAccount({});
    state.accounts.push(address);
    renderSetup();
    $('gate-account').value = address;
  } catch (e) { showError(e); }
});

$('form-door').addEventListener('submit', (ev) => {
  ev.preventDefault();
  showError(null);
  const gate = $('gate-account').value;
  const event = $('door-event').value;
  if (!event) { showError(new Error('Pick an event.')); return; }
  busy($('btn-open-door'), async () => {
    $('btn-open-door').textContent = 'Loading the door list…';
    try { await openDoor(gate, event); } catch (e) { showError(e); }
  });
});

async function openDoor(gate, event) {
  const st = await state.wallet.scannerOpen({ account: gate, event });
  state.gate = gate;
  state.event = state.events.find((e) => e.address.toLowerCase() === event.toLowerCase()) || { address: event, name: short(event) };
  store.set('door', { gate, event });
  $('door-title').textContent = state.event.name;
  $('door-sub').textContent = [state.event.venue, state.event.doorsOpenAt ? 'doors ' + formatDate(state.event.doorsOpenAt) : ''].filter(Boolean).join(' · ');
  $('gate').textContent = gate;
  renderStats(st);
  show('door');
  document.body.dataset.door = 'open';
  autoSync();
}

// ---- counters ----

function rejectedKey() { return 'rejected:' + (state.event ? state.event.address.toLowerCase() : ''); }

function renderStats(st) {
  if (!st) return;
  state.stats = st;
  $('count-admitted').textContent = String(st.admitted);
  $('count-queued').textContent = String(st.queued);
  $('count-rejected').textContent = String(store.get(rejectedKey(), 0));
  const doubles = st.doubleEntries || [];
  $('double-entries').hidden = doubles.length === 0;
  $('double-entries').textContent = doubles.length === 0 ? '' : `Double entry: ${doubles.map((id) => 'ticket #' + id).join(', ')} ` +
    `${doubles.length === 1 ? 'was' : 'were'} admitted here offline but checked in at another door first.`;
  document.body.dataset.queued = String(st.queued);
  document.body.dataset.doorTickets = String(st.tickets);
  document.body.dataset.doubleEntries = doubles.join(',');
  renderSnapshot();
}

function renderSnapshot() {
  const st = state.stats;
  if (!st) return;
  const at = st.snapshotAt ? new Date(st.snapshotAt).toLocaleTimeString() : 'never';
  $('snapshot').textContent = `Door list: ${st.tickets} tickets, loaded ${at}. ` +
    (state.online ? 'Online: each ticket is checked in on the chain.' : 'Offline: passes are checked against the door list and check-ins are queued.');
  $('btn-sync').textContent = st.queued ? `Sync ${st.queued} check-in${st.queued === 1 ? '' : 's'}` : 'Sync check-ins';
}

// ---- verdicts ----

const CHECK_IN = {
  mined: 'Checked in on the chain.',
  pending: 'Check-in sent; the chain is confirming it.',
  queued: 'Offline: admitted against the door list; the check-in is queued.',
};

async function check(payload, source, seenAt) {
  if (state.checking || !payload) return;
  state.checking = true;
  const t0 = performance.now();
  setVerdict('checking', 'Checking…', '', '');
  try {
    const r = await state.wallet.scan({ payload });
    const t1 = performance.now();
    if (r.ok) {
      setVerdict('ok', 'Admitted', CHECK_IN[r.checkIn] || '', ticketLine(r), r.code);
    } else {
      store.set(rejectedKey(), store.get(rejectedKey(), 0) + 1);
      setVerdict('bad', 'Rejected', r.reason || r.code, [r.detail, ticketLine(r)].filter(Boolean).join(' · '), r.code);
    }
    timing(source, seenAt, t0, t1);
  } catch (e) {
    setVerdict('bad', 'Not checked', humanError(e), '', e.code || 'ERROR');
  } finally {
    state.checking = false;
    $('btn-next').disabled = false;
    if (state.stats) renderStats(state.stats);
  }
}

function ticketLine(r) {
  if (!r.tokenId) return '';
  const tier = state.event && state.event.tiers && state.event.tiers[r.tier];
  return `Ticket #${r.tokenId}${tier ? ' · ' + tier.name : ''}`;
}

function setVerdict(kind, word, reason, detail, code = '') {
  const v = $('verdict');
  v.dataset.state = kind;
  v.dataset.code = code;
  $('verdict-word').textContent = word;
  $('verdict-reason').textContent = reason;
  $('verdict-detail').textContent = detail;
  if (kind === 'ok' || kind === 'bad') {
    state.scanned++;
    document.body.dataset.verdicts = String(state.scanned);
    if (navigator.vibrate) navigator.vibrate(kind === 'ok' ? 80 : [60, 60, 60]);
  }
}

// timing records how long a camera scan took: from the first camera frame (the code is in
// view from then on when the scanner is pointed at it) and from the frame the code was
// decoded in, to the verdict. The browser tests read it.
function timing(source, seenAt, t0, t1) {
  const t = { source, walletMs: Math.round(t1 - t0) };
  if (source === 'camera') {
    t.decodeMs = Math.round(t0 - seenAt);
    if (state.firstFrameAt) t.inViewToVerdictMs = Math.round(t1 - state.firstFrameAt);
    state.firstFrameAt = 0; // only the first scan after the camera starts had its code in view from the start
  }
  performance.measure('scan-' + state.scanned, { start: t0, end: t1 });
  document.body.dataset.lastTiming = JSON.stringify(t);
}

$('btn-next').onclick = () => {
  state.last = '';
  $('btn-next').disabled = true;
  setVerdict('idle', 'Ready', 'Point the camera at a door pass.', '');
};

$('form-manual').addEventListener('submit', (ev) => {
  ev.preventDefault();
  // Only line breaks go: a pass is base45, whose alphabet has the space.
  const payload = $('manual-payload').value.replace(/[\r\n\t]/g, '');
  if (!payload) return;
  check(payload, 'typed', performance.now()).then(() => { $('manual-payload').value = ''; });
});

// ---- camera ----

function loadJsQR() {
  if (window.jsQR) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const s = el('script', { src: 'vendor/jsqr/jsQR.js' });
    s.onload = resolve;
    s.onerror = () => reject(new Error('The QR decoder could not be loaded.'));
    document.head.append(s);
  });
}

async function makeDetector() {
  if ('BarcodeDetector' in window) {
    try {
      if ((await window.BarcodeDetector.getSupportedFormats()).includes('qr_code')) {
        const d = new window.BarcodeDetector({ formats: ['qr_code'] });
        return { name: 'BarcodeDetector', detect: async (video) => ((await d.detect(video))[0] || {}).rawValue || '' };
      }
    } catch { /* fall back to jsQR */ }
  }
  await loadJsQR();
  const canvas = document.createElement('canvas');
  const g = canvas.getContext('2d', { willReadFrequently: true });
  return {
    name: 'jsQR',
    detect: async (video) => {
      const scale = Math.min(1, 640 / video.videoWidth);
      canvas.width = Math.round(video.videoWidth * scale);
      canvas.height = Math.round(video.videoHeight * scale);
      g.drawImage(video, 0, 0, canvas.width, canvas.height);
      const img = g.getImageData(0, 0, canvas.width, canvas.height);
      const code = window.jsQR(img.data, img.width, img.height, { inversionAttempts: 'dontInvert' });
      return code ? code.data : '';
    },
  };
}

async function startCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) throw new Error('This browser gives no camera access; type the pass code instead.');
  state.stream = await navigator.mediaDevices.getUserMedia({
    audio: false, video: { facingMode: 'environment', width: { ideal: 1280 }, height: { ideal: 720 } },
  });
  const video = $('camera');
  video.srcObject = state.stream;
  $('camera-box').hidden = false;
  await video.play();
  state.detector = state.detector || await makeDetector();
  document.body.dataset.decoder = state.detector.name;
  document.body.dataset.camera = 'on';
  $('btn-camera').textContent = 'Stop camera';
  state.firstFrameAt = 0;
  const frame = async () => {
    if (!state.stream) return;
    if (!state.checking && video.readyState >= 2 && video.videoWidth) {
      const seenAt = performance.now();
      if (!state.firstFrameAt) state.firstFrameAt = seenAt;
      let payload = '';
      try { payload = await state.detector.detect(video); } catch { payload = ''; }
      if (payload && payload === state.last) state.lastSeen = seenAt;
      else if (payload) {
        state.last = payload;
        state.lastSeen = seenAt;
        await check(payload, 'camera', seenAt);
      } else if (state.last && seenAt - state.lastSeen > 1500) {
        state.last = ''; // the code left the view: the same pass may be shown again
      }
    }
    state.loop = setTimeout(frame, 80);
  };
  frame();
}

function stopCamera() {
  clearTimeout(state.loop);
  if (state.stream) for (const t of state.stream.getTracks()) t.stop();
  state.stream = null;
  $('camera').srcObject = null;
  $('camera-box').hidden = true;
  $('btn-camera').textContent = 'Start camera';
  document.body.dataset.camera = 'off';
}

$('btn-camera').onclick = () => busy($('btn-camera'), async () => {
  showError(null);
  if (state.stream) { stopCamera(); return; }
  try { await startCamera(); } catch (e) { stopCamera(); showError(e.name === 'NotAllowedError' ? new Error('Camera access was refused; allow it in the browser, or type the pass code.') : e); }
}).then(() => { $('btn-camera').textContent = state.stream ? 'Stop camera' : 'Start camera'; });

// ---- sync ----

function syncStatus(text, st) {
  $('sync-status').textContent = text;
  document.body.dataset.sync = st;
}

async function sync() {
  const r = await state.wallet.scannerSync({});
  if (!r.sent) { syncStatus('Nothing to sync.', 'empty'); return; }
  state.syncRequest = r.request && r.request.id;
  syncStatus(`Sent ${r.sent} check-in${r.sent === 1 ? '' : 's'}; the chain is confirming.`, 'sent');
}

let syncing = null;
function autoSync() {
  if (syncing || !state.online || !state.stats || !state.stats.queued) return;
  syncing = sync().catch((e) => syncStatus(humanError(e), 'error')).finally(() => { syncing = null; });
}

$('btn-sync').onclick = () => busy($('btn-sync'), async () => {
  try { await sync(); } catch (e) { syncStatus(humanError(e), 'error'); }
}).then(renderSnapshot);

$('btn-refresh').onclick = () => busy($('btn-refresh'), reopen);

document.addEventListener('visibilitychange', () => { if (document.hidden && state.stream) stopCamera(); });

if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('sw.js').then(
    () => navigator.serviceWorker.ready.then(() => { document.body.dataset.offlineReady = 'true'; }),
    () => {});
}

boot().catch((e) => { show('loading'); $('loading-title').textContent = 'Something went wrong'; $('loading-detail').textContent = humanError(e); });
