package protocol

import (
	"encoding/hex"
	"fmt"
	"math/big"
	"strings"

	"github.com/stagepass/stagepass/wasm/eip712"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
)

// Card purchases verified by the oracle network (DESIGN.md "Card purchase"): the EIP-712
// reports OracleHub verifies, the price conversion from the event's currency to card minor
// units, and the JSON-RPC types the wallet, the relay and oracle nodes exchange.

// JSON-RPC methods and topic of the card purchase flow.
const (
	// MethodCreatePayment [event, tier, quantity, buyer] → PaymentIntent: a card payment
	// intent whose metadata binds it to (chain id, event, buyer, tier, quantity, amount).
	MethodCreatePayment = "sp_createPayment"
	// MethodCreateResalePayment [event, tokenId, buyer] → PaymentIntent: a card payment for
	// a listed ticket at its listing price, bound like a primary one with the token id as
	// its tier and quantity 0 (as EventTicket.requestResale records it).
	MethodCreateResalePayment = "sp_createResalePayment"
	// MethodSubmitReport [OracleReport] → ReportReceipt: an oracle node's signed report.
	// Authenticated by its signature alone: it must recover to a member of the hub's set
	// and be about a request the chain holds.
	MethodSubmitReport = "sp_submitReport"
	// MethodPaymentRef [paymentId (0x bytes32)] → processor id ("pi_…"): the preimage of a
	// payment id, for oracle nodes (which check keccak256(ref) = paymentId themselves).
	MethodPaymentRef = "sp_paymentRef"
	// MethodBatchProposals [] → []BatchProposal: batches of purchases the relay proposes
	// oracles sign as one report (each purchase already reported captured by k members).
	MethodBatchProposals = "sp_batchProposals"
	// MethodPaymentStatus ["pi_…" or 0x payment id] → PaymentProgress.
	MethodPaymentStatus = "sp_paymentStatus"
	// MethodCategory [buyer] → CategoryView: the buyer's category, why, and what is attested.
	MethodCategory = "sp_category"
	// MethodRequestIssuerVerification [issuer, domain] → IssuerRequest: asks the oracle
	// network to verify the issuer's domain.
	MethodRequestIssuerVerification = "sp_requestIssuerVerification"
	// MethodIssuerRequests [] → []IssuerRequest: pending verifications, for oracle nodes.
	MethodIssuerRequests = "sp_issuerRequests"
	// TopicPayment {"id": "pi_…" or 0x payment id}: a card payment's progress
	// (created → paid, from the processor's webhook → verifying 1/3, 2/3 → submitted →
	// minted | failed → refunded).
	TopicPayment = "payment"
)

// OracleHub's EIP-712 domain name and version.
const (
	HubName    = "Stagepass OracleHub"
	HubVersion = "1"
)

// Report kinds, as OracleHub numbers them.
const (
	ReportCaptured    uint8 = 0
	ReportRefunded    uint8 = 1
	ReportChargedBack uint8 = 2
	ReportCategory    uint8 = 4
	ReportIssuer      uint8 = 5
)

// CardCurrency is the card currency of every purchase, and CardUnitDivisor how many of the
// event's stablecoin base units (6 decimals, TestUSD/USDC) make one card minor unit (a
// cent): cents = units / 10^4. The one place the two scales meet.
const (
	CardCurrency    = "usd"
	CardUnitDivisor = 10_000
)

// CardMinorUnits converts a price in the event currency's 6-decimal base units to card minor
// units (cents). A price that is not a whole number of cents, or that is out of the card
// range, is an error: the card path cannot charge it exactly.
func CardMinorUnits(units *big.Int) (int64, error) {
	if units == nil || units.Sign() <= 0 {
		return 0, fmt.Errorf("protocol: card amount must be positive")
	}
	q, r := new(big.Int).QuoRem(units, big.NewInt(CardUnitDivisor), new(big.Int))
	if r.Sign() != 0 {
		return 0, fmt.Errorf("protocol: %s base units is not a whole number of cents", units)
	}
	if !q.IsInt64() || q.Int64() > 99_999_999 {
		return 0, fmt.Errorf("protocol: %s base units is too large for a card payment", units)
	}
	return q.Int64(), nil
}

