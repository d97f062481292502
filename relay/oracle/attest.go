package oracle

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// attestation is a category or issuer attestation a report signs.
type attestation struct {
	kind             uint8
	buyer, artist    common.Address // category
	category         uint8
	issuer           common.Address // issuer
	domain           string
	issuedAt, expiry uint64
}

func (at *attestation) digest(chainID uint64, hub common.Address) ([32]byte, error) {
	d := protocol.HubDomain(chainID, ethcrypto.Address(hub))
	if at.kind == protocol.ReportIssuer {
		return protocol.IssuerTypedData(d, ethcrypto.Address(at.issuer), at.domain, at.issuedAt, at.expiry).Digest()
	}
	return protocol.CategoryTypedData(d, ethcrypto.Address(at.buyer), ethcrypto.Address(at.artist), at.category, at.issuedAt, at.expiry).Digest()
}

// call is the hub transaction that records the attestation with `sigs`.
func (at *attestation) call(sigs [][]byte) []byte {
	if at.kind == protocol.ReportIssuer {
		return hubABI.PackAttestIssuer(at.issuer, at.domain, at.issuedAt, at.expiry, sigs)
	}
	return hubABI.PackAttestCategory(at.buyer, at.artist, at.category, at.issuedAt, at.expiry, sigs)
}

func (at *attestation) json() *protocol.AttestationJSON {
	if at.kind == protocol.ReportIssuer {
		return &protocol.AttestationJSON{Issuer: strings.ToLower(at.issuer.Hex()), Domain: at.domain, IssuedAt: at.issuedAt, Expiry: at.expiry}
	}
	j := &protocol.AttestationJSON{Buyer: strings.ToLower(at.buyer.Hex()), Category: at.category, IssuedAt: at.issuedAt, Expiry: at.expiry}
	if at.artist != (common.Address{}) {
		j.Artist = strings.ToLower(at.artist.Hex())
	}
	return j
}

// parseAttestation reads a category or issuer report's attestation and its digest.
func (a *Aggregator) parseAttestation(r protocol.OracleReport) (*attestation, [32]byte, error) {
	j := r.Attestation
	if j == nil {
		return nil, [32]byte{}, fmt.Errorf("%w: a %s report needs its attestation", ErrBadReport, r.Kind)
	}
	at := &attestation{issuedAt: j.IssuedAt, expiry: j.Expiry}
	addr := func(what, s string, zeroOK bool) (common.Address, error) {
		if s == "" && zeroOK {
			return common.Address{}, nil
		}
		if !common.IsHexAddress(s) {
			return common.Address{}, fmt.Errorf("%w: %s must be an address", ErrBadReport, what)
		}
		return common.HexToAddress(s), nil
	}
	var err error
	if r.Kind == protocol.ReportKindIssuer {
		at.kind = protocol.ReportIssuer
		if at.issuer, err = addr("issuer", j.Issuer, false); err != nil {
			return nil, [32]byte{}, err
		}
		if at.domain = strings.ToLower(j.Domain); !validDomain(at.domain) {
			return nil, [32]byte{}, fmt.Errorf("%w: %q is not a domain", ErrBadReport, j.Domain)
		}
	} else {
		at.kind, at.category = protocol.ReportCategory, j.Category
		if at.buyer, err = addr("buyer", j.Buyer, false); err != nil {
			return nil, [32]byte{}, err
		}
		if at.artist, err = addr("artist", j.Artist, true); err != nil {
			return nil, [32]byte{}, err
		}
		if at.category > 4 {
			return nil, [32]byte{}, fmt.Errorf("%w: category %d", ErrBadReport, at.category)
		}
	}
	if at.expiry <= at.issuedAt {
		return nil, [32]byte{}, fmt.Errorf("%w: the attestation expires before it is issued", ErrBadReport)
	}
	d, err := at.digest(a.cfg.ChainID.Uint64(), a.cfg.Hub)
	if err != nil {
		return nil, [32]byte{}, fmt.Errorf("%w: %v", ErrBadReport, err)
	}
	return at, d, nil
}

