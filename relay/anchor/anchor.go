// Package anchor writes the main chain's checkpoints into a proof-of-work chain (claim 10):
// each checkpoint's Hash goes into an OP_RETURN output of a Bitcoin transaction that the
// Anchorer builds and signs itself (btcd's wire, txscript and btcec; btcd has no wallet) and
// sends to a btcd node; Verify finds it again and counts its confirmations. In development
// the node is btcd on simnet (StartSimnet), CPU-mined with `generate`.
package anchor

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/btcsuite/btcd/btcec/v2"
	"github.com/btcsuite/btcd/btcjson"
	"github.com/btcsuite/btcd/btcutil"
	"github.com/btcsuite/btcd/chaincfg"
	"github.com/btcsuite/btcd/chaincfg/chainhash"
	"github.com/btcsuite/btcd/rpcclient"
	"github.com/btcsuite/btcd/txscript"
	"github.com/btcsuite/btcd/wire"
	"github.com/ethereum/go-ethereum/common"
	"go.etcd.io/bbolt"
)

// Magic starts every anchor's OP_RETURN data, followed by a version byte (1), the checkpoint
// number (8 bytes, big-endian) and its Hash (32 bytes): 45 bytes in all.
const Magic = "SPCK"

const (
	payloadVersion = 1
	payloadLen     = len(Magic) + 1 + 8 + 32
	// dust is the least change output kept; less goes to the fee.
	dust = 1000
)

// Payload is the OP_RETURN data anchoring checkpoint `number` with hash `h`.
func Payload(number uint64, h common.Hash) []byte {
	out := make([]byte, 0, payloadLen)
	out = append(out, Magic...)
	out = append(out, payloadVersion)
	out = binary.BigEndian.AppendUint64(out, number)
	return append(out, h[:]...)
}

// ParseScript reads an anchor from an output script: ok is false unless it is an OP_RETURN
// carrying a Payload.
func ParseScript(pkScript []byte) (number uint64, h common.Hash, ok bool) {
	if len(pkScript) == 0 || pkScript[0] != txscript.OP_RETURN {
		return 0, h, false
	}
	pushes, err := txscript.PushedData(pkScript)
	if err != nil || len(pushes) != 1 {
		return 0, h, false
	}
	p := pushes[0]
	if len(p) != payloadLen || string(p[:len(Magic)]) != Magic || p[len(Magic)] != payloadVersion {
		return 0, h, false
	}
	return binary.BigEndian.Uint64(p[len(Magic)+1:]), common.BytesToHash(p[len(Magic)+9:]), true
}

// Proof is where an anchor is on the proof-of-work chain. Block is zero and Confirmations 0
// while the transaction waits in the mempool.
type Proof struct {
	Txid          chainhash.Hash
	Block         chainhash.Hash
	Height        int64
	Confirmations int64
	// Fee (satoshi) and Size (bytes) of the anchor transaction, when this Anchorer sent it.
	Fee  int64
	Size int
}

// Config configures an Anchorer.
type Config struct {
	// BTC is the btcd node's client; Params its network (default simnet).
	BTC    *rpcclient.Client
	Params *chaincfg.Params
	// Key pays the anchor transactions: coins sent to its P2PKH address (Address), e.g. a
	// simnet node's --miningaddr, fund them.
	Key *btcec.PrivateKey
	// Main is the main chain, Manager its CheckpointManager.
	Main    MainChain
	Manager common.Address
	// Store is the bbolt file remembering what was anchored (required).
	Store string
	// FeeRate is satoshi per byte (default 2).
	FeeRate int64
	// Generate, in development on simnet, mines that many blocks with `generate` after
	// each anchor; 0 leaves mining to the network's miners.
	Generate uint32
	// StartHeight is the first block to look for the key's coins in.
	StartHeight int64
	// Logger (optional) logs Run's anchors and failures.
	Logger *slog.Logger
}

// Anchorer writes checkpoints into the proof-of-work chain, each once.
type Anchorer struct {
	cfg      Config
	chainID  *big.Int
	addr     *btcutil.AddressPubKeyHash
	pkScript []byte
	db       *bbolt.DB

	mu sync.Mutex
	st *state
}

