package devchain

import (
	"bytes"
	"fmt"
	"math/big"
	"sort"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/common/math"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/stagepass/stagepass/contracts/bindings/events"
)

// Hub is the OracleHub binding.
var Hub = events.NewOracleHub()

// Report kinds as OracleHub numbers them.
const (
	KindCaptured    uint8 = 0
	KindRefunded    uint8 = 1
	KindChargedBack uint8 = 2
)

// Payment statuses as OracleHub.PaymentStatus numbers them.
const (
	PaymentNone uint8 = iota
	PaymentRequested
	PaymentCapturing
	PaymentMinted
	PaymentFailed
	PaymentRefunded
	PaymentChargedBack
)

// SortAccounts orders accounts by ascending address, the order OracleHub wants signatures in.
func SortAccounts(a []*Account) {
	sort.Slice(a, func(i, j int) bool { return bytes.Compare(a[i].Address[:], a[j].Address[:]) < 0 })
}

// HubDomain is the EIP-712 domain of the OracleHub at `hub` on chain `chainID`.
func HubDomain(chainID *big.Int, hub common.Address) apitypes.TypedDataDomain {
	return apitypes.TypedDataDomain{
		Name: "Stagepass OracleHub", Version: "1",
		ChainId: (*math.HexOrDecimal256)(chainID), VerifyingContract: hub.Hex(),
	}
}

// OracleDomain is the EIP-712 domain of this chain's OracleHub.
func (c *Chain) OracleDomain() apitypes.TypedDataDomain { return HubDomain(c.ChainID, c.Hub) }

var hubTypes = apitypes.Types{
	"EIP712Domain": {
		{Name: "name", Type: "string"}, {Name: "version", Type: "string"},
		{Name: "chainId", Type: "uint256"}, {Name: "verifyingContract", Type: "address"},
	},
	"CardPurchase": {
		{Name: "requestId", Type: "bytes32"}, {Name: "paymentId", Type: "bytes32"},
		{Name: "buyer", Type: "address"}, {Name: "tier", Type: "uint256"},
		{Name: "quantity", Type: "uint256"}, {Name: "amount", Type: "uint256"},
	},
	"PaymentsCaptured": {
		{Name: "ticketEvent", Type: "address"}, {Name: "purchases", Type: "CardPurchase[]"},
	},
	"PaymentsReversed": {
		{Name: "kind", Type: "uint8"}, {Name: "paymentIds", Type: "bytes32[]"},
	},
	"CategoryAttestation": {
		{Name: "buyer", Type: "address"}, {Name: "artist", Type: "address"}, {Name: "category", Type: "uint8"},
		{Name: "issuedAt", Type: "uint64"}, {Name: "expiry", Type: "uint64"},
	},
	"IssuerAttestation": {
		{Name: "issuer", Type: "address"}, {Name: "domain", Type: "string"},
		{Name: "issuedAt", Type: "uint64"}, {Name: "expiry", Type: "uint64"},
	},
	"OracleSetChange": {
		{Name: "members", Type: "address[]"}, {Name: "threshold", Type: "uint256"}, {Name: "epoch", Type: "uint256"},
	},
}

func hubDigest(dom apitypes.TypedDataDomain, primary string, msg apitypes.TypedDataMessage) [32]byte {
	hash, _, err := apitypes.TypedDataAndHash(apitypes.TypedData{Types: hubTypes, PrimaryType: primary, Domain: dom, Message: msg})
	if err != nil {
		panic(fmt.Sprintf("devchain: EIP-712 %s: %v", primary, err))
	}
	return [32]byte(hash)
}

// CaptureDigest is the EIP-712 digest oracles sign to report that the payments of
// `purchases`, all for `event`, were captured.
func CaptureDigest(dom apitypes.TypedDataDomain, event common.Address, purchases []events.CardPurchase) [32]byte {
	items := make([]interface{}, len(purchases))
	for i, p := range purchases {
		items[i] = map[string]interface{}{
			"requestId": hexutil.Encode(p.RequestId[:]), "paymentId": hexutil.Encode(p.PaymentId[:]),
			"buyer": p.Buyer.Hex(), "tier": p.Tier.String(), "quantity": p.Quantity.String(), "amount": p.Amount.String(),
		}
	}
	return hubDigest(dom, "PaymentsCaptured", apitypes.TypedDataMessage{"ticketEvent": event.Hex(), "purchases": items})
}

// ReversalDigest is the EIP-712 digest oracles sign to report that `paymentIds` were
// refunded (KindRefunded) or charged back (KindChargedBack).
func ReversalDigest(dom apitypes.TypedDataDomain, kind uint8, paymentIds [][32]byte) [32]byte {
	ids := make([]interface{}, len(paymentIds))
	for i, id := range paymentIds {
		ids[i] = hexutil.Encode(id[:])
	}
	return hubDigest(dom, "PaymentsReversed", apitypes.TypedDataMessage{"kind": fmt.Sprint(kind), "paymentIds": ids})
}

