// Stagepass issuer console: an organiser's wallet (the same wasm wallet in a Web Worker as
// the fan app) creates events — date and time, tiers, every rule and the splits, checked on
// the page and shown as a fan will see them (format.js, the fan app's own words) — signs
// them gaslessly after the wallet's summary, adds door scanners, and follows each event's
// sales, resales, check-ins and what every party was paid, live.
import { $, el, busy } from './dom.js';
import { offerPasskeyUnlock } from './passkey.js';
import { formatAmount, parseAmount, formatDate, short, rules, roleName } from './format.js';
import { loadWallet, wireUnlockForms, humanError, showError, tokenInfo, approveFlow, openSheet, closeSheet, summaryList } from './walletui.js';

const state = {
  wallet: null, accounts: [], account: null, chain: null, token: { symbol: 'ETH', decimals: 18 },
  events: [], event: null, refreshTimer: null,
};

const VIEWS = ['loading', 'restore', 'unlock', 'app'];
function show(name) {
  for (const v of VIEWS) $('view-' + v).hidden = v !== name;
  document.body.dataset.view = name;
}

const ZERO = '0x0000000000000000000000000000000000000000';
const ADDRESS = /^0x[0-9a-fA-F]{40}$/;
const MAX_TIERS = 8, MAX_SPLITS = 9, MAX_DISCOUNTS = 4;
const CATEGORIES = ['Unclassified buyers', 'Fans', 'Superfans', 'Scalpers', 'Bots'];

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
    const c = $('conn');
    c.hidden = false;
    c.textContent = connected ? 'Online' : 'Offline';
    c.classList.toggle('up', connected);
    if (connected && state.event) refreshSoon();
  });
  w.on('eventActivity', (a) => {
    if (state.event && a.event.toLowerCase() === state.event.address.toLowerCase()) refreshSoon();
  });
  try {
    await w.accounts({});
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

async function enter(r) {
  state.accounts = r.accounts;
  show('app');
  const saved = localStorage.getItem('stagepass.issuer.account');
  renderAccounts(state.accounts.find((a) => a.toLowerCase() === (saved || '').toLowerCase()) || state.accounts[0]);
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  await state.wallet.connect({ url: `${proto}//${location.host}/ws` });
  try {
    state.chain = await state.wallet.chainInfo({});
    state.token = await tokenInfo(state.chain.currency || ZERO, state.account);
  } catch (e) { showError(e); }
  initForm();
  await loadEvents();
}

function renderAccounts(selected) {
  state.account = selected;
  $('account').textContent = selected;
  $('account-select').replaceChildren(...state.accounts.map((a, i) =>
    el('option', { value: a, selected: a === selected }, `Account ${i + 1} · ${short(a)}`)));
}

$('account-select').addEventListener('change', async () => {
  state.account = $('account-select').value;
  $('account').textContent = state.account;
  localStorage.setItem('stagepass.issuer.account', state.account);
  resetSplits();
  await loadEvents();
});

$('btn-add-account').onclick = () => busy($('btn-add-account'), async () => {
  try {
    const { address } = await state.wallet.addAccount({});
    state.accounts.push(address);
    renderAccounts(address);
    localStorage.setItem('stagepass.issuer.account', address);
    resetSplits();
    await loadEvents();
  } catch (e) { showError(e); }
});

function selectTab(name) {
  for (const t of ['events', 'create']) {
    $('tab-' + t).setAttribute('aria-selected', String(t === name));
    $('panel-' + t).hidden = t !== name;
  }
}
$('tab-events').onclick = () => selectTab('events');
$('tab-create').onclick = () => selectTab('create');

// ---- my events and their live figures ----

async function loadEvents(select) {
  const events = (await state.wallet.issuerEvents({ issuer: state.account })) || [];
  state.events = events;
  $('events-empty').hidden = events.length > 0;
  $('event-pick-box').hidden = events.length === 0;
  $('form-gate').hidden = events.length === 0;
  const current = select || (state.event && state.event.address) || (events.length ? events[events.length - 1].address : null);
  $('event-select').replaceChildren(...events.map((e) =>
    el('option', { value: e.address, selected: e.address === current }, `${e.name} · ${formatDate(e.startsAt)}`)));
  if (events.length) await pickEvent(current);
  else { state.event = null; $('stats').replaceChildren(); }
  showVerified();
  document.body.dataset.eventsFor = state.account.toLowerCase();
}

$('event-select').addEventListener('change', () => pickEvent($('event-select').value));

async function pickEvent(address) {
  state.event = state.events.find((e) => e.address === address) || state.events[state.events.length - 1];
  document.body.dataset.event = state.event.address;
  try { await state.wallet.watchEvent({ event: state.event.address }); } catch (e) { showError(e); }
  await refreshStats();
}

function refreshSoon() {
  clearTimeout(state.refreshTimer);
  state.refreshTimer = setTimeout(() => refreshStats().catch((e) => showError(e)), 300);
}

async function refreshStats() {
  const ev = state.event;
  if (!ev) return;
  const [st, tok] = await Promise.all([state.wallet.eventStats({ event: ev.address }), tokenInfo(ev.currency, state.account)]);
  if (ev !== state.event) return;
  renderStats(ev, st, tok);
}

function renderStats(ev, st, tok) {
  const money = (x) => formatAmount(x, tok);
  const num = (x) => money(x).replace(' ' + tok.symbol, ''); // in tables, whose caption names the currency
  const supply = ev.tiers.reduce((n, t) => n + t.supply, 0);
  const counter = (label, value, id) => el('div', {}, el('dt', {}, label), el('dd', { id }, value));
  $('stats').replaceChildren(el('div', { class: 'card' },
    el('h3', {}, ev.name),
    el('p', { class: 'muted' }, `${ev.venue ? ev.venue + ' · ' : ''}${formatDate(ev.startsAt)}`),
    el('dl', { class: 'counters' },
      counter('Sold', `${st.sold} / ${supply}`, 'stat-sold'),
      counter('Revenue', money(st.revenue), 'stat-revenue'),
      counter('Resales', String(st.resales), 'stat-resales'),
      counter('Resale volume', money(st.resaleValue), 'stat-resale-value'),
      counter('Checked in', String(st.checkedIn), 'stat-checkins'),
      counter('Listed now', String(st.listed), 'stat-listed')),
    st.cardSold ? el('p', { class: 'muted small' }, `${st.cardSold} of the tickets sold were paid by card.`) : null,
    el('h3', {}, 'Tiers'),
    el('table', { class: 'figures' },
      el('caption', {}, `Amounts in ${tok.symbol}`),
      el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Tier'), el('th', { scope: 'col' }, 'Sold'), el('th', { scope: 'col' }, 'Revenue'))),
      el('tbody', {}, ...st.tiers.map((t) => el('tr', {}, el('th', { scope: 'row' }, t.name), el('td', {}, `${t.sold} / ${t.supply}`), el('td', {}, num(t.revenue)))))),
    el('h3', {}, 'Paid to each party'),
    el('table', { class: 'figures', id: 'payouts' },
      el('caption', {}, `Amounts in ${tok.symbol}: pushed to each party at every sale and resale, and card sales settled by the processor`),
      el('thead', {}, el('tr', {}, ...['Party', 'Sales', 'Resale', 'Card', 'Total'].map((h) => el('th', { scope: 'col' }, h)))),
      el('tbody', {}, ...st.payouts.map((p) => el('tr', { dataset: { account: p.account.toLowerCase(), role: String(p.role) } },
        el('th', { scope: 'row' }, `${roleName(p.role)} ${p.bps / 100}%`, el('br'), el('code', { title: p.account }, short(p.account))),
        el('td', { class: 'primary-amount' }, num(p.primary)), el('td', { class: 'resale-amount' }, num(p.resale)),
        el('td', { class: 'card-amount' }, num(p.card)), el('td', { class: 'total-amount' }, num(p.total)))))),
    el('p', { class: 'muted', id: 'to-sellers' }, `Resellers received ${money(st.toSellers)} of the resale volume.`),
    el('h3', {}, 'Category mix'),
    el('table', { class: 'figures', id: 'category-mix' },
      el('caption', {}, 'Tickets held now, by the buyer category (attested by the oracle network) of their holder when they got them'),
      el('thead', {}, el('tr', {}, el('th', { scope: 'col' }, 'Category'), el('th', { scope: 'col' }, 'Tickets'))),
      el('tbody', {}, ...CATEGORIES.map((c, i) => el('tr', { dataset: { category: String(i) } },
        el('th', { scope: 'row' }, c), el('td', {}, String((st.categories || [])[i] || 0))))))));
  $('gates').replaceChildren(...(st.gates.length ? st.gates.map((g) => el('li', { dataset: { gate: g } }, el('code', {}, g)))
    : [el('li', { class: 'muted' }, 'No door scanner yet.')]));
  document.body.dataset.statsCursor = `${st.cursor.block}/${st.cursor.logIndex}`;
}

$('form-gate').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const input = $('gate-address');
  const addr = input.value.trim();
  const bad = !ADDRESS.test(addr);
  input.setAttribute('aria-invalid', String(bad));
  $('gate-error').hidden = !bad;
  $('gate-error').textContent = bad ? 'Enter an account address: 0x followed by 40 characters 0–9 and a–f.' : '';
  if (bad) return;
  busy($('btn-gate'), async () => {
    try {
      const prepared = await state.wallet.prepareSetGate({ account: state.account, event: state.event.address, gate: addr, allowed: true });
      approveFlow(state.wallet, 'Add a door scanner', prepared, 'Done', () => { input.value = ''; refreshSoon(); });
    } catch (e) { showError(e); }
  });
});

