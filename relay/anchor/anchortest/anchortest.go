// Package anchortest runs a real btcd node on simnet for tests.
package anchortest

import (
	"context"
	"os"
	"testing"

	"github.com/btcsuite/btcd/btcutil"

	"github.com/stagepass/stagepass/relay/anchor"
)

// BtcdPath is anchor.BtcdPath.
func BtcdPath() string { return anchor.BtcdPath() }

// RequireBtcd returns btcd's path. Without btcd the test is skipped, except under CI (CI
// set), where build.sh installs it and its absence is a failure.
func RequireBtcd(t testing.TB) string {
	t.Helper()
	bin := BtcdPath()
	if bin == "" {
		if os.Getenv("CI") != "" {
			t.Fatal("btcd not found: ./build.sh test installs it with go install")
		}
		t.Skip("btcd not found; ./build.sh test installs it (or set STAGEPASS_BTCD)")
	}
	return bin
}

// StartBtcd runs btcd on simnet, mining to `miningAddr`, for the duration of the test.
// Without btcd the test is skipped (RequireBtcd).
func StartBtcd(t testing.TB, miningAddr btcutil.Address) *anchor.Node {
	t.Helper()
	bin := RequireBtcd(t)
	n, err := anchor.StartSimnet(context.Background(), anchor.NodeOptions{Bin: bin, Dir: t.TempDir(), MiningAddr: miningAddr})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.Stop)
	return n
}
