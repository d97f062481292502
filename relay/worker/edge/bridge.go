package edge

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"sort"
	"strings"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/stagepass/stagepass/contracts/bindings/mainchain"
	"github.com/stagepass/stagepass/contracts/merkle"
	"github.com/stagepass/stagepass/relay/exits/bridge"
	"github.com/stagepass/stagepass/relay/internal/logscan"
	"github.com/stagepass/stagepass/relay/rpcserver"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// The bridge's withdrawals at the edge: sp_withdrawals and sp_withdrawalProof as the native
// relay answers them from relay/exits' tracker, with the tracker's reading, checking,
// staging and proving (relay/exits/bridge), and the tracker's state in D1
// (migrations/0003_bridge.sql).
//
// Why an index and not reads per request: a proof needs every leaf of ChildGateway's tree
// up to its checkpoint, and a recipient's withdrawals can be anywhere in the sidechain's
// history. Reading them per request means one log query per 1,000 blocks since ChildGateway's
// deployment — about 40 a day of a 2-second chain — which outgrows a Worker's subrequest
// limit (50 Free, 1,000 Paid) within days. Indexed, a pass reads only the blocks since the
// last one (a log query per chain per 1,000 blocks, a head and a checkpoint count per
// chain, the checkpoint manager), a read is a few D1 queries. Each read call runs a pass
// first, so it answers as fresh as the native tracker (which reads every second); the cron
// trigger runs one every minute, so a read's pass stays short.

// Bridge is the main-chain side of the bridge, for the withdrawal calls: RootGateway
// (CheckpointManager is read from it, as the native relay does) on the main chain, read
// from MainStart (RootGateway's deployment block). ChildGateway is Config.Gateway.
type Bridge struct {
	Main      MainChain
	Root      common.Address
	MainStart uint64
	// Confirmations is M, the main-chain confirmations the validators wait for before
	// crediting a deposit, as sp_deposits reports it (0: DefaultConfirmations).
	Confirmations uint64
}

// DefaultConfirmations is the validators' default M (validator.DefaultConfirmations, which
// does not build for js/wasm; relay/worker's TestDefaultConfirmations checks they agree).
const DefaultConfirmations = 6

// MainChain is what the bridge's reads need of the main chain; *ethclient.Client has it.
type MainChain interface {
	bridge.MainChain
	ethereum.ChainIDReader
	headers
}

// HasBridge reports whether the relay follows the main chain (Config.Bridge).
func (r *Relay) HasBridge() bool { return r.cfg.Bridge != nil && r.cfg.DB != nil }

// BridgeMaxBlocks bounds the blocks of each chain one bridge pass reads (in log queries of
// logscan.DefaultLimit), and BridgeMaxCheckpoints the checkpoints it checks: a pass makes
// at most about 2 × 10 log queries and 2 × 16 calls.
const (
	BridgeMaxBlocks      = 10 * logscan.DefaultLimit
	BridgeMaxCheckpoints = 16
)

type bridgeCursor struct {
	SideNext    uint64 `json:"side_next"`
	MainNext    uint64 `json:"main_next"`
	Withdrawals uint64 `json:"withdrawals"`
	Checkpoints uint64 `json:"checkpoints"`
	SideHashes  string `json:"side_hashes"`
	MainHashes  string `json:"main_hashes"`
}

type leafRow struct {
	Idx       uint64  `json:"idx"`
	Kind      uint8   `json:"kind"`
	Recipient string  `json:"recipient"`
	Asset     string  `json:"asset"`
	Value     string  `json:"value"`
	Data      string  `json:"data"`
	Leaf      string  `json:"leaf"`
	Tx        string  `json:"tx"`
	Block     uint64  `json:"block"`
	CP        *uint64 `json:"cp"`
	ExitTx    *string `json:"exit_tx"`
	ExitCP    *uint64 `json:"exit_cp"`
}

