package forward

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"math/big"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/common"
	"golang.org/x/time/rate"

	"github.com/stagepass/stagepass/contracts/bindings/events"
	"github.com/stagepass/stagepass/contracts/bindings/forwarder"
	"github.com/stagepass/stagepass/relay/forward/rules"
	"github.com/stagepass/stagepass/wasm/protocol"
)

var (
	fwdABI     = forwarder.NewStagepassForwarder()
	factoryABI = events.NewEventFactory()
)

// Submit checks a signed forward request and, if the relay will pay for it, writes it to
// the outbox before returning its ID. Submitting the same signed request again returns the
// same ID and never sends it twice. Every refusal wraps one of the sentinel errors.
func (f *Forwarder) Submit(ctx context.Context, req protocol.ForwardRequest, sig []byte) (Receipt, error) {
	if !f.enter() {
		return Receipt{}, ErrClosed
	}
	defer f.intake.Done()

	// Checks that need neither the chain nor stored state come first (rules.Check).
	to := common.Address(req.To)
	id, sig, err := rules.Check(&req, sig, f.domain, f.targets(), f.cfg.Limits.MaxData, f.cfg.Limits.MaxGas)
	if err != nil {
		return Receipt{}, err
	}
	from := common.Address(req.From)

	stripe := &f.stripes[from[19]]
	stripe.Lock()
	defer stripe.Unlock()

	// A retry of an accepted request answers from the outbox whatever has happened since
	// (its deadline may have come closer, its nonce been used by its own execution).
	if rec, err := f.get(id); err == nil {
		return Receipt{ID: id, Status: rec.State}, nil
	} else if !errors.Is(err, ErrUnknownRequest) {
		return Receipt{}, err
	}

	now := f.now()
	if err := rules.CheckDeadline(req.Deadline, now, f.cfg.Limits.DeadlineMargin); err != nil {
		return Receipt{}, err
	}
	if !f.allow(from, now) {
		return Receipt{}, fmt.Errorf("%w: at most %g per second", ErrRateLimited, f.cfg.Limits.Rate)
	}
	// Read the pending nonces before the on-chain one: an entry leaves pending only after
	// its execution is on chain, so this order never misses a nonce in between.
	pending := f.pendingNonces(from)
	if len(pending) >= f.cfg.Limits.MaxPending {
		return Receipt{}, fmt.Errorf("%w: %d waiting", ErrTooManyPending, len(pending))
	}
	if !f.targets().Fixed(to) {
		ok, err := f.isEvent(ctx, to)
		if err != nil {
			return Receipt{}, err
		}
		if !ok {
			return Receipt{}, fmt.Errorf("%w: %s is neither the factory, the gateway nor one of the factory's events", ErrTarget, to)
		}
	}
	want, err := f.requestNonce(ctx, from, pending)
	if err != nil {
		return Receipt{}, err
	}
	if !req.Nonce.IsUint64() || req.Nonce.Uint64() != want {
		return Receipt{}, &NonceError{Got: req.Nonce, Want: new(big.Int).SetUint64(want)}
	}

	rec := &record{
		ID: id, From: from, To: to, Gas: req.Gas.Uint64(), Nonce: want, Deadline: req.Deadline,
		Data: bytes.Clone(req.Data), Signature: sig, State: Accepted, AcceptedAt: now, UpdatedAt: now,
	}
	// With nothing of this signer's ahead of it, the chain's current state is the state it
	// will run against (up to other signers' moves), so a revert now is worth refusing.
	if len(pending) == 0 {
		if err := f.simulate(ctx, rec, nil); err != nil {
			return Receipt{}, err
		}
	}
	announced := f.announce(id)
	defer announced()
	state, fresh, err := f.accept(ctx, rec)
	if err != nil {
		return Receipt{}, err
	}
	if fresh {
		f.log.Info("forward request accepted", "id", id, "from", from, "to", to,
			"function", rules.SelectorName(f.targets(), to, req.Data), "nonce", want)
		f.notify(rec.status())
		f.wakeSender()
	}
	return Receipt{ID: id, Status: state}, nil
}

// Status reads a request's state from the outbox.
func (f *Forwarder) Status(id common.Hash) (Status, error) {
	rec, err := f.get(id)
	if err != nil {
		return Status{}, err
	}
	return rec.status(), nil
}

func (f *Forwarder) allow(from common.Address, now time.Time) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	l := f.limiters[from]
	if l == nil {
		// Forget signers whose buckets have refilled, so the map does not grow forever.
		if len(f.limiters) >= 100_000 {
			for a, old := range f.limiters {
				if old.TokensAt(now) >= float64(f.cfg.Limits.Burst) {
					delete(f.limiters, a)
				}
			}
		}
		l = rate.NewLimiter(rate.Limit(f.cfg.Limits.Rate), f.cfg.Limits.Burst)
		f.limiters[from] = l
	}
	return l.AllowN(now, 1)
}

// NextNonce is the forwarder nonce `from`'s next request must carry: the on-chain
// nonces(from), or one past the highest of its requests still pending here.
func (f *Forwarder) NextNonce(ctx context.Context, from common.Address) (uint64, error) {
	return f.requestNonce(ctx, from, f.pendingNonces(from))
}

// requestNonce reads the on-chain nonce after `pending` was read: an entry leaves pending only
// once its execution is on chain, so this order never misses a nonce in between.
func (f *Forwarder) requestNonce(ctx context.Context, from common.Address, pending []uint64) (uint64, error) {
	want, err := f.forwarderNonce(ctx, from, nil)
	if err != nil {
		return 0, err
	}
	for _, n := range pending {
		if n+1 > want {
			want = n + 1
		}
	}
	return want, nil
}

func (f *Forwarder) pendingNonces(from common.Address) []uint64 {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]uint64(nil), f.pending[from]...)
}

// forwarderNonce reads the forwarder's nonces(from) at block (nil: latest).
func (f *Forwarder) forwarderNonce(ctx context.Context, from common.Address, block *big.Int) (uint64, error) {
	return rules.ForwarderNonce(ctx, f.client, f.cfg.Forwarder, from, block)
}

// eventCache remembers which addresses are the factory's events. An address, once an event,
// stays one (isEvent is never cleared), so positive answers are kept for good; negative
// ones only briefly, since a createEvent in flight can make an address an event.
type eventCache struct {
	mu  sync.Mutex
	yes map[common.Address]bool
	no  map[common.Address]time.Time // until when "not an event" is believed
}

const notEventTTL = 10 * time.Second

func (c *eventCache) init() {
	c.yes = make(map[common.Address]bool)
	c.no = make(map[common.Address]time.Time)
}

func (f *Forwarder) isEvent(ctx context.Context, addr common.Address) (bool, error) {
	now := f.now()
	c := &f.events
	c.mu.Lock()
	if c.yes[addr] {
		c.mu.Unlock()
		return true, nil
	}
	if until, ok := c.no[addr]; ok && now.Before(until) {
		c.mu.Unlock()
		return false, nil
	}
	c.mu.Unlock()

	ok, err := rules.IsEvent(ctx, f.client, f.cfg.Factory, addr)
	if err != nil {
		return false, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if ok {
		c.yes[addr] = true
		delete(c.no, addr)
	} else {
		if len(c.no) >= 10_000 {
			clear(c.no)
		}
		c.no[addr] = now.Add(notEventTTL)
	}
	return ok, nil
}
