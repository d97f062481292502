package protocol_test

import (
	"math/big"
	"testing"

	"github.com/ethereum/go-ethereum/common"

	"github.com/stagepass/stagepass/contracts/bindings/events"
	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// The report digests match contracts/devchain's (go-ethereum's apitypes), which the
// contract tests check against OracleHub on chain.
func TestOracleReportDigestsMatchDevchain(t *testing.T) {
	hub := common.HexToAddress("0x5FbDB2315678afecb367f032d93F642f64180aa3")
	ev := common.HexToAddress("0xa16E02E87b7454126E5E10d957A927A7F5B5d2be")
	chainID := uint64(1337)
	var ps []events.CardPurchase
	var ours []protocol.CardPurchase
	for i := int64(0); i < 3; i++ {
		p := events.CardPurchase{
			RequestId: devchain.PaymentID("req" + string(rune('a'+i))), PaymentId: devchain.PaymentID("pi_" + string(rune('a'+i))),
			Buyer: common.BigToAddress(big.NewInt(1000 + i)), Tier: big.NewInt(i), Quantity: big.NewInt(i + 1), Amount: big.NewInt(45_000_000 * (i + 1)),
		}
		ps = append(ps, p)
		ours = append(ours, protocol.CardPurchase{RequestID: p.RequestId, PaymentID: p.PaymentId, Buyer: ethcrypto.Address(p.Buyer), Tier: p.Tier, Quantity: p.Quantity, Amount: p.Amount})
		want := devchain.CaptureDigest(devchain.HubDomain(big.NewInt(int64(chainID)), hub), ev, ps)
		got, err := protocol.CaptureDigest(protocol.HubDomain(chainID, ethcrypto.Address(hub)), ethcrypto.Address(ev), ours)
		if err != nil || got != want {
			t.Fatalf("capture digest of %d purchases: %x, %v; devchain %x", len(ps), got, err, want)
		}
	}
	ids := [][32]byte{devchain.PaymentID("pi_a"), devchain.PaymentID("pi_b")}
	for _, kind := range []uint8{protocol.ReportRefunded, protocol.ReportChargedBack} {
		want := devchain.ReversalDigest(devchain.HubDomain(big.NewInt(int64(chainID)), hub), kind, ids)
		got, err := protocol.ReversalDigest(protocol.HubDomain(chainID, ethcrypto.Address(hub)), kind, ids)
		if err != nil || got != want {
			t.Fatalf("reversal digest kind %d: %x, %v; devchain %x", kind, got, err, want)
		}
	}
	if protocol.PaymentIDOf("pi_x") != devchain.PaymentID("pi_x") {
		t.Fatal("payment id differs from devchain's")
	}
	// Wire round trip.
	back, err := ours[2].JSON().Parse()
	if err != nil || back.RequestID != ours[2].RequestID || back.Amount.Cmp(ours[2].Amount) != 0 || back.Buyer != ours[2].Buyer {
		t.Fatalf("round trip %+v %v", back, err)
	}
}

func TestCardMinorUnits(t *testing.T) {
	for _, tc := range []struct {
		units string
		cents int64
		ok    bool
	}{{"45000000", 4500, true}, {"10000", 1, true}, {"12345", 0, false}, {"0", 0, false}, {"-10000", 0, false}, {"1000000000000000000000", 0, false}} {
		u, _ := new(big.Int).SetString(tc.units, 10)
		c, err := protocol.CardMinorUnits(u)
		if (err == nil) != tc.ok || c != tc.cents {
			t.Errorf("%s units: %d, %v", tc.units, c, err)
		}
	}
}
