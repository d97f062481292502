package main

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/google/uuid"

	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/contracts/devchain/gethtest"
	"github.com/stagepass/stagepass/relay/internal/syncbuf"
	"github.com/stagepass/stagepass/relay/payments"
)

var (
	buildOnce sync.Once
	binPath   string
	buildErr  error
)

// binary builds the stagepass command once per test run.
func binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "stagepass-bin")
		if err != nil {
			buildErr = err
			return
		}
		binPath = filepath.Join(dir, "stagepass")
		out, err := exec.Command("go", "build", "-o", binPath, ".").CombinedOutput()
		if err != nil {
			buildErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return binPath
}

// proc is a running stagepass process.
type proc struct {
	cmd  *exec.Cmd
	url  string
	logs *syncbuf.Buffer // what it has written so far
}

// output is what the process has written so far, safe to read while it runs.
func (p *proc) output() string {
	return p.logs.String()
}

func freeAddr(t testing.TB) string {
	t.Helper()
	return devchain.MustFreeAddr(t)
}

// start runs `stagepass args...` with --addr on a free port and waits for /healthz.
func start(t testing.TB, env []string, args ...string) *proc {
	t.Helper()
	addr := freeAddr(t)
	cmd := exec.Command(binary(t), append(args, "--addr", addr)...)
	cmd.Env = append(os.Environ(), env...)
	logs := &syncbuf.Buffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	p := &proc{cmd: cmd, url: "http://" + addr, logs: logs}
	t.Cleanup(func() { p.kill() })
	deadline := time.Now().Add(60 * time.Second)
	for {
		if _, err := p.health(); err == nil {
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("stagepass %v did not become healthy:\n%s", args, logs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *proc) health() (map[string]any, error) {
	res, err := http.Get(p.url + "/healthz")
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("healthz: %s", res.Status)
	}
	var h map[string]any
	return h, json.NewDecoder(res.Body).Decode(&h)
}

// kill stops the process at once (SIGKILL): no draining, no cleanup.
func (p *proc) kill() {
	if p.cmd.ProcessState == nil {
		_ = p.cmd.Process.Kill()
		_ = p.cmd.Wait()
	}
}

// stop asks the process to stop (SIGTERM) and waits.
func (p *proc) stop(t *testing.T) {
	t.Helper()
	_ = p.cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("stagepass exited with %v:\n%s", err, p.logs)
		}
	case <-time.After(20 * time.Second):
		t.Fatalf("stagepass did not stop within 20 s")
	}
}

func TestHelpAndBadFlags(t *testing.T) {
	for _, tc := range []struct {
		args []string
		ok   bool
		want string
	}{
		{[]string{"--help"}, true, "stagepass dev"},
		{[]string{"dev", "--help"}, true, "-block-time"},
		{[]string{"serve", "--help"}, true, "-keystore"},
		{[]string{"serve"}, false, "missing"},
		{[]string{"dev", "--block-time", "soon"}, false, "invalid value"},
		{[]string{"dev", "--exit-delay", "500ms"}, false, "--exit-delay 500ms: at least 1s"},
		{[]string{"dev", "--validator-keys", t.TempDir(), "--data", t.TempDir()}, false, "--validator-keys needs --mainchain and --local-validators"},
		{[]string{"launch"}, false, "unknown command"},
	} {
		out, err := exec.Command(binary(t), tc.args...).CombinedOutput()
		if (err == nil) != tc.ok || !strings.Contains(string(out), tc.want) {
			t.Errorf("stagepass %v: err %v, output does not say %q:\n%s", tc.args, err, tc.want, out)
		}
	}
}

func TestDevServesHealthSiteAndMetrics(t *testing.T) {
	p := start(t, nil, "dev", "--block-time", "100ms", "--data", t.TempDir())
	h, err := p.health()
	if err != nil {
		t.Fatal(err)
	}
	if h["chainId"].(float64) != 1337 || h["factory"] == "" || h["forwarder"] == "" {
		t.Fatalf("healthz %v", h)
	}
	for path, want := range map[string]string{"/": "<title>Stagepass</title>", "/metrics": "stagepass_chain_head_block"} {
		res, err := http.Get(p.url + path)
		if err != nil {
			t.Fatal(err)
		}
		var b bytes.Buffer
		_, _ = b.ReadFrom(res.Body)
		res.Body.Close()
		if !strings.Contains(b.String(), want) {
			t.Fatalf("%s does not contain %q", path, want)
		}
	}
	p.stop(t)
}

// gethPlatform starts geth --dev, deploys the platform, and writes the relayer's keystore.
func gethPlatform(t *testing.T) (*devchain.Chain, string, []string) {
	t.Helper()
	url := gethtest.StartGeth(t)
	c, err := devchain.Dial(context.Background(), url, devchain.Options{Accounts: 6, Seed: t.Name()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	relayer := c.Accounts[0]
	dir := t.TempDir()
	keyFile := writeKeystore(t, filepath.Join(dir, "relayer.json"), relayer.Key, "relay password")
	args := []string{"serve", "--rpc", url, "--keystore", keyFile, "--forwarder", c.Forwarder.Hex(), "--factory", c.Factory.Hex(), "--data", filepath.Join(dir, "data")}
	return c, url, args
}

func TestServeAgainstGeth(t *testing.T) {
	c, _, args := gethPlatform(t)
	out, err := exec.Command(binary(t), append(args, "--addr", freeAddr(t))...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "wrong password") {
		t.Fatalf("without the password: err %v\n%s", err, out)
	}
	p := start(t, []string{"STAGEPASS_PASSWORD=relay password"}, args...)
	h, err := p.health()
	if err != nil {
		t.Fatal(err)
	}
	if uint64(h["chainId"].(float64)) != c.ChainID.Uint64() {
		t.Fatalf("healthz %v", h)
	}
	p.stop(t)
}

func TestDevServesTheSandboxProcessor(t *testing.T) {
	p := start(t, nil, "dev", "--block-time", "100ms", "--data", t.TempDir())
	c := &payments.Client{BaseURL: p.url + "/sandbox", APIKey: devPaymentsKey}
	in, err := c.CreateIntent(context.Background(), 4500, "usd", map[string]string{"buyer": "0xabc"})
	if err != nil {
		t.Fatal(err)
	}
	res, err := http.Get(p.url + "/sandbox/checkout/" + in.ID + "?client_secret=" + in.ClientSecret)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(res.Body)
	res.Body.Close()
	if res.StatusCode != 200 || !strings.Contains(string(b), `action="`+in.ID+`"`) {
		t.Fatalf("checkout %d:\n%s", res.StatusCode, b)
	}
	paid, err := c.Confirm(context.Background(), in.ID, payments.Card{Number: "4242424242424242", ExpMonth: 12, ExpYear: 2034, CVC: "123"})
	if err != nil || paid.Status != payments.StatusSucceeded {
		t.Fatalf("confirm: %+v %v", paid, err)
	}
	p.stop(t)
}

// writeKeystore writes key as a keystore v3 file at path (light scrypt: a test key),
// encrypted with password, and returns path.
func writeKeystore(t testing.TB, path string, key *ecdsa.PrivateKey, password string) string {
	t.Helper()
	ks, err := keystore.EncryptKey(&keystore.Key{Id: uuid.New(), Address: crypto.PubkeyToAddress(key.PublicKey), PrivateKey: key},
		password, keystore.LightScryptN, keystore.LightScryptP)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, ks, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
