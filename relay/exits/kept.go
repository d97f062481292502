package exits

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"sort"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"

	"github.com/stagepass/stagepass/contracts/bindings/mainchain"
	"github.com/stagepass/stagepass/contracts/merkle"
	"github.com/stagepass/stagepass/relay/exits/bridge"
	"github.com/stagepass/stagepass/relay/internal/logscan"
)

// What the Tracker has read of the main chain is in two parts: kept, the logs of blocks
// MainStart..mainNext-1, which were at least Config.Margin blocks below the head when read
// (and are in the store); and tail, the logs of the newer blocks mainNext..tailNext-1, read
// again at every step (a reorganisation there changes nothing that was kept). What the
// Tracker serves is both. A reorganisation that replaces a kept block is seen by the hash
// of the block before mainNext: the Tracker goes back to the newest block whose hash still
// matches and reads the chain again from there.

var (
	managerABI      = mainchain.NewCheckpointManager()
	checkpointTopic = logscan.EventID(&mainchain.CheckpointManagerMetaData, "CheckpointSubmitted")
)

// headers reads block headers (an ethclient.Client and the simulated chain's client do):
// the hashes that show a reorganisation.
type headers interface {
	HeaderByNumber(ctx context.Context, number *big.Int) (*types.Header, error)
}

// mainState is what the logs of a run of main-chain blocks say.
type mainState struct {
	exits    map[uint64]exitAt
	deposits map[common.Address][]Deposit
	cps      []*checkpointAt // by number
}

type exitAt struct {
	Exit
	block uint64
}

type checkpointAt struct {
	Checkpoint
	block uint64
}

func newMainState() mainState {
	return mainState{exits: map[uint64]exitAt{}, deposits: map[common.Address][]Deposit{}}
}

// keep forgets what blocks outside [from, to) logged.
func (m *mainState) keep(from, to uint64) {
	in := func(b uint64) bool { return b >= from && b < to }
	for i, x := range m.exits {
		if !in(x.block) {
			delete(m.exits, i)
		}
	}
	for who, ds := range m.deposits {
		var left []Deposit
		for _, d := range ds {
			if in(d.Block) {
				left = append(left, d)
			}
		}
		if len(left) == 0 {
			delete(m.deposits, who)
		} else {
			m.deposits[who] = left
		}
	}
	var left []*checkpointAt
	for _, c := range m.cps {
		if in(c.block) {
			left = append(left, c)
		}
	}
	m.cps = left
}

// errPending: a checkpoint over sidechain blocks not read yet; the main chain is read again
// from its block at the next step.
var errPending = errors.New("a checkpoint beyond the sidechain blocks read")

