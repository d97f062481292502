// Stagepass fan app: onboarding, events with their rules, gasless purchase with TestUSD,
// my tickets (live), the rotating door pass, and resale within the event's range.
// The wallet (Go → wasm) runs in a Web Worker; this page only talks to it by messages.
import { formatAmount, parseAmount, formatDate, short, rules, resaleCap, resaleSplit, isNative, roleName, eventCategory, presale, presaleText } from './format.js';
import { drawQR } from './qr.js';

import { $, el, busy } from './dom.js';
import { offerPasskeyUnlock, walletSettings } from './passkey.js';
import { loadWallet, wireUnlockForms, humanError, showError, tokenInfo as walletTokenInfo, permitInfo, openSheet, closeSheet, summaryList, approveFlow as walletApproveFlow } from './walletui.js';

const state = {
  wallet: null, account: null, chain: null, events: [], view: null,
  accounts: [], imported: new Set(), // the wallet's accounts; the imported ones (lower case)
  names: {}, // the names the fan gave accounts (lower-case address → name), kept in the wallet
  chainLive: false, // state.chain came from the relay (not only from the last visit)
  category: null, // the wallet's sp_category view: the fan's category, why, and what is attested
  requests: new Map(), // request id → progress callback
  payments: new Map(), // card payment id (0x…) → progress callback
  // the relay's last sp_finality answer per ticket ("event/tokenId"), passed through by the
  // wallet; null when the relay follows no main chain
  finality: {},
  // the main-chain bridge (chainInfo.gateway): the bridged stablecoin with this account's
  // balance (wallet.bridgeBalance) and the withdrawals paid to it (wallet.withdrawals)
  bridged: null, withdrawals: [],
  // deposits from the main chain: its stablecoin with this account's balance and the
  // permit details (wallet.mainBalance), and the deposits credited to it (wallet.deposits)
  main: null, deposits: [], expectDeposits: 0,
  expectWithdrawals: 0, // how many this page has sent: the relay's list may lag behind
  // the relay pushes this account's withdrawal and deposit stages (its "bridge" topic,
  // through the wallet): then the lists are read again on each push and polled only slowly
  // as a fallback; a relay without the topic (the Workers build) is polled as before
  bridgePushes: false,
};

const VIEWS = ['loading', 'onboard', 'unlock', 'app'];
function show(name) {
  for (const v of VIEWS) $('view-' + v).hidden = v !== name;
  document.body.dataset.view = name;
}

// ---- start ----

async function boot() {
  show('loading');
  state.wallet = await loadWallet();
  if (!state.wallet) {
    $('loading-title').textContent = 'The wallet is not built into this server';
    $('loading-detail').textContent = 'Run `go generate ./site` (or ./build.sh) and restart the relay.';
    return;
  }
  const w = state.wallet;
  w.on('connection', ({ connected }) => {
    const c = $('conn');
    c.hidden = false;
    c.textContent = connected ? 'Online' : 'Offline';
    c.classList.toggle('up', connected);
  });
  w.on('tickets', (view) => renderTickets(view));
  w.on('request', (st) => { const f = state.requests.get(st.id); if (f) f(st); });
  w.on('payment', (st) => { const f = state.payments.get((st.paymentId || '').toLowerCase()); if (f) f(st); });
  w.on('bridge', onBridgePush);
  try {
    await w.accounts({});
    show('unlock');
    $('unlock-password').focus();
    offerPasskeyUnlock(w, $('form-unlock'), () => enter());
  } catch (e) {
    if (e.code !== 'NO_WALLET') throw e;
    show('onboard');
  }
  document.body.dataset.ready = 'true';
}

$('form-create').addEventListener('submit', (ev) => {
  ev.preventDefault();
  showError(null);
  const password = $('create-password').value;
  if (password.length < 8) { showError({ code: 'WEAK_PASSWORD' }); return; }
  busy($('btn-create'), async () => {
    $('btn-create').textContent = 'Creating…';
    try {
      await state.wallet.create({ password });
      localStorage.setItem('stagepass.backupPending', '1');
      await enter();
    } catch (e) { showError(e); }
  });
});

wireUnlockForms(() => state.wallet, async (_, how) => {
  if (how === 'restore') localStorage.removeItem('stagepass.backupPending'); // the phrase was typed in: backed up
  await enter();
});

// The account the app acts for, remembered on this device (an address is no secret); account
// 0 when it is no longer in the wallet (another phrase restored).
const CHOSEN = 'stagepass.account';
const same = (a, b) => !!a && !!b && a.toLowerCase() === b.toLowerCase();

async function enter() {
  await loadAccounts();
  const want = localStorage.getItem(CHOSEN);
  setAccount(state.accounts.find((a) => same(a, want)) || state.accounts[0]);
  // The chain's id for door passes, known offline from the last visit.
  try { state.chain = JSON.parse(localStorage.getItem('stagepass.chain') || 'null'); } catch { state.chain = null; }
  walletSettings(state.wallet, $('account').parentElement, () => state.account, async (address, use) => {
    await loadAccounts();
    if (use) await switchAccount(address);
  });
  $('backup-reminder').hidden = !localStorage.getItem('stagepass.backupPending');
  show('app');
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  await state.wallet.connect({ url: `${proto}//${location.host}/ws` });
  await showAccount();
}

// ---- accounts: the picker ----

// loadAccounts lists the wallet's accounts in the picker: "Name — 0x12…abcd" for a named
// one, else "Account N: 0x12…abcd" (derived from the phrase) or "Imported: 0x12…abcd". r is
// an accounts result the wallet already gave (renameAccount, removeAccount), else asked for.
async function loadAccounts(r) {
  r = r || await state.wallet.accounts({});
  state.accounts = r.accounts || [];
  state.imported = new Set((r.imported || []).map((a) => a.toLowerCase()));
  state.names = Object.fromEntries(Object.entries(r.names || {}).map(([a, n]) => [a.toLowerCase(), n]));
  let n = 0;
  $('account-select').replaceChildren(...state.accounts.map((a) => {
    const label = state.imported.has(a.toLowerCase()) ? `Imported: ${short(a)}` : `Account ${n++}: ${short(a)}`;
    const name = state.names[a.toLowerCase()];
    return el('option', { value: a }, name ? `${name} — ${short(a)}` : label);
  }));
  if (state.account) $('account-select').value = state.account;
  accountButtons();
}

function setAccount(account) {
  state.account = account;
  localStorage.setItem(CHOSEN, account);
  $('account').textContent = account;
  $('account-select').value = account;
  document.body.dataset.account = account.toLowerCase();
  accountButtons();
}

// accountButtons offers "Remove this imported account" for imported accounts only (those
// derived from the recovery phrase come back with it).
function accountButtons() {
  $('btn-remove-account').hidden = !state.account || !state.imported.has(state.account.toLowerCase());
}