func (row leafRow) leaf() (bridge.Leaf, error) {
	value, ok1 := new(big.Int).SetString(row.Value, 10)
	data, ok2 := new(big.Int).SetString(row.Data, 10)
	if !ok1 || !ok2 {
		return bridge.Leaf{}, fmt.Errorf("bridge: withdrawal %d's row: value %q, data %q", row.Idx, row.Value, row.Data)
	}
	return bridge.Leaf{
		W: merkle.Withdrawal{Kind: row.Kind, Index: row.Idx, Recipient: common.HexToAddress(row.Recipient),
			Asset: common.HexToAddress(row.Asset), Value: value, Data: data},
		Hash: common.HexToHash(row.Leaf), Tx: common.HexToHash(row.Tx), Block: row.Block,
	}, nil
}

type checkpointRow struct {
	Number uint64 `json:"number"`
	Leaves int    `json:"leaves"`
	OK     int    `json:"ok"`
}

// withdrawalColumns are a withdrawal's columns with its first verified checkpoint (cp) and
// its exit (exit_tx, exit_cp), from bridge_withdrawals w.
const withdrawalColumns = `w.idx, w.kind, w.recipient, w.asset, w.value, w.data, w.leaf, w.tx, w.block,
	(SELECT MIN(c.number) FROM bridge_checkpoints c WHERE c.ok = 1 AND c.leaves > w.idx) AS cp,
	x.tx AS exit_tx, x.checkpoint AS exit_cp
	FROM bridge_withdrawals w LEFT JOIN bridge_exits x ON x.idx = w.idx`

func (r *Relay) bridgeCursor(ctx context.Context) (bridgeCursor, bool, error) {
	var rows []bridgeCursor
	if err := r.cfg.DB.Query(ctx, &rows, "SELECT side_next, main_next, withdrawals, checkpoints, side_hashes, main_hashes FROM bridge_follow WHERE id = 1"); err != nil {
		return bridgeCursor{}, false, fmt.Errorf("bridge: read cursor: %w", err)
	}
	if len(rows) == 0 {
		return bridgeCursor{SideNext: r.cfg.StartBlock, MainNext: r.cfg.Bridge.MainStart, SideHashes: "{}", MainHashes: "{}"}, false, nil
	}
	return rows[0], true, nil
}

// FollowBridge is one pass of the bridge's follower, as relay/exits' Tracker.Step reads
// (without paying exits): ChildGateway's new withdrawals (each leaf checked), the
// checkpoints whose sidechain blocks are read (each root checked against the tree of the
// withdrawals in its blocks) and RootGateway's Exited and Deposited logs, at most BridgeMaxBlocks blocks
// of each chain, written in one D1 transaction with the new cursor. It reports whether it
// reached both chains' heads. A pass that did not start from the stored cursor (another ran
// meanwhile) writes nothing and runs again, up to three times; so does one that found a
// reorganisation and rolled back.
//
// Reorganisations: each pass remembers the hash of the last block it read on each chain
// (the last 32 passes'). When a chain no longer has the last one, the pass goes back to the
// newest it still has (or the start block) and drops what was read after it: withdrawals
// and the checkpoints over their blocks, and which deposits were seen minted (sidechain);
// exits, deposits and the checkpoints read since (main chain); the next pass reads them
// again. The native tracker keeps its state in
// memory; this one persists, so it must not keep a replaced block's logs.
func (r *Relay) FollowBridge(ctx context.Context) (bool, error) {
	if !r.HasBridge() {
		return false, errors.New("bridge: no main chain (MAIN_RPC, ROOT_GATEWAY, CHILD_GATEWAY) or no index database")
	}
	for range 2 {
		if synced, err := r.followBridge(ctx); !errors.Is(err, errAnotherPass) {
			return synced, err
		}
	}
	synced, err := r.followBridge(ctx)
	if errors.Is(err, errAnotherPass) {
		return false, nil
	}
	return synced, err
}

// hashWindow is how many passes' last blocks are remembered per chain.
const hashWindow = FollowWindow

type headers interface {
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
}

// sameBlock reports whether the chain's block n is still `hash`.
func sameBlock(ctx context.Context, c headers, n uint64, hash common.Hash) (bool, error) {
	h, err := c.HeaderByNumber(ctx, new(big.Int).SetUint64(n))
	if errors.Is(err, ethereum.NotFound) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("header %d: %w", n, err)
	}
	return h.Hash() == hash, nil
}

