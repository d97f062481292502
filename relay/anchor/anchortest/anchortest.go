// Package anchortest runs a real btcd node on simnet for tests.
package anchortest

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/btcsuite/btcd/btcutil"

	"github.com/stagepass/stagepass/relay/anchor"
)

// BtcdPath finds the btcd binary: $STAGEPASS_BTCD, then btcd on PATH, then $GOPATH/bin/btcd
// (where build.sh test installs it). It returns "" when there is none.
func BtcdPath() string {
	if p := os.Getenv("STAGEPASS_BTCD"); p != "" {
		return p
	}
	if p, err := exec.LookPath("btcd"); err == nil {
		return p
	}
	if out, err := exec.Command("go", "env", "GOPATH").Output(); err == nil {
		p := filepath.Join(strings.TrimSpace(string(out)), "bin", "btcd")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// StartBtcd runs btcd on simnet, mining to `miningAddr`, for the duration of the test.
// Without btcd the test is skipped, except under CI (CI set), where build.sh installs it and
// its absence is a failure.
func StartBtcd(t testing.TB, miningAddr btcutil.Address) *anchor.Node {
	t.Helper()
	bin := BtcdPath()
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("btcd not found: ./build.sh test installs it with go install")
		}
		t.Skip("btcd not found; ./build.sh test installs it (or set STAGEPASS_BTCD)")
	}
	n, err := anchor.StartSimnet(context.Background(), anchor.NodeOptions{Bin: bin, Dir: t.TempDir(), MiningAddr: miningAddr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	return n
}