// ---- verify your domain ----
// The wallet signs IssuerClaim(account, domain) (EIP-191, after its summary) and returns the
// stagepass.json to publish at https://DOMAIN/.well-known/; the relay passes the request to
// the oracle nodes, each reads the file itself, and once enough agree OracleHub holds the
// domain, which the relay then shows on the issuer's events (EventInfo.issuerDomain).

const verify = { domain: '', timer: null };

// showVerified says which domain the oracles verified for this account (seen on its events).
function showVerified() {
  const d = (state.events.find((e) => e.issuerDomain) || {}).issuerDomain;
  const st = $('verify-status');
  st.classList.toggle('verified', !!d);
  if (d) {
    st.textContent = `Verified: ${d}. Fans see "verified: ${d}" on your events.`;
    document.body.dataset.verified = d;
  } else if (!verify.timer) {
    st.textContent = 'Not verified: your events say "issuer not verified".';
  }
}

// domainOf reads a host name (and port) from what was typed: a scheme or a trailing slash
// is dropped, a path is refused.
function domainOf(text) {
  const d = text.trim().toLowerCase().replace(/^https?:\/\//, '').replace(/\/$/, '');
  return /^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*(:\d{1,5})?$/.test(d) ? d : null;
}

$('form-verify').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const input = $('verify-domain');
  const domain = domainOf(input.value);
  input.setAttribute('aria-invalid', String(!domain));
  $('verify-error').hidden = !!domain;
  $('verify-error').textContent = domain ? '' : 'Enter your web domain only, like tickets.example.com (no path).';
  if (!domain) return;
  busy($('btn-verify-file'), async () => {
    try {
      const prepared = await state.wallet.prepareIssuerFile({ account: state.account, domain });
      openSheet(prepared.summary.title);
      $('sheet-content').append(summaryList(prepared.summary));
      const sign = el('button', { type: 'button', class: 'primary', id: 'btn-approve' }, 'Sign');
      const cancel = el('button', { type: 'button', class: 'secondary', id: 'btn-cancel' }, 'Cancel');
      cancel.onclick = async () => { closeSheet(); try { await state.wallet.reject({ id: prepared.id }); } catch { /* gone */ } };
      sign.onclick = () => busy(sign, async () => {
        try {
          const { file } = await state.wallet.approve({ id: prepared.id });
          closeSheet();
          showFile(domain, file);
        } catch (e) { showError(e, $('sheet-error')); }
      });
      $('sheet-actions').append(cancel, sign);
      sign.focus();
    } catch (e) { showError(e); }
  });
});

