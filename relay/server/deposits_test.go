package server_test

import (
	"context"
	"fmt"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/crypto"

	"github.com/stagepass/stagepass/contracts/bindings/childtoken"
	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// TestGatewayDepositWithPermitThroughTheRelay: a fan with TestUSD on the main chain and no
// coin on either chain signs a permit for RootGateway; the relay checks it, sends
// depositWithPermit from its main-chain wallet, and the validators credit the fan's own
// address on the sidechain, once. A permit signed by another key, expired, of zero, below
// the relay's minimum (1 TestUSD by default), above the fan's balance, or sent again is
// refused with a clear error and nothing is sent.
func TestGatewayDepositWithPermitThroughTheRelay(t *testing.T) {
	chain := bridgeChain(t, 200*time.Millisecond)
	e, _ := bridgeRelay(t, chain, false, t.TempDir(), nil)
	ctx := context.Background()
	fan := devchain.NewAccount("deposit fan", 0) // no coin on either chain
	other := devchain.NewAccount("deposit fan", 1)
	chain.Main.MustTransact(chain.Main.Accounts[3], chain.Main.USD, devchain.USD.PackMint(fan.Address, devchain.USDC(40)), nil)

	var info protocol.MainPermitInfo
	e.result(protocol.MethodMainPermitInfo, []string{fan.Address.Hex()}, &info)
	if info.ChainID != chain.Main.ChainID.Uint64() || !strings.EqualFold(info.Gateway, chain.Bridge.Root.Hex()) || info.Confirmations != 2 ||
		!strings.EqualFold(info.Token.Token, chain.Main.USD.Hex()) || info.Token.Name != "Test USD" || info.Token.Version != "1" ||
		info.Token.Nonce != "0" || info.Token.Balance != "40000000" || info.Token.Decimals != 6 || info.MinAmount != "1000000" {
		t.Fatalf("main permit info %+v", info)
	}

	submitter := crypto.PubkeyToAddress(chain.Submitter.PublicKey)
	sent := func() uint64 {
		n, err := chain.Main.Client.PendingNonceAt(ctx, submitter)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	deadline := time.Now().Add(time.Hour).Unix()
	permit := func(signer *devchain.Account, amount *big.Int, deadline int64) protocol.DepositPermit {
		v, r, s := chain.Main.SignPermit(signer, chain.Bridge.Root, amount, big.NewInt(deadline))
		return protocol.DepositPermit{Owner: fan.Address.Hex(), Amount: amount.String(), Deadline: uint64(deadline),
			V: v, R: fmt.Sprintf("0x%x", r), S: fmt.Sprintf("0x%x", s)}
	}
	amount := big.NewInt(12_500_000) // 12.50
	before := sent()
	for _, tc := range []struct {
		name string
		p    protocol.DepositPermit
		want string
	}{
		{"signed by another key", permit(other, amount, deadline), "the permit is not signed by " + fan.Address.Hex()},
		{"expired", permit(fan, amount, time.Now().Add(-time.Minute).Unix()), "the permit expired at"},
		{"zero", permit(fan, big.NewInt(0), deadline), "amount must be a whole number of base units above zero"},
		{"below the minimum", permit(fan, big.NewInt(999_999), deadline), "999999 base units is below the 1000000 tUSD base units this relay brings over for you"},
		{"more than the balance", permit(fan, devchain.USDC(41), deadline), "holds 40000000 tUSD base units on the main chain, less than the 41000000 to deposit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.call(protocol.MethodDepositWithPermit, []any{tc.p})
			if r.Error == nil || r.Error.Code != -32602 || !strings.Contains(r.Error.Message, tc.want) {
				t.Fatalf("error %+v, want %q", r.Error, tc.want)
			}
		})
	}
	if n := sent(); n != before {
		t.Fatalf("the relay sent %d main-chain transactions for refused permits", n-before)
	}

	good := permit(fan, amount, deadline)
	var tx protocol.DepositSent
	e.result(protocol.MethodDepositWithPermit, []any{good}, &tx)
	if tx.TxHash == "" || sent() != before+1 {
		t.Fatalf("sent %+v", tx)
	}
	// The same permit again, before and after it is mined: refused, nothing sent.
	if r := e.call(protocol.MethodDepositWithPermit, []any{good}); r.Error == nil {
		t.Fatal("the same permit sent twice")
	}
	var ds []protocol.Deposit
	waitFor(t, "the deposit on the main chain", func() bool {
		e.result(protocol.MethodDeposits, []string{fan.Address.Hex()}, &ds)
		return len(ds) == 1
	})
	d := ds[0]
	if d.Stage != protocol.DepositPending || d.Amount != "12500000" || !strings.EqualFold(d.From, fan.Address.Hex()) ||
		!strings.EqualFold(d.TxHash, tx.TxHash) || d.Required != 2 || d.Confirmations < 1 {
		t.Fatalf("pending deposit %+v", d)
	}
	if r := e.call(protocol.MethodDepositWithPermit, []any{good}); r.Error == nil || !strings.Contains(r.Error.Message, "already used") {
		t.Fatalf("a used permit: %+v", r.Error)
	}
	if n := sent(); n != before+1 {
		t.Fatalf("the relay sent %d main-chain transactions, want 1", n-before)
	}

	e.validators()
	waitFor(t, "the deposit credited", func() bool {
		e.result(protocol.MethodDeposits, []string{fan.Address.Hex()}, &ds)
		return len(ds) == 1 && ds[0].Stage == protocol.DepositCredited
	})
	token := childtoken.NewChildToken()
	out, err := chain.Call(chain.Bridge.ChildToken, token.PackBalanceOf(fan.Address))
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := token.UnpackBalanceOf(out); b.Cmp(amount) != 0 {
		t.Fatalf("the fan holds %v spUSD, want 12.50", b)
	}
	if b := chain.Main.USDBalance(fan.Address); b.Cmp(big.NewInt(27_500_000)) != 0 {
		t.Fatalf("the fan holds %v TestUSD on the main chain, want 27.50", b)
	}
	for _, c := range []*devchain.Chain{chain.Main, chain.Chain} {
		if wei, err := c.Client.BalanceAt(ctx, fan.Address, nil); err != nil || wei.Sign() != 0 {
			t.Fatalf("the fan holds %v wei (%v)", wei, err)
		}
	}
}
