// What every page that talks to the wallet needs: starting the wallet worker, wallet
// errors in words, token details for amounts, and the sheet that shows a wallet summary →
// "Approve and sign" → the request's live progress (accepted → sent → mined).
// The page provides the sheet's elements: #sheet, #sheet-title, #sheet-content,
// #progress, #sheet-error, #sheet-actions (see issuer.html).
import { $, el, busy } from './dom.js';

// wireUnlockForms handles the restore and unlock forms every page has (#form-restore with
// #restore-phrase, #restore-password and #btn-restore; #form-unlock with #unlock-password and
// #btn-unlock): `wallet()` is the started wallet, and `entered(result, how)` runs once it is
// open, `how` being 'restore' or 'unlock'.
export function wireUnlockForms(wallet, entered) {
  $('form-restore').addEventListener('submit', (ev) => {
    ev.preventDefault();
    showError(null);
    const mnemonic = $('restore-phrase').value.trim().toLowerCase().split(/\s+/).join(' ');
    const password = $('restore-password').value;
    if (password.length < 8) { showError({ code: 'WEAK_PASSWORD' }); return; }
    busy($('btn-restore'), async () => {
      $('btn-restore').textContent = 'Restoring…';
      try { await entered(await wallet().restore({ mnemonic, password }), 'restore'); } catch (e) { showError(e); }
    });
  });
  $('form-unlock').addEventListener('submit', (ev) => {
    ev.preventDefault();
    showError(null);
    busy($('btn-unlock'), async () => {
      $('btn-unlock').textContent = 'Unlocking…';
      try { await entered(await wallet().unlock({ password: $('unlock-password').value }), 'unlock'); } catch (e) { showError(e); }
    });
  });
}

// loadWallet starts the wallet (Go → wasm in a Web Worker); null when this server was built
// without it.
export async function loadWallet() {
  let startWallet;
  try {
    ({ startWallet } = await import('./wallet/wallet-client.js'));
  } catch {
    return null;
  }
  const wallet = await startWallet({ workerURL: 'wallet/wallet-worker.js', wasmURL: 'wallet/wallet.wasm', wasmExecURL: 'wallet/wasm_exec.js' });
  // The worker has compiled and started the wasm: what the page-load benchmark measures to.
  performance.mark('stagepass:wallet-ready');
  return wallet;
}

export function humanError(err) {
  const code = err && err.code;
  const msg = (err && err.message) || String(err);
  switch (code) {
    case 'WRONG_PASSWORD': return 'That password is not right. Try again.';
    case 'WRONG_PASSKEY': case 'UNKNOWN_PASSKEY': return 'That passkey does not unlock this wallet. Use your password.';
    case 'WRONG_KEYSTORE_PASSWORD': return 'That is not the keystore file\'s password.';
    case 'INVALID_KEYSTORE': return 'That is not a keystore (v3 JSON) file this wallet can read.';
    case 'ACCOUNT_EXISTS': return 'That account is already in this wallet.';
    case 'INVALID_NAME': return 'A name has 1 to 32 characters and no line breaks or control characters.';
    case 'NOT_IMPORTED': return 'This account comes from your recovery phrase, so it cannot be removed.';
    case 'WEAK_PASSWORD': return 'Choose a longer password (at least 8 characters).';
    case 'INVALID_MNEMONIC': return 'That recovery phrase is not valid. Check each word and the order.';
    case 'OFFLINE': case 'NOT_CONNECTED': return 'No connection to Stagepass right now. Check your network and try again.';
    case 'PRICE_OUT_OF_RANGE': return 'That price is outside what this event allows. ' + msg;
    case 'NOT_ALLOWED': return 'The event\'s rules do not allow this: ' + msg;
    case 'NO_GATEWAY': return 'This Stagepass server has no gateway to a main chain.';
    case 'BELOW_MINIMUM': return msg.replace(/^actions: below the minimum: /, '') + '.';
    case 'INSUFFICIENT_BALANCE': return 'That is more than you have: ' + msg.replace(/^actions: more than the balance: /, '');
    case 'RELAY_REFUSED':
      if (/InsufficientAllowance/.test(msg)) return 'Your TestUSD is not approved for this event, so a resale cannot be paid with it from this wallet.';
      { // EventTicket's presale refused this buyer's category (the relay names the revert).
        const pre = /PresaleOnly\(category=(\d+), opensAt=(\d+)\)/.exec(msg);
        if (pre) return `This event is in its presale and your buyer category (${['unclassified', 'fan', 'superfan', 'scalper', 'bot'][pre[1]] || pre[1]}) may buy from ${new Date(Number(pre[2]) * 1000).toLocaleString()}.`;
      }
      return msg;
    case 'INVALID_CONFIG': return 'The event cannot be created: ' + msg.replace(/^actions: invalid event configuration: /, '');
    default: return msg;
  }
}

export function showError(err, where = $('error')) {
  if (!err) { where.hidden = true; where.textContent = ''; return; }
  where.textContent = humanError(err);
  where.hidden = false;
}