// showAccount shows what belongs to state.account: its tickets (the wallet's live feed for
// this owner), then, online, its balances, main-chain panel, category, the events as they
// are for it (presale, its own listings) and its card purchases in flight.
async function showAccount() {
  const account = state.account;
  // The wallet follows the tickets of the account shown only: the feeds of accounts shown
  // before end on the relay (coming back resumes one from its cached cursor).
  await state.wallet.followAccounts({ accounts: [account] });
  if (account !== state.account) return;
  renderTickets(await state.wallet.tickets({ account }));
  if (account !== state.account) return;
  try {
    if (!state.chainLive) {
      state.chain = await state.wallet.chainInfo({});
      state.chainLive = true;
      localStorage.setItem('stagepass.chain', JSON.stringify(state.chain));
    }
    loadMainChain();
    await loadCategory();
    if (account !== state.account) return;
    await loadEvents();
    refreshBalance();
    resumePayments();
  } catch (e) {
    if (e.code !== 'OFFLINE' && e.code !== 'NOT_CONNECTED') showError(e);
  }
}

// switchAccount re-points the app to another account of the wallet: what was shown for the
// previous one (tickets, balances, withdrawals and deposits, category, a card purchase being
// followed, an open door pass) is dropped and its timers stopped before the new one loads.
// The wallet then follows this account's tickets only.
async function switchAccount(account) {
  if (!account || same(account, state.account)) return;
  if (!$('pass').hidden) $('btn-pass-close').click();
  if (!$('sheet').hidden && !$('btn-cancel')?.disabled) closeSheet();
  showError(null);
  setAccount(account);
  clearTimeout(withdrawalsTimer);
  clearTimeout(depositsTimer);
  clearTimeout(exitOpenTimer);
  clearTimeout(finalityTimer);
  finalityRound++;
  state.payments.clear();
  state.requests.clear();
  Object.assign(state, { view: null, finality: {}, category: null, bridged: null, main: null,
    withdrawals: [], deposits: [], expectDeposits: 0, expectWithdrawals: 0, bridgePushes: false });
  document.body.dataset.bridge = 'poll';
  $('tickets').replaceChildren();
  $('ticket-count').textContent = '';
  $('tickets-empty').hidden = false;
  for (const id of ['balance', 'bridge-balance', 'main-balance']) $(id).textContent = '…';
  delete $('balance').dataset.raw;
  renderWithdrawals();
  renderDeposits();
  $('category').replaceChildren(el('p', { class: 'muted' }, 'Loading…'));
  delete document.body.dataset.category;
  await showAccount();
}

$('account-select').addEventListener('change', () => switchAccount($('account-select').value).catch((e) => showError(e)));

$('btn-add-account').onclick = () => busy($('btn-add-account'), async () => {
  showError(null);
  try {
    const { address } = await state.wallet.addAccount({});
    await loadAccounts();
    await switchAccount(address);
  } catch (e) { showError(e); }
});

// Rename: a name for the account shown ("Concerts", "Work"), kept in the wallet with its
// accounts (on this device; a restore from the phrase starts without names).
$('btn-rename-account').onclick = () => {
  const account = state.account;
  const current = state.names[account.toLowerCase()] || '';
  openSheet(current ? `Rename “${current}”` : 'Name this account');
  const input = el('input', { id: 'account-name', autocomplete: 'off', maxlength: '32', required: true, value: current, 'aria-describedby': 'account-name-hint' });
  const form = el('form', { id: 'form-rename', novalidate: true },
    el('label', { for: 'account-name' }, `Name for ${short(account)}`), input,
    el('p', { id: 'account-name-hint', class: 'muted' }, 'Up to 32 characters, such as Concerts or Work. Kept in this wallet on this device.'));
  const save = el('button', { type: 'submit', form: 'form-rename', class: 'primary', id: 'btn-save-name' }, 'Save name');
  form.onsubmit = (ev) => {
    ev.preventDefault();
    busy(save, async () => {
      showError(null, $('sheet-error'));
      try {
        await loadAccounts(await state.wallet.renameAccount({ account, name: input.value }));
        closeSheet();
        $('btn-rename-account').focus();
      } catch (e) { showError(e, $('sheet-error')); input.focus(); }
    });
  };
  $('sheet-content').append(form);
  $('sheet-actions').append(el('button', { type: 'button', class: 'secondary', onclick: () => { closeSheet(); $('btn-rename-account').focus(); } }, 'Cancel'), save);
  input.focus();
  input.select();
};

// Remove an imported account: its key leaves the wallet (password-confirmed); the app then
// acts for account 0.
$('btn-remove-account').onclick = () => {
  const account = state.account;
  const name = state.names[account.toLowerCase()];
  openSheet('Remove this imported account?');
  const pw = el('input', { id: 'remove-password', type: 'password', autocomplete: 'current-password', required: true });
  const form = el('form', { id: 'form-remove', novalidate: true },
    el('p', {}, 'Remove ', el('strong', {}, name ? `${name} — ${short(account)}` : short(account)), ' from this wallet?'),
    el('p', { class: 'warn', id: 'remove-warning' }, 'Its key will be gone from this wallet. You can only use this account again if you still have its keystore file (and that file\'s password). Its tickets and money stay with the account on the chain, out of this wallet\'s reach.'),
    el('label', { for: 'remove-password' }, 'Your wallet password'), pw);
  const remove = el('button', { type: 'submit', form: 'form-remove', class: 'primary danger', id: 'btn-confirm-remove' }, 'Remove the account');
  form.onsubmit = (ev) => {
    ev.preventDefault();
    busy(remove, async () => {
      showError(null, $('sheet-error'));
      try {
        const r = await state.wallet.removeAccount({ account, password: pw.value });
        pw.value = '';
        closeSheet();
        await loadAccounts(r);
        document.body.dataset.removed = account.toLowerCase();
        if (same(account, state.account)) await switchAccount(state.accounts[0]);
        $('account-select').focus();
      } catch (e) { showError(e, $('sheet-error')); pw.focus(); }
    });
  };
  $('sheet-content').append(form);
  $('sheet-actions').append(el('button', { type: 'button', class: 'secondary', id: 'btn-cancel-remove', onclick: () => { closeSheet(); $('btn-remove-account').focus(); } }, 'Cancel'), remove);
  pw.focus();
};

// refreshBalance shows this account's balance of the events' stablecoins (sp_permitInfo).
async function refreshBalance() {
  const account = state.account;
  const coins = [...new Set(state.events.filter((ev) => !isNative(ev)).map((ev) => ev.currency.toLowerCase()))];
  if (!coins.length) return;
  let infos;
  try { infos = await Promise.all(coins.map((c) => permitInfo(c, account))); } catch { return; } // offline: keep what is shown
  if (account !== state.account) return;
  infos = infos.filter(Boolean);
  $('balance').textContent = infos.map((i) => formatAmount(i.balance || '0', i)).join(', ');
  $('balance').dataset.raw = infos.map((i) => i.balance || '0').join(',');
  $('balance').dataset.tokens = coins.join(',');
}

// ---- events ----

function tokenInfo(addr) { return walletTokenInfo(addr, state.account); }

async function loadEvents() {
  const events = (await state.wallet.events({})) || [];
  state.events = events;
  const list = $('events');
  list.replaceChildren();
  if (!events.length) list.append(el('li', { class: 'muted' }, 'No events on sale yet.'));
  for (const ev of events) {
    const tok = await tokenInfo(ev.currency);
    const li = renderEvent(ev, tok);
    list.append(li);
    if (!isNative(ev)) loadListings(ev, tok, li.querySelector('.listings')).catch((e) => showError(e));
  }
}

