// Package devchain runs Stagepass's contracts on a real EVM for tests, benchmarks and the
// gas report: go-ethereum's simulated backend (ethclient/simulated, New) or a real node such
// as `geth --dev` (Dial), with the platform (forwarder, TestUSD, event factory) deployed and
// funded accounts ready.
//
// Transactions are signed here and sent raw, one at a time, each waited for until mined (on
// the simulated chain each gets its own block), so a receipt's gas is exactly what the
// operation cost, and a revert comes back as the contract's decoded custom error.
package devchain

import (
	"context"
	"crypto/ecdsa"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/accounts/abi"
	"github.com/ethereum/go-ethereum/accounts/abi/bind/v2"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/core/rawdb"
	"github.com/ethereum/go-ethereum/core/types"
	"github.com/ethereum/go-ethereum/crypto"
	"github.com/ethereum/go-ethereum/eth/ethconfig"
	"github.com/ethereum/go-ethereum/ethclient"
	"github.com/ethereum/go-ethereum/ethclient/simulated"
	"github.com/ethereum/go-ethereum/node"
	"github.com/ethereum/go-ethereum/params"
	"github.com/ethereum/go-ethereum/rpc"

	"github.com/stagepass/stagepass/contracts/bindings/events"
	"github.com/stagepass/stagepass/contracts/bindings/forwarder"
	"github.com/stagepass/stagepass/contracts/bindings/testusd"
)

// Account is a funded externally owned account.
type Account struct {
	Key     *ecdsa.PrivateKey
	Address common.Address
}

// NewAccount derives a deterministic test key from seed and i. Test keys only: anyone can
// recompute them.
func NewAccount(seed string, i int) *Account {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(i))
	key, err := crypto.ToECDSA(crypto.Keccak256([]byte("stagepass test account "+seed), n[:]))
	if err != nil {
		panic(err) // a keccak output is a valid key with overwhelming probability
	}
	return &Account{Key: key, Address: crypto.PubkeyToAddress(key.PublicKey)}
}

// Options configure a Chain.
type Options struct {
	// Accounts is how many funded accounts to create (default 10).
	Accounts int
	// Seed makes the accounts' keys (default "default").
	Seed string
	// AllForks turns on every fork go-ethereum knows, including the unscheduled Bogota
	// repricing; by default the chain runs mainnet's current rules (Osaka).
	AllForks bool
	// Keys, if set, are the accounts' keys instead of keys derived from Seed.
	Keys []*ecdsa.PrivateKey
	// Oracles is the size n of the OracleHub's first oracle set (default 3), and
	// OracleThreshold its threshold k (default 2). The oracles' keys derive from Seed.
	Oracles, OracleThreshold int
	// ChainID, if set, replaces the simulated chain's id (default 1337), so two chains in
	// one test (main chain and sidechain) have distinct ids. New only.
	ChainID *big.Int
	// HTTP, if set (host:port), also serves the simulated chain's JSON-RPC (eth, net, web3)
	// over HTTP there, for other processes. New only.
	HTTP string
}

// Chain is a chain with the platform deployed.
type Chain struct {
	// Backend is the simulated chain, or nil on a real node.
	Backend  *simulated.Backend
	Client   simulated.Client
	ChainID  *big.Int
	Accounts []*Account
	Deployer *Account

	Forwarder common.Address
	Factory   common.Address
	USD       common.Address
	// Hub is the OracleHub; Oracles its first oracle set, in ascending address order (the
	// order reports' signatures must come in), and OracleThreshold its k.
	Hub             common.Address
	Oracles         []*Account
	OracleThreshold int

	signer types.Signer
	closer func()
	// commitMu serialises Commit: the simulated beacon is not safe for concurrent sealing.
	commitMu sync.Mutex
}

// Commit seals a block on the simulated chain; safe to call from several goroutines.
func (c *Chain) Commit() {
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	c.Backend.Commit()
}

// OsakaConfig is go-ethereum's all-forks development config with the unscheduled Bogota
// fork turned off: Ethereum mainnet's current rules, used to quote gas.
func OsakaConfig() *params.ChainConfig {
	cfg := *params.AllDevChainProtocolChanges
	cfg.BogotaTime = nil
	return &cfg
}

// ForkName names the latest fork active at genesis under cfg.
func ForkName(cfg *params.ChainConfig) string {
	switch {
	case cfg.BogotaTime != nil:
		return "Bogota"
	case cfg.OsakaTime != nil:
		return "Osaka"
	case cfg.PragueTime != nil:
		return "Prague"
	default:
		return "pre-Prague"
	}
}

