package validator

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"go.etcd.io/bbolt"

	"github.com/stagepass/stagepass/relay/oracle"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// The aggregator's store (validators.db in the relay's data folder): every validator
// signature it accepted, until its report is settled on chain or the chain shows it done;
// the transaction each report went out in; and the equivocation evidence against each
// validator caught signing two roots for one range, until the slash is mined. A restarted
// aggregator reloads it (Aggregator.reload), so what had a quorum is submitted and what was
// seen is slashed without any validator resending.
var (
	bucketMeta       = []byte("meta")       // "schema" → storeSchema
	bucketSignatures = []byte("signatures") // digest ‖ signer → the signed report (protocol.OracleReport, JSON)
	bucketSent       = []byte("sent")       // digest → the transaction hash that carries the report
	bucketOffences   = []byte("offences")   // signer → offenceRecord (JSON)

	keySchema = []byte("schema")
)

// storeSchema is the version of the records above; a file of another version is refused.
const storeSchema = "1"

// offenceRecord is one equivocation: two checkpoints over one range with different roots,
// each with the validator's signature, and the slash transaction once sent.
type offenceRecord struct {
	A  signedJSON  `json:"a"`
	B  signedJSON  `json:"b"`
	Tx common.Hash `json:"tx"`
}

type signedJSON struct {
	Checkpoint *protocol.CheckpointJSON `json:"checkpoint"`
	Signature  string                   `json:"signature"`
}

// storedSig is one signature record as read back: its key's digest and signer, and the report.
type storedSig struct {
	digest [32]byte
	signer common.Address
	report protocol.OracleReport
}

type storedOffence struct {
	signer common.Address
	rec    offenceRecord
}

type store struct {
	db   *bbolt.DB
	path string
}

func openStore(path string) (*store, error) {
	db, err := bbolt.Open(path, 0o600, &bbolt.Options{Timeout: 5 * time.Second})
	if err != nil {
		return nil, fmt.Errorf("open the validator signatures store %s: %w", path, err)
	}
	err = db.Update(func(tx *bbolt.Tx) error {
		if meta := tx.Bucket(bucketMeta); meta != nil {
			if v := meta.Get(keySchema); string(v) != storeSchema {
				return fmt.Errorf("%s holds validator signatures of schema %q; this relay reads schema %q", path, v, storeSchema)
			}
		} else {
			// A new file: nothing in it but what this schema creates.
			err := tx.ForEach(func(name []byte, _ *bbolt.Bucket) error {
				return fmt.Errorf("%s is not a validator signatures store (it holds %q)", path, name)
			})
			if err != nil {
				return err
			}
		}
		for _, b := range [][]byte{bucketMeta, bucketSignatures, bucketSent, bucketOffences} {
			if _, err := tx.CreateBucketIfNotExists(b); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketMeta).Put(keySchema, []byte(storeSchema))
	})
	if err != nil {
		db.Close()
		return nil, err
	}
	return &store{db: db, path: path}, nil
}

func sigKey(digest [32]byte, signer common.Address) []byte {
	return append(append(make([]byte, 0, 52), digest[:]...), signer[:]...)
}

// putSignature records `signer`'s accepted report over `digest`.
func (s *store) putSignature(digest [32]byte, signer common.Address, r protocol.OracleReport) error {
	raw, err := json.Marshal(r)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketSignatures).Put(sigKey(digest, signer), raw) })
}

// dropSignatures forgets single signatures (a validator caught equivocating or slashed).
func (s *store) dropSignatures(keys [][]byte) error {
	if len(keys) == 0 {
		return nil
	}
	return s.db.Update(func(tx *bbolt.Tx) error {
		for _, k := range keys {
			if err := tx.Bucket(bucketSignatures).Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
}

// dropGroup forgets a report: all signatures over `digest` and its transaction.
func (s *store) dropGroup(digest [32]byte) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		c := tx.Bucket(bucketSignatures).Cursor()
		for k, _ := c.Seek(digest[:]); k != nil && bytes.HasPrefix(k, digest[:]); k, _ = c.Seek(digest[:]) {
			if err := c.Delete(); err != nil {
				return err
			}
		}
		return tx.Bucket(bucketSent).Delete(digest[:])
	})
}

// putSent records the transaction a report went out in (the zero hash: none).
func (s *store) putSent(digest [32]byte, h common.Hash) error {
	return s.db.Update(func(tx *bbolt.Tx) error {
		if h == (common.Hash{}) {
			return tx.Bucket(bucketSent).Delete(digest[:])
		}
		return tx.Bucket(bucketSent).Put(digest[:], h[:])
	})
}

func (s *store) putOffence(signer common.Address, rec offenceRecord) error {
	raw, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	return s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketOffences).Put(signer[:], raw) })
}

func (s *store) dropOffence(signer common.Address) error {
	return s.db.Update(func(tx *bbolt.Tx) error { return tx.Bucket(bucketOffences).Delete(signer[:]) })
}

