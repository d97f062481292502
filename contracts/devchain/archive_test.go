package devchain_test

import (
	"context"
	"math/big"
	"testing"

	"github.com/stagepass/stagepass/contracts/devchain"
)

// The development chain keeps every block's state (an archive), so a relay restarted on a
// chain that has run a while can rebuild its index from the start.
func TestArchiveState(t *testing.T) {
	c, err := devchain.New(devchain.Options{Seed: "archive"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range 300 {
		c.Commit()
	}
	if _, err := c.Client.BalanceAt(context.Background(), c.Deployer.Address, big.NewInt(1)); err != nil {
		t.Fatalf("state at block 1 after 300 blocks: %v", err)
	}
}
