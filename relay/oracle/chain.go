// Package oracle is Stagepass's decentralized oracle network in Go (DESIGN.md "Card
// purchase", claims 6 and 14): the oracle Node, which follows the chain for card purchase
// requests, checks each payment with its own payment processor and signs an EIP-712 report,
// and the relay's Aggregator, which verifies reports against the OracleHub's member set and
// submits them once k distinct members agree.
package oracle

import (
	"context"
	"fmt"
	"math/big"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/stagepass/stagepass/contracts/bindings/events"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/protocol"
)

var (
	hubABI    = events.NewOracleHub()
	ticketABI = events.NewEventTicket()

	// Log topics the nodes follow.
	topicPurchaseRequested  = crypto.Keccak256Hash([]byte("PurchaseRequested(bytes32,bytes32,address,uint256,uint256,uint256)"))
	topicCardPurchaseFailed = crypto.Keccak256Hash([]byte("CardPurchaseFailed(bytes32,bytes32,address,bytes)"))
)

// Payment statuses as OracleHub.PaymentStatus numbers them.
const (
	statusNone uint8 = iota
	statusRequested
	statusCapturing
	statusMinted
	statusFailed
	statusRefunded
	statusChargedBack
)

// Caller is the read access to the chain both the node and the aggregator need.
type Caller interface {
	CallContract(ctx context.Context, msg ethereum.CallMsg, block *big.Int) ([]byte, error)
}

func call(ctx context.Context, c Caller, to common.Address, data []byte) ([]byte, error) {
	return c.CallContract(ctx, ethereum.CallMsg{To: &to, Data: data}, nil)
}

// hubRecord reads OracleHub.payments(pid): the event, status and packed data.
func hubRecord(ctx context.Context, c Caller, hub common.Address, pid [32]byte) (events.PaymentsOutput, error) {
	out, err := call(ctx, c, hub, hubABI.PackPayments(pid))
	if err != nil {
		return events.PaymentsOutput{}, fmt.Errorf("read hub payment %x: %w", pid, err)
	}
	return hubABI.UnpackPayments(out)
}

// hubPayment reads OracleHub.payment(pid): the event, status and, once minted, the tickets.
func hubPayment(ctx context.Context, c Caller, hub common.Address, pid [32]byte) (events.PaymentOutput, error) {
	out, err := call(ctx, c, hub, hubABI.PackPayment(pid))
	if err != nil {
		return events.PaymentOutput{}, fmt.Errorf("read hub payment %x: %w", pid, err)
	}
	return hubABI.UnpackPayment(out)
}

// requestID is the id EventTicket gives a request and OracleHub checks on fulfilment.
func requestID(event common.Address, p events.CardPurchase) [32]byte {
	word := func(b []byte) []byte { return common.LeftPadBytes(b, 32) }
	return crypto.Keccak256Hash(word(event[:]), p.PaymentId[:], word(p.Buyer[:]),
		word(p.Tier.Bytes()), word(p.Quantity.Bytes()), word(p.Amount.Bytes()))
}

// low88 is the part of a request id OracleHub keeps while the payment is requested.
func low88(id [32]byte) *big.Int { return new(big.Int).SetBytes(id[32-11:]) }

func toProtocol(p events.CardPurchase) protocol.CardPurchase {
	return protocol.CardPurchase{
		RequestID: p.RequestId, PaymentID: p.PaymentId, Buyer: ethcrypto.Address(p.Buyer),
		Tier: p.Tier, Quantity: p.Quantity, Amount: p.Amount,
	}
}

func fromProtocol(p protocol.CardPurchase) events.CardPurchase {
	return events.CardPurchase{
		RequestId: p.RequestID, PaymentId: p.PaymentID, Buyer: common.Address(p.Buyer),
		Tier: p.Tier, Quantity: p.Quantity, Amount: p.Amount,
	}
}

func hubDomain(chainID *big.Int, hub common.Address) protocol.Domain {
	return protocol.HubDomain(chainID.Uint64(), ethcrypto.Address(hub))
}

// captureDigest is the digest of a one-purchase capture report.
func captureDigest(chainID *big.Int, hub, event common.Address, p events.CardPurchase) ([32]byte, error) {
	return protocol.CaptureDigest(hubDomain(chainID, hub), ethcrypto.Address(event), []protocol.CardPurchase{toProtocol(p)})
}

// reversalDigest is the digest of a one-payment reversal report.
func reversalDigest(chainID *big.Int, hub common.Address, kind uint8, pid [32]byte) ([32]byte, error) {
	return protocol.ReversalDigest(hubDomain(chainID, hub), kind, [][32]byte{pid})
}
