package exits

import (
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/relay/anchor"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// TestGatewayTrackerOnStep: OnStep is told, after each step, the withdrawals whose stage
// changed in it (queued, checkpointed, exited), the deposits read for the first time, and
// the main-chain block read up to; a step that changed nothing tells no record.
func TestGatewayTrackerOnStep(t *testing.T) {
	e := newEnv(t)
	alice := e.main.Accounts[1].Address
	var got []Changes
	var main anchor.MainChain = e.main.Client
	tr, err := New(Config{Main: main, Side: e.side.Client, Root: e.b.Root, Checkpoints: e.b.Checkpoints, Child: e.b.Child,
		Wallet: e.wallet, OnStep: func(c Changes) { got = append(got, c) }})
	if err != nil {
		t.Fatal(err)
	}
	last := func() Changes {
		t.Helper()
		if len(got) == 0 {
			t.Fatal("OnStep was not called")
		}
		c := got[len(got)-1]
		got = nil
		return c
	}
	stages := func(c Changes) (out []string) {
		for _, w := range c.Withdrawals {
			out = append(out, w.Stage)
		}
		return out
	}

	e.step(tr) // the first: the fan's deposit of newEnv
	c := last()
	head, _ := e.main.Client.BlockNumber(t.Context())
	if len(c.Withdrawals) != 0 || len(c.Deposits) != 1 || c.Deposits[0].Recipient != e.fan.Address || c.MainBlock != head {
		t.Fatalf("first step: %+v (head %d)", c, head)
	}
	e.step(tr)
	if c := last(); len(c.Withdrawals) != 0 || len(c.Deposits) != 0 {
		t.Fatalf("a step that read nothing new: %+v", c)
	}

	e.withdraw(alice, 20)
	e.step(tr)
	if c := last(); len(c.Withdrawals) != 1 || c.Withdrawals[0].Stage != protocol.WithdrawalQueued || !sameAddress(c.Withdrawals[0].Recipient, alice) {
		t.Fatalf("queued: %+v", c)
	}
	e.checkpoint(false)
	e.step(tr) // checkpointed; the exit sent
	if c := last(); len(stages(c)) != 1 || stages(c)[0] != protocol.WithdrawalCheckpointed {
		t.Fatalf("checkpointed: %+v", c)
	}
	var exited Changes
	e.until("the exit told", func() bool {
		e.step(tr)
		for _, c := range got {
			if len(c.Withdrawals) == 1 && c.Withdrawals[0].Stage == protocol.WithdrawalExited {
				exited = c
			}
		}
		got = nil
		return exited.Withdrawals != nil
	})
	if exited.Withdrawals[0].ExitTx == "" {
		t.Fatalf("exited: %+v", exited)
	}

	e.main.FundUSD(e.b.Root, devchain.USDC(5), e.main.Accounts[0])
	e.main.MustTransact(e.main.Accounts[0], e.b.Root, devchain.RootGW.PackDeposit(alice, devchain.USDC(5)), nil)
	e.step(tr)
	if c := last(); len(c.Deposits) != 1 || c.Deposits[0].Recipient != alice || c.Deposits[0].Amount.Cmp(devchain.USDC(5)) != 0 || len(c.Withdrawals) != 0 {
		t.Fatalf("a new deposit: %+v", c)
	}
}

func sameAddress(hex string, a common.Address) bool { return common.HexToAddress(hex) == a }
