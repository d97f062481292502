package protocol

// The relay's JSON-RPC 2.0 interface, shared by the relay (server) and the wallet (client).
// relay/README.md documents each method with an example.
const (
	MethodChainInfo          = "sp_chainInfo"          // → ChainInfo
	MethodEvents             = "sp_events"             // → []EventInfo
	MethodEvent              = "sp_event"              // [event] → EventInfo
	MethodTicketsByOwner     = "sp_ticketsByOwner"     // [owner] → []TicketInfo
	MethodListings           = "sp_listings"           // [event] → []TicketInfo (listed only)
	MethodSendForward        = "sp_sendForward"        // [ForwardSubmission] → RequestStatus
	MethodSendRawTransaction = "sp_sendRawTransaction" // [0x-signed tx] → tx hash
	MethodRequestStatus      = "sp_requestStatus"      // [request id] → RequestStatus
	MethodSubscribe          = "sp_subscribe"          // [topic, params] → subscription id
	MethodUnsubscribe        = "sp_unsubscribe"        // [subscription id] → bool
	MethodSubscription       = "sp_subscription"       // server → client push
)

// Subscription topics (the first parameter of sp_subscribe).
const (
	TopicTickets = "tickets" // {"owner": addr, "from": Cursor?}: every change to the owner's tickets
	TopicEvent   = "event"   // {"event": addr, "from": Cursor?}: an event's sales, listings, check-ins
	TopicRequest = "request" // {"id": request id}: a forward request's status changes
)

// Cursor is a position in the chain's log order: a subscriber that reconnects passes the
// cursor of the last activity it saw and receives everything after it.
type Cursor struct {
	Block    uint64 `json:"block"`
	LogIndex uint   `json:"logIndex"`
	// Sub numbers the activities one log yields (a batch check-in: one per ticket).
	Sub uint `json:"sub,omitempty"`
}

// Less orders cursors by block, log index, then position within the log.
func (c Cursor) Less(o Cursor) bool {
	if c.Block != o.Block {
		return c.Block < o.Block
	}
	if c.LogIndex != o.LogIndex {
		return c.LogIndex < o.LogIndex
	}
	return c.Sub < o.Sub
}

// Activity kinds.
const (
	KindEventCreated = "eventCreated"
	KindPurchased    = "purchased"
	KindTransfer     = "transfer" // every ERC-721 Transfer: mint, sale, resale, gift, burn
	KindListed       = "listed"
	KindUnlisted     = "unlisted"
	KindResold       = "resold"
	KindCheckedIn    = "checkedIn"
	KindGateSet      = "gateSet"
	KindCancelled    = "cancelled"
	KindRefunded     = "refunded"
)

// Activity is one on-chain fact the relay pushes. Amounts and ids are decimal strings.
// Removed is true when a chain reorganisation took back an activity pushed earlier.
type Activity struct {
	Kind     string `json:"kind"`
	Event    string `json:"event"`
	TokenID  string `json:"tokenId,omitempty"`
	From     string `json:"from,omitempty"`
	To       string `json:"to,omitempty"`
	Account  string `json:"account,omitempty"`
	Price    string `json:"price,omitempty"`
	Quantity uint64 `json:"quantity,omitempty"`
	Allowed  *bool  `json:"allowed,omitempty"`
	TxHash   string `json:"txHash"`
	Cursor
	Removed bool `json:"removed,omitempty"`
}

// ChainInfo describes the chain and the platform's contracts.
type ChainInfo struct {
	ChainID   uint64 `json:"chainId"`
	Block     uint64 `json:"block"`
	Forwarder string `json:"forwarder"`
	Factory   string `json:"factory"`
	Currency  string `json:"currency,omitempty"` // the development stablecoin, if any
	// Hub is the OracleHub (card payments, buyer categories, issuer domains), if any: the
	// category registry an event names to read buyer categories.
	Hub string `json:"hub,omitempty"`
	// With the main-chain bridge (issue 9): Gateway is ChildGateway on this chain (the
	// sidechain), whose withdraw and exitTicket the relay forwards; BridgedCurrency its
	// ChildToken (the main chain's stablecoin here, events may be priced in it);
	// MainChainID the main chain's id.
	Gateway         string `json:"gateway,omitempty"`
	BridgedCurrency string `json:"bridgedCurrency,omitempty"`
	MainChainID     uint64 `json:"mainChainId,omitempty"`
	// ExitDelay is ChildGateway.EXIT_DELAY: a ticket may exit ExitDelay seconds after the
	// later of its event's start and resale close (the wallet refuses earlier exits).
	ExitDelay uint64 `json:"exitDelay,omitempty"`
}