// permitInfo is the relay's sp_permitInfo for a token and an owner (symbol, decimals, the
// owner's balance), or null when the relay refuses it (not a permit token).
export async function permitInfo(addr, owner) {
  const res = await fetch('rpc', {
    method: 'POST', headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'sp_permitInfo', params: [addr, owner] }),
  });
  return (await res.json()).result || null;
}

// tokenInfo is the symbol and decimals of an event's currency (the zero address: ETH).
const tokens = {};
export async function tokenInfo(addr, owner) {
  const key = (addr || '0x0').toLowerCase();
  if (tokens[key]) return tokens[key];
  let tok = { symbol: 'ETH', decimals: 18 };
  if (!/^0x0*$/.test(key)) {
    const info = await permitInfo(addr, owner);
    tok = info ? { symbol: info.symbol, decimals: info.decimals } : { symbol: 'tokens', decimals: 18 };
  }
  tokens[key] = tok;
  return tok;
}

export function openSheet(title) {
  $('sheet-title').textContent = title;
  $('sheet-content').replaceChildren();
  $('sheet-actions').replaceChildren();
  $('progress').hidden = true;
  $('progress').replaceChildren();
  showError(null, $('sheet-error'));
  $('sheet').hidden = false;
}

export function closeSheet() { $('sheet').hidden = true; }

export function summaryList(summary) {
  return el('div', {},
    el('dl', { class: 'summary' }, ...summary.lines.map((l) => el('div', {}, el('dt', {}, l.label), el('dd', {}, l.value)))),
    ...(summary.warnings || []).map((w) => el('p', { class: 'warn' }, w)));
}

const STEPS = [['accepted', 'Signed and accepted by Stagepass'], ['sent', 'Sent to the chain (gas paid by Stagepass)'], ['mined', 'Confirmed on the chain']];

// approveFlow shows the wallet's summary of `prepared` with Approve / Cancel, then the
// request's progress from the wallet's "request" pushes; onDone runs once it is mined.
// Sets document.body.dataset.lastRequest to "mined" or "failed" at the end.
export function approveFlow(wallet, title, prepared, doneText, onDone) {
  openSheet(title);
  $('sheet-content').append(summaryList(prepared.summary));
  const approve = el('button', { type: 'button', class: 'primary', id: 'btn-approve' }, 'Approve and sign');
  const cancel = el('button', { type: 'button', class: 'secondary', id: 'btn-cancel' }, 'Cancel');
  cancel.onclick = async () => { closeSheet(); try { await wallet.reject({ id: prepared.id }); } catch { /* gone */ } };
  delete document.body.dataset.lastRequest;
  approve.onclick = () => busy(approve, async () => {
    approve.textContent = 'Signing…';
    cancel.disabled = true;
    const prog = $('progress');
    prog.hidden = false;
    prog.replaceChildren(...STEPS.map(([k, t]) => el('li', { dataset: { step: k } }, t)));
    prog.scrollIntoView({ block: 'end' });
    let finished = false;
    let off = () => {};
    const finish = (ok) => {
      if (finished) return;
      finished = true;
      off();
      $('sheet-actions').replaceChildren(el('button', {
        type: 'button', class: 'primary', id: 'btn-done', onclick: () => { closeSheet(); if (ok && onDone) onDone(); },
      }, ok ? doneText : 'Close'));
      document.body.dataset.lastRequest = ok ? 'mined' : 'failed';
      $('sheet-actions').scrollIntoView({ block: 'end' });
      $('btn-done').focus();
    };
    const mark = (st) => {
      const idx = STEPS.findIndex(([k]) => k === st.state);
      prog.querySelectorAll('li[data-step]').forEach((li, i) => li.classList.toggle('done', i <= idx));
      if (st.state === 'failed') {
        prog.append(el('li', { class: 'fail' }, 'Failed: ' + (st.reason || 'unknown reason')));
        finish(false);
      } else if (st.state === 'mined') finish(true);
    };
    try {
      const { request, deposit, claim } = await wallet.approve({ id: prepared.id });
      if (deposit || claim) { // main chain: a deposit the relay sent, or the fan's own claim; their progress is sp_deposits', sp_withdrawals'
        prog.replaceChildren(el('li', { class: 'done' }, claim ? 'Signed here and sent on the main chain (gas paid by you)' : 'Signed and sent on the main chain (gas paid by Stagepass)'));
        finish(true);
        return;
      }
      off = wallet.on('request', (st) => { if (st.id === request.id) mark(st); }) || off;
      mark(request);
      // A push may have come before we knew the id: ask once.
      const st = await wallet.requestStatus({ id: request.id }).catch(() => null);
      if (st) mark(st);
    } catch (e) {
      showError(e, $('sheet-error'));
      cancel.disabled = false;
    }
  });
  $('sheet-actions').append(cancel, approve);
  approve.focus();
}

// onEscape closes the sheet with Escape (unless a request is being signed).
document.addEventListener('keydown', (e) => {
  if (e.key === 'Escape' && $('sheet') && !$('sheet').hidden && !$('btn-cancel')?.disabled) closeSheet();
});
