package actions

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/stagepass/stagepass/contracts/bindings/mainchain"
	"github.com/stagepass/stagepass/wasm/protocol"
	"github.com/stagepass/stagepass/wasm/signing"
)

var rootGateway = common.HexToAddress("0x0165878A594ca255338adfa4d48449f69242Eb8F")

// TestExitCalldataMatchesBindings: RootGateway.exit, hand-encoded, equals the main-chain
// bindings' Pack (go-ethereum's abi over RootGateway's artifact) byte for byte, for a
// stablecoin and a ticket withdrawal, with an empty and a full proof; it decodes back, and
// DecodeExit refuses what is not its canonical encoding.
func TestExitCalldataMatchesBindings(t *testing.T) {
	root := mainchain.NewRootGateway()
	var full [][32]byte
	for i := range 32 {
		full = append(full, [32]byte{byte(i + 1), 0xee, byte(i)})
	}
	huge := new(big.Int).Lsh(big.NewInt(1), 255)
	for _, c := range []ExitCall{
		{Checkpoint: big.NewInt(3), Kind: KindToken, Index: big.NewInt(7), Recipient: friend, Value: big.NewInt(12_500_000), Data: new(big.Int), Proof: full},
		{Checkpoint: big.NewInt(0), Kind: KindTicket, Index: huge, Recipient: devKey(t).Address(), Asset: evAddr, Value: big.NewInt(4294967297), Data: big.NewInt(1)},
	} {
		ours, err := c.Encode()
		if err != nil {
			t.Fatal(err)
		}
		w := mainchain.Withdrawal{Kind: c.Kind, Index: c.Index, Recipient: common.Address(c.Recipient), Asset: common.Address(c.Asset), Value: c.Value, Data: c.Data}
		proof := c.Proof
		if proof == nil {
			proof = [][32]byte{}
		}
		if theirs := root.PackExit(c.Checkpoint, w, proof); !bytes.Equal(ours, theirs) {
			t.Fatalf("kind %d: ours %x\ntheirs %x", c.Kind, ours, theirs)
		}
		back, err := DecodeExit(ours)
		if err != nil {
			t.Fatal(err)
		}
		if again, _ := back.Encode(); !bytes.Equal(again, ours) || back.Recipient != c.Recipient || back.Asset != c.Asset || len(back.Proof) != len(c.Proof) {
			t.Fatalf("round trip %+v", back)
		}
		for name, bad := range map[string][]byte{
			"an extra word":  append(append([]byte(nil), ours...), make([]byte, 32)...),
			"a word short":   ours[:len(ours)-32],
			"another offset": func() []byte { b := append([]byte(nil), ours...); b[4+7*32+31] = 0x20; return b }(),
			"a dirty address": func() []byte {
				b := append([]byte(nil), ours...)
				b[4+3*32] = 1
				return b
			}(),
		} {
			if _, err := DecodeExit(bad); !errors.Is(err, ErrCalldata) {
				t.Fatalf("kind %d with %s: %v", c.Kind, name, err)
			}
		}
	}
	if _, err := (&ExitCall{Checkpoint: big.NewInt(1), Index: big.NewInt(1), Value: big.NewInt(-1), Data: new(big.Int)}).Encode(); err == nil {
		t.Fatal("a negative value encoded")
	}
}

func claimFixture(account string) (*protocol.MainTxParams, *protocol.Withdrawal, *protocol.WithdrawalProof) {
	cp := uint64(4)
	proof := make([]string, 32)
	for i := range proof {
		proof[i] = fmt.Sprintf("0x%064x", i+1)
	}
	mp := &protocol.MainTxParams{ChainID: 1338, Account: strings.ToLower(account), Nonce: 5, Balance: "1000000000000000000",
		BaseFee: "1000000000", Tip: "2000000000", Gateway: strings.ToLower(rootGateway.Hex()), ManualExits: true}
	w := &protocol.Withdrawal{Index: 2, Kind: "token", Recipient: strings.ToLower(account), Value: "12500000", Stage: protocol.WithdrawalCheckpointed, Checkpoint: &cp}
	p := &protocol.WithdrawalProof{Checkpoint: cp, Index: 2, Kind: KindToken, Recipient: strings.ToLower(account),
		Asset: "0x0000000000000000000000000000000000000000", Value: "12500000", Data: "0", Proof: proof}
	return mp, w, p
}