// state is what the Anchorer keeps in its store: its anchors and the coins it found.
type state struct {
	Network string         `json:"network"`
	ChainID string         `json:"chainId"`
	Manager common.Address `json:"manager"`
	Address string         `json:"address"`
	// Anchors by checkpoint number; a record is written before its transaction is sent.
	Anchors map[uint64]*record `json:"anchors"`
	// Scanned is the last block looked at and ScannedHash its hash.
	Scanned     int64  `json:"scanned"`
	ScannedHash string `json:"scannedHash"`
	// Coins are the key's unspent outputs in blocks, by outpoint.
	Coins map[string]*coin `json:"coins"`
	// Seen are the anchors (anyone's) found in the blocks read, by checkpoint number.
	Seen map[uint64][]seen `json:"seen"`
	// Seq numbers the anchors in the order they were built.
	Seq uint64 `json:"seq"`
}

type record struct {
	Hash   common.Hash `json:"hash"`
	Txid   string      `json:"txid"`
	Raw    string      `json:"raw"`
	Fee    int64       `json:"fee"`
	Size   int         `json:"size"`
	Block  string      `json:"block,omitempty"`
	Height int64       `json:"height,omitempty"`
	Sent   time.Time   `json:"sent"`
	Number uint64      `json:"number"`
	// Seq orders the anchors: a later one may spend an earlier one's change.
	Seq uint64 `json:"seq"`
}

// seen is an anchor found in a block.
type seen struct {
	Hash   common.Hash `json:"hash"`
	Txid   string      `json:"txid"`
	Block  string      `json:"block"`
	Height int64       `json:"height"`
}

type coin struct {
	Value    int64 `json:"value"`
	Height   int64 `json:"height"`
	Coinbase bool  `json:"coinbase,omitempty"`
}

var stateBucket, stateKey = []byte("anchor"), []byte("state")

// New opens the Anchorer's store (creating it) and checks it belongs to this main chain,
// CheckpointManager, network and key.
func New(ctx context.Context, cfg Config) (*Anchorer, error) {
	if cfg.BTC == nil || cfg.Key == nil || cfg.Main == nil || cfg.Store == "" {
		return nil, errors.New("anchor: Config needs BTC, Key, Main and Store")
	}
	if cfg.Params == nil {
		cfg.Params = &chaincfg.SimNetParams
	}
	if cfg.FeeRate <= 0 {
		cfg.FeeRate = 2
	}
	chainID, err := cfg.Main.ChainID(ctx)
	if err != nil {
		return nil, fmt.Errorf("main chain id: %w", err)
	}
	addr, err := KeyAddress(cfg.Key, cfg.Params)
	if err != nil {
		return nil, err
	}
	pkScript, err := txscript.PayToAddrScript(addr)
	if err != nil {
		return nil, err
	}
	db, err := bbolt.Open(cfg.Store, 0o600, &bbolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("anchor store %s: %w", cfg.Store, err)
	}
	a := &Anchorer{cfg: cfg, chainID: chainID, addr: addr, pkScript: pkScript, db: db}
	want := state{Network: cfg.Params.Name, ChainID: chainID.String(), Manager: cfg.Manager, Address: addr.EncodeAddress()}
	err = db.View(func(tx *bbolt.Tx) error {
		if b := tx.Bucket(stateBucket); b != nil {
			if raw := b.Get(stateKey); raw != nil {
				a.st = new(state)
				return json.Unmarshal(raw, a.st)
			}
		}
		return nil
	})
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("anchor store %s: %w", cfg.Store, err)
	}
	if a.st == nil {
		a.st = &want
		a.st.Anchors, a.st.Coins, a.st.Seen = map[uint64]*record{}, map[string]*coin{}, map[uint64][]seen{}
		a.st.Scanned = cfg.StartHeight - 1
	} else if a.st.Seen == nil {
		a.st.Seen = map[uint64][]seen{}
	}
	if a.st.Network != want.Network || a.st.ChainID != want.ChainID || a.st.Manager != want.Manager || a.st.Address != want.Address {
		db.Close()
		return nil, fmt.Errorf("anchor store %s is for %s, chain %s, CheckpointManager %s, address %s; not for %s, chain %s, %s, %s",
			cfg.Store, a.st.Network, a.st.ChainID, a.st.Manager, a.st.Address, want.Network, want.ChainID, want.Manager, want.Address)
	}
	return a, nil
}