// reorged reports whether the chain replaced block next-1, the last a pass read (its hash
// remembered in hashes), and if so the block to read again from: the one after the newest
// remembered block the chain still has, or start.
func reorged(ctx context.Context, c headers, next, start uint64, hashes map[uint64]common.Hash) (bool, uint64, error) {
	last, ok := hashes[next-1]
	if next <= start || !ok {
		return false, 0, nil
	}
	if same, err := sameBlock(ctx, c, next-1, last); err != nil || same {
		return false, 0, err
	}
	blocks := make([]uint64, 0, len(hashes))
	for n := range hashes {
		if n < next-1 {
			blocks = append(blocks, n)
		}
	}
	sort.Slice(blocks, func(i, j int) bool { return blocks[i] > blocks[j] })
	for _, n := range blocks {
		same, err := sameBlock(ctx, c, n, hashes[n])
		if err != nil {
			return false, 0, err
		}
		if same {
			return true, n + 1, nil
		}
	}
	return true, start, nil
}

// remember adds block n's hash to a chain's window and drops the oldest past hashWindow.
func remember(hashes map[uint64]common.Hash, n uint64, h common.Hash) string {
	hashes[n] = h
	if len(hashes) > hashWindow {
		blocks := make([]uint64, 0, len(hashes))
		for b := range hashes {
			blocks = append(blocks, b)
		}
		sort.Slice(blocks, func(i, j int) bool { return blocks[i] < blocks[j] })
		for _, b := range blocks[:len(blocks)-hashWindow] {
			delete(hashes, b)
		}
	}
	out, _ := json.Marshal(hashes)
	return string(out)
}

func forget(hashes map[uint64]common.Hash, from uint64) string {
	for n := range hashes {
		if n >= from {
			delete(hashes, n)
		}
	}
	out, _ := json.Marshal(hashes)
	return string(out)
}

// guardStmt fails a pass's transaction when the stored cursor is not the one it started
// from (follow_check accepts no row).
func guardStmt(st bridgeCursor) Stmt {
	return Stmt{"INSERT INTO follow_check (stale) SELECT 1 FROM bridge_follow WHERE id = 1 AND (side_next != ? OR main_next != ? OR withdrawals != ? OR checkpoints != ?)",
		[]any{st.SideNext, st.MainNext, st.Withdrawals, st.Checkpoints}}
}

// rollBack drops what was read from block side (sidechain) or main (main chain) on, those
// not nil, and stores the cursor there.
func (r *Relay) rollBack(ctx context.Context, st bridgeCursor, side, main *uint64, sideHashes, mainHashes map[uint64]common.Hash) error {
	stmts := []Stmt{guardStmt(st)}
	next := st
	if side != nil {
		// A mint may be gone too: deposits are read as minted or not again.
		stmts = append(stmts, Stmt{"DELETE FROM bridge_withdrawals WHERE block >= ?", []any{*side}},
			Stmt{"DELETE FROM bridge_checkpoints WHERE end_block >= ?", []any{*side}},
			Stmt{"UPDATE bridge_deposits SET credited = 0", nil})
		next.SideNext, next.SideHashes = *side, forget(sideHashes, *side)
	}
	if main != nil {
		stmts = append(stmts, Stmt{"DELETE FROM bridge_exits WHERE block >= ?", []any{*main}},
			Stmt{"DELETE FROM bridge_deposits WHERE block >= ?", []any{*main}},
			Stmt{"DELETE FROM bridge_checkpoints WHERE main_head >= ?", []any{*main}})
		next.MainNext, next.MainHashes = *main, forget(mainHashes, *main)
	}
	stmts = append(stmts, Stmt{`UPDATE bridge_follow SET side_next = ?, main_next = ?, side_hashes = ?, main_hashes = ?,
		withdrawals = (SELECT COUNT(*) FROM bridge_withdrawals), checkpoints = (SELECT COUNT(*) FROM bridge_checkpoints) WHERE id = 1`,
		[]any{next.SideNext, next.MainNext, next.SideHashes, next.MainHashes}})
	if err := r.cfg.DB.Batch(ctx, stmts); err != nil {
		if anotherPassRan(err) {
			return errAnotherPass
		}
		return fmt.Errorf("bridge: roll back a reorganisation: %w", err)
	}
	return nil
}