// CategoryDigest is the EIP-712 digest oracles sign to attest that `buyer` is in `category`
// for `artist` (the zero address: any artist) from `issuedAt` until `expiry`.
func CategoryDigest(dom apitypes.TypedDataDomain, buyer, artist common.Address, category uint8, issuedAt, expiry uint64) [32]byte {
	return hubDigest(dom, "CategoryAttestation", apitypes.TypedDataMessage{
		"buyer": buyer.Hex(), "artist": artist.Hex(), "category": fmt.Sprint(category),
		"issuedAt": fmt.Sprint(issuedAt), "expiry": fmt.Sprint(expiry),
	})
}

// IssuerDigest is the EIP-712 digest oracles sign to attest that `issuer` controls `domain`.
func IssuerDigest(dom apitypes.TypedDataDomain, issuer common.Address, domain string, issuedAt, expiry uint64) [32]byte {
	return hubDigest(dom, "IssuerAttestation", apitypes.TypedDataMessage{
		"issuer": issuer.Hex(), "domain": domain, "issuedAt": fmt.Sprint(issuedAt), "expiry": fmt.Sprint(expiry),
	})
}

// OracleSetDigest is the EIP-712 digest the current oracles sign to replace their set with
// `members` and threshold `k` at `epoch`.
func OracleSetDigest(dom apitypes.TypedDataDomain, members []common.Address, k, epoch uint64) [32]byte {
	ms := make([]interface{}, len(members))
	for i, m := range members {
		ms[i] = m.Hex()
	}
	return hubDigest(dom, "OracleSetChange", apitypes.TypedDataMessage{
		"members": ms, "threshold": fmt.Sprint(k), "epoch": fmt.Sprint(epoch),
	})
}

// SignDigest signs `digest` with each signer in the order given (65 bytes r || s || v, v 27
// or 28). OracleHub wants the signers in ascending address order; SortAccounts sorts them.
func SignDigest(digest [32]byte, signers ...*Account) [][]byte {
	sigs := make([][]byte, len(signers))
	for i, s := range signers {
		sig, err := crypto.Sign(digest[:], s.Key)
		if err != nil {
			panic(err)
		}
		sig[64] += 27
		sigs[i] = sig
	}
	return sigs
}

// Quorum is the first k oracles of the current set, in ascending address order.
func (c *Chain) Quorum() []*Account { return c.Oracles[:c.OracleThreshold] }

// PaymentID makes a bytes32 payment id from a processor's id such as "pi_123": keccak256
// of the text, as the relay does.
func PaymentID(processorID string) [32]byte { return crypto.Keccak256Hash([]byte(processorID)) }

// RequestPurchase sends `buyer`'s requestPurchase to `event` and returns the purchase as the
// oracle network will report it.
func (c *Chain) RequestPurchase(buyer *Account, event common.Address, paymentID [32]byte, tier, qty int64) (events.CardPurchase, uint64, error) {
	r, err := c.Transact(buyer, event, Ticket.PackRequestPurchase(paymentID, big.NewInt(tier), big.NewInt(qty)), nil)
	if err != nil {
		return events.CardPurchase{}, 0, err
	}
	for _, l := range r.Logs {
		if ev, err := Ticket.UnpackPurchaseRequestedEvent(l); err == nil {
			return events.CardPurchase{
				RequestId: ev.RequestId, PaymentId: ev.PaymentId, Buyer: ev.Buyer,
				Tier: ev.Tier, Quantity: ev.Qty, Amount: ev.Amount,
			}, r.GasUsed, nil
		}
	}
	return events.CardPurchase{}, 0, fmt.Errorf("requestPurchase: no PurchaseRequested log")
}

// FulfilCall is the calldata of OracleHub.fulfil for `purchases` of `event`, signed by
// `signers` in the order given.
func (c *Chain) FulfilCall(event common.Address, purchases []events.CardPurchase, signers ...*Account) []byte {
	sigs := SignDigest(CaptureDigest(c.OracleDomain(), event, purchases), signers...)
	return Hub.PackFulfil(event, purchases, sigs)
}

// ReverseCall is the calldata of OracleHub.reverse, signed by `signers` in the order given.
func (c *Chain) ReverseCall(kind uint8, paymentIds [][32]byte, signers ...*Account) []byte {
	sigs := SignDigest(ReversalDigest(c.OracleDomain(), kind, paymentIds), signers...)
	return Hub.PackReverse(kind, paymentIds, sigs)
}

// HubPayment reads OracleHub.payment(paymentID): its event, status and tickets.
func (c *Chain) HubPayment(paymentID [32]byte) (events.PaymentOutput, error) {
	out, err := c.Call(c.Hub, Hub.PackPayment(paymentID))
	if err != nil {
		return events.PaymentOutput{}, err
	}
	return Hub.UnpackPayment(out)
}