// EventInfo is an event's configuration as its contract holds it.
type EventInfo struct {
	Address              string      `json:"address"`
	Issuer               string      `json:"issuer"`
	Name                 string      `json:"name"`
	Venue                string      `json:"venue"`
	BaseURI              string      `json:"baseURI"`
	StartsAt             uint64      `json:"startsAt"`
	DoorsOpenAt          uint64      `json:"doorsOpenAt"`
	ResaleClosesAt       uint64      `json:"resaleClosesAt"`
	Currency             string      `json:"currency"` // zero address: native coin
	MaxPerBuyer          uint16      `json:"maxPerBuyer"`
	MaxResaleMarkupBps   uint16      `json:"maxResaleMarkupBps"`
	SellerMarkupShareBps uint16      `json:"sellerMarkupShareBps"`
	GiftsAllowed         bool        `json:"giftsAllowed"`
	Cancelled            bool        `json:"cancelled"`
	Tiers                []TierInfo  `json:"tiers"`
	Splits               []SplitInfo `json:"splits"`
	Discounts            []Discount  `json:"discounts"`
	CategoryQuotaBps     [5]uint16   `json:"categoryQuotaBps"`
	// Presale windows: before PresaleEndsAt only fans and superfans of the event's artist may
	// buy new tickets, before SuperfanPresaleEndsAt only superfans (0: no presale).
	PresaleEndsAt         uint64 `json:"presaleEndsAt,omitempty"`
	SuperfanPresaleEndsAt uint64 `json:"superfanPresaleEndsAt,omitempty"`
	// IssuerDomain is the web domain the oracle network verified the issuer controls
	// (OracleHub.issuerDomain), "" if none.
	IssuerDomain string `json:"issuerDomain,omitempty"`
	Created      Cursor `json:"created"`
}

// TierInfo is one ticket tier.
type TierInfo struct {
	Name      string `json:"name"`
	FaceValue string `json:"faceValue"`
	Supply    uint32 `json:"supply"`
	Sold      uint32 `json:"sold"`
}

// SplitInfo is one revenue-split party. Role: 0 originator, 1 artist, 2 promoter, 3 venue, 4 other.
type SplitInfo struct {
	Account string `json:"account"`
	Bps     uint16 `json:"bps"`
	Role    uint8  `json:"role"`
}

// Discount is one step of an event's discount schedule.
type Discount struct {
	From           uint64 `json:"from"`
	MaxDiscountBps uint16 `json:"maxDiscountBps"`
}

// TicketInfo is one ticket as the relay's index sees it.
type TicketInfo struct {
	Event        string `json:"event"`
	TokenID      string `json:"tokenId"`
	Tier         uint64 `json:"tier"`
	Owner        string `json:"owner"`
	ListingPrice string `json:"listingPrice,omitempty"`
	CheckedIn    bool   `json:"checkedIn"`
	Updated      Cursor `json:"updated"`
}

// ForwardSubmission is the parameter of sp_sendForward: a forward request and the signer's
// EIP-712 signature over it (65 bytes r || s || v, 0x hex).
type ForwardSubmission struct {
	Request   ForwardRequestJSON `json:"request"`
	Signature string             `json:"signature"`
}

// ForwardRequestJSON is a ForwardRequest on the wire: addresses and data as 0x hex, numbers
// as decimal strings, the deadline in unix seconds.
type ForwardRequestJSON struct {
	From     string `json:"from"`
	To       string `json:"to"`
	Value    string `json:"value"`
	Gas      string `json:"gas"`
	Nonce    string `json:"nonce"`
	Deadline uint64 `json:"deadline"`
	Data     string `json:"data"`
}

// Request states.
const (
	RequestAccepted = "accepted" // durably queued by the relay, not yet in a transaction
	RequestSent     = "sent"     // in a broadcast transaction, not yet mined
	RequestMined    = "mined"    // executed on-chain
	RequestFailed   = "failed"   // will not execute; Reason says why
)

// RequestStatus is a forward request's state (sp_sendForward, sp_requestStatus, and the
// "request" topic's pushes).
type RequestStatus struct {
	ID     string `json:"id"`
	State  string `json:"state"`
	From   string `json:"from"`
	Nonce  uint64 `json:"nonce"`
	TxHash string `json:"txHash,omitempty"`
	Block  uint64 `json:"block,omitempty"`
	Reason string `json:"reason,omitempty"`
	// Time is when the state was recorded (unix milliseconds).
	Time int64 `json:"time"`
}