// apply takes one of the main chain's logs (RootGateway's Exited or Deposited, or
// CheckpointManager's CheckpointSubmitted) into m, whose first checkpoint is number `base`
// (t.mu held). It reports whether the log was one of those.
func (t *Tracker) apply(m *mainState, base int, l *types.Log) (bool, error) {
	if l.Removed || len(l.Topics) == 0 {
		return false, nil
	}
	switch {
	case l.Address == t.cfg.Root && l.Topics[0] == DepositedTopic:
		d, ok := bridge.DepositOf(l)
		if ok {
			m.deposits[d.Recipient] = append(m.deposits[d.Recipient], d)
		}
		return ok, nil
	case l.Address == t.cfg.Root && l.Topics[0] == bridge.ExitedTopic:
		ev, err := rootABI.UnpackExitedEvent(l)
		if err != nil {
			return false, nil
		}
		m.exits[ev.Index.Uint64()] = exitAt{Exit{Index: ev.Index.Uint64(), Checkpoint: ev.Checkpoint.Uint64(), Tx: l.TxHash}, l.BlockNumber}
		return true, nil
	case l.Address == t.cfg.Checkpoints && l.Topics[0] == checkpointTopic:
		ev, err := managerABI.UnpackCheckpointSubmittedEvent(l)
		if err != nil {
			return false, fmt.Errorf("CheckpointSubmitted log in main-chain block %d: %w", l.BlockNumber, err)
		}
		number := uint64(base + len(m.cps))
		if !ev.Number.IsUint64() || ev.Number.Uint64() != number || !ev.EndBlock.IsUint64() {
			return false, fmt.Errorf("CheckpointManager's checkpoint %s (main-chain block %d) is not the next one, %d", ev.Number, l.BlockNumber, number)
		}
		end := ev.EndBlock.Uint64()
		if end >= t.sideNext {
			return false, errPending
		}
		c, seen := t.checked[number]
		if !seen || c.End != end || c.Root != ev.WithdrawalRoot {
			leaves := sort.Search(len(t.ws), func(i int) bool { return t.ws[i].Block > end })
			if leaves >= t.front.n {
				// Checkpoints come in order, each over at least the leaves of the one before:
				// the root of the first `leaves` from the frontier, not a new tree.
				for _, e := range t.ws[t.front.n:leaves] {
					t.front.push(e.Hash)
				}
				c = Checkpoint{Number: number, End: end, Leaves: leaves, Root: ev.WithdrawalRoot, OK: t.front.root() == ev.WithdrawalRoot}
			} else {
				c = bridge.Check(number, mainchain.CheckpointManagerStored{EndBlock: end, WithdrawalRoot: ev.WithdrawalRoot}, t.leaves(leaves))
			}
			if !c.OK {
				t.cfg.Logger.Error("withdrawals: a checkpoint's withdrawal root is not the tree of ChildGateway's withdrawals the relay read; no proofs or exits against it",
					"checkpoint", number, "endBlock", end, "withdrawals", leaves,
					"checkpointRoot", common.Hash(ev.WithdrawalRoot), "relayRoot", bridge.Tree(t.leaves(leaves)).Root())
			}
		}
		m.cps = append(m.cps, &checkpointAt{c, l.BlockNumber})
		return true, nil
	}
	return false, nil
}

// followMain reads RootGateway's Exited and Deposited logs and CheckpointManager's
// checkpoints, each checked against the tree of the withdrawals in its blocks, up to the
// main chain's head, in one query per RangeLimit blocks; it keeps those at least Margin
// blocks deep and reads the others again at the next step.
func (t *Tracker) followMain(ctx context.Context) error {
	if err := t.checkReorg(ctx); err != nil {
		return err
	}
	head, err := t.cfg.Main.BlockNumber(ctx)
	if err != nil {
		return fmt.Errorf("main chain head: %w", err)
	}
	t.mu.Lock()
	from := t.mainNext
	t.mu.Unlock()
	// safe is the last block kept now; none while the chain is not Margin blocks long.
	safe, some := head-t.cfg.Margin, head >= t.cfg.Margin
	var point *hashPoint
	if some && safe >= from && t.headers != nil {
		h, err := t.headers.HeaderByNumber(ctx, new(big.Int).SetUint64(safe))
		if err != nil {
			return fmt.Errorf("main chain: block %d: %w", safe, err)
		}
		point = &hashPoint{safe, h.Hash()}
	}
	tail, next := newMainState(), from
	q := ethereum.FilterQuery{Addresses: []common.Address{t.cfg.Root, t.cfg.Checkpoints},
		Topics: [][]common.Hash{{bridge.ExitedTopic, DepositedTopic, checkpointTopic}}}
	err = logscan.Scan(ctx, t.cfg.Main, q, logscan.Span{From: from, To: head, Limit: t.cfg.RangeLimit}, func(logs []types.Log, _, to uint64) (bool, error) {
		t.mu.Lock()
		defer t.mu.Unlock()
		var kept []*types.Log
		next = to + 1
		pending := false
		for i := range logs {
			l := &logs[i]
			m, base, keep := &tail, len(t.kept.cps), some && l.BlockNumber <= safe
			if keep {
				m, base = &t.kept, 0
			}
			took, err := t.apply(m, base, l)
			if errors.Is(err, errPending) {
				// Its block is read again, with what it logged before the checkpoint.
				next, pending = l.BlockNumber, true
				t.kept.keep(0, next)
				tail.keep(0, next)
				for len(kept) > 0 && kept[len(kept)-1].BlockNumber >= next {
					kept = kept[:len(kept)-1]
				}
				break
			}
			if err != nil {
				t.kept.keep(0, t.mainNext) // nothing of this query is kept
				return false, err
			}
			if took && keep {
				kept = append(kept, l)
			}
		}
		if upTo := min(next, safe+1); some && upTo > t.mainNext {
			var p *hashPoint
			if upTo == safe+1 {
				p = point
			}
			if t.db != nil {
				if err := t.db.putMain(kept, upTo, p); err != nil {
					t.kept.keep(0, t.mainNext)
					return false, fmt.Errorf("the bridge store: %w", err)
				}
			}
			t.mainNext = upTo
			if p != nil {
				t.points = append(t.points, *p)
				if len(t.points) > keptHashes {
					t.points = t.points[1:]
				}
			}
			// What the last step read again of these blocks is kept now.
			t.tail.keep(upTo, t.tailNext)
			t.tailNext = max(t.tailNext, upTo)
		}
		return !pending, nil
	})
	if err != nil {
		return fmt.Errorf("main chain: RootGateway's and CheckpointManager's logs: %w", err)
	}
	t.mu.Lock()
	t.tail, t.tailNext = tail, next
	checked := map[uint64]Checkpoint{}
	for _, c := range tail.cps {
		checked[c.Number] = c.Checkpoint
	}
	t.checked = checked
	t.mu.Unlock()
	return nil
}