func (r *Relay) followBridge(ctx context.Context) (bool, error) {
	b := r.cfg.Bridge
	st, stored, err := r.bridgeCursor(ctx)
	if err != nil {
		return false, err
	}
	sideHashes, mainHashes := map[uint64]common.Hash{}, map[uint64]common.Hash{}
	if json.Unmarshal([]byte(st.SideHashes), &sideHashes) != nil || json.Unmarshal([]byte(st.MainHashes), &mainHashes) != nil {
		return false, fmt.Errorf("bridge: stored block hashes %s, %s", st.SideHashes, st.MainHashes)
	}
	sideReorg, sideFrom, err := reorged(ctx, r.cfg.Chain, st.SideNext, r.cfg.StartBlock, sideHashes)
	if err != nil {
		return false, fmt.Errorf("sidechain: %w", err)
	}
	mainReorg, mainFrom, err := reorged(ctx, b.Main, st.MainNext, b.MainStart, mainHashes)
	if err != nil {
		return false, fmt.Errorf("main chain: %w", err)
	}
	if sideReorg || mainReorg {
		var side, main *uint64
		if sideReorg {
			side = &sideFrom
		}
		if mainReorg {
			main = &mainFrom
		}
		if err := r.rollBack(ctx, st, side, main, sideHashes, mainHashes); err != nil {
			return false, err
		}
		return false, errAnotherPass // read again from there
	}

	manager, err := bridge.ReadCheckpointManager(ctx, b.Main, b.Root)
	if err != nil {
		return false, fmt.Errorf("main chain: %w", err)
	}
	next := st
	// Each chain: its head, the hash of the last block to read (before its logs: a block
	// replaced meanwhile is caught by the next pass), then the logs.
	sideHead, err := r.cfg.Chain.BlockNumber(ctx)
	if err != nil {
		return false, fmt.Errorf("sidechain head: %w", err)
	}
	var leaves []bridge.Leaf
	if span := (logscan.Span{From: st.SideNext, To: min(sideHead, st.SideNext+BridgeMaxBlocks-1)}); span.From <= span.To {
		h, err := r.cfg.Chain.HeaderByNumber(ctx, new(big.Int).SetUint64(span.To))
		if err != nil {
			return false, fmt.Errorf("sidechain header %d: %w", span.To, err)
		}
		err = bridge.ScanQueued(ctx, r.cfg.Chain, r.cfg.Gateway, span, st.Withdrawals, func(ls []bridge.Leaf, to uint64) error {
			leaves = append(leaves, ls...)
			next.SideNext, next.Withdrawals = to+1, next.Withdrawals+uint64(len(ls))
			return nil
		})
		if err != nil {
			return false, fmt.Errorf("sidechain: ChildGateway's WithdrawalQueued logs: %w", err)
		}
		next.SideHashes = remember(sideHashes, span.To, h.Hash())
	}

	mainHead, err := b.Main.BlockNumber(ctx)
	if err != nil {
		return false, fmt.Errorf("main chain head: %w", err)
	}
	count, err := bridge.CheckpointCount(ctx, b.Main, manager)
	if err != nil {
		return false, fmt.Errorf("main chain: %w", err)
	}
	// The checkpoints due (their sidechain blocks read), then the leaves up to the last one's
	// end in one query: each checkpoint's tree is the leaves in its blocks.
	var due []mainchain.CheckpointManagerStored
	for next.Checkpoints+uint64(len(due)) < count && len(due) < BridgeMaxCheckpoints {
		cp, err := bridge.ReadCheckpoint(ctx, b.Main, manager, next.Checkpoints+uint64(len(due)))
		if err != nil {
			return false, fmt.Errorf("main chain: %w", err)
		}
		if cp.EndBlock >= next.SideNext {
			break // the sidechain's logs are not read that far yet
		}
		due = append(due, cp)
	}
	var cps []bridge.Checkpoint
	if len(due) > 0 {
		var rows []struct {
			Leaf  string `json:"leaf"`
			Block uint64 `json:"block"`
		}
		if err := r.cfg.DB.Query(ctx, &rows, "SELECT leaf, block FROM bridge_withdrawals WHERE block <= ? ORDER BY idx", due[len(due)-1].EndBlock); err != nil {
			return false, fmt.Errorf("bridge: read leaves: %w", err)
		}
		hashes, blocks := make([]common.Hash, 0, len(rows)+len(leaves)), make([]uint64, 0, len(rows)+len(leaves))
		for _, row := range rows {
			hashes, blocks = append(hashes, common.HexToHash(row.Leaf)), append(blocks, row.Block)
		}
		for _, l := range leaves {
			hashes, blocks = append(hashes, l.Hash), append(blocks, l.Block)
		}
		for _, cp := range due {
			n := sort.Search(len(blocks), func(i int) bool { return blocks[i] > cp.EndBlock })
			cps = append(cps, bridge.Check(next.Checkpoints, cp, hashes[:n]))
			next.Checkpoints++
		}
	}
	var xs []bridge.Exit
	var ds []bridge.Deposit
	if span := (logscan.Span{From: st.MainNext, To: min(mainHead, st.MainNext+BridgeMaxBlocks-1)}); span.From <= span.To {
		h, err := b.Main.HeaderByNumber(ctx, new(big.Int).SetUint64(span.To))
		if err != nil {
			return false, fmt.Errorf("main chain header %d: %w", span.To, err)
		}
		err = bridge.ScanMain(ctx, b.Main, b.Root, span, func(got []bridge.Exit, deps []bridge.Deposit, to uint64) error {
			xs, ds = append(xs, got...), append(ds, deps...)
			next.MainNext = to + 1
			return nil
		})
		if err != nil {
			return false, fmt.Errorf("main chain: RootGateway's Exited and Deposited logs: %w", err)
		}
		next.MainHashes = remember(mainHashes, span.To, h.Hash())
	}
	synced := next.SideNext > sideHead && next.MainNext > mainHead && (next.Checkpoints == count || len(due) < BridgeMaxCheckpoints)
	if next == st {
		return synced, nil
	}

	stmts := []Stmt{guardStmt(st)}
	for _, l := range leaves {
		stmts = append(stmts, Stmt{`INSERT INTO bridge_withdrawals (idx, kind, recipient, asset, value, data, leaf, tx, block)
			VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`, []any{l.W.Index, int(l.W.Kind), hexAddr(l.W.Recipient), hexAddr(l.W.Asset),
			l.W.Value.String(), l.W.Data.String(), l.Hash.Hex(), l.Tx.Hex(), l.Block}})
	}
	for _, c := range cps {
		ok := 0
		if c.OK {
			ok = 1
		}
		stmts = append(stmts, Stmt{"INSERT INTO bridge_checkpoints (number, end_block, leaves, root, ok, main_head) VALUES (?, ?, ?, ?, ?, ?)",
			[]any{c.Number, c.End, c.Leaves, c.Root.Hex(), ok, mainHead}})
	}
	for _, x := range xs {
		stmts = append(stmts, Stmt{"INSERT OR IGNORE INTO bridge_exits (idx, checkpoint, tx, block) VALUES (?, ?, ?, ?)",
			[]any{x.Index, x.Checkpoint, x.Tx.Hex(), x.Block}})
	}
	for _, d := range ds {
		stmts = append(stmts, Stmt{"INSERT OR IGNORE INTO bridge_deposits (id, recipient, sender, amount, tx, block) VALUES (?, ?, ?, ?, ?, ?)",
			[]any{d.ID.String(), hexAddr(d.Recipient), hexAddr(d.From), d.Amount.String(), d.Tx.Hex(), d.Block}})
	}
	// The first pass inserts the cursor (a second first pass fails on its primary key);
	// later ones update it.
	cursor := "INSERT INTO bridge_follow (id, side_next, main_next, withdrawals, checkpoints, side_hashes, main_hashes) VALUES (1, ?, ?, ?, ?, ?, ?)"
	if stored {
		cursor += ` ON CONFLICT (id) DO UPDATE SET side_next = excluded.side_next, main_next = excluded.main_next,
			withdrawals = excluded.withdrawals, checkpoints = excluded.checkpoints, side_hashes = excluded.side_hashes, main_hashes = excluded.main_hashes`
	}
	stmts = append(stmts, Stmt{cursor, []any{next.SideNext, next.MainNext, next.Withdrawals, next.Checkpoints, next.SideHashes, next.MainHashes}})
	if err := r.cfg.DB.Batch(ctx, stmts); err != nil {
		if anotherPassRan(err) || strings.Contains(err.Error(), "UNIQUE constraint failed") {
			return false, errAnotherPass
		}
		return false, fmt.Errorf("bridge: write sidechain blocks %d-%d, main-chain blocks %d-%d: %w", st.SideNext, next.SideNext-1, st.MainNext, next.MainNext-1, err)
	}
	return synced, nil
}