// load reads the whole store. A record that does not parse (a corrupt file, another
// program's data) is logged and skipped, and left where it is.
func (s *store) load(log *slog.Logger) (sigs []storedSig, sent map[[32]byte]common.Hash, offences []storedOffence, err error) {
	sent = map[[32]byte]common.Hash{}
	skip := func(bucket []byte, k []byte, why error) {
		log.Warn("skipping an unreadable record in the validator signatures store", "file", s.path,
			"bucket", string(bucket), "key", hex.EncodeToString(k), "err", why)
	}
	err = s.db.View(func(tx *bbolt.Tx) error {
		err := tx.Bucket(bucketSignatures).ForEach(func(k, v []byte) error {
			if len(k) != 52 {
				skip(bucketSignatures, k, fmt.Errorf("key of %d bytes, not 52", len(k)))
				return nil
			}
			var rec storedSig
			if err := json.Unmarshal(v, &rec.report); err != nil {
				skip(bucketSignatures, k, err)
				return nil
			}
			copy(rec.digest[:], k[:32])
			copy(rec.signer[:], k[32:])
			sigs = append(sigs, rec)
			return nil
		})
		if err != nil {
			return err
		}
		err = tx.Bucket(bucketSent).ForEach(func(k, v []byte) error {
			if len(k) != 32 || len(v) != 32 {
				skip(bucketSent, k, fmt.Errorf("%d-byte key and %d-byte value, not 32 and 32", len(k), len(v)))
				return nil
			}
			sent[[32]byte(k)] = common.Hash(v)
			return nil
		})
		if err != nil {
			return err
		}
		return tx.Bucket(bucketOffences).ForEach(func(k, v []byte) error {
			var o storedOffence
			if len(k) != 20 {
				skip(bucketOffences, k, fmt.Errorf("key of %d bytes, not 20", len(k)))
				return nil
			}
			if err := json.Unmarshal(v, &o.rec); err != nil {
				skip(bucketOffences, k, err)
				return nil
			}
			o.signer = common.Address(k)
			offences = append(offences, o)
			return nil
		})
	})
	return sigs, sent, offences, err
}

// reload takes back what the store holds, checked against the chain as if the validators
// had just sent it: equivocation evidence first (its validator's signatures are then
// refused), then each signature; what the chain shows done (a checkpointed range, minted
// deposits, a set update of a past epoch) or no longer signable (a signer without stake) is
// forgotten. A report that went out before the restart is followed by its transaction
// rather than checked (settle then forgets it). Unreadable or foreign records (a signature
// that does not recover to its key's signer and digest, evidence that proves nothing) are
// logged and skipped. Reports at quorum wake Run at once.
func (a *Aggregator) reload(ctx context.Context) error {
	sigs, sent, offences, err := a.store.load(a.cfg.Logger)
	if err != nil {
		return err
	}
	skip := func(what string, key any, why error) {
		a.cfg.Logger.Warn("skipping a record of the validator signatures store that proves nothing", "file", a.store.path,
			"record", what, "key", key, "err", why)
	}
	for _, o := range offences {
		first, second, err := a.evidence(ctx, o)
		if errors.Is(err, oracle.ErrRefused) {
			skip("equivocation", o.signer, err)
			continue
		}
		if err != nil {
			return err
		}
		a.offenders[o.signer] = &offence{a: first, b: second, tx: o.rec.Tx}
	}
	var drop [][]byte
	taken := 0
	for _, r := range sigs {
		_, isSent := sent[r.digest]
		g, who, sig, err := a.check(ctx, r.report, !isSent)
		if err == nil && (g.digest != r.digest || who != r.signer) {
			err = fmt.Errorf("%w: the signature recovers to %s over %x, not the record's", ErrBadReport, who.Hex(), g.digest)
		}
		if err == nil {
			_, err = a.add(ctx, r.report, g, who, sig, false)
		}
		switch {
		case err == nil:
			taken++
		case errors.Is(err, ErrBadReport):
			skip("signature", hex.EncodeToString(sigKey(r.digest, r.signer)), err)
		case errors.Is(err, oracle.ErrRefused): // done on chain, or its signer can no longer sign
			drop = append(drop, sigKey(r.digest, r.signer))
		default:
			return err
		}
	}
	if err := a.store.dropSignatures(drop); err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	for d, h := range sent {
		if g := a.groups[d]; g != nil {
			g.tx = h
		} else if err := a.store.putSent(d, common.Hash{}); err != nil {
			return err
		}
	}
	if taken+len(a.offenders)+len(drop) > 0 {
		a.cfg.Logger.Info("validator signatures reloaded", "file", a.store.path, "signatures", taken,
			"reports", len(a.groups), "offences", len(a.offenders), "forgotten", len(drop))
	}
	return nil
}

// evidence checks a stored equivocation: two signatures by its validator over one range
// with different roots. It fails with oracle.ErrRefused if the record proves nothing.
func (a *Aggregator) evidence(ctx context.Context, o storedOffence) (first, second signedCheckpoint, err error) {
	var out [2]signedCheckpoint
	for i, s := range []signedJSON{o.rec.A, o.rec.B} {
		cp, err := parseCheckpoint(s.Checkpoint)
		if err != nil {
			return first, second, fmt.Errorf("%w: %v", ErrBadReport, err)
		}
		sig, err := hexutil.Decode(s.Signature)
		if err != nil || len(sig) != 65 {
			return first, second, fmt.Errorf("%w: signature must be 65 bytes of 0x hex", ErrBadReport)
		}
		d, err := checkpointDigest(ctx, a.cfg.Main, a.c.Stake, cp)
		if err != nil {
			return first, second, err
		}
		if who, err := ethcrypto.Recover(d[:], sig); err != nil || common.Address(who) != o.signer {
			return first, second, fmt.Errorf("%w: signature %d is not the validator's", ErrBadReport, i)
		}
		out[i] = signedCheckpoint{cp, sig}
	}
	x, y := out[0].cp, out[1].cp
	if x.StartBlock.Cmp(y.StartBlock) != 0 || x.EndBlock.Cmp(y.EndBlock) != 0 || (x.BlockRoot == y.BlockRoot && x.WithdrawalRoot == y.WithdrawalRoot) {
		return first, second, fmt.Errorf("%w: not two roots for one range", ErrBadReport)
	}
	return out[0], out[1], nil
}
