package protocol

// Methods the wallet's purchase, listing and door flows use (relay/README.md documents them;
// the wallet's native tests also run them against an in-test relay, wasm/internal/fakerelay).
const (
	// MethodForwarderNonce: [account] → decimal string, the nonce the account's next
	// forward request must carry: the forwarder's nonces(account), or one past the account's
	// highest request still pending in the relay's outbox (what sp_sendForward checks).
	MethodForwarderNonce = "sp_forwarderNonce"
	// MethodPermitInfo: [token, owner] → PermitInfo, what signing an EIP-2612 permit for
	// token needs (its EIP-712 domain name and version, owner's nonces(owner)) and what
	// showing amounts needs (symbol, decimals).
	MethodPermitInfo = "sp_permitInfo"
	// MethodEventTickets: [event] → EventTickets, every existing ticket of the event with
	// its owner and check-in state: the door scanner's snapshot of owners. The cursor is the
	// index position the snapshot reflects; the scanner follows the "event" topic from it.
	MethodEventTickets = "sp_eventTickets"
)

// PermitInfo describes an EIP-2612 token for one owner. Nonce is a decimal string.
type PermitInfo struct {
	Token    string `json:"token"`
	Name     string `json:"name"`    // EIP-712 domain name (the token's name())
	Version  string `json:"version"` // EIP-712 domain version ("1" for OpenZeppelin ERC20Permit)
	Symbol   string `json:"symbol"`
	Decimals uint8  `json:"decimals"`
	Nonce    string `json:"nonce"`
	// Balance is owner's balanceOf (decimal): what the wallet shows and checks withdrawals against.
	Balance string `json:"balance,omitempty"`
}

// EventTickets is an event's tickets at one index position (sp_eventTickets).
type EventTickets struct {
	Event   string       `json:"event"`
	Cursor  Cursor       `json:"cursor"`
	Tickets []TicketInfo `json:"tickets"`
}
