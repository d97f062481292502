package protocol

// Sidechain validators (issue 9, claims 9–13): the reports a `stagepass validator` node
// sends the relay over sp_submitReport, the same transport and aggregator pattern as the
// oracles' card reports. Kind "checkpoint" carries Checkpoint, signed under StakeManager's
// EIP-712 domain on the main chain; kind "deposits" carries Deposits (a DepositBatch),
// signed under ChildGateway's domain on the sidechain; kind "validatorSet" carries
// ValidatorSet, StakeManager's set for ChildGateway's copy, signed under the same domain. The relay submits each once the
// signers hold ≥ 2/3 of the stake (of the power ChildGateway knows, for deposits).

// Validator report kinds on the wire.
const (
	ReportKindCheckpoint   = "checkpoint"
	ReportKindDeposits     = "deposits"
	ReportKindValidatorSet = "validatorSet"
)

// CheckpointJSON is a checkpoint of sidechain blocks StartBlock..EndBlock (decimal): the
// Merkle root over their hashes and ChildGateway's withdrawal root at EndBlock (0x bytes32).
type CheckpointJSON struct {
	StartBlock     uint64 `json:"startBlock"`
	EndBlock       uint64 `json:"endBlock"`
	BlockRoot      string `json:"blockRoot"`
	WithdrawalRoot string `json:"withdrawalRoot"`
}

// DepositJSON is one RootGateway deposit as ChildGateway mints it: its id, the sidechain
// recipient and the amount (decimal strings).
type DepositJSON struct {
	DepositID string `json:"depositId"`
	Recipient string `json:"recipient"`
	Amount    string `json:"amount"`
}

// ValidatorSetJSON is a validator set for ChildGateway.updateValidators: addresses in
// ascending order, their powers (decimal), and the epoch of the copy it replaces.
type ValidatorSetJSON struct {
	Validators []string `json:"validators"`
	Powers     []string `json:"powers"`
	Epoch      uint64   `json:"epoch"`
}