// New starts a simulated chain, funds the accounts and deploys the platform.
func New(opts Options) (*Chain, error) {
	if opts.Accounts == 0 {
		opts.Accounts = 10
	}
	if opts.Seed == "" {
		opts.Seed = "default"
	}
	deployer := NewAccount(opts.Seed+"/deployer", 0)
	alloc := types.GenesisAlloc{deployer.Address: {Balance: ether(1_000_000)}}
	accounts := make([]*Account, opts.Accounts)
	if len(opts.Keys) > 0 {
		accounts = make([]*Account, len(opts.Keys))
	}
	for i := range accounts {
		if len(opts.Keys) > 0 {
			accounts[i] = &Account{Key: opts.Keys[i], Address: crypto.PubkeyToAddress(opts.Keys[i].PublicKey)}
		} else {
			accounts[i] = NewAccount(opts.Seed, i)
		}
		alloc[accounts[i].Address] = types.Account{Balance: ether(1_000_000)}
	}
	cfg := OsakaConfig()
	if opts.AllForks {
		all := *params.AllDevChainProtocolChanges
		cfg = &all
	}
	if opts.ChainID != nil {
		cfg.ChainID = new(big.Int).Set(opts.ChainID)
	}
	var httpPort int
	if opts.HTTP != "" {
		host, port, err := net.SplitHostPort(opts.HTTP)
		if err != nil {
			return nil, fmt.Errorf("devchain: HTTP %q: %w", opts.HTTP, err)
		}
		if httpPort, err = strconv.Atoi(port); err != nil {
			return nil, fmt.Errorf("devchain: HTTP %q: %w", opts.HTTP, err)
		}
		// The simulated backend panics when its node cannot start: try the address first.
		ln, err := net.Listen("tcp", opts.HTTP)
		if err != nil {
			return nil, fmt.Errorf("devchain: serve JSON-RPC: %w", err)
		}
		ln.Close()
		opts.HTTP = host
	}
	backend := simulated.NewBackend(alloc, func(nc *node.Config, ec *ethconfig.Config) {
		ec.Genesis.Config = cfg
		// An archive: the relay's index reads events' settings at the blocks it indexes, and
		// a relay restarted on a chain that has run a while reads from its start (the
		// default keeps only the last 128 blocks' state).
		ec.NoPruning, ec.StateScheme = true, rawdb.HashScheme
		if opts.HTTP != "" {
			nc.HTTPHost, nc.HTTPPort, nc.HTTPModules = opts.HTTP, httpPort, []string{"eth", "net", "web3"}
		}
	})
	c := &Chain{
		Backend:  backend,
		Client:   backend.Client(),
		ChainID:  cfg.ChainID,
		Accounts: accounts,
		Deployer: deployer,
		signer:   types.LatestSigner(cfg),
	}
	c.setOracles(opts)
	if err := c.deployPlatform(); err != nil {
		backend.Close()
		return nil, err
	}
	return c, nil
}

// Dial connects to a development node at `url` (for example `geth --dev`), funds the
// accounts from the node's own unlocked development account and deploys the platform.
func Dial(ctx context.Context, url string, opts Options) (*Chain, error) {
	if opts.Accounts == 0 {
		opts.Accounts = 10
	}
	if opts.Seed == "" {
		opts.Seed = "default"
	}
	rc, err := rpc.DialContext(ctx, url)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", url, err)
	}
	client := ethclient.NewClient(rc)
	chainID, err := client.ChainID(ctx)
	if err != nil {
		return nil, fmt.Errorf("chain id from %s: %w", url, err)
	}
	c := &Chain{
		Client:   client,
		ChainID:  chainID,
		Deployer: NewAccount(opts.Seed+"/deployer", 0),
		Accounts: make([]*Account, opts.Accounts),
		signer:   types.LatestSignerForChainID(chainID),
		closer:   client.Close,
	}
	for i := range c.Accounts {
		c.Accounts[i] = NewAccount(opts.Seed, i)
	}
	c.setOracles(opts)
	var dev []common.Address
	if err := rc.CallContext(ctx, &dev, "eth_accounts"); err != nil || len(dev) == 0 {
		return nil, fmt.Errorf("the node at %s has no unlocked development account (eth_accounts: %v)", url, err)
	}
	var last common.Hash
	for _, a := range append([]*Account{c.Deployer}, c.Accounts...) {
		tx := map[string]any{"from": dev[0], "to": a.Address, "value": (*hexutil.Big)(ether(1000))}
		if err := rc.CallContext(ctx, &last, "eth_sendTransaction", tx); err != nil {
			return nil, fmt.Errorf("fund %s: %w", a.Address, err)
		}
	}
	if _, err := bind.WaitMined(ctx, client, last); err != nil {
		return nil, fmt.Errorf("fund accounts: %w", err)
	}
	if err := c.deployPlatform(); err != nil {
		return nil, err
	}
	return c, nil
}

