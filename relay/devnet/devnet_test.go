package devnet_test

import (
	"context"
	"testing"
	"time"

	"github.com/stagepass/stagepass/relay/devnet"
)

func TestStartCommitsBlocksAndHasTheDemo(t *testing.T) {
	d, err := devnet.Start(devnet.Config{BlockTime: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	if d.Accounts[0].Address.Hex() != "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266" {
		t.Fatalf("development account 0 is %s", d.Accounts[0].Address)
	}
	b0, _ := d.Client.BlockNumber(context.Background())
	time.Sleep(300 * time.Millisecond)
	b1, _ := d.Client.BlockNumber(context.Background())
	if b1 <= b0 {
		t.Fatalf("no blocks committed: %d then %d", b0, b1)
	}
	code, err := d.Client.CodeAt(context.Background(), d.Demo, nil)
	if err != nil || len(code) == 0 {
		t.Fatalf("demo event has no code: %v", err)
	}
}