function renderEvent(ev, tok) {
  const now = Date.now() / 1000;
  const presaleNow = presaleText(ev, eventCategory(ev, state.category), now);
  // How to pay: the processor's card checkout (the oracle network confirms the payment) or
  // the event's stablecoin from the wallet (a permit, gasless).
  const choice = el('div', { class: 'pay-choice', role: 'group', 'aria-label': 'How to pay', dataset: { pay: 'token' } });
  const payBtn = (pay, text) => el('button', {
    type: 'button', class: 'pay-' + pay, 'aria-pressed': String(pay === 'token'),
    onclick: () => {
      choice.dataset.pay = pay;
      choice.querySelectorAll('button').forEach((b) => b.setAttribute('aria-pressed', String(b.classList.contains('pay-' + pay))));
    },
  }, text);
  if (!isNative(ev)) choice.append(payBtn('card', 'Pay by card'), payBtn('token', `Pay with ${tok.symbol}`));
  const closed = ev.cancelled || (ev.resaleClosesAt && now > ev.resaleClosesAt);
  const tiers = ev.tiers.map((t, i) => {
    const left = t.supply - t.sold;
    const max = Math.max(1, Math.min(ev.maxPerBuyer || 10, left, 10));
    const qtyId = `qty-${ev.address}-${i}`;
    const qty = el('select', { id: qtyId }, ...Array.from({ length: max }, (_, k) => el('option', { value: k + 1 }, String(k + 1))));
    const canBuy = !closed && left > 0 && !isNative(ev);
    const byCard = () => choice.dataset.pay === 'card';
    return el('div', { class: 'tier' },
      el('div', {}, el('strong', {}, t.name), el('div', { class: 'muted' }, `${left} of ${t.supply} left`)),
      el('div', { class: 'price' }, formatAmount(t.faceValue, tok)),
      el('div', { class: 'buy-row' },
        el('label', { for: qtyId }, `Quantity of ${t.name}`), qty,
        el('button', {
          type: 'button', class: 'primary buy', disabled: !canBuy, dataset: { event: ev.address, tier: String(i) },
          onclick: (e) => (byCard() ? buyByCard : buy)(ev, i, Number(qty.value), tok, e.currentTarget),
        }, left > 0 ? `Buy ${t.name}` : 'Sold out')));
  });
  return el('li', { class: 'card event', dataset: { event: ev.address } },
    el('h3', {}, ev.name),
    el('div', { class: 'muted' }, `${ev.venue} · ${formatDate(ev.startsAt)}`),
    // Who publishes it: a web domain the oracle network verified the issuer controls.
    ev.issuerDomain ? el('p', { class: 'issuer verified', title: 'The oracle network checked that this issuer controls this web domain' },
      el('span', { 'aria-hidden': 'true' }, '✓ '), `verified: ${ev.issuerDomain}`)
      : el('p', { class: 'issuer unverified' }, 'Issuer not verified: no one has checked which organisation publishes this event.'),
    ev.cancelled ? el('p', { class: 'error' }, 'This event is cancelled.') : null,
    presaleNow ? el('p', { class: 'presale notice' }, presaleNow) : null,
    el('details', {}, el('summary', {}, 'The rules of this event'),
      el('ul', { class: 'rules' }, ...rules(ev, tok).map((r) => el('li', {}, r)))),
    choice,
    ...tiers,
    el('p', { class: 'error buy-error', role: 'alert', hidden: true }),
    isNative(ev) ? null : el('div', { class: 'resale' }, el('h4', {}, 'Resale'),
      el('ul', { class: 'listings list', 'aria-live': 'polite' }, el('li', { class: 'muted' }, 'Loading…'))));
}

// ---- sheet: summary → approve → progress ----

// approveFlow: the wallet's summary → Approve and sign → accepted → sent → mined (walletui.js).
function approveFlow(title, prepared, doneText, onDone) { walletApproveFlow(state.wallet, title, prepared, doneText, onDone); }

// presaleRefusal: the presale in words when this fan's category may not buy yet (EventTicket
// would revert with PresaleOnly), shown in the event's card before anything is signed.
function presaleRefusal(ev, button) {
  const where = button.closest('.event').querySelector('.buy-error');
  const cat = eventCategory(ev, state.category);
  if (presale(ev, cat).open) { showError(null, where); return false; }
  showError(new Error('Not yet. ' + presaleText(ev, cat) + ' Nothing was signed.'), where);
  return true;
}

async function buy(ev, tier, quantity, tok, button) {
  showError(null);
  if (presaleRefusal(ev, button)) return;
  await busy(button, async () => {
    button.textContent = 'Preparing…';
    try {
      const prepared = await state.wallet.prepareBuy({ account: state.account, event: ev.address, tier, quantity });
      approveFlow(`Buy ${quantity} × ${ev.tiers[tier].name}`, prepared, 'See my tickets', () => selectTab('tickets'));
    } catch (e) { showError(e); }
  });
  void tok;
}

// ---- pay by card ----
// The wallet checks the relay's payment intent and signs requestPurchase (gasless); once
// that is on the chain the fan pays on the processor's hosted checkout (in a frame; a link
// opens it in this tab instead); the oracle network confirms the payment and the ticket is
// minted. Payments in flight are kept in localStorage, so a reload (or the checkout in
// this tab) resumes following them after unlock.

const PENDING = 'stagepass.cardPayments';
function pendingPayments() {
  try { return JSON.parse(localStorage.getItem(PENDING) || '[]'); } catch { return []; }
}
function rememberPayment(p) {
  localStorage.setItem(PENDING, JSON.stringify([...pendingPayments().filter((q) => q.id !== p.id), p]));
}
function forgetPayment(id) {
  localStorage.setItem(PENDING, JSON.stringify(pendingPayments().filter((q) => q.id !== id)));
}

async function buyByCard(ev, tier, quantity, tok, button) {
  showError(null);
  if (presaleRefusal(ev, button)) return;
  await busy(button, async () => {
    button.textContent = 'Preparing…';
    try {
      const prepared = await state.wallet.prepareCardBuy({ account: state.account, event: ev.address, tier, quantity });
      cardSummary(`Buy ${quantity} × ${ev.tiers[tier].name} by card`, prepared);
    } catch (e) { showError(e); }
  });
  void tok;
}

function cardSummary(title, prepared) {
  openSheet(title);
  $('sheet-content').append(summaryList(prepared.summary),
    el('p', { class: 'muted' }, 'Next: pay on the card processor\'s checkout. Gas is paid by Stagepass.'));
  const approve = el('button', { type: 'button', class: 'primary', id: 'btn-approve' }, 'Approve and pay by card');
  const cancel = el('button', { type: 'button', class: 'secondary', id: 'btn-cancel' }, 'Cancel');
  cancel.onclick = async () => { closeSheet(); try { await state.wallet.reject({ id: prepared.id }); } catch { /* gone */ } };
  approve.onclick = () => busy(approve, async () => {
    approve.textContent = 'Signing…';
    cancel.disabled = true;
    const pay = prepared.payment;
    try {
      const { request } = await state.wallet.approve({ id: prepared.id });
      const p = { id: pay.id, paymentId: pay.paymentId.toLowerCase(), title, checkoutUrl: pay.checkoutUrl, request: request.id, at: Date.now(), account: state.account };
      rememberPayment(p);
      cardProgress(p, request);
    } catch (e) {
      showError(e, $('sheet-error'));
      cancel.disabled = false;
    }
  });
  $('sheet-actions').append(cancel, approve);
  approve.focus();
}

