// Package gethtest runs a real `geth --dev` node for tests.
package gethtest

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/ethclient"
)

// GethPath finds the geth binary: $STAGEPASS_GETH, then geth on PATH, then $GOPATH/bin/geth
// (where build.sh test installs it). It returns "" when there is none.
func GethPath() string {
	if p := os.Getenv("STAGEPASS_GETH"); p != "" {
		return p
	}
	if p, err := exec.LookPath("geth"); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(string(out[:len(out)-1]), "bin", "geth")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// StartGeth runs `geth --dev --dev.period 1` on a free loopback port for the duration of the
// test and returns its HTTP JSON-RPC URL. Without geth the test is skipped, except under CI
// (CI set), where build.sh installs geth and its absence is a failure.
func StartGeth(t testing.TB) string {
	t.Helper()
	bin := GethPath()
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("geth not found: ./build.sh test installs it with go install")
		}
		t.Skip("geth not found; ./build.sh test installs it (or set STAGEPASS_GETH)")
	}
	port := freePort(t)
	dir := t.TempDir()
	cmd := exec.Command(bin, "--dev", "--dev.period", "1", "--datadir", dir,
		"--http", "--http.addr", "127.0.0.1", "--http.port", strconv.Itoa(port), "--http.api", "eth,net,web3",
		"--ipcdisable", "--nodiscover", "--maxpeers", "0", "--port", "0", "--authrpc.port", strconv.Itoa(freePort(t)),
		"--verbosity", "2")
	logFile, err := os.Create(filepath.Join(dir, "geth.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stdout, cmd.Stderr = logFile, logFile
	if err := cmd.Start(); err != nil {
		t.Fatalf("start geth: %v", err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logFile.Close()
	})
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := ethclient.Dial(url)
		if err == nil {
			_, err = c.BlockNumber(context.Background())
			c.Close()
			if err == nil {
				return url
			}
		}
		if time.Now().After(deadline) {
			log, _ := os.ReadFile(filepath.Join(dir, "geth.log"))
			t.Fatalf("geth did not answer at %s within 30 s: %v\n%s", url, err, log)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