// checkReorg compares the hash of the last kept block with the chain's and, if the chain
// replaced it, goes back to the newest remembered block it did not replace (or to
// MainStart) and forgets what was kept above it, to be read again.
func (t *Tracker) checkReorg(ctx context.Context) error {
	t.mu.Lock()
	points := append([]hashPoint(nil), t.points...)
	t.mu.Unlock()
	if t.headers == nil || len(points) == 0 {
		return nil
	}
	for i := len(points) - 1; i >= 0; i-- {
		h, err := t.headers.HeaderByNumber(ctx, new(big.Int).SetUint64(points[i].block))
		if err != nil && !errors.Is(err, ethereum.NotFound) {
			return fmt.Errorf("main chain: block %d: %w", points[i].block, err)
		}
		if err == nil && h.Hash() == points[i].hash {
			if i == len(points)-1 {
				return nil
			}
			return t.rollBack(points[i].block+1, points[len(points)-1])
		}
	}
	return t.rollBack(t.cfg.MainStart, points[len(points)-1])
}

// rollBack forgets what the main chain's blocks from `from` on logged and reads them again.
func (t *Tracker) rollBack(from uint64, replaced hashPoint) error {
	t.mu.Lock()
	was := t.mainNext
	t.kept.keep(0, from)
	t.tail, t.mainNext, t.tailNext = newMainState(), from, from
	for len(t.points) > 0 && t.points[len(t.points)-1].block >= from {
		t.points = t.points[:len(t.points)-1]
	}
	t.mu.Unlock()
	t.cfg.Logger.Warn("withdrawals: the main chain replaced blocks the relay had read; reading them again",
		"block", replaced.block, "hash", replaced.hash, "from", from, "was", was)
	if t.db != nil {
		if err := t.db.truncate(nil, 0, &from); err != nil {
			return fmt.Errorf("the bridge store: %w", err)
		}
	}
	return nil
}