const CARD_STEPS = [
  ['request', 'Purchase request signed and on the chain (gas paid by Stagepass)'],
  ['paid', 'Paid by card'],
  ['oracles', 'Oracles confirming the payment'],
  ['minted', 'Ticket in your wallet'],
];

// cardProgress follows a card purchase: its requestPurchase, then the payment, showing the
// checkout while the payment is not made, then the oracles' signatures, then the mint.
function cardProgress(p, request) {
  openSheet(p.title);
  const pay = el('div', { id: 'card-pay' });
  $('sheet-content').append(pay);
  const prog = $('progress');
  prog.hidden = false;
  prog.replaceChildren(...CARD_STEPS.map(([k, t]) => el('li', { dataset: { step: k } }, t)));
  const item = (k) => prog.querySelector(`li[data-step="${k}"]`);
  const done = (...ks) => ks.forEach((k) => item(k).classList.add('done'));
  const seen = [];
  let requestMined = false;
  let unpaid = true; // no oracle has confirmed the payment yet, and the checkout has not said paid
  let finished = false;
  const hide = el('button', { type: 'button', class: 'secondary', id: 'btn-hide' }, 'Continue in the background');
  hide.onclick = closeSheet;
  $('sheet-actions').replaceChildren(hide);
  const finish = (ok, text) => {
    if (finished) return;
    finished = true;
    pay.replaceChildren();
    if (!ok) prog.append(el('li', { class: 'fail' }, text));
    $('sheet-actions').replaceChildren(el('button', {
      type: 'button', class: 'primary', id: 'btn-done',
      onclick: () => { closeSheet(); if (ok) selectTab('tickets'); },
    }, ok ? 'See my tickets' : 'Close'));
    document.body.dataset.lastPayment = ok ? 'minted' : 'failed';
    $('btn-done').focus();
  };
  const checkout = () => {
    if (finished || !unpaid || !requestMined || $('checkout-frame')) return;
    const back = new URL('paid.html', location.href).pathname;
    const frame = el('iframe', { id: 'checkout-frame', title: 'Card checkout', src: `${p.checkoutUrl}&return_url=${encodeURIComponent(back)}` });
    frame.addEventListener('load', () => {
      let doc = null;
      try { doc = frame.contentDocument; } catch { /* another origin: the processor's page */ }
      if (!doc) return;
      if (doc.location.pathname === back) { unpaid = false; done('paid'); pay.replaceChildren(); return; }
      const err = doc.querySelector('.err, [role="alert"]');
      showError(err ? new Error(`Card declined: ${err.textContent.trim()} Try another card.`) : null, $('sheet-error'));
    });
    pay.replaceChildren(frame,
      el('p', { class: 'small' }, el('a', { href: `${p.checkoutUrl}&return_url=${encodeURIComponent(location.pathname)}` }, 'Open the checkout in this tab instead')));
    document.body.dataset.checkout = 'open';
  };
  const onPayment = (st) => {
    const tag = `${st.state} ${st.signatures}/${st.members}`;
    if (seen[seen.length - 1] !== tag) seen.push(tag);
    document.body.dataset.paymentStates = seen.join(',');
    // Requested on the chain but no oracle signature yet: not paid (or not seen paid) yet.
    if (unpaid && (st.state === 'created' || (st.state === 'verifying' && !st.signatures))) {
      if (st.state === 'verifying') onRequest({ state: 'mined' });
      checkout();
      return;
    }
    unpaid = false;
    pay.replaceChildren();
    showError(null, $('sheet-error'));
    done('request', 'paid');
    item('oracles').textContent = `Oracles confirming the payment: ${st.signatures} of ${st.members} signed (${st.threshold} needed)`;
    if (st.state === 'submitted') done('oracles');
    if (st.state === 'minted') {
      done('oracles', 'minted');
      forgetPayment(p.id);
      finish(true);
    } else if (st.state === 'failed') {
      finish(false, 'The ticket could not be minted' + (st.reason ? ` (${st.reason})` : '') + '; your card will be refunded.');
    } else if (st.state === 'refunded') {
      forgetPayment(p.id);
      finish(false, 'Refunded to your card.');
    }
  };
  const onRequest = (st) => {
    if (st.state === 'mined') {
      requestMined = true;
      done('request');
      checkout();
    } else if (st.state === 'failed') {
      forgetPayment(p.id);
      finish(false, `The purchase request failed (${st.reason || 'unknown reason'}). Nothing was charged; do not pay for it.`);
    }
  };
  state.payments.set(p.paymentId, onPayment);
  state.requests.set(p.request, onRequest);
  if (request) onRequest(request);
  state.wallet.requestStatus({ id: p.request }).then(onRequest, () => {});
  state.wallet.followPayment({ id: p.id }).then(onPayment, (e) => showError(e, $('sheet-error')));
}

// resumePayments picks up card purchases still in flight (after a reload or a checkout in
// this tab): the latest one of this account reopens, the others are dropped after two days.
function resumePayments() {
  const list = pendingPayments().filter((p) => Date.now() - p.at < 2 * 86400e3);
  localStorage.setItem(PENDING, JSON.stringify(list));
  const mine = list.filter((p) => !p.account || same(p.account, state.account));
  if (mine.length) cardProgress(mine[mine.length - 1]);
}

// ---- resale listings ----

async function loadListings(ev, tok, ul) {
  const listings = (await state.wallet.listings({ event: ev.address })) || [];
  ul.replaceChildren();
  if (!listings.length) ul.append(el('li', { class: 'muted' }, 'No tickets for resale right now.'));
  for (const t of listings) {
    const price = BigInt(t.listingPrice);
    const split = resaleSplit(ev, t.tier, price);
    const mine = state.account && t.owner.toLowerCase() === state.account.toLowerCase();
    const tierName = (ev.tiers[t.tier] || {}).name || `Tier ${t.tier}`;
    ul.append(el('li', { class: 'listing', dataset: { token: t.tokenId } },
      el('div', {}, el('strong', {}, `${tierName} · ticket #${t.tokenId}`)),
      el('div', {}, `${formatAmount(t.listingPrice, tok)} (allowed up to ${formatAmount(resaleCap(ev, t.tier).toString(), tok)})`),
      el('div', { class: 'muted split' }, `Seller gets ${formatAmount(split.seller.toString(), tok)}` +
        split.parties.map((q) => `, ${roleName(q.role)} ${formatAmount(q.amount.toString(), tok)}`).join('')),
      el('button', {
        type: 'button', class: 'secondary buy-listed', disabled: mine,
        onclick: (e) => buyListed(ev, t, tok, e.currentTarget, ul),
      }, mine ? 'Your listing' : `Buy for ${formatAmount(t.listingPrice, tok)}`),
      mine ? null : el('button', {
        type: 'button', class: 'secondary buy-listed-card',
        onclick: (e) => buyListedByCard(ev, t, e.currentTarget),
      }, `Buy by card (USD ${(Number(price / 10000n) / 100).toFixed(2)})`)));
  }
}

