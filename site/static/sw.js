// Stagepass service worker: keeps the app and the wallet (wallet.wasm included) on the
// device so a visited site opens with no network — tickets from the wallet's cache, the
// door pass signed locally. Network first (a deploy shows at once), the cache when the
// network fails. The relay's API (/ws, /rpc, …) is never cached.
'use strict';

const CACHE = 'stagepass-v1';
const APP = [
  './', 'index.html', 'app.css', 'app.js', 'format.js', 'qr.js', 'vendor/qrcode-generator/qrcode.mjs',
  'scanner.html', 'scanner.js', 'scanner.css', 'dom.js', 'vendor/jsqr/jsQR.js',
  'issuer.html', 'issuer.js', 'issuer.css', 'walletui.js', 'passkey.js',
  'wallet/wallet-client.js', 'wallet/wallet-worker.js', 'wallet/wasm_exec.js', 'wallet/wallet.wasm',
  'manifest.webmanifest', 'favicon.ico', 'icons/icon.svg', 'icons/icon-192.png', 'icons/icon-512.png',
  'icons/maskable-512.png', 'icons/apple-touch-icon.png',
];
const API = /^\/(ws|rpc|healthz|metrics|sandbox)(\/|$)/;

self.addEventListener('install', (ev) => {
  ev.waitUntil((async () => {
    const cache = await caches.open(CACHE);
    // One by one: a server without the wallet built still caches the rest. 'no-cache'
    // revalidates what the page has just downloaded (ETag → 304) rather than fetching it again.
    await Promise.all(APP.map((u) => cache.add(new Request(u, { cache: 'no-cache' })).catch(() => {})));
    await self.skipWaiting();
  })());
});

self.addEventListener('activate', (ev) => {
  ev.waitUntil((async () => {
    for (const k of await caches.keys()) if (k !== CACHE) await caches.delete(k);
    await self.clients.claim();
  })());
});

self.addEventListener('fetch', (ev) => {
  const req = ev.request;
  const url = new URL(req.url);
  if (req.method !== 'GET' || url.origin !== self.location.origin || API.test(url.pathname)) return;
  ev.respondWith((async () => {
    const cache = await caches.open(CACHE);
    try {
      const res = await fetch(req);
      if (res.ok) await cache.put(req, res.clone());
      return res;
    } catch (err) {
      const hit = await cache.match(req, { ignoreSearch: true }) ||
        (req.mode === 'navigate' ? await cache.match('./') : undefined);
      if (hit) return hit;
      throw err;
    }
  })());
});