// leafHashes are the leaves of the withdrawals `where` says, in index order.
func (r *Relay) leafHashes(ctx context.Context, where string, args ...any) ([]common.Hash, error) {
	var rows []struct {
		Leaf string `json:"leaf"`
	}
	if err := r.cfg.DB.Query(ctx, &rows, "SELECT leaf FROM bridge_withdrawals WHERE "+where+" ORDER BY idx", args...); err != nil {
		return nil, fmt.Errorf("bridge: read leaves: %w", err)
	}
	out := make([]common.Hash, len(rows))
	for i, row := range rows {
		out[i] = common.HexToHash(row.Leaf)
	}
	return out, nil
}

// bridgeReady runs a bridge pass before a read call: its answer is then as fresh as the
// native tracker's. A pass that cannot reach both heads (a node away, or more history than
// one pass reads: the cron trigger's passes catch up) makes the call unavailable, as the
// native relay is before its tracker first read the chains.
func (r *Relay) bridgeReady(ctx context.Context) error {
	if r.cfg.Bridge == nil {
		return bridge.NoBridge()
	}
	if r.cfg.DB == nil {
		return ErrNoIndex
	}
	synced, err := r.FollowBridge(ctx)
	if err != nil {
		return bridge.RPCError(fmt.Errorf("%w: %v", bridge.ErrNotReady, err))
	}
	if !synced {
		st, _, err := r.bridgeCursor(ctx)
		if err != nil {
			return err
		}
		return bridge.RPCError(fmt.Errorf("%w: read up to sidechain block %d and main-chain block %d so far; more at the next pass",
			bridge.ErrNotReady, st.SideNext, st.MainNext))
	}
	return nil
}

