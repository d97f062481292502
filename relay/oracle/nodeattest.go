package oracle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ethereum/go-ethereum/accounts"
	"github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/common/hexutil"
	"github.com/ethereum/go-ethereum/crypto"

	"github.com/stagepass/stagepass/relay/category"
	"github.com/stagepass/stagepass/relay/index"
	"github.com/stagepass/stagepass/relay/watcher"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// AttestConfig turns on a node's attestations: buyer categories, computed by the category
// rules from the node's own copy of the chain (its own watcher and index) and the card
// signals it saw verifying payments; and issuers' domains, read by the node itself.
type AttestConfig struct {
	// Factory is the EventFactory whose events the node indexes, from block Start.
	Factory common.Address
	Start   uint64
	Rules   category.Rules
	// Every is how often categories and issuer requests are looked at (default 2 s).
	Every time.Duration
	// Epoch: categories are computed as of the last block whose number is a multiple of
	// Epoch (default 20), and attested with that block's time, so every node signs the
	// same; it should span several rounds of Every.
	Epoch uint64
	// Validity is how long a category attestation lasts (default 30 days), IssuerValidity an
	// issuer's (default 365 days).
	Validity, IssuerValidity time.Duration
	// HTTP fetches https://DOMAIN/.well-known/stagepass.json (default: 10 s timeout);
	// Scheme is "https" (tests may serve plain http from 127.0.0.1).
	HTTP   *http.Client
	Scheme string
}

// attester is a node's attestation state.
type attester struct {
	cfg     AttestConfig
	index   *index.Index
	watcher *watcher.Watcher
	mu      sync.Mutex
	cards   map[string]cardSeen // buyer → the card it paid with (from payments this node verified)
	asOf    uint64              // the epoch block last attested
	sent    map[[32]byte]time.Time
	issuers map[string]bool // issuer/domain requests handled (signed or refused)
	last    time.Time
}

type cardSeen struct {
	fingerprint string
	live        bool
}

func newAttester(n *Node) *attester {
	c := *n.cfg.Attest
	if c.Every == 0 {
		c.Every = 2 * time.Second
	}
	if c.Epoch == 0 {
		c.Epoch = 20
	}
	if c.Validity == 0 {
		c.Validity = 30 * 24 * time.Hour
	}
	if c.IssuerValidity == 0 {
		c.IssuerValidity = 365 * 24 * time.Hour
	}
	if c.HTTP == nil {
		c.HTTP = &http.Client{Timeout: 10 * time.Second}
	}
	if c.Scheme == "" {
		c.Scheme = "https"
	}
	if c.Rules == (category.Rules{}) {
		c.Rules = category.DefaultRules()
	}
	ix := index.New(n.cfg.Chain, c.Factory, func([]string, protocol.Activity) {})
	return &attester{
		cfg: c, index: ix, cards: map[string]cardSeen{}, sent: map[[32]byte]time.Time{}, issuers: map[string]bool{},
		watcher: watcher.New(watcher.Config{Client: n.cfg.Chain, Sink: ix, Factory: c.Factory, Start: c.Start, Logger: n.cfg.Logger}),
	}
}

// sawCard records the card a buyer paid with (called when the node verifies a payment).
func (at *attester) sawCard(buyer common.Address, fingerprint string, live bool) {
	if at == nil || fingerprint == "" {
		return
	}
	at.mu.Lock()
	at.cards[strings.ToLower(buyer.Hex())] = cardSeen{fingerprint, live}
	at.mu.Unlock()
}

// attest runs one round: categories as of the latest epoch block, then issuer requests.
func (n *Node) attest(ctx context.Context) error {
	at := n.attester
	if at == nil || time.Since(at.last) < at.cfg.Every {
		return nil
	}
	at.last = time.Now()
	head, err := n.cfg.Chain.BlockNumber(ctx)
	if err != nil {
		return err
	}
	// After this step the node's index holds every block up to `head` at least.
	if err := at.watcher.Step(ctx); err != nil {
		return fmt.Errorf("follow the chain for categories: %w", err)
	}
	return errors.Join(n.attestCategories(ctx, head), n.attestIssuers(ctx))
}

