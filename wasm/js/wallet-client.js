// Stagepass wallet client for the page (ES module). It starts wallet-worker.js and exposes
// the wallet's Promise API over messages:
//
//   import { startWallet } from './wallet-client.js';
//   const wallet = await startWallet({ workerURL: '/wallet-worker.js', wasmURL: '/wallet.wasm',
//                                      wasmExecURL: '/wasm_exec.js' });
//   await wallet.unlock({ password });                 // any method of wasm/README.md
//   wallet.on('tickets', (view) => render(view));      // pushes; returns an unsubscribe
//
// Rejections are Errors with .code (WRONG_PASSWORD, LOCKED, PASS_EXPIRED, OFFLINE, …).

export class WalletClient {
  // worker: a Worker (or anything with postMessage and addEventListener('message')).
  constructor(worker) {
    this.worker = worker;
    this.nextId = 1;
    this.pending = new Map();
    this.listeners = new Map();
    worker.addEventListener('message', (ev) => this._receive(ev.data));
  }

  _receive(msg) {
    if (!msg) return;
    if (msg.event !== undefined) {
      for (const fn of this.listeners.get(msg.event) || []) {
        try { fn(msg.data); } catch (e) { console.error('stagepass listener', e); }
      }
      return;
    }
    const p = this.pending.get(msg.id);
    if (!p) return;
    this.pending.delete(msg.id);
    if (msg.error) p.reject(Object.assign(new Error(msg.error.message), { code: msg.error.code }));
    else p.resolve(msg.result);
  }

  // call runs one wallet method; params is a plain object.
  call(method, params = {}, transfer = []) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.worker.postMessage({ id, method, params }, transfer);
    });
  }

  // on listens for pushes of one kind ("tickets", "request", "connection", "scanner").
  on(kind, fn) {
    if (!this.listeners.has(kind)) this.listeners.set(kind, new Set());
    this.listeners.get(kind).add(fn);
    return () => this.listeners.get(kind).delete(fn);
  }

  terminate() { this.worker.terminate(); }
}

// startWallet starts the worker, loads the wasm and returns a client whose methods are the
// wallet's (wallet.unlock(...), wallet.tickets(...), …) besides call/on/terminate.
export async function startWallet({ workerURL, wasmURL, wasmExecURL, dbName, worker } = {}) {
  const w = worker || new Worker(workerURL);
  const client = new WalletClient(w);
  // The worker resolves URLs against its own script; resolve them against the page here.
  const abs = (u) => (u && typeof location !== 'undefined' ? new URL(u, location.href).href : u);
  wasmURL = abs(wasmURL);
  wasmExecURL = abs(wasmExecURL);
  const { methods } = await client.call('load', { wasmURL, wasmExecURL, dbName });
  for (const m of methods) {
    if (!(m in client)) client[m] = (params) => client.call(m, params);
  }
  return client;
}
