package protocol

// The main-chain bridge's withdrawals (relay/README.md). The wallet passes the relay's
// answers through without decoding them, as it does sp_finality's.
const (
	// MethodWithdrawals is sp_withdrawals: [recipient] → []Withdrawal, the withdrawals
	// (stablecoin and ticket exits) paid to recipient on the main chain, oldest first.
	MethodWithdrawals = "sp_withdrawals"
	// MethodWithdrawalProof is sp_withdrawalProof: [index] → WithdrawalProof, what a
	// self-custody user submits to RootGateway.exit themselves.
	MethodWithdrawalProof = "sp_withdrawalProof"
)

// Withdrawal stages, in order.
const (
	WithdrawalQueued       = "queued"       // in ChildGateway's tree on the sidechain
	WithdrawalCheckpointed = "checkpointed" // a main-chain checkpoint carries its root
	WithdrawalExited       = "exited"       // paid (or its mirror minted) on the main chain
)

// Withdrawal is one leaf of ChildGateway's withdrawal tree and how far it has gone.
type Withdrawal struct {
	Index     uint64 `json:"index"`
	Kind      string `json:"kind"`            // "token" or "ticket"
	Recipient string `json:"recipient"`       // on the main chain
	Event     string `json:"event,omitempty"` // ticket: its event on the sidechain
	// Value is the amount in the bridged stablecoin's base units (token) or the token id
	// (ticket), in decimal.
	Value     string `json:"value"`
	CheckedIn bool   `json:"checkedIn,omitempty"` // ticket: it was checked in (a souvenir)
	TxHash    string `json:"txHash"`              // the sidechain transaction that queued it
	Block     uint64 `json:"block"`
	Stage     string `json:"stage"`
	// Checkpoint is the first main-chain checkpoint that carries it (stage checkpointed or
	// exited); ExitTx the main-chain transaction that paid it (exited).
	Checkpoint *uint64 `json:"checkpoint,omitempty"`
	ExitTx     string  `json:"exitTx,omitempty"`
}

// WithdrawalProof is a withdrawal as RootGateway.exit takes it: the checkpoint, the
// leaf's fields and the Merkle proof (siblings bottom up) against that checkpoint's
// withdrawal root.
type WithdrawalProof struct {
	Checkpoint uint64   `json:"checkpoint"`
	Index      uint64   `json:"index"`
	Kind       uint8    `json:"kind"`
	Recipient  string   `json:"recipient"`
	Asset      string   `json:"asset"`
	Value      string   `json:"value"`
	Data       string   `json:"data"`
	Proof      []string `json:"proof"`
}

// MethodMainTxParams is sp_mainTxParams: [account] → MainTxParams, what a wallet needs to
// sign a main-chain transaction paid with the account's own gas (a self-custody claim:
// RootGateway.exit with sp_withdrawalProof's proof), sent with sp_sendRawTransaction.
const MethodMainTxParams = "sp_mainTxParams"

// MainTxParams is the main chain as Account signs an EIP-1559 transaction for it: the
// chain id, the account's pending nonce and native balance (wei, decimal), the head's base
// fee and a suggested priority fee (wei per gas, decimal), RootGateway, and ManualExits,
// whether the relay leaves the withdrawals' exits to their recipients (it pays none).
type MainTxParams struct {
	ChainID     uint64 `json:"chainId"`
	Account     string `json:"account"`
	Nonce       uint64 `json:"nonce"`
	Balance     string `json:"balance"`
	BaseFee     string `json:"baseFee"`
	Tip         string `json:"tip"`
	Gateway     string `json:"gateway"`
	ManualExits bool   `json:"manualExits"`
}
