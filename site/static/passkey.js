// Passkey unlock (WebAuthn PRF) and keystore import, for every page that unlocks the wallet.
// WebAuthn does not exist inside the wallet's Web Worker, so the page runs the ceremony:
// navigator.credentials.get with the prf extension evaluated on the vault's PRF salt (from
// wallet.passkeys()), then hands the 32-byte PRF output to the wallet, which derives the key
// that unwraps its data key. The page never sees the data key, the mnemonic or a private key.
// The challenge is random and checked by no server: the passkey proves nothing to a relay
// here, it only releases the PRF secret that the authenticator keeps.
import { el, busy } from './dom.js';
import { openSheet, closeSheet, showError } from './walletui.js';

const b64u = (buf) => btoa(String.fromCharCode(...new Uint8Array(buf))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
const fromB64u = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
const fromHex = (h) => Uint8Array.from(h.slice(2).match(/../g) || [], (x) => parseInt(x, 16));
const noPRF = () => Object.assign(new Error('This passkey cannot unlock the wallet: its authenticator does not support the PRF extension. Use your password.'), { code: 'NO_PRF' });

// passkeySupported: WebAuthn with the prf extension on a host name WebAuthn accepts (not an
// IP address). Browsers that cannot say (no getClientCapabilities) are tried; a passkey
// created without PRF is then refused with NO_PRF.
export async function passkeySupported() {
  if (!window.PublicKeyCredential || !window.isSecureContext || !navigator.credentials) return false;
  if (/^[\d.]+$|^\[|:/.test(location.hostname)) return false;
  if (PublicKeyCredential.getClientCapabilities) {
    try { return (await PublicKeyCredential.getClientCapabilities())['extension:prf'] !== false; } catch { /* unknown: try */ }
  }
  return true;
}

// evaluate asks one of the allowed passkeys for its PRF output on salt (0x hex).
async function evaluate(salt, ids) {
  const cred = await navigator.credentials.get({
    publicKey: {
      challenge: crypto.getRandomValues(new Uint8Array(32)),
      allowCredentials: ids.map((id) => ({ type: 'public-key', id: fromB64u(id) })),
      userVerification: 'required',
      timeout: 120000,
      extensions: { prf: { eval: { first: fromHex(salt) } } },
    },
  });
  const out = cred.getClientExtensionResults().prf?.results?.first;
  if (!out) throw noPRF();
  return { credentialId: b64u(cred.rawId), prfOutput: b64u(out) };
}

// unlockWithPasskey runs the passkey ceremony and unlocks the wallet: {accounts, unlocked}.
export async function unlockWithPasskey(wallet) {
  const info = await wallet.passkeys({});
  if (!info.salt || !info.passkeys.length) throw Object.assign(new Error('No passkey is set up for this wallet.'), { code: 'UNKNOWN_PASSKEY' });
  return wallet.unlockWithPasskey(await evaluate(info.salt, info.passkeys.map((p) => p.id)));
}

// addPasskey creates a passkey on this device and lets it unlock the wallet (the wallet
// checks the password). Returns wallet.passkeys().
export async function addPasskey(wallet, password, account) {
  const info = await wallet.passkeys({});
  if (!info.salt) throw new Error('Unlock with your password once first.');
  const cred = await navigator.credentials.create({
    publicKey: {
      rp: { name: 'Stagepass' },
      user: { id: crypto.getRandomValues(new Uint8Array(16)), name: account, displayName: 'Stagepass wallet ' + account.slice(0, 6) + '…' + account.slice(-4) },
      challenge: crypto.getRandomValues(new Uint8Array(32)),
      pubKeyCredParams: [{ type: 'public-key', alg: -7 }, { type: 'public-key', alg: -257 }],
      authenticatorSelection: { residentKey: 'preferred', userVerification: 'required' },
      excludeCredentials: info.passkeys.map((p) => ({ type: 'public-key', id: fromB64u(p.id) })),
      timeout: 120000,
      extensions: { prf: { eval: { first: fromHex(info.salt) } } },
    },
  });
  const prf = cred.getClientExtensionResults().prf;
  if (!prf || prf.enabled === false) throw noPRF();
  const credentialId = b64u(cred.rawId);
  // Some authenticators give the PRF output only on an assertion.
  const prfOutput = prf.results?.first ? b64u(prf.results.first) : (await evaluate(info.salt, [credentialId])).prfOutput;
  return wallet.enablePasskey({ password, credentialId, prfOutput });
}

// offerPasskeyUnlock adds "Use a passkey" under an unlock form when this browser has PRF
// and the wallet has a passkey; onUnlocked gets {accounts, unlocked}.
export async function offerPasskeyUnlock(wallet, form, onUnlocked, errorEl) {
  if (form.querySelector('#btn-passkey-unlock')) return;
  let info;
  try { info = await wallet.passkeys({}); } catch { return; }
  if (!info.passkeys.length || !(await passkeySupported())) return;
  const btn = el('button', { type: 'button', class: 'secondary', id: 'btn-passkey-unlock' }, 'Use a passkey');
  btn.onclick = () => busy(btn, async () => {
    showError(null, errorEl);
    btn.textContent = 'Waiting for your passkey…';
    try { await onUnlocked(await unlockWithPasskey(wallet)); } catch (e) { showError(e, errorEl); }
  });
  form.append(btn);
}

// walletSettings puts "Add a passkey" (where supported) and "Import a keystore file" in a
// settings box before `before`. account() is the account shown; onImported(address, use),
// when given, is told of an imported account (use false), then offers "Use this account"
// (use true).
export async function walletSettings(wallet, before, account, onImported) {
  if (document.getElementById('wallet-settings')) return;
  const box = el('details', { class: 'card', id: 'wallet-settings' }, el('summary', {}, 'Wallet settings'));
  if (await passkeySupported()) {
    box.append(el('p', { class: 'muted' }, 'Unlock with your fingerprint, face or screen lock instead of typing your password.'),
      el('button', { type: 'button', class: 'secondary', id: 'btn-add-passkey', onclick: () => passkeySheet(wallet, account()) }, 'Add a passkey'));
  }
  box.append(el('button', { type: 'button', class: 'secondary', id: 'btn-import-keystore', onclick: () => importSheet(wallet, onImported) }, 'Import a keystore file'));
  before.before(box);
}

function passwordField(id, label) {
  const input = el('input', { id, type: 'password', autocomplete: 'current-password' });
  return [input, el('label', { for: id }, label), input];
}

function passkeySheet(wallet, account) {
  openSheet('Add a passkey');
  const [pw, ...field] = passwordField('passkey-password', 'Your wallet password');
  const list = el('ul', { id: 'passkey-list', class: 'muted' });
  const render = (info) => list.replaceChildren(...info.passkeys.map((p) => el('li', {},
    'Passkey added ' + new Date(p.created * 1000).toLocaleDateString() + ' ',
    el('button', {
      type: 'button', class: 'secondary', onclick: (e) => busy(e.currentTarget, async () => {
        try { render(await wallet.removePasskey({ credentialId: p.id })); } catch (err) { showError(err, document.getElementById('sheet-error')); }
      }),
    }, 'Remove'))));
  wallet.passkeys({}).then(render, () => {});
  document.getElementById('sheet-content').append(
    el('p', {}, 'Your browser will ask you to create a passkey. Your password keeps working too.'), ...field, list);
  const add = el('button', { type: 'button', class: 'primary', id: 'btn-passkey-create' }, 'Create passkey');
  add.onclick = () => busy(add, async () => {
    showError(null, document.getElementById('sheet-error'));
    try {
      render(await addPasskey(wallet, pw.value, account));
      pw.value = '';
      document.body.dataset.passkey = 'added';
      add.hidden = true;
    } catch (e) { showError(e, document.getElementById('sheet-error')); }
  });
  document.getElementById('sheet-actions').append(el('button', { type: 'button', class: 'secondary', id: 'btn-passkey-close', onclick: closeSheet }, 'Close'), add);
}

function importSheet(wallet, onImported) {
  openSheet('Import a keystore file');
  const file = el('input', { id: 'keystore-file', type: 'file', accept: '.json,application/json,*' });
  const text = el('textarea', { id: 'keystore-text', rows: 3, autocomplete: 'off', spellcheck: 'false', placeholder: '{"version":3, …}' });
  file.onchange = async () => { if (file.files[0]) text.value = await file.files[0].text(); };
  const [ksPw, ...ksField] = passwordField('keystore-password', 'The keystore file\'s password');
  const [pw, ...pwField] = passwordField('import-password', 'Your wallet password');
  const out = el('p', { id: 'import-result', role: 'status' });
  document.getElementById('sheet-content').append(
    el('p', {}, 'Add an account from a keystore (JSON) file made by another wallet. Its key is kept encrypted in this wallet.'),
    el('label', { for: 'keystore-file' }, 'Keystore file'), file,
    el('label', { for: 'keystore-text' }, 'or paste its contents'), text, ...ksField, ...pwField, out);
  const go = el('button', { type: 'button', class: 'primary', id: 'btn-import' }, 'Import');
  go.onclick = () => busy(go, async () => {
    showError(null, document.getElementById('sheet-error'));
    go.textContent = 'Importing…';
    try {
      const r = await wallet.importKeystore({ keystore: text.value.trim(), keystorePassword: ksPw.value, password: pw.value });
      out.replaceChildren('Imported ', el('code', {}, r.address), '. Accounts in this wallet: ', r.accounts.length + '.');
      document.body.dataset.imported = r.address;
      ksPw.value = pw.value = '';
      if (onImported) {
        onImported(r.address, false); // the page lists it
        go.replaceWith(el('button', {
          type: 'button', class: 'primary', id: 'btn-use-imported',
          onclick: () => { closeSheet(); onImported(r.address, true); },
        }, 'Use this account'));
        document.getElementById('btn-use-imported').focus();
      }
    } catch (e) { showError(e, document.getElementById('sheet-error')); }
  });
  document.getElementById('sheet-actions').append(el('button', { type: 'button', class: 'secondary', onclick: closeSheet }, 'Close'), go);
}