async function buyListedByCard(ev, t, button) {
  showError(null);
  await busy(button, async () => {
    button.textContent = 'Preparing…';
    try {
      const prepared = await state.wallet.prepareCardBuyListed({ account: state.account, event: ev.address, tokenId: t.tokenId });
      cardSummary(`Buy resale ticket #${t.tokenId} by card`, prepared);
    } catch (e) { showError(e); }
  });
}

async function buyListed(ev, t, tok, button, ul) {
  showError(null);
  await busy(button, async () => {
    button.textContent = 'Preparing…';
    try {
      const prepared = await state.wallet.prepareBuyListed({ account: state.account, event: ev.address, tokenId: t.tokenId });
      approveFlow('Buy resale ticket #' + t.tokenId, prepared, 'See my tickets', () => {
        selectTab('tickets');
        loadListings(ev, tok, ul).catch(() => {});
      });
    } catch (e) { showError(e); }
  });
}

// ---- my category ----
// What the oracles' rules make of this wallet's activity, the facts that put it there, and
// what the oracle network attested on the chain (what events read).

async function loadCategory() {
  const account = state.account;
  try {
    const category = await state.wallet.category({ account });
    if (account !== state.account) return;
    state.category = category;
    renderCategory(state.category);
  } catch (e) {
    // A relay without an oracle network has no sp_category: every buyer is unclassified.
    const none = e.code === 'RELAY_REFUSED' && /does not exist/.test(e.message || '');
    $('category').replaceChildren(el('p', { class: 'muted' }, none ? 'This server has no oracle network, so it gives no buyer categories: every buyer counts as unclassified.' : humanError(e)));
  }
}

function renderCategory(v) {
  const facts = (x, id) => el('ul', { class: 'facts', id }, ...(x.facts || []).map((f) => el('li', {}, f)));
  const now = Date.now() / 1000;
  const attested = (v.attested || []).filter((a) => a.expiry > now);
  $('category').replaceChildren(
    el('p', {}, 'From your activity on Stagepass you are ', el('strong', { id: 'category-name' }, v.computed.name), '. Why:'),
    facts(v.computed, 'category-facts'),
    ...(v.perArtist || []).flatMap((x) => [
      el('p', {}, `For the artist ${short(x.artist)}: `, el('strong', {}, x.name), '. Why:'), facts(x)]),
    el('h4', {}, 'On the chain'),
    attested.length
      ? el('ul', { id: 'category-attested' }, ...attested.map((a) => el('li', {},
        `${a.name}${a.artist ? ' of the artist ' + short(a.artist) : ' (every artist)'}, attested until ${formatDate(a.expiry)}`)))
      : el('p', { id: 'category-attested' }, 'Nothing attested yet: events count you as an unclassified buyer.'),
    el('p', { class: 'muted note' }, 'Every oracle of the network works this out on its own from purchases, resales, gifts and ' +
      'check-ins (and the card signals its payment processor gives) with the same published rules; it counts on the chain only ' +
      'once enough of them sign the same answer. It is about how this account buys, not about who you are.'));
  document.body.dataset.category = v.computed.name;
}

$('category-box').addEventListener('toggle', () => { if ($('category-box').open && state.account) loadCategory(); });

// ---- tickets ----

function selectTab(name) {
  for (const t of ['events', 'tickets']) {
    $('tab-' + t).setAttribute('aria-selected', String(t === name));
    $('panel-' + t).hidden = t !== name;
  }
}
$('tab-events').onclick = () => selectTab('events');
$('tab-tickets').onclick = () => selectTab('tickets');

const STATE_WORDS = { valid: 'Valid', listed: 'For resale', checkedIn: 'Checked in' };

function renderTickets(view) {
  if (!view || (state.account && view.owner && view.owner.toLowerCase() !== state.account.toLowerCase())) return;
  const fresh = state.view !== view;
  state.view = view;
  document.body.dataset.ticketsFor = (view.owner || '').toLowerCase();
  const list = $('tickets');
  const tickets = view.tickets || [];
  $('ticket-count').textContent = tickets.length ? `(${tickets.length})` : '';
  $('tickets-empty').hidden = tickets.length > 0;
  list.replaceChildren(...tickets.map((t) => {
    const ev = (view.events || {})[t.event] || (view.events || {})[t.event.toLowerCase()] || { name: short(t.event), tiers: [] };
    const tierName = (ev.tiers[t.tier] || {}).name || `Tier ${t.tier}`;
    const row = el('div', { class: 'row' });
    if (t.state !== 'checkedIn') {
      row.append(el('button', { type: 'button', class: 'primary pass-btn', onclick: () => openPass(t, ev) }, 'Door pass'));
    }
    if (t.state === 'valid' && ev.tiers.length) {
      row.append(el('button', { type: 'button', class: 'secondary resell-btn', onclick: () => resell(t, ev) }, 'Resell'));
    }
    if (t.state === 'valid' && ev.giftsAllowed) {
      row.append(el('button', { type: 'button', class: 'secondary gift-btn', onclick: () => gift(t, ev) }, 'Gift'));
    }
    if (t.state === 'listed') {
      row.append(el('button', { type: 'button', class: 'secondary unlist-btn', onclick: () => cancelListing(t, ev) }, 'Stop selling'));
    }
    if (!ticketExit(t) && exitOpen(ev)) {
      row.append(el('button', { type: 'button', class: 'secondary exit-btn', onclick: (e) => keepOnMainChain(t, ev, e.currentTarget) },
        t.checkedIn ? 'Keep it as a souvenir on the main chain' : 'Keep it on the main chain'));
    }
    return el('li', { class: 'card ticket', dataset: { event: t.event, token: t.tokenId, state: t.state } },
      el('h3', {}, ev.name),
      el('div', {}, `${tierName} · ticket #${t.tokenId} `, el('span', { class: 'badge ' + t.state }, STATE_WORDS[t.state] || t.state)),
      ev.startsAt ? el('div', { class: 'muted' }, `${ev.venue || ''} · ${formatDate(ev.startsAt)}`) : null,
      finalityLine(t),
      exitLine(t),
      row);
  }));
  refreshFinality();
  scheduleExitOpen(tickets, view.events || {});
  if (fresh) refreshBalance(); // a purchase, sale or gift moved its stablecoin
}

// ---- finality (sidechain → main-chain checkpoint → proof-of-work anchor) ----

const finalityKey = (t) => `${t.event.toLowerCase()}/${t.tokenId}`;

function finalityWords(f) {
  if (f.stage === 'anchored') {
    const k = f.anchor.confirmations;
    return `Anchored in proof of work (${k} confirmation${k === 1 ? '' : 's'}), checkpoint #${f.checkpoint.number} on the main chain`;
  }
  if (f.stage === 'checkpointed') return `Checkpointed on the main chain (#${f.checkpoint.number})`;
  return 'On the sidechain: waiting for a checkpoint on the main chain';
}