// TestClaim: the summary reads the signed calldata ("Claim 12.5 spUSD on the main chain",
// the recipient, the checkpoint, the gas and who pays it); the signed transaction, decoded
// by go-ethereum, is for the main chain, from the account, to RootGateway, at the relay's
// nonce, with the bindings' calldata. Refused with their reasons: not yet checkpointed,
// already exited, another's withdrawal, a proof of another withdrawal, too little coin for
// the gas (saying how much).
func TestClaim(t *testing.T) {
	k := devKey(t)
	me := k.Address()
	mp, w, p := claimFixture(me.Hex())
	a, err := Claim(me, mp, w, p, spToken)
	if err != nil {
		t.Fatal(err)
	}
	text := summaryText(a.Summary)
	for _, want := range []string{"Claim 12.5 spUSD on the main chain", "Paid to: " + me.Hex() + " on the main chain (id 1338)", "Checkpoint: #4",
		"Gas: about 0.0003 ETH, paid by you from " + me.Hex(), "Max network fee: 0.00072 ETH", "nothing is paid on the main chain until you claim",
		"Contract: " + rootGateway.Hex() + " (RootGateway)", "Nonce: 5"} {
		if !strings.Contains(text, want) {
			t.Fatalf("summary lacks %q:\n%s", want, text)
		}
	}
	res, err := a.Sign(k)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := hex.DecodeString(strings.TrimPrefix(res.Raw, "0x"))
	tx := new(types.Transaction)
	if err := tx.UnmarshalBinary(raw); err != nil {
		t.Fatal(err)
	}
	from, err := types.Sender(types.LatestSignerForChainID(big.NewInt(1338)), tx)
	if err != nil || from != common.Address(me) || tx.ChainId().Uint64() != 1338 || *tx.To() != rootGateway || tx.Nonce() != 5 ||
		tx.Gas() != ClaimGas || tx.GasFeeCap().Int64() != 4_000_000_000 || tx.GasTipCap().Int64() != 2_000_000_000 || tx.Value().Sign() != 0 ||
		tx.Hash().Hex() != res.TxHash {
		t.Fatalf("signed %v from %s: %+v", err, from.Hex(), tx)
	}
	proof := make([][32]byte, len(p.Proof))
	for i, h := range p.Proof {
		proof[i] = common.HexToHash(h)
	}
	want := mainchain.NewRootGateway().PackExit(big.NewInt(4), mainchain.Withdrawal{Kind: 1, Index: big.NewInt(2), Recipient: common.Address(me),
		Value: big.NewInt(12_500_000), Data: new(big.Int)}, proof)
	if !bytes.Equal(tx.Data(), want) {
		t.Fatalf("calldata %x\nwant %x", tx.Data(), want)
	}

	// A souvenir: kind 2, the ticket's mirror.
	mp2, w2, p2 := claimFixture(me.Hex())
	w2.Kind, w2.Value, p2.Kind, p2.Value, p2.Asset, p2.Data, mp2.ManualExits = "ticket", "4294967297", KindTicket, "4294967297", evAddr.Hex(), "1", false
	a, err = Claim(me, mp2, w2, p2, nil)
	if err != nil {
		t.Fatal(err)
	}
	if text := summaryText(a.Summary); !strings.Contains(text, "Claim souvenir ticket #4294967297 on the main chain") ||
		!strings.Contains(text, "Gas: about 0.00036 ETH") || !strings.Contains(text, "the relay would pay this claim too") {
		t.Fatalf("souvenir summary:\n%s", text)
	}

	for _, tc := range []struct {
		name string
		edit func(*protocol.MainTxParams, *protocol.Withdrawal, *protocol.WithdrawalProof)
		err  error
		msg  string
	}{
		{"queued", func(_ *protocol.MainTxParams, w *protocol.Withdrawal, _ *protocol.WithdrawalProof) {
			w.Stage = protocol.WithdrawalQueued
		},
			ErrNotAllowed, "withdrawal 2 is not in a main-chain checkpoint yet"},
		{"exited", func(_ *protocol.MainTxParams, w *protocol.Withdrawal, _ *protocol.WithdrawalProof) {
			w.Stage, w.ExitTx = protocol.WithdrawalExited, "0xabc"
		}, ErrNotAllowed, "withdrawal 2 is already paid on the main chain (transaction 0xabc)"},
		{"another's", func(_ *protocol.MainTxParams, w *protocol.Withdrawal, _ *protocol.WithdrawalProof) {
			w.Recipient = strings.ToLower(friend.Hex())
		},
			ErrNotAllowed, "is paid to " + strings.ToLower(friend.Hex()) + ", not to " + me.Hex()},
		{"another proof", func(_ *protocol.MainTxParams, _ *protocol.Withdrawal, p *protocol.WithdrawalProof) { p.Index = 3 },
			ErrBadArgs, "does not match withdrawal 2"},
		{"poor", func(mp *protocol.MainTxParams, _ *protocol.Withdrawal, _ *protocol.WithdrawalProof) {
			mp.Balance = "100000000000000"
		},
			ErrInsufficientBalance, "claiming needs up to 0.00072 ETH of main-chain coin for gas (about 0.0003 ETH), and " + me.Hex() + " holds 0.0001 ETH on chain 1338"},
		{"no main chain", func(mp *protocol.MainTxParams, _ *protocol.Withdrawal, _ *protocol.WithdrawalProof) { mp.Gateway = "" },
			ErrNoGateway, "no main chain"},
	} {
		mp, w, p := claimFixture(me.Hex())
		tc.edit(mp, w, p)
		_, err := Claim(me, mp, w, p, spToken)
		if !errors.Is(err, tc.err) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// summaryText is a summary as its title, then lines "Label: value".
func summaryText(s signing.Summary) string {
	out := s.Title
	for _, l := range s.Lines {
		out += "\n" + l.Label + ": " + l.Value
	}
	return out
}
