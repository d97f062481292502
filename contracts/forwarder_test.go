package contracts_test

import (
	"math/big"
	"testing"

	"github.com/stagepass/stagepass/contracts/bindings/forwarder"
	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// TestGaslessPurchaseThroughForwarder: a fan who holds TestUSD but no native coin signs an
// EIP-2612 permit and an ERC-2771 forward request (with the wallet's own signing code);
// a relayer submits it and pays the gas. The contract sees the fan as the buyer. A replay
// and a tampered request are refused on-chain.
func TestGaslessPurchaseThroughForwarder(t *testing.T) {
	e := newEnv(t, nil)
	fan := devchain.NewAccount("no native coin", 0)
	relayer := e.c.Deployer
	e.c.MustTransact(relayer, e.c.USD, devchain.USD.PackMint(fan.Address, devchain.USDC(100)), nil)

	call := e.c.BuyWithPermitCall(fan, e.ev, 0, 1, devchain.USDC(50), e.c.Now()+600)
	req, sig := e.c.SignForward(fan, e.ev, call, 400_000, e.c.Now()+600)
	fwd := forwarder.NewStagepassForwarder()
	data := func(req *protocol.ForwardRequest, sig []byte) []byte {
		return fwd.PackExecute(forwarder.ERC2771ForwarderForwardRequestData{
			From: fan.Address, To: e.ev, Value: req.Value, Gas: req.Gas,
			Deadline: new(big.Int).SetUint64(req.Deadline), Data: req.Data, Signature: sig,
		})
	}
	if err := protocol.VerifyForwardRequest(req, protocol.ForwarderDomain(e.c.ChainID.Uint64(), ethcrypto.Address(e.c.Forwarder)), sig); err != nil {
		t.Fatalf("the relay's check refuses the wallet's signature: %v", err)
	}

	// Tampered: the relayer swaps in a bigger quantity; the signature no longer matches.
	tampered := *req
	tampered.Data = e.c.BuyWithPermitCall(fan, e.ev, 0, 2, devchain.USDC(50), req.Deadline)
	if _, err := e.c.Transact(relayer, e.c.Forwarder, data(&tampered, sig), nil); err == nil {
		t.Fatal("tampered forward request executed")
	}

	rc, err := e.c.Transact(relayer, e.c.Forwarder, data(req, sig), nil)
	if err != nil {
		t.Fatalf("execute: %v", err)
	}
	var id *big.Int
	for _, l := range rc.Logs {
		if p, err := ticket.UnpackPurchasedEvent(l); err == nil {
			if p.Buyer != fan.Address {
				t.Fatalf("buyer %s, want the fan %s", p.Buyer, fan.Address)
			}
			id = p.FirstTokenId
		}
	}
	if id == nil || e.ticketOf(id).Owner != fan.Address {
		t.Fatal("the fan did not get the ticket")
	}
	if got := e.c.USDBalance(fan.Address); got.Cmp(devchain.USDC(50)) != 0 {
		t.Fatalf("fan has %s TestUSD left, want 50", got)
	}
	if b := e.c.Balance(fan.Address); b.Sign() != 0 {
		t.Fatalf("fan spent or holds native coin: %s", b)
	}
	// Replay: the forwarder's nonce moved on.
	if _, err := e.c.Transact(relayer, e.c.Forwarder, data(req, sig), nil); err == nil {
		t.Fatal("replayed forward request executed")
	}
}
