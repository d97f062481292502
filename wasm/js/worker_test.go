// Package js_test runs wallet-worker.js and wallet-client.js with the real wallet.wasm
// under Node's worker_threads, shimmed to look like a browser's Web Worker.
package js_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// shim makes a Node worker thread look like a browser worker: self, postMessage,
// addEventListener('message'), importScripts, fetch of local files, and a WebSocket that
// opens and stays quiet (Node 20 has none).
const shim = `
const { parentPort } = require('worker_threads');
const fs = require('fs');
globalThis.self = globalThis;
globalThis.postMessage = (m) => parentPort.postMessage(m);
globalThis.addEventListener = (type, fn) => { if (type === 'message') parentPort.on('message', (data) => fn({ data })); };
globalThis.importScripts = (...urls) => urls.forEach((u) => require(u));
globalThis.fetch = async (u) => new Response(fs.readFileSync(u), { headers: { 'content-type': 'application/wasm' } });
globalThis.WebSocket = class { constructor() { setTimeout(() => this.onopen && this.onopen({}), 0); } send() {} close() {} };
require(process.env.WORKER_JS);
`

const page = `
import { Worker } from 'worker_threads';
const { startWallet } = await import(process.env.CLIENT_JS);
const nodeWorker = new Worker(process.env.SHIM_JS, { env: process.env });
const worker = { // the browser Worker interface over Node's
  postMessage: (m, t) => nodeWorker.postMessage(m, t),
  addEventListener: (type, fn) => nodeWorker.on(type, (data) => fn({ data })),
  terminate: () => nodeWorker.terminate(),
};
const wallet = await startWallet({ worker, wasmURL: process.env.WASM, wasmExecURL: process.env.WASM_EXEC });
const out = {};
const acct = '0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266';
const ev = '0x5FbDB2315678afecb367f032d93F642f64180aa3';
out.restored = (await wallet.restore({ mnemonic: 'test test test test test test test test test test test junk', password: 'hunter2hunter2' })).accounts[0];
await wallet.lock({});
try { await wallet.unlock({ password: 'wrong password' }); } catch (e) { out.wrongCode = e.code; }
await wallet.unlock({ password: 'hunter2hunter2' });
const pass = await wallet.makePass({ account: acct, chainId: 1337, event: ev, tokenId: 7 });
out.holder = (await wallet.verifyPass({ payload: pass.payload, chainId: 1337, events: [ev] })).holder;
const connected = new Promise((resolve) => wallet.on('connection', (d) => d.connected && resolve(d.url)));
await wallet.connect({ url: 'ws://relay.test/ws' });
out.connection = await connected;
try { await wallet.call('nope', {}); } catch (e) { out.unknownCode = e.code; }
console.log(JSON.stringify(out));
wallet.terminate();
`

func TestWorkerUnderNode(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the wasm and runs it under Node")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		t.Skip("node not installed")
	}
	dir := t.TempDir()
	wasm := filepath.Join(dir, "wallet.wasm")
	build := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", wasm, "../cmd/wallet")
	build.Env = append(os.Environ(), "GOOS=js", "GOARCH=wasm")
	if b, err := build.CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, b)
	}
	goroot, _ := exec.Command("go", "env", "GOROOT").Output()
	abs := func(p string) string { a, _ := filepath.Abs(p); return a }
	client := filepath.Join(dir, "wallet-client.mjs") // Node needs .mjs for an ES module outside a package
	src, err := os.ReadFile("wallet-client.js")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]string{client: string(src), filepath.Join(dir, "shim.cjs"): shim, filepath.Join(dir, "page.mjs"): page}
	for name, body := range files {
		if err := os.WriteFile(name, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(node, filepath.Join(dir, "page.mjs"))
	cmd.Env = append(os.Environ(), "CLIENT_JS="+client, "SHIM_JS="+filepath.Join(dir, "shim.cjs"),
		"WORKER_JS="+abs("wallet-worker.js"), "WASM="+wasm,
		"WASM_EXEC="+filepath.Join(strings.TrimSpace(string(goroot)), "lib", "wasm", "wasm_exec.js"))
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	got := strings.TrimSpace(string(out))
	for _, want := range []string{`"restored":"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"`, `"wrongCode":"WRONG_PASSWORD"`,
		`"holder":"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"`, `"connection":"ws://relay.test/ws"`, `"unknownCode":"UNKNOWN_METHOD"`} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %s:\n%s", want, got)
		}
	}
}