function showFile(domain, file) {
  verify.domain = domain;
  const text = JSON.stringify(file, null, 2) + '\n';
  $('verify-url').textContent = `https://${domain}/.well-known/stagepass.json`;
  $('verify-file').textContent = text;
  $('verify-file-box').hidden = false;
  $('btn-verify-copy').onclick = async () => {
    try { await navigator.clipboard.writeText(text); $('btn-verify-copy').textContent = 'Copied'; } catch { showError(new Error('This browser would not copy: select the text above instead.')); }
  };
  $('btn-verify-download').onclick = () => {
    const a = el('a', { href: URL.createObjectURL(new Blob([text], { type: 'application/json' })), download: 'stagepass.json' });
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 1000);
  };
  document.body.dataset.issuerFile = text;
  $('verify-file-box').scrollIntoView({ block: 'start' });
}

$('btn-verify-ask').onclick = () => busy($('btn-verify-ask'), async () => {
  const domain = verify.domain;
  try {
    await state.wallet.requestIssuerVerification({ account: state.account, domain });
  } catch (e) { showError(e); return; }
  const st = $('verify-status');
  st.textContent = `Asked the oracles to verify ${domain}: each reads https://${domain}/.well-known/stagepass.json itself, and the domain shows here once enough of them agree. Keep the file published.`;
  clearInterval(verify.timer);
  const started = Date.now();
  verify.timer = setInterval(async () => {
    try {
      const evs = await state.wallet.issuerEvents({ issuer: state.account });
      if (evs.some((e) => e.issuerDomain === domain)) {
        clearInterval(verify.timer);
        verify.timer = null;
        state.events = evs;
        showVerified();
      } else if (!evs.length) {
        st.textContent += ' (It shows on your events: create one to see it.)';
        clearInterval(verify.timer);
        verify.timer = null;
      } else if (Date.now() - started > 5 * 60e3) {
        clearInterval(verify.timer);
        verify.timer = null;
        st.textContent = `Not verified yet: the oracles could not read a file naming this account at https://${domain}/.well-known/stagepass.json. Check it is published and ask again.`;
      }
    } catch { /* offline: try again on the next tick */ }
  }, 2000);
  document.body.dataset.verifyAsked = domain;
});