function finalityLine(t) {
  const f = state.finality[finalityKey(t)];
  if (!f) return el('div', { class: 'muted finality', dataset: { stage: '' }, hidden: true });
  return el('div', { class: 'muted finality', dataset: { stage: f.stage }, title: `Block ${f.block} of the sidechain` }, finalityWords(f));
}

let finalityTimer = null;
let finalityRound = 0;
// refreshFinality asks the relay for each shown ticket's finality: every 4 s until it is
// anchored, then every 40 s (its confirmations grow).
async function refreshFinality() {
  clearTimeout(finalityTimer);
  const tickets = (state.view && state.view.tickets) || [];
  if (!tickets.length || !state.wallet) return;
  const round = ++finalityRound;
  let changed = false;
  for (const t of tickets) {
    const key = finalityKey(t);
    const old = state.finality[key];
    if (old === null || (old && old.stage === 'anchored' && round % 10)) continue;
    try {
      const f = await state.wallet.finality({ event: t.event, tokenId: t.tokenId });
      if (!old || f.stage !== old.stage || JSON.stringify(f) !== JSON.stringify(old)) changed = true;
      state.finality[key] = f;
    } catch (e) {
      if (/no main chain/.test(e.message || '')) state.finality[key] = null; // one chain: nothing to show
    }
  }
  if (round !== finalityRound) return; // a newer round started meanwhile
  if (changed) {
    for (const li of $('tickets').querySelectorAll('li.ticket')) {
      const t = tickets.find((x) => x.event === li.dataset.event && x.tokenId === li.dataset.token);
      const line = li.querySelector('.finality');
      if (t && line) line.replaceWith(finalityLine(t));
    }
  }
  finalityTimer = setTimeout(refreshFinality, 4000);
}

// ---- main chain: withdraw the bridged stablecoin, keep tickets of events that are over ----
// Shown only when the relay's chain has a gateway (chainInfo.gateway). A withdrawal or a
// ticket's exit goes queued → checkpointed → exited (the relay pays it on the main chain).

const hasGateway = () => !!(state.chain && state.chain.gateway);

// exitOpen: ChildGateway lets the event's tickets exit EXIT_DELAY after the later of its
// start and its resale close.
function exitOpen(ev) {
  if (!hasGateway() || !ev.startsAt || ev.cancelled) return false;
  return Date.now() / 1000 >= Math.max(ev.startsAt, ev.resaleClosesAt || 0) + (state.chain.exitDelay || 0);
}

let exitOpenTimer = null;
// scheduleExitOpen draws the tickets again when the next of their events is over (within a
// day), so "Keep it on the main chain" appears by itself.
function scheduleExitOpen(tickets, events) {
  clearTimeout(exitOpenTimer);
  if (!hasGateway()) return;
  const now = Date.now() / 1000;
  const soon = tickets.map((t) => events[t.event] || events[t.event.toLowerCase()])
    .filter((ev) => ev && ev.startsAt && !ev.cancelled)
    .map((ev) => Math.max(ev.startsAt, ev.resaleClosesAt || 0) + (state.chain.exitDelay || 0))
    .filter((at) => at > now && at - now < 86400);
  if (soon.length) exitOpenTimer = setTimeout(() => renderTickets(state.view), (Math.min(...soon) - now) * 1000 + 500);
}

const ticketExit = (t) => state.withdrawals.find((w) => w.kind === 'ticket' && w.value === t.tokenId &&
  (w.event || '').toLowerCase() === t.event.toLowerCase());

function exitWords(w) {
  if (w.stage === 'exited') {
    if (w.kind !== 'ticket') return 'Paid on the main chain';
    return w.checkedIn ? 'Kept on the main chain as a souvenir' : 'Kept on the main chain';
  }
  if (w.stage === 'checkpointed') return `Checkpointed on the main chain (#${w.checkpoint})`;
  return 'Waiting for a checkpoint';
}

function exitLine(t) {
  const w = ticketExit(t);
  if (!w) return el('div', { class: 'exit', hidden: true });
  return el('div', { class: 'exit', dataset: { stage: w.stage } }, 'Main chain: ' + exitWords(w), ...claimParts(w));
}

// ---- claims: a checkpointed withdrawal or ticket exit paid on the main chain with the
// fan's own gas (the wallet signs RootGateway.exit for the main chain). Needed when the
// relay pays no exits (mainTxParams.manualExits); otherwise a way to be paid sooner.

const claimable = (w) => w.stage === 'checkpointed' && !!state.account && (w.recipient || '').toLowerCase() === state.account.toLowerCase();

function claimParts(w) {
  if (!claimable(w)) return [];
  return [
    el('p', { class: 'muted claim-note' }, state.manualExits
      ? 'Stagepass does not pay this on the main chain: claim it to receive it.'
      : 'Stagepass will pay this on the main chain soon; you can claim it now instead.'),
    el('button', { type: 'button', class: 'secondary claim-btn', dataset: { index: w.index }, onclick: (e) => claimOnMainChain(w, e.currentTarget) },
      'Claim on the main chain (you pay the gas)'),
  ];
}

async function claimOnMainChain(w, button) {
  showError(null);
  await busy(button, async () => {
    try {
      const prepared = await state.wallet.prepareClaimWithdrawal({ account: state.account, index: w.index });
      approveFlow(prepared.summary.title, prepared, 'Done', () => refreshWithdrawals());
    } catch (e) {
      // The wallet's refusals say it all (not yet checkpointed, already paid, the gas it needs).
      const why = /^actions: [^:]*: (.*)$/.exec((e && e.message) || '');
      showError(why && (e.code === 'NOT_ALLOWED' || e.code === 'INSUFFICIENT_BALANCE') ? new Error(why[1][0].toUpperCase() + why[1].slice(1) + '.') : e);
    }
  });
}

async function loadMainChain() {
  $('mainchain').hidden = !hasGateway();
  if (!hasGateway()) return;
  const account = state.account;
  try {
    const bridged = await state.wallet.bridgeBalance({ account });
    if (account !== state.account) return;
    state.bridged = bridged;
    $('bridge-balance').textContent = formatAmount(state.bridged.balance || '0', state.bridged);
    $('withdraw-symbol').textContent = state.bridged.symbol;
  } catch (e) { $('bridge-balance').textContent = humanError(e); }
  try {
    const main = await state.wallet.mainBalance({ account });
    if (account !== state.account) return;
    state.main = main;
    $('main-balance').textContent = formatAmount(state.main.token.balance || '0', state.main.token);
    // The relay pays each deposit's main-chain gas, so it sends none below its minimum.
    const least = BigInt(state.main.minAmount || '0');
    $('deposit-min').hidden = least === 0n;
    $('deposit-min').textContent = `At least ${formatAmount(least.toString(), state.main.token)}: Stagepass pays the main-chain gas.`;
    document.querySelectorAll('.main-symbol').forEach((s) => { s.textContent = state.main.token.symbol; });
  } catch (e) { $('main-balance').textContent = humanError(e); }
  try {
    const tx = await state.wallet.mainTxParams({ account });
    if (account !== state.account) return;
    state.manualExits = !!tx.manualExits;
  } catch { state.manualExits = false; }
  $('claim-needed').hidden = !state.manualExits;
  await Promise.all([refreshWithdrawals(), refreshDeposits()]);
}