// PaymentIDOf is the on-chain payment id of a processor's payment ("pi_…"): keccak256 of
// the text.
func PaymentIDOf(ref string) [32]byte { return ethcrypto.Keccak256Hash([]byte(ref)) }

// HubDomain is the EIP-712 domain of the OracleHub at `hub` on chain `chainID`.
func HubDomain(chainID uint64, hub ethcrypto.Address) Domain {
	return Domain{Name: HubName, Version: HubVersion, ChainID: chainID, VerifyingContract: hub}
}

// CardPurchase is one purchase as OracleHub.fulfil takes it and PurchaseRequested states it.
type CardPurchase struct {
	RequestID [32]byte
	PaymentID [32]byte
	Buyer     ethcrypto.Address
	Tier      *big.Int
	Quantity  *big.Int
	Amount    *big.Int
}

var cardPurchaseFields = []eip712.Field{
	{Name: "requestId", Type: "bytes32"}, {Name: "paymentId", Type: "bytes32"},
	{Name: "buyer", Type: "address"}, {Name: "tier", Type: "uint256"},
	{Name: "quantity", Type: "uint256"}, {Name: "amount", Type: "uint256"},
}

// CaptureTypedData is the report that the payments of `purchases`, all for `event`, were
// captured: OracleHub's PaymentsCaptured(address ticketEvent, CardPurchase[] purchases).
func CaptureTypedData(d Domain, event ethcrypto.Address, purchases []CardPurchase) *eip712.TypedData {
	items := make([]any, len(purchases))
	for i, p := range purchases {
		items[i] = map[string]any{
			"requestId": p.RequestID[:], "paymentId": p.PaymentID[:], "buyer": p.Buyer,
			"tier": p.Tier, "quantity": p.Quantity, "amount": p.Amount,
		}
	}
	return &eip712.TypedData{
		Types: eip712.Types{
			eip712.DomainType: domainFields,
			"CardPurchase":    cardPurchaseFields,
			"PaymentsCaptured": {
				{Name: "ticketEvent", Type: "address"}, {Name: "purchases", Type: "CardPurchase[]"},
			},
		},
		PrimaryType: "PaymentsCaptured",
		Domain:      d.values(),
		Message:     map[string]any{"ticketEvent": event, "purchases": items},
	}
}

// CaptureDigest is the EIP-712 digest oracles sign for a capture report.
func CaptureDigest(d Domain, event ethcrypto.Address, purchases []CardPurchase) ([32]byte, error) {
	return CaptureTypedData(d, event, purchases).Digest()
}

// ReversalTypedData is the report that `paymentIDs` were refunded (ReportRefunded) or
// charged back (ReportChargedBack): OracleHub's PaymentsReversed(uint8 kind, bytes32[]).
func ReversalTypedData(d Domain, kind uint8, paymentIDs [][32]byte) *eip712.TypedData {
	ids := make([]any, len(paymentIDs))
	for i, id := range paymentIDs {
		ids[i] = append([]byte(nil), id[:]...)
	}
	return &eip712.TypedData{
		Types: eip712.Types{
			eip712.DomainType:  domainFields,
			"PaymentsReversed": {{Name: "kind", Type: "uint8"}, {Name: "paymentIds", Type: "bytes32[]"}},
		},
		PrimaryType: "PaymentsReversed",
		Domain:      d.values(),
		Message:     map[string]any{"kind": new(big.Int).SetUint64(uint64(kind)), "paymentIds": ids},
	}
}

// ReversalDigest is the EIP-712 digest oracles sign for a reversal report.
func ReversalDigest(d Domain, kind uint8, paymentIDs [][32]byte) ([32]byte, error) {
	return ReversalTypedData(d, kind, paymentIDs).Digest()
}

