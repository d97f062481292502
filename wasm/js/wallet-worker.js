// Stagepass wallet worker: runs wallet.wasm (Go) off the page's main thread so key
// derivation, unlocking and signing never freeze the page. Start it with
// wallet-client.js; it talks by messages only:
//
//   page → worker  {id, method, params}
//   worker → page  {id, result} | {id, error: {message, code}}
//   worker → page  {event, data}          pushes: tickets, request, connection, scanner
//
// The first call must be "load" with {wasmURL, wasmExecURL, dbName?} (or wasmBytes, an
// ArrayBuffer, where fetch cannot reach the file). The vault record and the offline cache
// (tickets, scanner state) live in IndexedDB here in the worker; without IndexedDB (Node)
// they are kept in memory. Keys and the mnemonic never leave Go.
'use strict';

let ready = null; // Promise of globalThis.stagepass after load

function idbStore(dbName) {
  if (typeof indexedDB === 'undefined') {
    const mem = new Map();
    return { get: async (k) => (mem.has(k) ? mem.get(k) : null), put: async (k, v) => { mem.set(k, v); } };
  }
  const open = new Promise((resolve, reject) => {
    const req = indexedDB.open(dbName, 1);
    req.onupgradeneeded = () => req.result.createObjectStore('kv');
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error);
  });
  const tx = async (mode, f) => {
    const db = await open;
    return new Promise((resolve, reject) => {
      const t = db.transaction('kv', mode);
      const req = f(t.objectStore('kv'));
      t.oncomplete = () => resolve(req.result);
      t.onerror = () => reject(t.error);
      t.onabort = () => reject(t.error);
    });
  };
  return {
    get: async (k) => { const v = await tx('readonly', (s) => s.get(k)); return v === undefined ? null : v; },
    put: (k, v) => tx('readwrite', (s) => s.put(v, k)),
  };
}

async function load({ wasmURL, wasmExecURL, wasmBytes, dbName = 'stagepass-wallet' }) {
  if (typeof Go === 'undefined') importScripts(wasmExecURL); // defines globalThis.Go
  const go = new Go();
  let instance;
  if (wasmBytes) {
    ({ instance } = await WebAssembly.instantiate(wasmBytes, go.importObject));
  } else if (WebAssembly.instantiateStreaming) {
    try {
      ({ instance } = await WebAssembly.instantiateStreaming(fetch(wasmURL), go.importObject));
    } catch (e) { // a server without application/wasm: compile from bytes
      const bytes = await (await fetch(wasmURL)).arrayBuffer();
      ({ instance } = await WebAssembly.instantiate(bytes, go.importObject));
    }
  } else {
    const bytes = await (await fetch(wasmURL)).arrayBuffer();
    ({ instance } = await WebAssembly.instantiate(bytes, go.importObject));
  }
  go.run(instance); // resolves only when Go exits; the API appears as globalThis.stagepass
  while (!globalThis.stagepass) await new Promise((r) => setTimeout(r, 0));
  const db = idbStore(dbName);
  const sp = globalThis.stagepass;
  const res = await sp.init({
    storage: { load: () => db.get('vault'), save: (s) => db.put('vault', s) },
    cache: { load: (k) => db.get('cache:' + k), save: (k, s) => db.put('cache:' + k, s) },
    onEvent: (event, data) => self.postMessage({ event, data }),
  });
  return { sp, methods: res.methods };
}

self.addEventListener('message', async (ev) => {
  const { id, method, params } = ev.data || {};
  if (id === undefined) return;
  try {
    let result;
    if (method === 'load') {
      if (!ready) ready = load(params || {});
      result = { methods: (await ready).methods };
    } else {
      if (!ready) throw Object.assign(new Error('wallet not loaded: call load first'), { code: 'NOT_LOADED' });
      const { sp } = await ready;
      if (typeof sp[method] !== 'function' || method === 'init') {
        throw Object.assign(new Error('unknown method ' + method), { code: 'UNKNOWN_METHOD' });
      }
      result = await sp[method](params || {});
    }
    self.postMessage({ id, result });
  } catch (e) {
    self.postMessage({ id, error: { message: String((e && e.message) || e), code: (e && e.code) || 'INTERNAL' } });
  }
});