// validDomain accepts a host name, with an optional port (tests serve from 127.0.0.1:PORT).
func validDomain(d string) bool {
	if d == "" || len(d) > 253 || strings.ContainsAny(d, "/\\?#@ ") {
		return false
	}
	return true
}

func issuerKey(issuer common.Address, domain string) string {
	return strings.ToLower(issuer.Hex()) + "/" + strings.ToLower(domain)
}

// RequestIssuer asks the oracle nodes to verify that `issuer` controls `domain`
// (sp_requestIssuerVerification); the request's time is the attestation's issuedAt.
//
// The request's time is the chain's (the latest block's), which the hub compares with.
func (a *Aggregator) RequestIssuer(ctx context.Context, issuer common.Address, domain string) (protocol.IssuerRequest, error) {
	domain = strings.ToLower(strings.TrimSpace(domain))
	if !validDomain(domain) {
		return protocol.IssuerRequest{}, fmt.Errorf("%q is not a domain name", domain)
	}
	head, err := a.cfg.Client.HeaderByNumber(ctx, nil)
	if err != nil {
		return protocol.IssuerRequest{}, fmt.Errorf("read the chain's time: %w", err)
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	k := issuerKey(issuer, domain)
	if r, ok := a.issuerReqs[k]; ok && head.Time-r.RequestedAt < 3600 {
		return r, nil
	}
	if len(a.issuerReqs) >= 1000 {
		return protocol.IssuerRequest{}, fmt.Errorf("too many issuer verifications pending; try again later")
	}
	r := protocol.IssuerRequest{Issuer: strings.ToLower(issuer.Hex()), Domain: domain, RequestedAt: head.Time}
	a.issuerReqs[k] = r
	a.issuerAt[k] = time.Now()
	return r, nil
}

// IssuerRequests are the pending issuer verifications (sp_issuerRequests), for the nodes.
func (a *Aggregator) IssuerRequests(context.Context) ([]protocol.IssuerRequest, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	out := []protocol.IssuerRequest{}
	for k, r := range a.issuerReqs {
		if time.Since(a.issuerAt[k]) > time.Hour {
			delete(a.issuerReqs, k)
			delete(a.issuerAt, k)
			continue
		}
		out = append(out, r)
	}
	return out, nil
}

// RegisterEvent has the hub record a new event's artist (OracleHub.registerEvent), so its
// presale and quotas see fans and superfans of that artist. Sent once per event.
func (a *Aggregator) RegisterEvent(ev common.Address) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if _, ok := a.register[ev]; !ok {
		a.register[ev] = common.Hash{}
	}
}

// registerEvents sends the pending registerEvent transactions (Run's loop).
func (a *Aggregator) registerEvents(ctx context.Context) error {
	a.mu.Lock()
	var todo []common.Address
	for ev, tx := range a.register {
		if tx == (common.Hash{}) {
			todo = append(todo, ev)
		}
	}
	a.mu.Unlock()
	for _, ev := range todo {
		out, err := call(ctx, a.cfg.Client, a.cfg.Hub, hubABI.PackEventArtist(ev))
		if err == nil {
			if artist, err := hubABI.UnpackEventArtist(out); err == nil && artist != (common.Address{}) {
				a.mu.Lock()
				a.register[ev] = common.Hash{1} // recorded already
				a.mu.Unlock()
				continue
			}
		}
		tx, err := a.sendTx(ctx, hubABI.PackRegisterEvent(ev), 200_000)
		if err != nil {
			return fmt.Errorf("register event %s with the hub: %w", ev.Hex(), err)
		}
		a.mu.Lock()
		a.register[ev] = tx.Hash()
		a.mu.Unlock()
	}
	return nil
}