// ---- create an event ----

const pad = (n) => String(n).padStart(2, '0');
function localInput(unix) {
  const d = new Date(unix * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())}T${pad(d.getHours())}:${pad(d.getMinutes())}`;
}
function unixOf(id) {
  const v = $(id).value;
  if (!v) return 0;
  const t = new Date(v).getTime();
  return Number.isFinite(t) ? Math.floor(t / 1000) : 0;
}

let rowSeq = 0;
function input(id, label, props = {}) {
  return [el('label', { for: id }, label), el('input', { id, autocomplete: 'off', ...props })];
}
function removeButton(row, what) {
  return el('button', { type: 'button', class: 'secondary remove', onclick: () => { row.remove(); update(); } }, `Remove ${what}`);
}

function addTier(name = '', face = '', supply = '') {
  if ($('tiers').children.length >= MAX_TIERS) return;
  const i = rowSeq++;
  const row = el('div', { class: 'row-group tier-row' },
    ...input(`tier-name-${i}`, 'Tier name', { value: name, class: 'tier-name' }),
    el('div', { class: 'two' },
      el('div', {}, ...input(`tier-face-${i}`, `Face value (${state.token.symbol})`, { value: face, inputmode: 'decimal', class: 'tier-face' })),
      el('div', {}, ...input(`tier-supply-${i}`, 'Tickets', { value: supply, inputmode: 'numeric', class: 'tier-supply' }))));
  row.append(removeButton(row, 'tier'));
  $('tiers').append(row);
}

function addDiscount(from = '', pct = '') {
  if ($('discounts').children.length >= MAX_DISCOUNTS) return;
  const i = rowSeq++;
  const row = el('div', { class: 'row-group discount-row' },
    el('div', { class: 'two' },
      el('div', {}, ...input(`disc-from-${i}`, 'From', { type: 'datetime-local', value: from, class: 'disc-from' })),
      el('div', {}, ...input(`disc-pct-${i}`, 'Up to % below face', { value: pct, inputmode: 'decimal', class: 'disc-pct' }))));
  row.append(removeButton(row, 'discount step'));
  $('discounts').append(row);
}

function addSplit(account = '', role = 0, pct = '') {
  if ($('splits').children.length >= MAX_SPLITS) return;
  const i = rowSeq++;
  const roleSel = el('select', { id: `split-role-${i}`, class: 'split-role' },
    ...[0, 1, 2, 3, 4].map((r) => el('option', { value: r, selected: r === role }, roleName(r))));
  const row = el('div', { class: 'row-group split-row' },
    ...input(`split-account-${i}`, 'Account', { value: account, class: 'split-account', autocapitalize: 'none', spellcheck: 'false', placeholder: '0x…' }),
    el('div', { class: 'two' },
      el('div', {}, el('label', { for: `split-role-${i}` }, 'Role'), roleSel),
      el('div', {}, ...input(`split-pct-${i}`, 'Share (%)', { value: pct, inputmode: 'decimal', class: 'split-pct' }))));
  row.append(removeButton(row, 'party'));
  $('splits').append(row);
}

function resetSplits() {
  $('splits').replaceChildren();
  addSplit(state.account || '', 0, '100');
  update();
}

let formReady = false;
function initForm() {
  if (formReady) return;
  formReady = true;
  const day = 86400;
  const d = new Date(Date.now() + 30 * day * 1000);
  d.setHours(20, 0, 0, 0);
  const starts = Math.floor(d.getTime() / 1000);
  $('ev-starts').value = localInput(starts);
  $('ev-doors').value = localInput(starts - 3600);
  $('ev-resale-close').value = localInput(starts - 3 * 3600);
  $('ev-currency').textContent = `Prices are in ${state.token.symbol}.`;
  addTier('General admission', '', '');
  $('quotas').replaceChildren(...CATEGORIES.map((c, i) => el('div', {}, ...input(`quota-${i}`, `${c} (%)`, { value: '100', inputmode: 'decimal', class: 'quota' }))));
  resetSplits();
  const touched = (e) => { if (e.target.dataset) e.target.dataset.touched = 'true'; update(); };
  $('form-event').addEventListener('input', touched);
  $('form-event').addEventListener('change', touched);
  $('btn-add-tier').onclick = () => { addTier(); update(); };
  $('btn-add-discount').onclick = () => { addDiscount(); update(); };
  $('btn-add-split').onclick = () => { addSplit('', 1, ''); update(); };
  update();
}

// bps reads a percentage with at most two decimals as basis points; NaN if it is not one.
function bps(text) {
  const s = String(text).trim();
  if (!/^\d+(\.\d{1,2})?$/.test(s)) return NaN;
  return Math.round(Number(s) * 100);
}

// readForm returns the configuration as the wallet takes it (the shape of the relay's
// events, so the fan app's own code can preview it) and the problems, each with its field.
function readForm() {
  const problems = [];
  const bad = (field, msg) => problems.push({ field, msg });
  const now = Date.now() / 1000;
  const cfg = {
    name: $('ev-name').value.trim(), venue: $('ev-venue').value.trim(), baseURI: '',
    startsAt: unixOf('ev-starts'), doorsOpenAt: unixOf('ev-doors'), resaleClosesAt: unixOf('ev-resale-close'),
    currency: (state.chain && state.chain.currency) || ZERO,
    maxPerBuyer: Number($('ev-limit').value), maxResaleMarkupBps: bps($('ev-cap').value), sellerMarkupShareBps: bps($('ev-share').value),
    giftsAllowed: $('ev-gifts').checked, tiers: [], splits: [], discounts: [], categoryQuotaBps: [],
  };
  if (!cfg.name) bad('ev-name', 'Give the event a name.');
  if (!cfg.startsAt) bad('ev-starts', 'Set when the event starts.');
  else if (cfg.startsAt <= now) bad('ev-starts', 'The event must start in the future.');
  if (!cfg.doorsOpenAt) bad('ev-doors', 'Set when the doors open.');
  else if (cfg.startsAt && cfg.doorsOpenAt > cfg.startsAt) bad('ev-doors', 'The doors must open before the event starts.');
  if (!cfg.resaleClosesAt) bad('ev-resale-close', 'Set when resale closes.');
  else if (cfg.startsAt && cfg.resaleClosesAt > cfg.startsAt) bad('ev-resale-close', 'Resale must close before the event starts.');
  else if (cfg.resaleClosesAt <= now) bad('ev-resale-close', 'Resale must close in the future.');
  if (!Number.isInteger(cfg.maxPerBuyer) || cfg.maxPerBuyer < 1 || cfg.maxPerBuyer > 65535) bad('ev-limit', 'Allow each buyer at least 1 ticket (a whole number).');
  if (!(cfg.maxResaleMarkupBps >= 0 && cfg.maxResaleMarkupBps <= 65535)) bad('ev-cap', 'The resale cap is a percentage from 0 to 655.35, at most two decimals.');
  if (!(cfg.sellerMarkupShareBps >= 0 && cfg.sellerMarkupShareBps <= 10000)) bad('ev-share', "The seller's share is a percentage from 0 to 100.");
  // Presale windows (EventFactory: superfan ≤ fan presale end < resale close); the event
  // reads buyer categories from the relay's OracleHub.
  const hub = state.chain && state.chain.hub;
  if (hub) cfg.categoryRegistry = hub;
  cfg.presaleEndsAt = unixOf('ev-presale');
  cfg.superfanPresaleEndsAt = unixOf('ev-superfan-presale');
  if (cfg.superfanPresaleEndsAt && !cfg.presaleEndsAt) bad('ev-presale', 'Set when the fan presale ends too: the superfan presale must end no later than it.');
  else if (cfg.superfanPresaleEndsAt > cfg.presaleEndsAt) bad('ev-superfan-presale', 'The superfan presale must end no later than the fan presale.');
  if (cfg.presaleEndsAt && cfg.resaleClosesAt && cfg.presaleEndsAt >= cfg.resaleClosesAt) bad('ev-presale', 'The fan presale must end before resale closes.');
  if (cfg.presaleEndsAt && !hub) bad('ev-presale', 'This server has no oracle network to attest fans, so it cannot run a presale.');

  const tiers = [...$('tiers').children];
  if (!tiers.length) bad('btn-add-tier', 'Add at least one ticket tier.');
  let total = 0;
  tiers.forEach((row, i) => {
    const name = row.querySelector('.tier-name'), face = row.querySelector('.tier-face'), supply = row.querySelector('.tier-supply');
    const t = { name: name.value.trim(), faceValue: '0', supply: Number(supply.value), sold: 0 };
    if (!t.name) bad(name.id, `Name tier ${i + 1}.`);
    try { t.faceValue = parseAmount(face.value, state.token).toString(); } catch (e) { bad(face.id, `Tier ${i + 1} face value: ${e.message}.`); }
    if (!Number.isInteger(t.supply) || t.supply < 1 || supply.value.trim() === '') bad(supply.id, `Tier ${i + 1} needs at least 1 ticket (a whole number).`);
    else total += t.supply;
    cfg.tiers.push(t);
  });
  if (total > 16777215) bad('btn-add-tier', `${total} tickets in all; at most 16,777,215.`);

  let last = 0;
  [...$('discounts').children].forEach((row, i) => {
    const from = row.querySelector('.disc-from'), pct = row.querySelector('.disc-pct');
    const d = { from: from.value ? Math.floor(new Date(from.value).getTime() / 1000) : 0, maxDiscountBps: bps(pct.value) };
    if (!d.from) bad(from.id, `Discount step ${i + 1}: set when it starts.`);
    else if (i > 0 && d.from <= last) bad(from.id, 'Discount steps must be in time order.');
    if (!(d.maxDiscountBps >= 0 && d.maxDiscountBps <= 10000)) bad(pct.id, `Discount step ${i + 1}: a percentage from 0 to 100.`);
    last = d.from;
    cfg.discounts.push(d);
  });

  [...$('quotas').querySelectorAll('.quota')].forEach((q, i) => {
    const v = bps(q.value);
    if (!(v >= 0 && v <= 10000)) bad(q.id, `${CATEGORIES[i]} quota: a percentage from 0 to 100.`);
    cfg.categoryQuotaBps.push(Number.isFinite(v) ? v : 0);
  });

  const splits = [...$('splits').children];
  if (!splits.length) bad('btn-add-split', 'Add at least one party to pay.');
  let sum = 0;
  splits.forEach((row, i) => {
    const acct = row.querySelector('.split-account'), role = row.querySelector('.split-role'), pct = row.querySelector('.split-pct');
    const s = { account: acct.value.trim(), role: Number(role.value), bps: bps(pct.value) };
    if (!ADDRESS.test(s.account)) bad(acct.id, `Party ${i + 1}: an account address is 0x followed by 40 characters 0–9 and a–f.`);
    if (!(s.bps >= 0 && s.bps <= 10000)) bad(pct.id, `Party ${i + 1}: a share from 0 to 100%.`);
    else sum += s.bps;
    cfg.splits.push(s);
  });
  $('split-sum').textContent = `Shares add up to ${sum / 100}%.`;
  if (splits.length && sum !== 10000) bad(splits[0].querySelector('.split-pct').id, `The shares add up to ${sum / 100}%; they must add up to 100%.`);
  return { cfg, problems };
}

// update checks the form and redraws what a fan will see, with the fan app's own words.
// Problems are shown for the fields already edited, and all of them once signing was tried.
let tried = false;
function update() {
  const { cfg, problems } = readForm();
  const shown = problems.filter((p) => tried || ($(p.field) && $(p.field).dataset.touched));
  for (const f of $('form-event').querySelectorAll('[aria-invalid]')) f.removeAttribute('aria-invalid');
  for (const p of shown) $(p.field)?.setAttribute('aria-invalid', 'true');
  $('problems').hidden = shown.length === 0;
  $('problems').replaceChildren(el('p', {}, 'Before signing, fix:'), el('ul', {}, ...shown.map((p) => el('li', {}, p.msg))));
  document.body.dataset.problems = String(problems.length);
  const tok = state.token;
  const tiers = cfg.tiers.filter((t) => t.name);
  const ok = tiers.length > 0 && cfg.splits.length > 0 && problems.length === 0;
  $('preview').replaceChildren(el('div', { class: 'event fan-view' },
    el('h3', {}, cfg.name || 'Your event'),
    el('div', { class: 'muted' }, `${cfg.venue || 'Venue'} · ${formatDate(cfg.startsAt)}`),
    ...tiers.map((t) => el('div', { class: 'tier' },
      el('div', {}, el('strong', {}, t.name), el('div', { class: 'muted' }, `${t.supply || 0} of ${t.supply || 0} left`)),
      el('div', { class: 'price' }, formatAmount(t.faceValue, tok)))),
    ok ? el('ul', { class: 'rules', id: 'preview-rules' }, ...rules({ ...cfg, tiers }, tok).map((r) => el('li', {}, r)))
      : el('p', { class: 'muted' }, 'The rules appear here once the form is complete.')));
  return { cfg, problems };
}

$('form-event').addEventListener('submit', (ev) => {
  ev.preventDefault();
  showError(null);
  tried = true;
  const { cfg, problems } = update();
  if (problems.length) { $('problems').scrollIntoView({ block: 'center' }); $(problems[0].field)?.focus(); return; }
  busy($('btn-create-event'), async () => {
    $('btn-create-event').textContent = 'Preparing…';
    try {
      const before = state.events.length;
      const prepared = await state.wallet.prepareCreateEvent({ account: state.account, config: cfg });
      approveFlow(state.wallet, 'Create ' + cfg.name, prepared, 'See my event', async () => {
        selectTab('events');
        // The relay indexes the new event within a block or two.
        for (let i = 0; i < 40; i++) {
          const evs = await state.wallet.issuerEvents({ issuer: state.account });
          if (evs.length > before) { await loadEvents(evs[evs.length - 1].address); return; }
          await new Promise((r) => setTimeout(r, 500));
        }
        showError(new Error('The event was created; it will appear here in a moment.'));
      });
    } catch (e) {
      showError(e);
      $('error').scrollIntoView({ block: 'center' });
    }
  });
});

boot().catch((e) => { show('loading'); $('loading-title').textContent = 'Something went wrong'; $('loading-detail').textContent = humanError(e); });