// KeyAddress is the P2PKH address of `key`'s compressed public key on `params`' network.
func KeyAddress(key *btcec.PrivateKey, params *chaincfg.Params) (*btcutil.AddressPubKeyHash, error) {
	return btcutil.NewAddressPubKeyHash(btcutil.Hash160(key.PubKey().SerializeCompressed()), params)
}

// Close closes the store.
func (a *Anchorer) Close() error { return a.db.Close() }

// Address is the P2PKH address whose coins pay for anchors.
func (a *Anchorer) Address() btcutil.Address { return a.addr }

func (a *Anchorer) save() error {
	raw, err := json.Marshal(a.st)
	if err != nil {
		return err
	}
	return a.db.Update(func(tx *bbolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(stateBucket)
		if err != nil {
			return err
		}
		return b.Put(stateKey, raw)
	})
}

// Anchor writes checkpoint `cp` into the proof-of-work chain and returns the transaction's
// id. It refuses a checkpoint that is not the main chain's (ErrUnknownCheckpoint,
// ErrNotOnMainChain); a checkpoint it anchored before, or whose anchor (anyone's) is in a
// block it has read, is not anchored again (that transaction's id comes back).
func (a *Anchorer) Anchor(ctx context.Context, cp Checkpoint) (chainhash.Hash, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	h, err := a.onMainChain(ctx, cp)
	if err != nil {
		return chainhash.Hash{}, err
	}
	if r, ok := a.st.Anchors[cp.Number]; ok {
		if r.Hash != h {
			return chainhash.Hash{}, fmt.Errorf("checkpoint %d was anchored with hash %s, the main chain's is %s", cp.Number, r.Hash, h)
		}
		id, err := chainhash.NewHashFromStr(r.Txid)
		if err != nil {
			return chainhash.Hash{}, err
		}
		return *id, nil
	}
	if err := a.sync(ctx); err != nil {
		return chainhash.Hash{}, err
	}
	if s, ok := a.seenAnchor(cp.Number, h); ok {
		// Already in a block (another anchorer's, or ours from a store that was lost).
		id, err := chainhash.NewHashFromStr(s.Txid)
		if err != nil {
			return chainhash.Hash{}, err
		}
		return *id, nil
	}
	tx, fee, err := a.build(cp.Number, h)
	if err != nil {
		return chainhash.Hash{}, fmt.Errorf("anchor checkpoint %d: %w", cp.Number, err)
	}
	var buf bytes.Buffer
	if err := tx.Serialize(&buf); err != nil {
		return chainhash.Hash{}, err
	}
	txid := tx.TxHash()
	// Remembered before it is sent: after a crash the same transaction is sent again, never
	// a second one.
	a.st.Seq++
	a.st.Anchors[cp.Number] = &record{Number: cp.Number, Hash: h, Txid: txid.String(), Raw: hex.EncodeToString(buf.Bytes()), Fee: fee, Size: buf.Len(), Sent: time.Now().UTC(), Seq: a.st.Seq}
	if err := a.save(); err != nil {
		delete(a.st.Anchors, cp.Number)
		return chainhash.Hash{}, err
	}
	if _, err := a.cfg.BTC.SendRawTransaction(tx, false); err != nil {
		var rpcErr *btcjson.RPCError
		if errors.As(err, &rpcErr) && !alreadyKnown(err) {
			// The node refused it: nothing was sent; forget it so it can be built again.
			delete(a.st.Anchors, cp.Number)
			if serr := a.save(); serr != nil {
				return chainhash.Hash{}, serr
			}
			return chainhash.Hash{}, fmt.Errorf("anchor checkpoint %d: btcd refused %s: %w", cp.Number, txid, err)
		}
		if !alreadyKnown(err) {
			return chainhash.Hash{}, fmt.Errorf("anchor checkpoint %d: send %s (sent again on the next sync): %w", cp.Number, txid, err)
		}
	}
	if a.cfg.Generate > 0 {
		if _, err := a.cfg.BTC.Generate(a.cfg.Generate); err != nil {
			return txid, fmt.Errorf("generate: %w", err)
		}
		if err := a.sync(ctx); err != nil {
			return txid, err
		}
	}
	return txid, nil
}