// Close stops the simulated chain or disconnects from the node.
func (c *Chain) Close() {
	if c.Backend != nil {
		c.Backend.Close()
	}
	if c.closer != nil {
		c.closer()
	}
}

func (c *Chain) deployPlatform() error {
	var err error
	if c.Forwarder, err = c.Deploy(c.Deployer, &forwarder.StagepassForwarderMetaData, nil); err != nil {
		return fmt.Errorf("deploy forwarder: %w", err)
	}
	if c.USD, err = c.Deploy(c.Deployer, &testusd.TestUSDMetaData, nil); err != nil {
		return fmt.Errorf("deploy TestUSD: %w", err)
	}
	members := make([]common.Address, len(c.Oracles))
	for i, o := range c.Oracles {
		members[i] = o.Address
	}
	hubArgs := Hub.PackConstructor(members, big.NewInt(int64(c.OracleThreshold)))
	if c.Hub, err = c.Deploy(c.Deployer, &events.OracleHubMetaData, hubArgs); err != nil {
		return fmt.Errorf("deploy OracleHub: %w", err)
	}
	args := events.NewEventFactory().PackConstructor(c.Forwarder, c.Hub)
	if c.Factory, err = c.Deploy(c.Deployer, &events.EventFactoryMetaData, args); err != nil {
		return fmt.Errorf("deploy factory: %w", err)
	}
	if _, err = c.Transact(c.Deployer, c.Hub, Hub.PackSetFactory(c.Factory), nil); err != nil {
		return fmt.Errorf("bind OracleHub to the factory: %w", err)
	}
	return nil
}

// setOracles derives the first oracle set's keys, sorted by address.
func (c *Chain) setOracles(opts Options) {
	n, k := opts.Oracles, opts.OracleThreshold
	if n == 0 {
		n = 3
	}
	if k == 0 {
		k = n/2 + 1
	}
	c.Oracles = make([]*Account, n)
	for i := range c.Oracles {
		c.Oracles[i] = NewAccount(opts.Seed+"/oracle", i)
	}
	SortAccounts(c.Oracles)
	c.OracleThreshold = k
}

// Deploy creates a contract from its binding's metadata and constructor arguments.
func (c *Chain) Deploy(from *Account, meta *bind.MetaData, args []byte) (common.Address, error) {
	code := append(common.FromHex(meta.Bin), args...)
	rcpt, err := c.send(from, nil, code, nil, 0)
	if err != nil {
		return common.Address{}, err
	}
	return rcpt.ContractAddress, nil
}

// Transact sends `data` (with `value` wei) from `from` to `to`, mines it in its own block and
// returns the receipt. A revert is returned as an error carrying the decoded custom error.
func (c *Chain) Transact(from *Account, to common.Address, data []byte, value *big.Int) (*types.Receipt, error) {
	return c.send(from, &to, data, value, 0)
}

// MustTransact is Transact for set-up steps that cannot fail; it panics on error.
func (c *Chain) MustTransact(from *Account, to common.Address, data []byte, value *big.Int) *types.Receipt {
	r, err := c.Transact(from, to, data, value)
	if err != nil {
		panic(fmt.Sprintf("transact to %s: %v", to, err))
	}
	return r
}

// Call runs a read-only call against the latest block.
func (c *Chain) Call(to common.Address, data []byte) ([]byte, error) {
	out, err := c.Client.CallContract(context.Background(), ethereum.CallMsg{To: &to, Data: data}, nil)
	if err != nil {
		return nil, &RevertError{Data: revertData(err), Err: err}
	}
	return out, nil
}

// Warp moves the chain's clock forward by d and mines a block. Simulated chains only.
func (c *Chain) Warp(d time.Duration) {
	if c.Backend == nil {
		panic("devchain: Warp needs the simulated chain")
	}
	c.commitMu.Lock()
	defer c.commitMu.Unlock()
	// The tx pool updates its pending set asynchronously after a block, and the simulated
	// beacon refuses to move time while anything looks pending: give it a moment.
	var err error
	for range 200 {
		if err = c.Backend.AdjustTime(d); err == nil {
			c.Backend.Commit()
			return
		}
		time.Sleep(5 * time.Millisecond)
	}
	panic(fmt.Sprintf("devchain: warp %v: %v", d, err))
}

// Now is the timestamp of the latest block.
func (c *Chain) Now() uint64 {
	h, err := c.Client.HeaderByNumber(context.Background(), nil)
	if err != nil {
		panic(err)
	}
	return h.Time
}

