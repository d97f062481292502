package server_test

import (
	"bytes"
	"context"
	"fmt"
	"math/big"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/ethclient/simulated"

	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/relay/internal/txfees"
	"github.com/stagepass/stagepass/relay/server"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// losingNode is the main chain's node losing the first RootGateway.depositWithPermit sent
// to it, as a node whose pool dropped it.
type losingNode struct {
	simulated.Client
	lost atomic.Int32
}

func (n *losingNode) SendTransaction(ctx context.Context, tx *types.Transaction) error {
	if bytes.HasPrefix(tx.Data(), devchain.RootGW.PackDepositWithPermit(common.Address{}, big.NewInt(0), big.NewInt(0), 0, [32]byte{}, [32]byte{})[:4]) &&
		n.lost.CompareAndSwap(0, 1) {
		return nil
	}
	return n.Client.SendTransaction(ctx, tx)
}

// TestGatewayDepositLostByTheNodeIsSentAgain: the main chain's node loses the deposit the
// relay sent for a fan's permit (and with it the submitter's nonce, so the checkpoints after
// it would wait too); the relay follows the deposit, sends it again under the same nonce
// once overdue, and the fan is credited without signing again.
func TestGatewayDepositLostByTheNodeIsSentAgain(t *testing.T) {
	chain := bridgeChain(t, 200*time.Millisecond)
	node := &losingNode{Client: chain.Main.Client}
	e, _ := bridgeRelayWith(t, chain, t.TempDir(), nil, func(v *server.ValidatorConfig) {
		v.Main = node
		v.Fees = txfees.Policy{StuckAfter: 500 * time.Millisecond}
	})
	fan := devchain.NewAccount("lost deposit fan", 0)
	chain.Main.MustTransact(chain.Main.Accounts[3], chain.Main.USD, devchain.USD.PackMint(fan.Address, devchain.USDC(10)), nil)
	amount := devchain.USDC(4)
	deadline := time.Now().Add(time.Hour).Unix()
	v, r, s := chain.Main.SignPermit(fan, chain.Bridge.Root, amount, big.NewInt(deadline))
	var tx protocol.DepositSent
	e.result(protocol.MethodDepositWithPermit, []any{protocol.DepositPermit{Owner: fan.Address.Hex(), Amount: amount.String(),
		Deadline: uint64(deadline), V: v, R: fmt.Sprintf("0x%x", r), S: fmt.Sprintf("0x%x", s)}}, &tx)
	if node.lost.Load() != 1 {
		t.Fatal("the node did not lose the deposit")
	}
	// Nothing else is sent from the submitter's wallet until the validators run: only the
	// relay's following the deposit gets it mined.
	var ds []protocol.Deposit
	waitFor(t, "the deposit mined on the main chain", func() bool {
		e.result(protocol.MethodDeposits, []string{fan.Address.Hex()}, &ds)
		return len(ds) == 1
	})
	e.validators()
	waitFor(t, "the deposit credited", func() bool {
		e.result(protocol.MethodDeposits, []string{fan.Address.Hex()}, &ds)
		return len(ds) == 1 && ds[0].Stage == protocol.DepositCredited
	})
	if ds[0].TxHash == tx.TxHash {
		t.Fatalf("credited from the lost transaction %s", tx.TxHash)
	}
	if b := chain.Main.USDBalance(fan.Address); b.Cmp(devchain.USDC(6)) != 0 {
		t.Fatalf("the fan holds %v TestUSD on the main chain, want 6 (one deposit of 4)", b)
	}
}