func alreadyKnown(err error) bool {
	s := err.Error()
	return strings.Contains(s, "already have transaction") || strings.Contains(s, "already exists")
}

// onMainChain checks cp against the CheckpointManager and returns its Hash.
func (a *Anchorer) onMainChain(ctx context.Context, cp Checkpoint) (common.Hash, error) {
	onChain, err := ReadCheckpoint(ctx, a.cfg.Main, a.cfg.Manager, cp.Number)
	if err != nil {
		return common.Hash{}, err
	}
	if !onChain.Same(cp) {
		return common.Hash{}, fmt.Errorf("checkpoint %d (blocks %d-%d): %w (blocks %d-%d)", cp.Number, cp.StartBlock, cp.EndBlock, ErrNotOnMainChain, onChain.StartBlock, onChain.EndBlock)
	}
	return Hash(a.chainID, a.cfg.Manager, cp), nil
}

// spendable lists the coins the next anchor may spend: mature coins in blocks not spent by a
// waiting anchor, and the change of waiting anchors.
func (a *Anchorer) spendable(tip int64) ([]wire.OutPoint, []int64, error) {
	spent := map[string]bool{}
	var ops []wire.OutPoint
	var values []int64
	pending := a.pending()
	for _, r := range pending {
		tx, err := decodeTx(r.Raw)
		if err != nil {
			return nil, nil, err
		}
		for _, in := range tx.TxIn {
			spent[in.PreviousOutPoint.String()] = true
		}
	}
	for _, r := range pending {
		tx, _ := decodeTx(r.Raw)
		for i, out := range tx.TxOut {
			op := wire.OutPoint{Hash: tx.TxHash(), Index: uint32(i)}
			if bytes.Equal(out.PkScript, a.pkScript) && !spent[op.String()] {
				ops, values = append(ops, op), append(values, out.Value)
			}
		}
	}
	for k, c := range a.st.Coins {
		if spent[k] || (c.Coinbase && tip+1-c.Height < int64(a.cfg.Params.CoinbaseMaturity)) {
			continue
		}
		op, err := wire.NewOutPointFromString(k)
		if err != nil {
			return nil, nil, err
		}
		ops, values = append(ops, *op), append(values, c.Value)
	}
	// Largest first, then by outpoint: deterministic.
	idx := make([]int, len(ops))
	for i := range idx {
		idx[i] = i
	}
	sort.Slice(idx, func(i, j int) bool {
		if values[idx[i]] != values[idx[j]] {
			return values[idx[i]] > values[idx[j]]
		}
		return ops[idx[i]].String() < ops[idx[j]].String()
	})
	so, sv := make([]wire.OutPoint, len(idx)), make([]int64, len(idx))
	for i, k := range idx {
		so[i], sv[i] = ops[k], values[k]
	}
	return so, sv, nil
}