// PaymentIntent is what sp_createPayment returns: the processor's payment id, the client
// secret the checkout page needs, the checkout page's URL, and the on-chain payment id to
// pass to requestPurchase.
type PaymentIntent struct {
	ID           string `json:"id"`        // "pi_…"
	PaymentID    string `json:"paymentId"` // 0x keccak256(id), requestPurchase's paymentId
	ClientSecret string `json:"clientSecret"`
	CheckoutURL  string `json:"checkoutUrl"`
	Amount       int64  `json:"amount"` // card minor units (cents)
	Currency     string `json:"currency"`
	Price        string `json:"price"` // the same amount in the event currency's base units
	ChainID      uint64 `json:"chainId"`
	Event        string `json:"event"`
	Buyer        string `json:"buyer"`
	Tier         uint64 `json:"tier"`     // for a resale: the token id
	Quantity     uint64 `json:"quantity"` // 0 for a resale
}

// CardPurchaseJSON is a CardPurchase on the wire: bytes32 and addresses as 0x hex, numbers
// as decimal strings.
type CardPurchaseJSON struct {
	RequestID string `json:"requestId"`
	PaymentID string `json:"paymentId"`
	Buyer     string `json:"buyer"`
	Tier      string `json:"tier"`
	Quantity  string `json:"quantity"`
	Amount    string `json:"amount"`
}

// OracleReport is sp_submitReport's parameter: one oracle's signature over a report. Kind
// "captured" carries Purchase (one purchase) or Purchases (a batch the relay proposed,
// sp_batchProposals); kinds "refunded" and "chargedBack" carry PaymentID only. Signature
// is 65 bytes r || s || v (0x hex) over the report's digest.
type OracleReport struct {
	Kind      string             `json:"kind"`
	Event     string             `json:"event"`
	Purchase  *CardPurchaseJSON  `json:"purchase,omitempty"`
	Purchases []CardPurchaseJSON `json:"purchases,omitempty"`
	PaymentID string             `json:"paymentId,omitempty"`
	// Attestation: kinds "category" and "issuer".
	Attestation *AttestationJSON `json:"attestation,omitempty"`
	// Validators' reports (validator.go): kinds "checkpoint", "deposits", "validatorSet".
	Checkpoint   *CheckpointJSON   `json:"checkpoint,omitempty"`
	Deposits     []DepositJSON     `json:"deposits,omitempty"`
	ValidatorSet *ValidatorSetJSON `json:"validatorSet,omitempty"`
	Signature    string            `json:"signature"`
}

// AttestationJSON is a category attestation (Buyer, Artist — "" or the zero address for
// every artist —, Category) or an issuer attestation (Issuer, Domain), valid from IssuedAt
// until Expiry (unix seconds).
type AttestationJSON struct {
	Buyer    string `json:"buyer,omitempty"`
	Artist   string `json:"artist,omitempty"`
	Category uint8  `json:"category"`
	Issuer   string `json:"issuer,omitempty"`
	Domain   string `json:"domain,omitempty"`
	IssuedAt uint64 `json:"issuedAt"`
	Expiry   uint64 `json:"expiry"`
}

// IssuerRequest asks the oracle network to verify that Issuer controls Domain: each node
// reads https://DOMAIN/.well-known/stagepass.json itself (IssuerFile). RequestedAt, set by
// the relay, is the attestation's IssuedAt, so every node signs the same thing.
type IssuerRequest struct {
	Issuer      string `json:"issuer"`
	Domain      string `json:"domain"`
	RequestedAt uint64 `json:"requestedAt"`
}

// IssuerFile is what an issuer serves at https://DOMAIN/.well-known/stagepass.json:
// its address, the domain, and its EIP-191 signature over IssuerClaim(address, domain).
type IssuerFile struct {
	Address   string `json:"address"`
	Domain    string `json:"domain"`
	Signature string `json:"signature"`
}

// IssuerClaim is the text an issuer signs (EIP-191 personal_sign) to publish in its
// stagepass.json: the address claims the domain, and the domain (serving the file) names
// the address.
func IssuerClaim(address, domain string) string {
	return "Stagepass issuer verification\naddress: " + strings.ToLower(address) + "\ndomain: " + strings.ToLower(domain)
}

