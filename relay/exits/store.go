package exits

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/big"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	"go.etcd.io/bbolt"

	"github.com/stagepass/stagepass/contracts/merkle"
)

// The Tracker's store (bridge.db in the relay's data folder): the withdrawals and the
// main-chain logs it has read (each as the node gave it, types.Log's JSON) and how far it
// has read each chain, so that a restarted relay reads only the blocks after. On start they
// go through the same checks as fresh ones (each leaf recomputed and in order, each
// checkpoint's root checked against the tree of the leaves), so nothing is taken from the
// file but what the chains said. Only main-chain logs at least Config.Margin blocks
// deep are kept, with the hash of the last block read: a reorganisation that replaces it
// is seen at the next step and rolled back.
var (
	bucketMeta    = []byte("meta")    // "schema" → storeSchema; "follows" → the contracts and chain (followsJSON)
	bucketCursors = []byte("cursors") // "side", "main" → the next block to read (8 bytes, big-endian)
	bucketSide    = []byte("side")    // withdrawal index (8 bytes) → the withdrawal as its WithdrawalQueued log says (leafRecord)
	bucketMain    = []byte("main")    // block (8 bytes) ‖ log index (4 bytes) → an Exited, Deposited or CheckpointSubmitted log
	bucketHashes  = []byte("hashes")  // main-chain block (8 bytes) → its hash, where the main cursor stood

	keySchema  = []byte("schema")
	keyFollows = []byte("follows")
	keySide    = []byte("side")
	keyMain    = []byte("main")
)

// storeSchema is the version of the records above; a file of another version is refused.
const storeSchema = "1"

// keptHashes is how many of the main cursor's past block hashes are kept: a reorganisation
// is rolled back to the newest of them still on the chain (or, deeper, to MainStart).
const keptHashes = 64

// followsJSON is what a store was written for; a store for other contracts is refused.
type followsJSON struct {
	MainChainID uint64         `json:"mainChainId"`
	Root        common.Address `json:"rootGateway"`
	Checkpoints common.Address `json:"checkpointManager"`
	Child       common.Address `json:"childGateway"`
}

type store struct {
	db   *bbolt.DB
	path string
}

func openStore(path string, follows followsJSON) (*store, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open the bridge store %s: %w", path, err)
	}
	want, err := json.Marshal(follows)
	if err != nil {
		db.Close()
		return nil, err
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		if meta := tx.Bucket(bucketMeta); meta != nil {
			if v := meta.Get(keySchema); string(v) != storeSchema {
				return fmt.Errorf("%s holds the bridge's logs in schema %q; this relay reads schema %q", path, v, storeSchema)
			}
			if v := meta.Get(keyFollows); string(v) != string(want) {
				return fmt.Errorf("%s holds the logs of another bridge (%s); this relay follows %s: move the file away to read this one from its start", path, v, want)
			}
		} else {
			// A new file: nothing in it but what this schema creates.
			err := tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
				return fmt.Errorf("%s is not a bridge store (it holds %q)", path, name)
			})
			if err != nil {
				return err
			}
		}
		for _, b := range [][]byte{bucketMeta, bucketCursors, bucketSide, bucketMain, bucketHashes} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		if err := tx.Bucket(bucketMeta).Put(keySchema, []byte(storeSchema)); err != nil {
			return err
		}
		return tx.Bucket(bucketMeta).Put(keyFollows, want)
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &store{db: db, path: path}, nil
}

func u64(n uint64) []byte { return binary.BigEndian.AppendUint64(nil, n) }

func mainKey(l *types.Log) []byte {
	return binary.BigEndian.AppendUint32(u64(l.BlockNumber), uint32(l.Index))
}

// stored is what load reads back, in key order.
type stored struct {
	sideNext, mainNext *uint64 // nil: never written
	side, main         []storedLog
	hashes             []hashPoint
}

// storedLog is one record: its key, and the log (main) or leaf (side), or why it could not
// be read.
type storedLog struct {
	key  []byte
	log  *types.Log
	leaf *Leaf
	err  error
}

// leafRecord is a withdrawal as the store keeps it.
type leafRecord struct {
	Kind      uint8          `json:"kind"`
	Index     uint64         `json:"index"`
	Recipient common.Address `json:"recipient"`
	Asset     common.Address `json:"asset"`
	Value     *big.Int       `json:"value"`
	Data      *big.Int       `json:"data"`
	Leaf      common.Hash    `json:"leaf"`
	Tx        common.Hash    `json:"tx"`
	Block     uint64         `json:"block"`
}

func recordOf(l Leaf) leafRecord {
	return leafRecord{Kind: l.W.Kind, Index: l.W.Index, Recipient: l.W.Recipient, Asset: l.W.Asset, Value: l.W.Value, Data: l.W.Data,
		Leaf: l.Hash, Tx: l.Tx, Block: l.Block}
}

func (r leafRecord) leaf() *Leaf {
	return &Leaf{W: merkle.Withdrawal{Kind: r.Kind, Index: r.Index, Recipient: r.Recipient, Asset: r.Asset, Value: r.Value, Data: r.Data},
		Hash: r.Leaf, Tx: r.Tx, Block: r.Block}
}