// pending lists the anchors not in a block yet, in the order they were built.
func (a *Anchorer) pending() []*record {
	var out []*record
	for _, r := range a.st.Anchors {
		if r.Block == "" {
			out = append(out, r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Seq < out[j].Seq })
	return out
}

// Balance is what the key can spend now, in satoshi.
func (a *Anchorer) Balance(ctx context.Context) (int64, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if err := a.sync(ctx); err != nil {
		return 0, err
	}
	_, values, err := a.spendable(a.st.Scanned)
	var sum int64
	for _, v := range values {
		sum += v
	}
	return sum, err
}

// build makes and signs the anchor transaction: the key's coins in, an OP_RETURN with the
// Payload and the change back to the key out.
func (a *Anchorer) build(number uint64, h common.Hash) (*wire.MsgTx, int64, error) {
	ops, values, err := a.spendable(a.st.Scanned)
	if err != nil {
		return nil, 0, err
	}
	data, err := txscript.NullDataScript(Payload(number, h))
	if err != nil {
		return nil, 0, err
	}
	var total int64
	tx := wire.NewMsgTx(wire.TxVersion)
	tx.AddTxOut(wire.NewTxOut(0, data))
	tx.AddTxOut(wire.NewTxOut(0, a.pkScript))
	for i := range ops {
		tx.AddTxIn(wire.NewTxIn(&ops[i], nil, nil))
		total += values[i]
		// A signed P2PKH input is at most 148 bytes.
		size := tx.SerializeSize() + 107*len(tx.TxIn)
		fee := int64(size) * a.cfg.FeeRate
		if total < fee+dust {
			continue
		}
		tx.TxOut[1].Value = total - fee
		for j := range tx.TxIn {
			sig, err := txscript.SignatureScript(tx, j, a.pkScript, txscript.SigHashAll, a.cfg.Key, true)
			if err != nil {
				return nil, 0, err
			}
			tx.TxIn[j].SignatureScript = sig
		}
		return tx, fee, nil
	}
	return nil, 0, fmt.Errorf("address %s has %d satoshi spendable, not enough for the fee (coinbase needs %d confirmations)",
		a.addr.EncodeAddress(), total, a.cfg.Params.CoinbaseMaturity)
}

func decodeTx(raw string) (*wire.MsgTx, error) {
	b, err := hex.DecodeString(raw)
	if err != nil {
		return nil, err
	}
	tx := new(wire.MsgTx)
	return tx, tx.Deserialize(bytes.NewReader(b))
}

// sync reads the blocks since the last one it read: the key's coins, the blocks its anchors
// are in. A reorganisation (the last block read is no longer the chain's) reads again from
// StartHeight. Anchors still waiting are sent again (a node that lost them takes them back).
func (a *Anchorer) sync(ctx context.Context) error {
	btc := a.cfg.BTC
	_, tip, err := btc.GetBestBlock()
	if err != nil {
		return fmt.Errorf("btcd: %w", err)
	}
	if a.st.Scanned >= a.cfg.StartHeight {
		h, err := btc.GetBlockHash(a.st.Scanned)
		if err != nil || h.String() != a.st.ScannedHash {
			a.st.Scanned, a.st.ScannedHash = a.cfg.StartHeight-1, ""
			a.st.Coins, a.st.Seen = map[string]*coin{}, map[uint64][]seen{}
			for _, r := range a.st.Anchors {
				r.Block, r.Height = "", 0
			}
		}
	}
	byTxid := map[string]*record{}
	for _, r := range a.st.Anchors {
		byTxid[r.Txid] = r
	}
	for height := a.st.Scanned + 1; height <= int64(tip); height++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		hash, err := btc.GetBlockHash(height)
		if err != nil {
			return fmt.Errorf("btcd block %d: %w", height, err)
		}
		block, err := btc.GetBlock(hash)
		if err != nil {
			return fmt.Errorf("btcd block %d: %w", height, err)
		}
		for i, tx := range block.Transactions {
			txid := tx.TxHash()
			if r := byTxid[txid.String()]; r != nil {
				r.Block, r.Height = hash.String(), height
			}
			if i > 0 {
				for _, in := range tx.TxIn {
					delete(a.st.Coins, in.PreviousOutPoint.String())
				}
			}
			for j, out := range tx.TxOut {
				if n, h, ok := ParseScript(out.PkScript); ok {
					a.st.Seen[n] = append(a.st.Seen[n], seen{Hash: h, Txid: txid.String(), Block: hash.String(), Height: height})
				}
				if bytes.Equal(out.PkScript, a.pkScript) {
					a.st.Coins[wire.OutPoint{Hash: txid, Index: uint32(j)}.String()] = &coin{Value: out.Value, Height: height, Coinbase: i == 0}
				}
			}
		}
		a.st.Scanned, a.st.ScannedHash = height, hash.String()
	}
	for _, r := range a.pending() {
		tx, err := decodeTx(r.Raw)
		if err != nil {
			return err
		}
		if _, err := btc.SendRawTransaction(tx, false); err != nil && !alreadyKnown(err) {
			var rpcErr *btcjson.RPCError
			if !errors.As(err, &rpcErr) {
				return fmt.Errorf("send anchor %s again: %w", r.Txid, err)
			}
			// Not in a block and refused (its coins were spent by another transaction): it
			// can never be mined; the checkpoint is anchored anew unless it already is.
			a.log().Warn("btcd refuses a waiting anchor; dropped", "checkpoint", r.Number, "tx", r.Txid, "err", err)
			delete(a.st.Anchors, r.Number)
		}
	}
	return a.save()
}