func (n *Node) attestCategories(ctx context.Context, head uint64) error {
	at := n.attester
	asOf := head - head%at.cfg.Epoch
	if asOf == 0 {
		return nil
	}
	hdr, err := n.cfg.Chain.HeaderByNumber(ctx, new(big.Int).SetUint64(asOf))
	if err != nil {
		return fmt.Errorf("read block %d: %w", asOf, err)
	}
	issuedAt := hdr.Time
	h := category.NewHistory()
	for _, ev := range at.index.Events() {
		h.AddEvent(ev)
	}
	for _, a := range at.index.Activities(protocol.Cursor{}) {
		if a.Block > asOf {
			break
		}
		h.Apply(a)
	}
	at.mu.Lock()
	for buyer, c := range at.cards {
		h.AddCard(buyer, c.fingerprint, c.live, at.cfg.Rules)
	}
	at.mu.Unlock()

	// What the rules say now, and what the chain says: attest where they differ (including
	// clearing a category the rules no longer give) or where the chain's expires soon.
	want := map[[2]common.Address]uint8{}
	for _, v := range h.Classify(at.cfg.Rules) {
		k := [2]common.Address{common.HexToAddress(v.Buyer)}
		if v.Artist != "" {
			k[1] = common.HexToAddress(v.Artist)
		}
		want[k] = v.Category
	}
	for _, k := range n.attestedKeys() {
		if _, ok := want[k]; !ok {
			want[k] = category.Unclassified
		}
	}
	expiry := issuedAt + uint64(at.cfg.Validity/time.Second)
	var errs []error
	for k, cat := range want {
		out, err := call(ctx, n.cfg.Chain, n.cfg.Hub, hubABI.PackCategoryFor(k[0], k[1]))
		if err != nil {
			errs = append(errs, err)
			continue
		}
		cur, err := hubABI.UnpackCategoryFor(out)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fresh := cur.Expiry > issuedAt+uint64(at.cfg.Validity/time.Second)/2
		if cur.Category == cat && (fresh || cat == category.Unclassified) {
			continue
		}
		a := &attestation{kind: protocol.ReportCategory, buyer: k[0], artist: k[1], category: cat, issuedAt: issuedAt, expiry: expiry}
		if err := n.sendAttestation(ctx, a); err != nil {
			errs = append(errs, err)
		}
	}
	at.asOf = asOf
	return errors.Join(errs...)
}

// attestedKeys are the (buyer, artist) pairs this node has attested, to clear them later.
func (n *Node) attestedKeys() [][2]common.Address {
	n.mu.Lock()
	defer n.mu.Unlock()
	out := make([][2]common.Address, 0, len(n.attested))
	for k := range n.attested {
		out = append(out, k)
	}
	return out
}

// sendAttestation signs an attestation and sends it to the relay, once per digest (again
// after Resend if it has not reached the chain).
func (n *Node) sendAttestation(ctx context.Context, a *attestation) error {
	d, err := a.digest(n.cfg.ChainID.Uint64(), n.cfg.Hub)
	if err != nil {
		return err
	}
	at := n.attester
	at.mu.Lock()
	last, ok := at.sent[d]
	at.mu.Unlock()
	if ok && time.Since(last) < n.cfg.Resend {
		return nil
	}
	sig, err := n.sign(d)
	if err != nil {
		return err
	}
	kind := protocol.ReportKindCategory
	if a.kind == protocol.ReportIssuer {
		kind = protocol.ReportKindIssuer
	}
	_, err = n.cfg.Relay.Submit(ctx, protocol.OracleReport{Kind: kind, Attestation: a.json(), Signature: sig})
	switch {
	case errors.Is(err, ErrRefused):
		n.cfg.Logger.Warn("the relay refused an attestation", "kind", kind, "err", err)
	case err != nil:
		return fmt.Errorf("send a %s attestation: %w", kind, err)
	}
	at.mu.Lock()
	at.sent[d] = time.Now()
	at.mu.Unlock()
	if a.kind == protocol.ReportCategory {
		n.mu.Lock()
		n.attested[[2]common.Address{a.buyer, a.artist}] = true
		n.mu.Unlock()
	}
	return nil
}

