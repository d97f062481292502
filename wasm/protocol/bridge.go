package protocol

// TopicBridge {"account": addr}: the bridge's withdrawals paid to the account on the main
// chain and the deposits credited to it here, pushed as their stages change (native relays
// with the main chain only; the Workers build refuses the topic and a wallet polls).
const TopicBridge = "bridge"

// BridgeUpdate is one push of the "bridge" topic. The first, on (re)subscribing, is the
// account's whole state (Full: every withdrawal and deposit, as sp_withdrawals and
// sp_deposits answer), so a wallet that reconnects has missed nothing; each later one
// carries the records that changed: a withdrawal queued, checkpointed or exited, a deposit
// seen, confirmed once more or credited.
type BridgeUpdate struct {
	Account     string       `json:"account"`
	Full        bool         `json:"full,omitempty"`
	Withdrawals []Withdrawal `json:"withdrawals"`
	Deposits    []Deposit    `json:"deposits"`
}
