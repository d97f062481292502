package protocol

// The issuer console's read methods (relay/README.md documents them). Live updates come
// through the "event" topic: the console reads EventStats again when an activity arrives.
const (
	// MethodIssuerEvents: [issuer] → []EventInfo, the events an account created, oldest first.
	MethodIssuerEvents = "sp_issuerEvents"
	// MethodEventStats: [event] → EventStats, the event's sales, resales, check-ins and what
	// each party was paid, as of the relay's index.
	MethodEventStats = "sp_eventStats"
)

// EventStats is one event's figures. Amounts are decimal strings in the event's currency's
// smallest unit.
type EventStats struct {
	Event  string      `json:"event"`
	Cursor Cursor      `json:"cursor"` // the index position the figures reflect
	Tiers  []TierStats `json:"tiers"`
	// Sold and Revenue are primary sales (by token and by card).
	Sold        uint64 `json:"sold"`
	Revenue     string `json:"revenue"`
	CardSold    uint64 `json:"cardSold"` // of Sold, paid by card
	Resales     uint64 `json:"resales"`
	ResaleValue string `json:"resaleValue"`
	// ToSellers is what resellers received of ResaleValue (the rest went to the parties).
	ToSellers string   `json:"toSellers"`
	Listed    uint64   `json:"listed"`
	CheckedIn uint64   `json:"checkedIn"`
	Gates     []string `json:"gates"` // accounts allowed to check tickets in now
	Payouts   []Payout `json:"payouts"`
	// Categories is the category mix: live tickets by their holder's buyer category when
	// they acquired them (EventTicket.categoryCount; unclassified, fan, superfan, scalper, bot).
	Categories [5]uint64 `json:"categories"`
}

// TierStats is one tier's primary sales.
type TierStats struct {
	Name    string `json:"name"`
	Supply  uint32 `json:"supply"`
	Sold    uint64 `json:"sold"`
	Revenue string `json:"revenue"`
}

// Payout is what one split party received: in the event's token, pushed by the contract at
// each sale (Primary, Resale), and by card (Card: the RevenueSplit events of card
// fulfilments, settled by the processor).
type Payout struct {
	Account string `json:"account"`
	Role    uint8  `json:"role"`
	Bps     uint16 `json:"bps"`
	Primary string `json:"primary"`
	Resale  string `json:"resale"`
	Card    string `json:"card"`
	Total   string `json:"total"`
}