// seenAnchor is the earliest anchor of checkpoint `number` with hash `h` in the blocks read.
func (a *Anchorer) seenAnchor(number uint64, h common.Hash) (seen, bool) {
	for _, s := range a.st.Seen[number] {
		if s.Hash == h {
			return s, true
		}
	}
	return seen{}, false
}

// Verify finds checkpoint `cp`'s anchor after checking `cp` is the main chain's: the
// transaction this Anchorer sent, else (anchored by another) an OP_RETURN with its Hash in
// the last `ScanDepth` blocks or the mempool. ErrNotAnchored if there is none.
func (a *Anchorer) Verify(ctx context.Context, cp Checkpoint) (Proof, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	h, err := a.onMainChain(ctx, cp)
	if err != nil {
		return Proof{}, err
	}
	if err := a.sync(ctx); err != nil {
		return Proof{}, err
	}
	r, ok := a.st.Anchors[cp.Number]
	if !ok || r.Hash != h {
		if s, ok := a.seenAnchor(cp.Number, h); ok {
			id, err1 := chainhash.NewHashFromStr(s.Txid)
			block, err2 := chainhash.NewHashFromStr(s.Block)
			if err := errors.Join(err1, err2); err != nil {
				return Proof{}, err
			}
			return Proof{Txid: *id, Block: *block, Height: s.Height, Confirmations: a.st.Scanned - s.Height + 1}, nil
		}
		return Find(ctx, a.cfg.BTC, cp.Number, h, ScanDepth)
	}
	id, err := chainhash.NewHashFromStr(r.Txid)
	if err != nil {
		return Proof{}, err
	}
	p := Proof{Txid: *id, Fee: r.Fee, Size: r.Size}
	if r.Block != "" {
		block, err := chainhash.NewHashFromStr(r.Block)
		if err != nil {
			return Proof{}, err
		}
		p.Block, p.Height, p.Confirmations = *block, r.Height, a.st.Scanned-r.Height+1
	}
	return p, nil
}

// ScanDepth is how many blocks back from the tip Find looks by default.
const ScanDepth = 10000

// ErrNotAnchored: no anchor of the checkpoint was found.
var ErrNotAnchored = errors.New("checkpoint not anchored")

// Find looks for the anchor of checkpoint `number` with hash `h` in the last `depth` blocks
// (the earliest one counts), then in the node's mempool. It needs no store: anyone can run
// it against any btcd node.
func Find(ctx context.Context, btc *rpcclient.Client, number uint64, h common.Hash, depth int64) (Proof, error) {
	_, tip, err := btc.GetBestBlock()
	if err != nil {
		return Proof{}, fmt.Errorf("btcd: %w", err)
	}
	var found *Proof
	for height := int64(tip); height >= 0 && height > int64(tip)-depth; height-- {
		if err := ctx.Err(); err != nil {
			return Proof{}, err
		}
		hash, err := btc.GetBlockHash(height)
		if err != nil {
			return Proof{}, fmt.Errorf("btcd block %d: %w", height, err)
		}
		block, err := btc.GetBlock(hash)
		if err != nil {
			return Proof{}, fmt.Errorf("btcd block %d: %w", height, err)
		}
		for _, tx := range block.Transactions {
			if hasAnchor(tx, number, h) {
				found = &Proof{Txid: tx.TxHash(), Block: *hash, Height: height, Confirmations: int64(tip) - height + 1, Size: tx.SerializeSize()}
			}
		}
	}
	if found != nil {
		return *found, nil
	}
	pool, err := btc.GetRawMempool()
	if err != nil {
		return Proof{}, fmt.Errorf("btcd mempool: %w", err)
	}
	for _, id := range pool {
		tx, err := btc.GetRawTransaction(id)
		if err != nil {
			continue // mined or evicted meanwhile
		}
		if hasAnchor(tx.MsgTx(), number, h) {
			return Proof{Txid: *id, Size: tx.MsgTx().SerializeSize()}, nil
		}
	}
	return Proof{}, fmt.Errorf("checkpoint %d (hash %s): %w in the last %d blocks or the mempool", number, h, ErrNotAnchored, depth)
}

func hasAnchor(tx *wire.MsgTx, number uint64, h common.Hash) bool {
	for _, out := range tx.TxOut {
		if n, got, ok := ParseScript(out.PkScript); ok && n == number && got == h {
			return true
		}
	}
	return false
}