// BRIDGE_FALLBACK_MS: how often the withdrawals and deposits not yet done are read while
// the relay pushes their stages (a push missed while the worker was busy is still seen);
// without pushes, every 3 s (withdrawals) and 2 s (deposits).
const BRIDGE_FALLBACK_MS = 30000;
let bridgePushTimer = null;

// onBridgePush: the wallet passes each push of the relay's "bridge" topic for the account
// shown (its whole state first, again after a reconnect, then each change), or the relay's
// refusal of the topic. A push reads both lists again (at most once per 100 ms).
function onBridgePush(u) {
  if (!u || !same(u.account, state.account)) return;
  state.bridgePushes = !u.refused;
  document.body.dataset.bridge = state.bridgePushes ? 'push' : 'poll';
  if (!hasGateway()) return;
  clearTimeout(bridgePushTimer);
  bridgePushTimer = setTimeout(() => { refreshWithdrawals(); refreshDeposits(); }, 100);
}

let depositsTimer = null;
// refreshDeposits reads the deposits credited to this account, every 2 s while any is not
// credited yet (every 30 s while the relay pushes their stages); the balances are read again
// once one is.
async function refreshDeposits() {
  clearTimeout(depositsTimer);
  const account = state.account;
  let list;
  try { list = (await state.wallet.deposits({ account })) || []; } catch { list = null; }
  if (account !== state.account) return;
  if (list && JSON.stringify(list) !== JSON.stringify(state.deposits)) {
    const credited = (l) => l.filter((d) => d.stage === 'credited').length;
    const more = credited(list) > credited(state.deposits);
    state.deposits = list;
    renderDeposits();
    if (more) { loadMainChain(); return; }
  }
  if (!list || list.length < state.expectDeposits || list.some((d) => d.stage !== 'credited')) {
    depositsTimer = setTimeout(refreshDeposits, state.bridgePushes ? BRIDGE_FALLBACK_MS : 2000);
  }
}

function depositWords(d) {
  if (d.stage === 'credited') return 'Credited';
  const left = d.required - d.confirmations;
  if (left > 0) return `Waiting for ${left} main-chain confirmation${left === 1 ? '' : 's'}`;
  return 'Confirmed on the main chain; waiting for the validators';
}

function renderDeposits() {
  const tok = (state.main && state.main.token) || { symbol: 'TestUSD', decimals: 6 };
  $('deposits-empty').hidden = state.deposits.length > 0;
  $('deposits').replaceChildren(...state.deposits.slice().reverse().map((d) =>
    el('li', { class: 'deposit', dataset: { stage: d.stage, id: d.id } },
      `${formatAmount(d.amount, tok)}: `, el('span', { class: 'stage' }, depositWords(d)))));
}

$('form-deposit').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const where = $('deposit-error');
  showError(null, where);
  const tok = (state.main && state.main.token) || { symbol: 'TestUSD', decimals: 6 };
  let amount;
  try { amount = parseAmount($('deposit-amount').value, tok); } catch (e) { showError(e, where); return; }
  if (amount === 0n) { showError(new Error('Enter an amount above zero.'), where); return; }
  busy($('btn-deposit'), async () => {
    try {
      const prepared = await state.wallet.prepareDeposit({ account: state.account, amount: amount.toString() });
      approveFlow(`Bring ${formatAmount(amount.toString(), tok)} from the main chain to Stagepass`, prepared, 'Done', () => {
        state.expectDeposits = state.deposits.length + 1;
        $('deposit-amount').value = '';
        loadMainChain();
      });
    } catch (e) { showError(e, where); }
  });
});

let withdrawalsTimer = null;
// refreshWithdrawals reads the withdrawals paid to this account, every 3 s while any has not
// reached the main chain yet (every 30 s while the relay pushes their stages).
async function refreshWithdrawals() {
  clearTimeout(withdrawalsTimer);
  const account = state.account;
  let list;
  try { list = (await state.wallet.withdrawals({ account })) || []; } catch { list = null; }
  if (account !== state.account) return;
  if (list && JSON.stringify(list) !== JSON.stringify(state.withdrawals)) {
    state.withdrawals = list;
    renderWithdrawals();
    if (state.view) renderTickets(state.view);
  }
  if (!list || list.length < state.expectWithdrawals || list.some((w) => w.stage !== 'exited')) {
    withdrawalsTimer = setTimeout(refreshWithdrawals, state.bridgePushes ? BRIDGE_FALLBACK_MS : 3000);
  }
}

function renderWithdrawals() {
  const tok = state.bridged || { symbol: 'spUSD', decimals: 6 };
  $('withdrawals-empty').hidden = state.withdrawals.length > 0;
  $('withdrawals').replaceChildren(...state.withdrawals.slice().reverse().map((w) => {
    const ev = w.kind === 'ticket' && state.view && (state.view.events || {})[(w.event || '').toLowerCase()];
    const what = w.kind === 'ticket'
      ? `Ticket #${w.value}${ev ? ' of ' + ev.name : ''}${w.checkedIn ? ' (souvenir)' : ''}`
      : formatAmount(w.value, tok);
    return el('li', { class: 'withdrawal', dataset: { stage: w.stage, kind: w.kind, index: w.index } },
      `${what} to ${short(w.recipient)}: `, el('span', { class: 'stage' }, exitWords(w)), ...claimParts(w));
  }));
}

$('form-withdraw').addEventListener('submit', (ev) => {
  ev.preventDefault();
  const where = $('withdraw-error');
  showError(null, where);
  const tok = state.bridged || { symbol: 'spUSD', decimals: 6 };
  let amount;
  try { amount = parseAmount($('withdraw-amount').value, tok); } catch (e) { showError(e, where); return; }
  if (amount === 0n) { showError(new Error('Enter an amount above zero.'), where); return; }
  const to = $('withdraw-to').value.trim();
  if (to && !/^0x[0-9a-fA-F]{40}$/.test(to)) { showError(new Error('Enter an account address: 0x followed by 40 characters 0–9 and a–f, or leave it empty.'), where); return; }
  busy($('btn-withdraw'), async () => {
    try {
      const prepared = await state.wallet.prepareWithdraw({ account: state.account, amount: amount.toString(), recipient: to || undefined });
      approveFlow(`Withdraw ${formatAmount(amount.toString(), tok)} to the main chain`, prepared, 'Done', () => {
        state.expectWithdrawals = state.withdrawals.length + 1;
        $('withdraw-amount').value = '';
        loadMainChain();
      });
    } catch (e) { showError(e, where); }
  });
});

async function keepOnMainChain(t, ev, button) {
  showError(null);
  await busy(button, async () => {
    try {
      const prepared = await state.wallet.prepareExitTicket({ account: state.account, event: t.event, tokenId: t.tokenId });
      approveFlow(`Keep ticket #${t.tokenId} of ${ev.name} on the main chain`, prepared, 'Done', () => {
        state.expectWithdrawals = state.withdrawals.length + 1;
        refreshWithdrawals();
      });
    } catch (e) { showError(e); }
  });
}

// ---- door pass ----

let passTimer = null;
let wakeLock = null;

