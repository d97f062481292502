package protocol

// Deposits from the main chain without main-chain gas (relay/README.md): the fan signs an
// EIP-2612 permit of the main chain's stablecoin for RootGateway, the relay checks it and
// sends RootGateway.depositWithPermit from its own main-chain wallet, and the validators
// credit the deposit to the same address on this chain (the sidechain) after M main-chain
// confirmations.
const (
	// MethodMainPermitInfo is sp_mainPermitInfo: [owner] → MainPermitInfo, what the wallet
	// needs to sign the permit.
	MethodMainPermitInfo = "sp_mainPermitInfo"
	// MethodDepositWithPermit is sp_depositWithPermit: [DepositPermit] → DepositSent.
	MethodDepositWithPermit = "sp_depositWithPermit"
	// MethodDeposits is sp_deposits: [owner] → []Deposit, the main-chain deposits credited
	// to owner, oldest first.
	MethodDeposits = "sp_deposits"
)

// MainPermitInfo is the main chain's stablecoin as a permit for RootGateway signs it:
// Token's EIP-712 domain (its chain is ChainID), the owner's permit nonce and main-chain
// balance (Token.Balance), the spender Gateway, Confirmations (M) before a deposit is
// credited here, and MinAmount, the least the relay sends for the owner (base units,
// decimal): it pays the main-chain gas of each deposit, so it refuses smaller ones, which
// the owner can still make with RootGateway.deposit and gas of their own.
type MainPermitInfo struct {
	ChainID       uint64     `json:"chainId"`
	Gateway       string     `json:"gateway"`
	Confirmations uint64     `json:"confirmations"`
	MinAmount     string     `json:"minAmount,omitempty"`
	Token         PermitInfo `json:"token"`
}

// DepositPermit is the owner's EIP-2612 permit for RootGateway of Amount (base units,
// decimal) until Deadline (unix seconds), signature V, R, S (0x hex): the deposit it
// authorizes is credited to Owner.
type DepositPermit struct {
	Owner    string `json:"owner"`
	Amount   string `json:"amount"`
	Deadline uint64 `json:"deadline"`
	V        uint8  `json:"v"`
	R        string `json:"r"`
	S        string `json:"s"`
}

// DepositSent is the main-chain transaction the relay sent for a DepositPermit.
type DepositSent struct {
	TxHash string `json:"txHash"`
}

// Deposit stages, in order.
const (
	DepositPending  = "pending"  // on the main chain, fewer than Required confirmations or not yet minted
	DepositCredited = "credited" // ChildGateway minted it here
)

// Deposit is one RootGateway deposit for a recipient and how far it has gone.
type Deposit struct {
	ID            string `json:"id"`     // RootGateway's deposit id (decimal)
	Amount        string `json:"amount"` // base units of the stablecoin (decimal)
	From          string `json:"from"`   // whose stablecoin was locked on the main chain
	TxHash        string `json:"txHash"` // on the main chain
	Block         uint64 `json:"block"`
	Confirmations uint64 `json:"confirmations"` // main-chain blocks from Block to the head, Block included
	Required      uint64 `json:"required"`      // M
	Stage         string `json:"stage"`
}