// Withdrawals is sp_withdrawals [recipient]: the withdrawals to recipient, oldest first.
func (r *Relay) Withdrawals(ctx context.Context, recipient common.Address) ([]protocol.Withdrawal, error) {
	if err := r.bridgeReady(ctx); err != nil {
		return nil, err
	}
	var rows []leafRow
	if err := r.cfg.DB.Query(ctx, &rows, "SELECT "+withdrawalColumns+" WHERE w.recipient = ? ORDER BY w.idx", hexAddr(recipient)); err != nil {
		return nil, fmt.Errorf("bridge: read withdrawals: %w", err)
	}
	out := make([]protocol.Withdrawal, 0, len(rows))
	for _, row := range rows {
		l, err := row.leaf()
		if err != nil {
			return nil, err
		}
		var x *bridge.Exit
		if row.ExitTx != nil && row.ExitCP != nil {
			x = &bridge.Exit{Index: row.Idx, Checkpoint: *row.ExitCP, Tx: common.HexToHash(*row.ExitTx)}
		}
		out = append(out, bridge.View(l, row.CP, x))
	}
	return out, nil
}

// WithdrawalProof is sp_withdrawalProof [index]: the withdrawal with its proof against the
// first checkpoint carrying it whose root was verified. It reads every leaf of that
// checkpoint's tree (one D1 query).
func (r *Relay) WithdrawalProof(ctx context.Context, index uint64) (protocol.WithdrawalProof, error) {
	if err := r.bridgeReady(ctx); err != nil {
		return protocol.WithdrawalProof{}, err
	}
	var rows []leafRow
	if err := r.cfg.DB.Query(ctx, &rows, "SELECT "+withdrawalColumns+" WHERE w.idx = ?", index); err != nil {
		return protocol.WithdrawalProof{}, fmt.Errorf("bridge: read withdrawal: %w", err)
	}
	if len(rows) == 0 {
		st, _, err := r.bridgeCursor(ctx)
		if err != nil {
			return protocol.WithdrawalProof{}, err
		}
		return protocol.WithdrawalProof{}, bridge.RPCError(bridge.Unknown(index, st.Withdrawals))
	}
	l, err := rows[0].leaf()
	if err != nil {
		return protocol.WithdrawalProof{}, err
	}
	if rows[0].CP == nil {
		var cps []checkpointRow
		if err := r.cfg.DB.Query(ctx, &cps, "SELECT number, leaves, ok FROM bridge_checkpoints WHERE ok = 0 AND leaves > ? ORDER BY number LIMIT 1", index); err != nil {
			return protocol.WithdrawalProof{}, fmt.Errorf("bridge: read checkpoints: %w", err)
		}
		failed := make([]bridge.Checkpoint, len(cps))
		for i, c := range cps {
			failed[i] = bridge.Checkpoint{Number: c.Number, Leaves: c.Leaves, OK: c.OK == 1}
		}
		return protocol.WithdrawalProof{}, bridge.RPCError(bridge.NotCheckpointed(index, failed))
	}
	cp := *rows[0].CP
	var cps []checkpointRow
	if err := r.cfg.DB.Query(ctx, &cps, "SELECT number, leaves, ok FROM bridge_checkpoints WHERE number = ?", cp); err != nil || len(cps) != 1 {
		return protocol.WithdrawalProof{}, fmt.Errorf("bridge: read checkpoint %d: %v", cp, err)
	}
	hashes, err := r.leafHashes(ctx, "idx < ?", cps[0].Leaves)
	if err != nil {
		return protocol.WithdrawalProof{}, err
	}
	if len(hashes) != cps[0].Leaves {
		return protocol.WithdrawalProof{}, fmt.Errorf("bridge: checkpoint %d has %d leaves, the database %d", cp, cps[0].Leaves, len(hashes))
	}
	return bridge.ProofOf(l, cp, hashes)
}