// restore takes back what the store holds, through the same checks as logs fresh from the
// chains: each leaf recomputed and in order, each checkpoint checked against the leaves. A
// record that does not pass (an unreadable file, a checkpoint over leaves that are not
// there) is logged and the chain read again from its block.
func (t *Tracker) restore() error {
	st, err := t.db.load()
	if err != nil {
		return err
	}
	var sideCut *int
	if st.sideNext != nil {
		t.sideNext = *st.sideNext
	}
	for i, r := range st.side {
		l, err := r.leaf, r.err
		if err == nil && binary.BigEndian.Uint64(r.key) != uint64(i) {
			err = fmt.Errorf("withdrawal %d where %d belongs", binary.BigEndian.Uint64(r.key), i)
		}
		if err == nil {
			err = checkLeaf(l, uint64(i))
		}
		if err != nil {
			// Read again from the last good leaf's block, whose leaves are dropped too.
			from := t.cfg.SideStart
			if n := len(t.ws); n > 0 {
				from = t.ws[n-1].Block
				t.ws = t.ws[:sort.Search(n, func(j int) bool { return t.ws[j].Block >= from })]
			}
			t.sideNext = min(t.sideNext, from)
			n := len(t.ws)
			sideCut = &n
			t.db.skip(t.cfg.Logger, bucketSide, r.key, err, fmt.Sprintf("sidechain block %d", from))
			break
		}
		t.ws = append(t.ws, &entry{Leaf: *l})
	}
	var mainCut *uint64
	if st.mainNext != nil {
		t.mainNext, t.tailNext = *st.mainNext, *st.mainNext
	}
	for _, r := range st.main {
		l, err := r.log, r.err
		if err == nil && !bytes.Equal(r.key, mainKey(l)) {
			err = fmt.Errorf("the log of block %d, index %d, under another key", l.BlockNumber, l.Index)
		}
		if err == nil {
			_, err = t.apply(&t.kept, 0, l)
		}
		if err != nil {
			from := t.cfg.MainStart
			if len(r.key) >= 8 {
				from = max(from, binary.BigEndian.Uint64(r.key[:8]))
			}
			t.kept.keep(0, from)
			t.mainNext, t.tailNext = min(t.mainNext, from), min(t.mainNext, from)
			mainCut = &t.mainNext
			t.db.skip(t.cfg.Logger, bucketMain, r.key, err, fmt.Sprintf("main-chain block %d", t.mainNext))
			break
		}
	}
	for _, p := range st.hashes {
		if p.block < t.mainNext {
			t.points = append(t.points, p)
		}
	}
	if sideCut != nil || mainCut != nil {
		return t.db.truncate(sideCut, t.sideNext, mainCut)
	}
	return nil
}

// checkLeaf checks a stored leaf as ScanQueued checks a logged one: withdrawal `index`,
// whose leaf is the one Go computes.
func checkLeaf(l *Leaf, index uint64) error {
	if l.W.Index != index {
		return fmt.Errorf("withdrawal %d where %d belongs", l.W.Index, index)
	}
	if l.W.Value == nil || l.W.Data == nil {
		return errors.New("a withdrawal without its value or data")
	}
	if h := l.W.Leaf(); h != l.Hash {
		return fmt.Errorf("withdrawal %d: leaf %x, the relay computes %x", index, l.Hash, h)
	}
	return nil
}

// frontier is the withdrawal tree of the leaves pushed so far kept as its right edge: the
// last left node of each level (the deposit contract's incremental tree), so that each
// checkpoint's root is checked in O(depth) rather than by rebuilding the tree; it is the
// root bridge.Tree gives for the same leaves (TestGatewayFrontierIsTheTree).
type frontier struct {
	n      int
	branch [merkle.WithdrawalDepth]common.Hash
}

// zeros[h] is the root of an empty subtree of height h.
var zeros = func() (z [merkle.WithdrawalDepth + 1]common.Hash) {
	for h := 1; h <= merkle.WithdrawalDepth; h++ {
		z[h] = merkle.HashPair(z[h-1], z[h-1])
	}
	return z
}()

func (f *frontier) push(leaf common.Hash) {
	f.n++
	node := leaf
	for h, size := 0, f.n; h < merkle.WithdrawalDepth; h, size = h+1, size>>1 {
		if size&1 == 1 {
			f.branch[h] = node
			return
		}
		node = merkle.HashPair(f.branch[h], node)
	}
}

func (f *frontier) root() common.Hash {
	node := zeros[0]
	for h, size := 0, f.n; h < merkle.WithdrawalDepth; h, size = h+1, size>>1 {
		if size&1 == 1 {
			node = merkle.HashPair(f.branch[h], node)
		} else {
			node = merkle.HashPair(node, zeros[h])
		}
	}
	return node
}