// hashPoint is a main-chain block the cursor stood after, and its hash then.
type hashPoint struct {
	block uint64
	hash  common.Hash
}

func (s *store) load() (st stored, err error) {
	err = s.db.View(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketCursors)
		for _, x := range []struct {
			key []byte
			to  **uint64
		}{{keySide, &st.sideNext}, {keyMain, &st.mainNext}} {
			if v := c.Get(x.key); len(v) == 8 {
				n := binary.BigEndian.Uint64(v)
				*x.to = &n
			} else if v != nil {
				return fmt.Errorf("%s: the %s cursor is %d bytes, not 8", s.path, x.key, len(v))
			}
		}
		read := func(bucket []byte, keyLen int, into *[]storedLog) error {
			return tx.Bucket(bucket).ForEach(func(k, v []byte) error {
				r := storedLog{key: append([]byte(nil), k...)}
				switch {
				case len(k) != keyLen:
					r.err = fmt.Errorf("key of %d bytes, not %d", len(k), keyLen)
				case keyLen == 8:
					var rec leafRecord
					if r.err = json.Unmarshal(v, &rec); r.err == nil {
						r.leaf = rec.leaf()
					}
				default:
					r.log = new(types.Log)
					if r.err = json.Unmarshal(v, r.log); r.err != nil {
						r.log = nil
					}
				}
				*into = append(*into, r)
				return nil
			})
		}
		if err := read(bucketSide, 8, &st.side); err != nil {
			return err
		}
		if err := read(bucketMain, 12, &st.main); err != nil {
			return err
		}
		return tx.Bucket(bucketHashes).ForEach(func(k, v []byte) error {
			if len(k) == 8 && len(v) == 32 {
				st.hashes = append(st.hashes, hashPoint{binary.BigEndian.Uint64(k), common.Hash(v)})
			}
			return nil
		})
	})
	return st, err
}

// putSide records a query's withdrawals and the sidechain cursor.
func (s *store) putSide(leaves []Leaf, next uint64) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		for _, l := range leaves {
			raw, err := json.Marshal(recordOf(l))
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketSide).Put(u64(l.W.Index), raw); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketCursors).Put(keySide, u64(next))
	})
}

// putMain records a chunk of main-chain logs and the cursor, and the hash of the block
// before the cursor if known (older hashes beyond keptHashes are dropped).
func (s *store) putMain(logs []*types.Log, next uint64, point *hashPoint) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		for _, l := range logs {
			raw, err := json.Marshal(l)
			if err != nil {
				return err
			}
			if err := tx.Bucket(bucketMain).Put(mainKey(l), raw); err != nil {
				return err
			}
		}
		if point != nil {
			h := tx.Bucket(bucketHashes)
			if err := h.Put(u64(point.block), point.hash[:]); err != nil {
				return err
			}
			// Counted with a cursor: a bucket's Stats do not see this transaction's writes.
			c := h.Cursor()
			n := 0
			for k, _ := c.First(); k != nil; k, _ = c.Next() {
				n++
			}
			for k, _ := c.First(); k != nil && n > keptHashes; k, _ = c.First() {
				if err := c.Delete(); err != nil {
					return err
				}
				n--
			}
		}
		return tx.Bucket(bucketCursors).Put(keyMain, u64(next))
	})
}

// truncate forgets the sidechain's leaves from index `from` and the main chain's logs and
// hashes from block `mainFrom` on, and sets the cursors back to sideNext and mainFrom (a
// nil one is left alone).
func (s *store) truncate(from *int, sideNext uint64, mainFrom *uint64) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		del := func(bucket, first []byte) error {
			c := tx.Bucket(bucket).Cursor()
			for k, _ := c.Seek(first); k != nil; k, _ = c.Seek(first) {
				if err := c.Delete(); err != nil {
					return err
				}
			}
			return nil
		}
		if from != nil {
			if err := del(bucketSide, u64(uint64(*from))); err != nil {
				return err
			}
			if err := tx.Bucket(bucketCursors).Put(keySide, u64(sideNext)); err != nil {
				return err
			}
		}
		if mainFrom != nil {
			if err := del(bucketMain, u64(*mainFrom)); err != nil {
				return err
			}
			if err := del(bucketHashes, u64(*mainFrom)); err != nil {
				return err
			}
			return tx.Bucket(bucketCursors).Put(keyMain, u64(*mainFrom))
		}
		return nil
	})
}

func (s *store) close() error { return s.db.Close() }

// skip logs a record restore could not take back (unreadable, or not what the chain's
// logs would be) and where the chain is read again from.
func (s *store) skip(log *slog.Logger, bucket []byte, key []byte, why error, reread string) {
	log.Warn("withdrawals: a record of the bridge store cannot be taken back; reading the chain again from its block", "file", s.path,
		"bucket", string(bucket), "key", hex.EncodeToString(key), "err", why, "from", reread)
}