// attestIssuers checks each pending issuer request itself: the domain must serve a
// stagepass.json naming the issuer, signed by the issuer's key.
func (n *Node) attestIssuers(ctx context.Context) error {
	at := n.attester
	reqs, err := n.cfg.Relay.IssuerRequests(ctx)
	if err != nil {
		return fmt.Errorf("read issuer requests: %w", err)
	}
	if len(reqs) == 0 {
		return nil
	}
	head, err := n.cfg.Chain.HeaderByNumber(ctx, nil)
	if err != nil {
		return err
	}
	var errs []error
	for _, r := range reqs {
		key := strings.ToLower(r.Issuer) + "/" + strings.ToLower(r.Domain) + fmt.Sprint("/", r.RequestedAt)
		at.mu.Lock()
		done := at.issuers[key]
		at.mu.Unlock()
		if done || !common.IsHexAddress(r.Issuer) || !validDomain(r.Domain) {
			continue
		}
		if r.RequestedAt > head.Time || head.Time-r.RequestedAt > 3600 {
			continue // signed with the request's time: not one from the future or an hour old
		}
		issuer := common.HexToAddress(r.Issuer)
		if err := at.checkDomain(ctx, issuer, r.Domain); err != nil {
			n.cfg.Logger.Warn("oracle refuses to verify an issuer", "issuer", issuer, "domain", r.Domain, "why", err)
			at.mu.Lock()
			at.issuers[key] = true
			at.mu.Unlock()
			continue
		}
		a := &attestation{kind: protocol.ReportIssuer, issuer: issuer, domain: strings.ToLower(r.Domain),
			issuedAt: r.RequestedAt, expiry: r.RequestedAt + uint64(at.cfg.IssuerValidity/time.Second)}
		if err := n.sendAttestation(ctx, a); err != nil {
			errs = append(errs, err)
			continue
		}
		at.mu.Lock()
		at.issuers[key] = true
		at.mu.Unlock()
	}
	return errors.Join(errs...)
}

// checkDomain reads https://domain/.well-known/stagepass.json and checks that it names
// `issuer` and carries the issuer's signature of IssuerClaim(issuer, domain).
func (at *attester) checkDomain(ctx context.Context, issuer common.Address, domain string) error {
	url := at.cfg.Scheme + "://" + domain + "/.well-known/stagepass.json"
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return err
	}
	res, err := at.cfg.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("fetch %s: %w", url, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s answered HTTP %d", url, res.StatusCode)
	}
	var f protocol.IssuerFile
	if err := json.NewDecoder(io.LimitReader(res.Body, 16<<10)).Decode(&f); err != nil {
		return fmt.Errorf("%s is not a stagepass.json: %w", url, err)
	}
	if !common.IsHexAddress(f.Address) || common.HexToAddress(f.Address) != issuer {
		return fmt.Errorf("%s names %q, not %s", url, f.Address, issuer.Hex())
	}
	if !strings.EqualFold(f.Domain, domain) {
		return fmt.Errorf("%s is for domain %q", url, f.Domain)
	}
	sig, err := hexutil.Decode(f.Signature)
	if err != nil || len(sig) != 65 {
		return fmt.Errorf("%s: the signature must be 65 bytes of 0x hex", url)
	}
	sig = append([]byte(nil), sig...)
	if sig[64] >= 27 {
		sig[64] -= 27
	}
	pub, err := crypto.SigToPub(accounts.TextHash([]byte(protocol.IssuerClaim(issuer.Hex(), domain))), sig)
	if err != nil || crypto.PubkeyToAddress(*pub) != issuer {
		return fmt.Errorf("%s: the signature is not the issuer's", url)
	}
	return nil
}