// bridgeInfo adds the bridge to sp_chainInfo as the native relay shows it: ChildGateway,
// its bridged stablecoin and exit delay (read from it), and the main chain's id.
func (r *Relay) bridgeInfo(ctx context.Context, info *protocol.ChainInfo) error {
	if r.cfg.Bridge == nil {
		return nil
	}
	token, delay, err := bridge.ReadChild(ctx, r.cfg.Chain, r.cfg.Gateway)
	if err != nil {
		return err
	}
	id, err := r.cfg.Bridge.Main.ChainID(ctx)
	if err != nil {
		return fmt.Errorf("main chain id: %w", err)
	}
	info.Gateway, info.BridgedCurrency = hexAddr(r.cfg.Gateway), hexAddr(token)
	info.MainChainID, info.ExitDelay = id.Uint64(), delay
	return nil
}

type depositRow struct {
	ID        string `json:"id"`
	Recipient string `json:"recipient"`
	Sender    string `json:"sender"`
	Amount    string `json:"amount"`
	Tx        string `json:"tx"`
	Block     uint64 `json:"block"`
	Credited  int    `json:"credited"`
}

// Deposits is sp_deposits [owner]: RootGateway's deposits to owner, oldest first, each
// pending until ChildGateway minted it (read on the sidechain for those not yet seen
// minted, and remembered), with its confirmations up to the main-chain block the pass
// read to.
func (r *Relay) Deposits(ctx context.Context, owner common.Address) ([]protocol.Deposit, error) {
	if err := r.bridgeReady(ctx); err != nil {
		return nil, err
	}
	st, _, err := r.bridgeCursor(ctx)
	if err != nil {
		return nil, err
	}
	var rows []depositRow
	if err := r.cfg.DB.Query(ctx, &rows, `SELECT id, recipient, sender, amount, tx, block, credited FROM bridge_deposits
		WHERE recipient = ? ORDER BY block, length(id), id`, hexAddr(owner)); err != nil {
		return nil, fmt.Errorf("bridge: read deposits: %w", err)
	}
	m := r.cfg.Bridge.Confirmations
	if m == 0 {
		m = DefaultConfirmations
	}
	out := make([]protocol.Deposit, 0, len(rows))
	for _, row := range rows {
		id, ok1 := new(big.Int).SetString(row.ID, 10)
		amount, ok2 := new(big.Int).SetString(row.Amount, 10)
		if !ok1 || !ok2 {
			return nil, fmt.Errorf("bridge: deposit row %q: amount %q", row.ID, row.Amount)
		}
		credited := row.Credited == 1
		if !credited {
			if credited, err = bridge.DepositMinted(ctx, r.cfg.Chain, r.cfg.Gateway, id); err != nil {
				return nil, err
			}
			if credited { // remembered: not read again (a lost write is read again next time)
				_ = r.cfg.DB.Batch(ctx, []Stmt{{"UPDATE bridge_deposits SET credited = 1 WHERE id = ?", []any{row.ID}}})
			}
		}
		d := bridge.Deposit{ID: id, Amount: amount, From: common.HexToAddress(row.Sender), Recipient: common.HexToAddress(row.Recipient),
			Tx: common.HexToHash(row.Tx), Block: row.Block}
		out = append(out, bridge.DepositView(d, st.MainNext-1, m, credited))
	}
	return out, nil
}