// CategoryView is sp_category's answer: a buyer's category for every artist and per artist,
// with the facts behind each (what the relay computes with the oracles' rules), and what
// the oracle network attested on chain.
type CategoryView struct {
	Buyer     string             `json:"buyer"`
	Computed  CategoryVerdict    `json:"computed"`
	PerArtist []CategoryVerdict  `json:"perArtist"`
	Attested  []CategoryAttested `json:"attested"`
}

// CategoryVerdict is one computed category with its facts.
type CategoryVerdict struct {
	Artist   string   `json:"artist,omitempty"`
	Category uint8    `json:"category"`
	Name     string   `json:"name"`
	Facts    []string `json:"facts"`
}

// CategoryAttested is a category as OracleHub holds it for (buyer, artist).
type CategoryAttested struct {
	Artist   string `json:"artist,omitempty"`
	Category uint8  `json:"category"`
	Name     string `json:"name"`
	Expiry   uint64 `json:"expiry"`
}

// Report kinds on the wire.
const (
	ReportKindCaptured    = "captured"
	ReportKindRefunded    = "refunded"
	ReportKindChargedBack = "chargedBack"
	ReportKindCategory    = "category"
	ReportKindIssuer      = "issuer"
)

// BatchProposal is a batch of purchases of one event, in the order the report lists them,
// that the relay asks oracles to sign as one capture report (one fulfil for many tickets).
// An oracle signs it only if it verified and signed every purchase in it on its own.
type BatchProposal struct {
	Event     string             `json:"event"`
	Purchases []CardPurchaseJSON `json:"purchases"`
	Digest    string             `json:"digest"`
}

// ReportReceipt is sp_submitReport's answer.
type ReportReceipt struct {
	Signer     string `json:"signer"`
	Signatures int    `json:"signatures"` // distinct members that signed this report so far
	Threshold  int    `json:"threshold"`
	State      string `json:"state"`
	// SignedStake and TotalStake (decimal): a validator report's signers' stake so far and
	// the whole set's; it goes out once SignedStake × 3 ≥ TotalStake × 2 (Threshold is 0).
	SignedStake string `json:"signedStake,omitempty"`
	TotalStake  string `json:"totalStake,omitempty"`
}

// Payment progress states.
const (
	PaymentCreated   = "created"   // an intent the relay made; no oracle has reported yet
	PaymentPaid      = "paid"      // the processor's webhook says it is paid; no oracle has reported yet
	PaymentVerifying = "verifying" // oracles are signing; Signatures of Threshold so far
	PaymentSubmitted = "submitted" // k reports on their way to the chain in TxHash
	PaymentMinted    = "minted"    // tickets minted (FirstTokenID, Quantity)
	PaymentFailed    = "failed"    // captured, but a rule refused the mint: a refund is owed
	PaymentRefunded  = "refunded"  // refunded by the processor and reported on chain
)

// PaymentProgress is a card payment's progress (sp_paymentStatus and the "payment" topic).
type PaymentProgress struct {
	ID           string `json:"id,omitempty"` // "pi_…", when the relay knows it
	PaymentID    string `json:"paymentId"`
	RequestID    string `json:"requestId,omitempty"`
	Event        string `json:"event,omitempty"`
	Buyer        string `json:"buyer,omitempty"`
	State        string `json:"state"`
	Signatures   int    `json:"signatures"`
	Threshold    int    `json:"threshold"`
	Members      int    `json:"members"`
	TxHash       string `json:"txHash,omitempty"`
	FirstTokenID string `json:"firstTokenId,omitempty"`
	Quantity     uint64 `json:"quantity,omitempty"`
	Reason       string `json:"reason,omitempty"`
	Time         int64  `json:"time"` // unix milliseconds
}

// JSON renders a purchase for the wire.
func (p CardPurchase) JSON() CardPurchaseJSON {
	return CardPurchaseJSON{
		RequestID: Hex32(p.RequestID), PaymentID: Hex32(p.PaymentID), Buyer: strings.ToLower(p.Buyer.Hex()),
		Tier: p.Tier.String(), Quantity: p.Quantity.String(), Amount: p.Amount.String(),
	}
}

