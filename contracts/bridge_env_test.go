package contracts_test

// Shared set-up of the Checkpoint and Gateway tests (issue 9): two simulated chains with
// distinct chain ids — the main chain with StakeManager, CheckpointManager and RootGateway,
// the sidechain with the ticket platform and ChildGateway — and a Go copy of ChildGateway's
// withdrawal tree built from its logs, checked against ChildGateway's root after every leaf.

import (
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/stagepass/stagepass/contracts/bindings/childtoken"
	"github.com/stagepass/stagepass/contracts/bindings/mainchain"
	"github.com/stagepass/stagepass/contracts/bindings/sidechain"
	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/contracts/merkle"
)

var (
	bridgeABIs = []*abi.ABI{
		mustABI(mainchain.StakeManagerMetaData.ABI), mustABI(mainchain.CheckpointManagerMetaData.ABI),
		mustABI(mainchain.RootGatewayMetaData.ABI), mustABI(mainchain.TicketMirrorMetaData.ABI),
		mustABI(sidechain.ChildGatewayMetaData.ABI), mustABI(childtoken.ChildTokenMetaData.ABI),
	}
	mainChainID = big.NewInt(1337)
	sideChainID = big.NewInt(31337)
	childToken  = childtoken.NewChildToken()
)

// bridgeErr names a revert by the sidechain contracts' errors, else the platform's.
func bridgeErr(err error) string {
	for _, a := range bridgeABIs {
		if n := devchain.ErrorName(a, err); n != "" {
			return n
		}
	}
	return errName(err)
}

func wantBridgeErr(t *testing.T, err error, name string) {
	t.Helper()
	if err == nil {
		t.Fatalf("succeeded, want revert %s", name)
	}
	if got := bridgeErr(err); got != name {
		t.Fatalf("reverted with %q (%v), want %s", got, err, name)
	}
}

type bridgeEnv struct {
	t          *testing.T
	b          *devchain.Bridge
	main, side *devchain.Chain
	v          []*devchain.Account // validators, ascending
	// tree is the Go copy of ChildGateway's withdrawal tree.
	tree *merkle.Tree
}

func newBridgeEnv(t *testing.T, opts devchain.BridgeOptions) *bridgeEnv {
	t.Helper()
	main, err := devchain.New(devchain.Options{Seed: t.Name() + "/main", ChainID: mainChainID})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(main.Close)
	side, err := devchain.New(devchain.Options{Seed: t.Name() + "/side", ChainID: sideChainID, Accounts: 12})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(side.Close)
	b, err := devchain.NewBridge(main, side, opts)
	if err != nil {
		t.Fatal(err)
	}
	return &bridgeEnv{t: t, b: b, main: main, side: side, v: b.Validators, tree: merkle.New(merkle.WithdrawalDepth)}
}

func (e *bridgeEnv) okMain(from *devchain.Account, to common.Address, data []byte) *types.Receipt {
	e.t.Helper()
	r, err := e.main.Transact(from, to, data, nil)
	if err != nil {
		e.t.Fatalf("main chain: %s %v", bridgeErr(err), err)
	}
	return r
}

func (e *bridgeEnv) okSide(from *devchain.Account, to common.Address, data []byte) *types.Receipt {
	e.t.Helper()
	r, err := e.side.Transact(from, to, data, nil)
	if err != nil {
		e.t.Fatalf("sidechain: %s %v", bridgeErr(err), err)
	}
	return r
}

func (e *bridgeEnv) callMain(to common.Address, data []byte) []byte {
	e.t.Helper()
	out, err := e.main.Call(to, data)
	if err != nil {
		e.t.Fatalf("main chain call: %s %v", bridgeErr(err), err)
	}
	return out
}

func (e *bridgeEnv) callSide(to common.Address, data []byte) []byte {
	e.t.Helper()
	out, err := e.side.Call(to, data)
	if err != nil {
		e.t.Fatalf("sidechain call: %s %v", bridgeErr(err), err)
	}
	return out
}

// checkpoint submits the next checkpoint (up to the sidechain's head) signed by `signers`
// and returns its number.
func (e *bridgeEnv) checkpoint(signers ...*devchain.Account) uint64 {
	e.t.Helper()
	cp, err := e.b.NextCheckpoint()
	if err != nil {
		e.t.Fatal(err)
	}
	n, err := devchain.CheckpointNumber(e.okMain(e.main.Deployer, e.b.Checkpoints, e.b.SubmitCheckpointCall(cp, signers...)))
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

// deposit locks `amount` TestUSD from `from` on the main chain for `to` on the sidechain and
// returns the deposit as validators attest it.
func (e *bridgeEnv) deposit(from *devchain.Account, to common.Address, amount *big.Int) sidechain.Deposit {
	e.t.Helper()
	e.main.FundUSD(e.b.Root, amount, from)
	r := e.okMain(from, e.b.Root, devchain.RootGW.PackDeposit(to, amount))
	for _, l := range r.Logs {
		if ev, err := devchain.RootGW.UnpackDepositedEvent(l); err == nil {
			return sidechain.Deposit{DepositId: ev.DepositId, Recipient: ev.Recipient, Amount: ev.Amount}
		}
	}
	e.t.Fatal("no Deposited")
	return sidechain.Deposit{}
}

// queued records the withdrawal a ChildGateway receipt queued in the Go tree and checks that
// the Go root is the one ChildGateway computed with OpenZeppelin's MerkleTree.
func (e *bridgeEnv) queued(r *types.Receipt) merkle.Withdrawal {
	e.t.Helper()
	w, err := devchain.QueuedWithdrawal(r.Logs)
	if err != nil {
		e.t.Fatal(err)
	}
	root, err := e.b.WithdrawalRoot()
	if err != nil {
		e.t.Fatal(err)
	}
	if int(w.Index) != e.tree.Len() {
		e.t.Fatalf("withdrawal index %d, Go tree has %d leaves", w.Index, e.tree.Len())
	}
	e.tree.Push(w.Leaf())
	if got := e.tree.Root(); got != root {
		e.t.Fatalf("withdrawal root: ChildGateway %x, Go %x", root, got)
	}
	return w
}

func (e *bridgeEnv) childBalance(a common.Address) *big.Int {
	e.t.Helper()
	n, err := childToken.UnpackBalanceOf(e.callSide(e.b.ChildToken, childToken.PackBalanceOf(a)))
	if err != nil {
		e.t.Fatal(err)
	}
	return n
}

func (e *bridgeEnv) exitCall(number uint64, w merkle.Withdrawal) []byte {
	e.t.Helper()
	data, err := devchain.ExitCall(number, w, e.tree)
	if err != nil {
		e.t.Fatal(err)
	}
	return data
}