// noMainWallet answers the calls that need the relay's main-chain wallet, which the
// Workers build does not have.
func noMainWallet(method string) error {
	return rpcserver.Errorf(rpcserver.CodeMethodNotFound,
		"%s: this relay (the Workers build) has no main-chain wallet and sends no deposits; deposit with RootGateway.deposit and main-chain gas of your own, or through the native relay", method)
}

// registerBridge adds sp_withdrawals, sp_withdrawalProof and sp_deposits, and refuses
// sp_depositWithPermit and sp_mainPermitInfo (what the wallet signs for it) clearly.
func (r *Relay) registerBridge(s *rpcserver.Server) {
	s.Register(protocol.MethodWithdrawals, func(ctx context.Context, req *rpcserver.Request) (any, error) {
		var recipient common.Address
		if err := rpcserver.Positional(req, rpcserver.AddressParam(&recipient, "recipient")); err != nil {
			return nil, err
		}
		return r.Withdrawals(ctx, recipient)
	})
	s.Register(protocol.MethodWithdrawalProof, func(ctx context.Context, req *rpcserver.Request) (any, error) {
		var raw json.RawMessage
		if err := rpcserver.Positional(req, &raw); err != nil {
			return nil, err
		}
		index, err := bridge.ParseIndex(req.Method, raw)
		if err != nil {
			return nil, err
		}
		return r.WithdrawalProof(ctx, index)
	})
	s.Register(protocol.MethodDeposits, func(ctx context.Context, req *rpcserver.Request) (any, error) {
		var owner common.Address
		if err := rpcserver.Positional(req, rpcserver.AddressParam(&owner, "owner")); err != nil {
			return nil, err
		}
		if r.cfg.Bridge == nil {
			return nil, bridge.NoDeposits()
		}
		return r.Deposits(ctx, owner)
	})
	for _, method := range []string{protocol.MethodDepositWithPermit, protocol.MethodMainPermitInfo} {
		s.Register(method, func(context.Context, *rpcserver.Request) (any, error) {
			return nil, noMainWallet(method)
		})
	}
}