async function openPass(t, ev) {
  const dlg = $('pass');
  $('pass-title').textContent = ev.name;
  $('pass-sub').textContent = `Ticket #${t.tokenId} · show this at the door`;
  dlg.hidden = false;
  try { wakeLock = navigator.wakeLock ? await navigator.wakeLock.request('screen') : null; } catch { wakeLock = null; }
  const refresh = async () => {
    try {
      const chainId = state.chain ? state.chain.chainId : 1337;
      const p = await state.wallet.makePass({ account: state.account, chainId, event: t.event, tokenId: t.tokenId });
      drawQR($('pass-qr'), p.payload);
      dlg.dataset.window = String(p.window);
      const wait = Math.max(500, p.refreshAt - Date.now());
      passTimer = setTimeout(refresh, wait);
      tick(p.refreshAt);
    } catch (e) {
      $('pass-timer').textContent = humanError(e);
    }
  };
  await refresh();
  $('btn-pass-close').focus();
}

let tickTimer = null;
function tick(refreshAt) {
  clearInterval(tickTimer);
  const upd = () => { $('pass-timer').textContent = `New code in ${Math.max(0, Math.ceil((refreshAt - Date.now()) / 1000))} s`; };
  upd();
  tickTimer = setInterval(upd, 1000);
}

$('btn-pass-close').onclick = () => {
  clearTimeout(passTimer);
  clearInterval(tickTimer);
  if (wakeLock) wakeLock.release().catch(() => {});
  $('pass').hidden = true;
};

// ---- resale ----

async function resell(t, ev) {
  const tok = await tokenInfo(ev.currency);
  const face = BigInt(ev.tiers[t.tier].faceValue);
  const cap = resaleCap(ev, t.tier);
  openSheet('Resell ticket #' + t.tokenId);
  const input = el('input', { id: 'resell-price', inputmode: 'decimal', autocomplete: 'off', value: formatAmount(cap.toString(), tok).split(' ')[0] });
  const preview = el('div', { id: 'resell-preview', 'aria-live': 'polite' });
  const update = () => {
    preview.replaceChildren();
    let price;
    try { price = parseAmount(input.value, tok); } catch (e) { preview.append(el('p', { class: 'error' }, e.message)); return null; }
    if (price > cap) {
      preview.append(el('p', { class: 'error' }, `Too high: this event allows at most ${formatAmount(cap.toString(), tok)}.`));
      return null;
    }
    // The split as EventTicket computes it (format.js resaleSplit).
    const split = resaleSplit(ev, t.tier, price);
    const lines = [['You receive', formatAmount(split.seller.toString(), tok)],
      ...split.parties.map((p) => [roleName(p.role), formatAmount(p.amount.toString(), tok)])];
    preview.append(el('dl', { class: 'summary' }, ...lines.map(([a, b]) => el('div', {}, el('dt', {}, a), el('dd', {}, b)))));
    return price;
  };
  input.addEventListener('input', update);
  $('sheet-content').append(
    el('p', {}, `Allowed price: up to ${formatAmount(cap.toString(), tok)} (face value ${formatAmount(face.toString(), tok)}).`),
    el('label', { for: 'resell-price' }, `Your price in ${tok.symbol}`), input, preview);
  update();
  const next = el('button', { type: 'button', class: 'primary', id: 'btn-resell-next' }, 'Review and sign');
  const cancel = el('button', { type: 'button', class: 'secondary', onclick: closeSheet }, 'Cancel');
  next.onclick = () => busy(next, async () => {
    const price = update();
    if (price === null) return;
    try {
      const prepared = await state.wallet.prepareList({ account: state.account, event: t.event, tokenId: t.tokenId, price: price.toString() });
      approveFlow('Put ticket #' + t.tokenId + ' up for resale', prepared, 'Done');
    } catch (e) { showError(e, $('sheet-error')); }
  });
  $('sheet-actions').append(cancel, next);
}

async function cancelListing(t, ev) {
  try {
    const prepared = await state.wallet.prepareCancelListing({ account: state.account, event: t.event, tokenId: t.tokenId });
    approveFlow('Stop selling ticket #' + t.tokenId, prepared, 'Done');
  } catch (e) { showError(e); }
  void ev;
}

// ---- gift ----

function gift(t, ev) {
  openSheet('Gift ticket #' + t.tokenId);
  const to = el('input', { id: 'gift-to', autocomplete: 'off', autocapitalize: 'none', spellcheck: 'false', placeholder: '0x…' });
  $('sheet-content').append(
    el('p', {}, `Send this ${ev.name} ticket to a friend's Stagepass account. It is free for both of you; it cannot be undone.`),
    el('label', { for: 'gift-to' }, "Friend's account address"), to);
  const next = el('button', { type: 'button', class: 'primary', id: 'btn-gift-next' }, 'Review and sign');
  next.onclick = () => busy(next, async () => {
    showError(null, $('sheet-error'));
    const addr = to.value.trim();
    if (!/^0x[0-9a-fA-F]{40}$/.test(addr)) { showError(new Error('Enter an account address: 0x followed by 40 characters 0–9 and a–f.'), $('sheet-error')); return; }
    try {
      const prepared = await state.wallet.prepareGift({ account: state.account, event: t.event, tokenId: t.tokenId, to: addr });
      approveFlow('Gift ticket #' + t.tokenId, prepared, 'Done');
    } catch (e) { showError(e, $('sheet-error')); }
  });
  $('sheet-actions').append(el('button', { type: 'button', class: 'secondary', onclick: closeSheet }, 'Cancel'), next);
}

// ---- backup ----

$('btn-backup').onclick = () => {
  openSheet('Your recovery phrase');
  const pw = el('input', { id: 'backup-password', type: 'password', autocomplete: 'current-password' });
  const out = el('div');
  $('sheet-content').append(el('p', {}, 'Write these words on paper, in order, and keep them safe. Anyone with them can take your tickets.'),
    el('label', { for: 'backup-password' }, 'Your password'), pw, out);
  const reveal = el('button', { type: 'button', class: 'primary', id: 'btn-reveal' }, 'Show');
  reveal.onclick = () => busy(reveal, async () => {
    try {
      const { mnemonic } = await state.wallet.exportMnemonic({ password: pw.value });
      out.replaceChildren(el('p', { class: 'phrase', id: 'phrase' }, mnemonic));
      localStorage.removeItem('stagepass.backupPending');
      $('backup-reminder').hidden = true;
    } catch (e) { showError(e, $('sheet-error')); }
  });
  $('sheet-actions').append(el('button', { type: 'button', class: 'secondary', onclick: closeSheet }, 'Close'), reveal);
};

document.addEventListener('keydown', (e) => {
  if (e.key !== 'Escape') return;
  if (!$('pass').hidden) $('btn-pass-close').click();
  else if (!$('sheet').hidden && !$('btn-cancel')?.disabled) closeSheet();
});

// Keep the app and the wallet on the device (sw.js) so the tickets and the door pass open
// with no network.
if ('serviceWorker' in navigator) {
  navigator.serviceWorker.register('sw.js').then(
    () => navigator.serviceWorker.ready.then(() => { document.body.dataset.offlineReady = 'true'; }),
    () => {});
}

boot().catch((e) => { show('loading'); $('loading-title').textContent = 'Something went wrong'; $('loading-detail').textContent = humanError(e); });
