package server

import (
	"context"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum"
	"github.com/ethereum/go-ethereum/common"

	"github.com/stagepass/stagepass/contracts/bindings/events"
	"github.com/stagepass/stagepass/relay/category"
	"github.com/stagepass/stagepass/relay/rpcserver"
	"github.com/stagepass/stagepass/wasm/protocol"
)

var hubABI = events.NewOracleHub()

// identity is what the relay caches of OracleHub's issuer attestations.
type identity struct {
	mu      sync.Mutex
	domains map[common.Address]domainEntry
}

type domainEntry struct {
	domain string
	at     time.Time
}

// withIssuerDomain fills in the domain the oracle network verified for the event's issuer
// (read from the hub, cached for 10 s).
func (r *Relay) withIssuerDomain(ctx context.Context, ev *protocol.EventInfo) {
	if r.cards == nil || !common.IsHexAddress(ev.Issuer) {
		return
	}
	issuer := common.HexToAddress(ev.Issuer)
	r.ident.mu.Lock()
	e, ok := r.ident.domains[issuer]
	r.ident.mu.Unlock()
	if !ok || time.Since(e.at) > 10*time.Second {
		hub := r.cards.Hub
		out, err := r.cfg.Client.CallContract(ctx, ethereum.CallMsg{To: &hub, Data: hubABI.PackIssuerDomain(issuer)}, nil)
		if err != nil {
			return
		}
		d, err := hubABI.UnpackIssuerDomain(out)
		if err != nil {
			return
		}
		e = domainEntry{domain: d.Domain, at: time.Now()}
		r.ident.mu.Lock()
		if r.ident.domains == nil {
			r.ident.domains = map[common.Address]domainEntry{}
		}
		r.ident.domains[issuer] = e
		r.ident.mu.Unlock()
	}
	ev.IssuerDomain = e.domain
}

// registerIdentityAPI: sp_category (a buyer's category and why), issuer verification
// requests for the oracle nodes.
func (r *Relay) registerIdentityAPI(s *rpcserver.Server) {
	s.Register(protocol.MethodCategory, func(ctx context.Context, req *rpcserver.Request) (any, error) {
		var buyer common.Address
		if err := positional(req, addressParam(&buyer, "buyer")); err != nil {
			return nil, err
		}
		return r.categoryView(ctx, buyer)
	})
	s.Register(protocol.MethodRequestIssuerVerification, func(ctx context.Context, req *rpcserver.Request) (any, error) {
		var issuer common.Address
		var domain string
		if err := positional(req, addressParam(&issuer, "issuer"), &domain); err != nil {
			return nil, err
		}
		rq, err := r.agg.RequestIssuer(ctx, issuer, domain)
		if err != nil {
			return nil, rpcserver.InvalidParams("%v", err)
		}
		return rq, nil
	})
	s.Register(protocol.MethodIssuerRequests, func(ctx context.Context, _ *rpcserver.Request) (any, error) {
		return r.agg.IssuerRequests(ctx)
	})
}

// categoryView computes the buyer's category with the oracles' rules over the relay's own
// index (the relay sees no card fingerprints: those only the oracle nodes' processors give),
// and reads what the hub holds.
func (r *Relay) categoryView(ctx context.Context, buyer common.Address) (protocol.CategoryView, error) {
	h := category.NewHistory()
	artists := map[string]bool{}
	for _, ev := range r.index.Events() {
		h.AddEvent(ev)
		if a := category.ArtistOf(ev); a != "" {
			artists[a] = true
		}
	}
	for _, a := range r.index.Activities(protocol.Cursor{}) {
		h.Apply(a)
	}
	rules := category.DefaultRules()
	g, per := h.Explain(buyer.Hex(), rules)
	v := protocol.CategoryView{Buyer: strings.ToLower(buyer.Hex()),
		Computed: protocol.CategoryVerdict{Category: g.Category, Name: g.Name, Facts: g.Facts}, PerArtist: []protocol.CategoryVerdict{}, Attested: []protocol.CategoryAttested{}}
	for _, x := range per {
		v.PerArtist = append(v.PerArtist, protocol.CategoryVerdict{Artist: x.Artist, Category: x.Category, Name: x.Name, Facts: x.Facts})
	}
	hub := r.cards.Hub
	read := func(artist common.Address) {
		out, err := r.cfg.Client.CallContract(ctx, ethereum.CallMsg{To: &hub, Data: hubABI.PackCategoryFor(buyer, artist)}, nil)
		if err != nil {
			return
		}
		c, err := hubABI.UnpackCategoryFor(out)
		if err != nil || c.Expiry == 0 {
			return
		}
		at := protocol.CategoryAttested{Category: c.Category, Name: category.Names[min(int(c.Category), len(category.Names)-1)], Expiry: c.Expiry}
		if artist != (common.Address{}) {
			at.Artist = strings.ToLower(artist.Hex())
		}
		v.Attested = append(v.Attested, at)
	}
	read(common.Address{})
	for a := range artists {
		read(common.HexToAddress(a))
	}
	return v, nil
}