// Parse reads a purchase from the wire, naming the field at fault.
func (j CardPurchaseJSON) Parse() (CardPurchase, error) {
	var p CardPurchase
	var err error
	if p.RequestID, err = ParseHash32("requestId", j.RequestID); err != nil {
		return p, err
	}
	if p.PaymentID, err = ParseHash32("paymentId", j.PaymentID); err != nil {
		return p, err
	}
	if p.Buyer, err = ParseAddressField("buyer", j.Buyer); err != nil {
		return p, err
	}
	for _, f := range []struct {
		name string
		s    string
		dst  **big.Int
	}{{"tier", j.Tier, &p.Tier}, {"quantity", j.Quantity, &p.Quantity}, {"amount", j.Amount, &p.Amount}} {
		v, ok := new(big.Int).SetString(f.s, 10)
		if !ok || v.Sign() < 0 || v.BitLen() > 256 {
			return p, fmt.Errorf("%w: %s must be a decimal uint256, got %q", ErrInvalidRequest, f.name, f.s)
		}
		*f.dst = v
	}
	return p, nil
}

// Hex32 renders 32 bytes as lower-case 0x hex.
func Hex32(b [32]byte) string { return "0x" + hex.EncodeToString(b[:]) }

// ParseHash32 parses 32 bytes of 0x hex, naming the field when it is not that.
func ParseHash32(name, s string) ([32]byte, error) {
	var out [32]byte
	if !strings.HasPrefix(s, "0x") || len(s) != 66 {
		return out, fmt.Errorf("%w: %s must be 32 bytes of 0x hex", ErrInvalidRequest, name)
	}
	if _, err := hex.Decode(out[:], []byte(s[2:])); err != nil {
		return out, fmt.Errorf("%w: %s: %v", ErrInvalidRequest, name, err)
	}
	return out, nil
}

// CategoryTypedData is the attestation that `buyer` is in `category` (Category numbers:
// 0 unclassified, 1 fan, 2 superfan, 3 scalper, 4 bot) for `artist` — the zero address for
// every artist — from `issuedAt` until `expiry` (unix seconds): OracleHub's
// CategoryAttestation.
func CategoryTypedData(d Domain, buyer, artist ethcrypto.Address, category uint8, issuedAt, expiry uint64) *eip712.TypedData {
	return &eip712.TypedData{
		Types: eip712.Types{
			eip712.DomainType: domainFields,
			"CategoryAttestation": {
				{Name: "buyer", Type: "address"}, {Name: "artist", Type: "address"}, {Name: "category", Type: "uint8"},
				{Name: "issuedAt", Type: "uint64"}, {Name: "expiry", Type: "uint64"},
			},
		},
		PrimaryType: "CategoryAttestation",
		Domain:      d.values(),
		Message: map[string]any{
			"buyer": buyer, "artist": artist, "category": new(big.Int).SetUint64(uint64(category)),
			"issuedAt": new(big.Int).SetUint64(issuedAt), "expiry": new(big.Int).SetUint64(expiry),
		},
	}
}

// IssuerTypedData is the attestation that `issuer` controls the web domain `domain`:
// OracleHub's IssuerAttestation.
func IssuerTypedData(d Domain, issuer ethcrypto.Address, domain string, issuedAt, expiry uint64) *eip712.TypedData {
	return &eip712.TypedData{
		Types: eip712.Types{
			eip712.DomainType: domainFields,
			"IssuerAttestation": {
				{Name: "issuer", Type: "address"}, {Name: "domain", Type: "string"},
				{Name: "issuedAt", Type: "uint64"}, {Name: "expiry", Type: "uint64"},
			},
		},
		PrimaryType: "IssuerAttestation",
		Domain:      d.values(),
		Message: map[string]any{
			"issuer": issuer, "domain": domain,
			"issuedAt": new(big.Int).SetUint64(issuedAt), "expiry": new(big.Int).SetUint64(expiry),
		},
	}
}