// Balance is an account's native balance.
func (c *Chain) Balance(a common.Address) *big.Int {
	b, err := c.Client.BalanceAt(context.Background(), a, nil)
	if err != nil {
		panic(err)
	}
	return b
}

// RevertError is a reverted call or transaction with its revert data.
type RevertError struct {
	Data []byte
	Err  error
}

func (e *RevertError) Error() string {
	return fmt.Sprintf("reverted (0x%x): %v", e.Data, e.Err)
}

func (e *RevertError) Unwrap() error { return e.Err }

// Selector is the 4-byte selector of a revert, or "" when there is none.
func (e *RevertError) Selector() string {
	if len(e.Data) < 4 {
		return ""
	}
	return hexutil.Encode(e.Data[:4])
}

// ErrorName returns the name of the custom error `err` carries according to contract ABI
// `parsed`, or "" if it is not one of its errors.
func ErrorName(parsed *abi.ABI, err error) string {
	var re *RevertError
	if !errors.As(err, &re) || len(re.Data) < 4 {
		return ""
	}
	for name, e := range parsed.Errors {
		if string(e.ID[:4]) == string(re.Data[:4]) {
			return name
		}
	}
	return ""
}

// ErrorArgs decodes the arguments of the custom error `err` carries.
func ErrorArgs(parsed *abi.ABI, err error) []any {
	var re *RevertError
	if !errors.As(err, &re) || len(re.Data) < 4 {
		return nil
	}
	for _, e := range parsed.Errors {
		if string(e.ID[:4]) == string(re.Data[:4]) {
			out, uerr := e.Inputs.Unpack(re.Data[4:])
			if uerr != nil {
				return nil
			}
			return out
		}
	}
	return nil
}

func (c *Chain) send(from *Account, to *common.Address, data []byte, value *big.Int, gas uint64) (*types.Receipt, error) {
	ctx := context.Background()
	if value == nil {
		value = new(big.Int)
	}
	msg := ethereum.CallMsg{From: from.Address, To: to, Data: data, Value: value}
	if gas == 0 {
		// Estimation runs the call first: a revert is reported with its data before any
		// transaction is sent, and nothing is mined.
		est, err := c.Client.EstimateGas(ctx, msg)
		if err != nil {
			return nil, &RevertError{Data: revertData(err), Err: err}
		}
		gas = est + est/5
	}
	nonce, err := c.Client.PendingNonceAt(ctx, from.Address)
	if err != nil {
		return nil, err
	}
	head, err := c.Client.HeaderByNumber(ctx, nil)
	if err != nil {
		return nil, err
	}
	tip := big.NewInt(params.GWei)
	feeCap := new(big.Int).Add(new(big.Int).Mul(head.BaseFee, big.NewInt(2)), tip)
	tx, err := types.SignNewTx(from.Key, c.signer, &types.DynamicFeeTx{
		ChainID: c.ChainID, Nonce: nonce, GasTipCap: tip, GasFeeCap: feeCap,
		Gas: gas, To: to, Value: value, Data: data,
	})
	if err != nil {
		return nil, err
	}
	err = c.Client.SendTransaction(ctx, tx)
	// The simulated chain's pool moves to a new head a moment after the block is sealed: a
	// sender funded in the previous block can look empty to it until then.
	for i := 0; err != nil && c.Backend != nil && strings.Contains(err.Error(), "insufficient funds") && i < 200; i++ {
		time.Sleep(5 * time.Millisecond)
		err = c.Client.SendTransaction(ctx, tx)
	}
	if err != nil {
		return nil, err
	}
	if c.Backend != nil {
		// A transaction the pool has not promoted yet misses the block: seal again until
		// it is in one.
		for range 200 {
			c.Commit()
			if _, err := c.Client.TransactionReceipt(ctx, tx.Hash()); err == nil {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitCtx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	rcpt, err := bind.WaitMined(waitCtx, c.Client, tx.Hash())
	if err != nil {
		return nil, fmt.Errorf("receipt of %s: %w", tx.Hash(), err)
	}
	if rcpt.Status != types.ReceiptStatusSuccessful {
		return rcpt, &RevertError{Err: fmt.Errorf("transaction %s reverted", tx.Hash())}
	}
	return rcpt, nil
}

// revertData extracts the revert payload from a JSON-RPC error, if it has one.
func revertData(err error) []byte {
	var de interface{ ErrorData() interface{} }
	if errors.As(err, &de) {
		if s, ok := de.ErrorData().(string); ok {
			return common.FromHex(s)
		}
	}
	return nil
}

func ether(n int64) *big.Int {
	return new(big.Int).Mul(big.NewInt(n), big.NewInt(params.Ether))
}
