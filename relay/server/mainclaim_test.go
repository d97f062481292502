package server_test

import (
	"context"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/contracts/merkle"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// signMain signs an EIP-1559 transaction from `from` to `to` for chain `chainID` at the
// fees and nonce sp_mainTxParams gives, as a self-custody wallet does.
func signMain(t *testing.T, from *devchain.Account, chainID *big.Int, p protocol.MainTxParams, nonce uint64, to common.Address, data []byte) string {
	t.Helper()
	base, _ := new(big.Int).SetString(p.BaseFee, 10)
	tip, _ := new(big.Int).SetString(p.Tip, 10)
	feeCap := new(big.Int).Add(new(big.Int).Mul(base, big.NewInt(2)), tip)
	tx, err := types.SignNewTx(from.Key, types.LatestSignerForChainID(chainID), &types.DynamicFeeTx{
		ChainID: chainID, Nonce: nonce, GasTipCap: tip, GasFeeCap: feeCap, Gas: 200_000, To: &to, Data: data,
	})
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tx.MarshalBinary()
	return fmt.Sprintf("0x%x", raw)
}

// TestMainClaimThroughTheRelay: a relay with ManualExits pays no exit; the recipient reads
// sp_mainTxParams, signs RootGateway.exit with sp_withdrawalProof's proof in Go and sends it
// through sp_sendRawTransaction, is paid once and sp_withdrawals shows their exit. Refused,
// each with its reason and nothing sent: the same claim again (AlreadyExited, checked
// before sending), a main-chain transaction to another contract, one for a chain the relay
// does not serve, and a tampered proof.
func TestMainClaimThroughTheRelay(t *testing.T) {
	chain := bridgeChain(t, 50*time.Millisecond)
	e, _ := bridgeRelay(t, chain, true, t.TempDir(), nil)
	fan := devchain.NewAccount("main claim fan", 0)
	recipient := chain.Main.Accounts[6] // holds main-chain coin for its own gas
	e.credit(fan.Address, devchain.USDC(10), false)
	e.forward(fan, chain.Bridge.Child, devchain.ChildGW.PackWithdraw(recipient.Address, devchain.USDC(4)))
	e.withdrawalsUntil(recipient.Address, 0, protocol.WithdrawalCheckpointed)

	var p protocol.MainTxParams
	e.result(protocol.MethodMainTxParams, []any{recipient.Address.Hex()}, &p)
	balance, _ := new(big.Int).SetString(p.Balance, 10)
	if p.ChainID != chain.Main.ChainID.Uint64() || !strings.EqualFold(p.Account, recipient.Address.Hex()) || !p.ManualExits ||
		!strings.EqualFold(p.Gateway, chain.Bridge.Root.Hex()) || balance == nil || balance.Sign() <= 0 || p.Tip == "" || p.BaseFee == "" {
		t.Fatalf("main tx params %+v", p)
	}
	if n, _ := chain.Main.Client.PendingNonceAt(context.Background(), recipient.Address); p.Nonce != n {
		t.Fatalf("nonce %d, the node's %d", p.Nonce, n)
	}

	var wp protocol.WithdrawalProof
	e.result(protocol.MethodWithdrawalProof, []any{0}, &wp)
	exitData := func(wp protocol.WithdrawalProof) []byte {
		proof := make([][32]byte, len(wp.Proof))
		for i, h := range wp.Proof {
			proof[i] = common.HexToHash(h)
		}
		value, _ := new(big.Int).SetString(wp.Value, 10)
		data, _ := new(big.Int).SetString(wp.Data, 10)
		return devchain.RootGW.PackExit(new(big.Int).SetUint64(wp.Checkpoint), devchain.MainWithdrawal(merkle.Withdrawal{Kind: wp.Kind, Index: wp.Index,
			Recipient: common.HexToAddress(wp.Recipient), Asset: common.HexToAddress(wp.Asset), Value: value, Data: data}), proof)
	}
	refused := func(what, raw, want string) {
		t.Helper()
		r := e.call(protocol.MethodSendRawTransaction, []any{raw})
		if r.Error == nil || r.Error.Code != -32602 || !strings.Contains(r.Error.Message, want) {
			t.Fatalf("%s: %+v, want %q", what, r.Error, want)
		}
	}
	mainID := chain.Main.ChainID
	tampered := wp
	tampered.Proof = append([]string(nil), wp.Proof...)
	tampered.Proof[0] = common.Hash{7}.Hex()
	refused("a tampered proof", signMain(t, recipient, mainID, p, p.Nonce, chain.Bridge.Root, exitData(tampered)), "RootGateway would revert it, so it was not sent: InvalidProof(checkpoint=")
	refused("another main-chain contract", signMain(t, recipient, mainID, p, p.Nonce, chain.Main.USD, devchain.USD.PackTransfer(fan.Address, big.NewInt(1))),
		"on the main chain ("+mainID.String()+") the relay only sends transactions to RootGateway "+chain.Bridge.Root.Hex())
	refused("another chain", signMain(t, recipient, big.NewInt(999), p, p.Nonce, chain.Bridge.Root, exitData(wp)),
		"transaction is for chain 999, this relay sends to chain 1337 and, to RootGateway only, main chain "+mainID.String())

	before := chain.Main.USDBalance(recipient.Address)
	var hash string
	e.result(protocol.MethodSendRawTransaction, []any{signMain(t, recipient, mainID, p, p.Nonce, chain.Bridge.Root, exitData(wp))}, &hash)
	w := e.withdrawalsUntil(recipient.Address, 0, protocol.WithdrawalExited)
	if !strings.EqualFold(w.ExitTx, hash) {
		t.Fatalf("exited by %s, the claim was %s", w.ExitTx, hash)
	}
	if got := new(big.Int).Sub(chain.Main.USDBalance(recipient.Address), before); got.Cmp(devchain.USDC(4)) != 0 {
		t.Fatalf("paid %v", got)
	}
	nonce, _ := chain.Main.Client.PendingNonceAt(context.Background(), recipient.Address)
	refused("the same claim again", signMain(t, recipient, mainID, p, nonce, chain.Bridge.Root, exitData(wp)), "AlreadyExited(index=0)")
	if n, _ := chain.Main.Client.PendingNonceAt(context.Background(), recipient.Address); n != nonce {
		t.Fatalf("a refused claim was sent: nonce %d → %d", nonce, n)
	}
}

// TestMainClaimNoMainChain: a relay without a main chain refuses sp_mainTxParams and a
// transaction signed for another chain, saying it follows none.
func TestMainClaimNoMainChain(t *testing.T) {
	e := newEnv(t)
	fan := e.chain.Accounts[7]
	r := e.call(protocol.MethodMainTxParams, []any{fan.Address.Hex()})
	if r.Error == nil || r.Error.Code != -32602 || !strings.Contains(r.Error.Message, "this relay follows no main chain") {
		t.Fatalf("sp_mainTxParams: %+v", r.Error)
	}
	p := protocol.MainTxParams{BaseFee: "1000000000", Tip: "1000000000"}
	raw := signMain(t, fan, big.NewInt(1338), p, 0, common.HexToAddress("0x00000000000000000000000000000000000000aa"), nil)
	r = e.call(protocol.MethodSendRawTransaction, []any{raw})
	if r.Error == nil || r.Error.Code != -32602 || !strings.Contains(r.Error.Message, "transaction is for chain 1338, this relay serves chain 1337 and follows no main chain") {
		t.Fatalf("a main-chain transaction: %+v", r.Error)
	}
}
