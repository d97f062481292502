package contracts_test

// Buyer categories and issuer identity attested by the oracle quorum (claims 5, 17-19,
// issue 8): OracleHub.attestCategory / attestIssuer / registerEvent, read by EventTicket
// (through ICategoryRegistry.categoryOf) for its quotas and presale windows.

import (
	"math/big"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/common"

	"github.com/stagepass/stagepass/contracts/bindings/events"
	"github.com/stagepass/stagepass/contracts/devchain"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/protocol"
)

// attest submits a category attestation signed by `signers` (the quorum by default).
func attest(e *env, buyer, artist common.Address, cat uint8, issuedAt, expiry uint64, signers ...*devchain.Account) error {
	if signers == nil {
		signers = e.c.Quorum()
	}
	d := devchain.CategoryDigest(e.c.OracleDomain(), buyer, artist, cat, issuedAt, expiry)
	_, err := e.c.Transact(e.c.Deployer, e.c.Hub, hub.PackAttestCategory(buyer, artist, cat, issuedAt, expiry, devchain.SignDigest(d, signers...)), nil)
	return err
}

func hubView[T any](e *env, data []byte, unpack func([]byte) (T, error)) T {
	e.t.Helper()
	out, err := e.c.Call(e.c.Hub, data)
	if err != nil {
		e.t.Fatal(err)
	}
	v, err := unpack(out)
	if err != nil {
		e.t.Fatal(err)
	}
	return v
}

// TestCategoryAttestations: only k distinct members of the current set, for this chain and
// hub, with an expiry in the future, and newer than what is recorded, can set a category;
// the wallet's own EIP-712 code (what oracle nodes sign with) agrees with go-ethereum's.
func TestCategoryAttestations(t *testing.T) {
	e := newEnv(t, nil)
	c := e.c
	buyer, artist := e.fans[0].Address, e.artist.Address
	now := c.Now()
	exp := now + 30*86400

	d := devchain.CategoryDigest(c.OracleDomain(), buyer, artist, devchain.Superfan, now, exp)
	mine, err := protocol.CategoryTypedData(protocol.HubDomain(c.ChainID.Uint64(), ethcrypto.Address(c.Hub)),
		ethcrypto.Address(buyer), ethcrypto.Address(artist), devchain.Superfan, now, exp).Digest()
	if err != nil || mine != d {
		t.Fatalf("the nodes' category digest %x differs from go-ethereum's %x (%v)", mine, d, err)
	}
	di := devchain.IssuerDigest(c.OracleDomain(), e.issuer.Address, "tickets.example.org", now, exp)
	if mine, err := protocol.IssuerTypedData(protocol.HubDomain(c.ChainID.Uint64(), ethcrypto.Address(c.Hub)),
		ethcrypto.Address(e.issuer.Address), "tickets.example.org", now, exp).Digest(); err != nil || mine != di {
		t.Fatalf("the nodes' issuer digest %x differs from go-ethereum's %x (%v)", mine, di, err)
	}

	// Fewer than k, a non-member, a duplicate, another chain's domain, expired, future.
	wantRevert(t, attest(e, buyer, artist, devchain.Superfan, now, exp, c.Oracles[0]), "NotEnoughSignatures")
	stranger := devchain.NewAccount("not an oracle", 0)
	signers := []*devchain.Account{c.Oracles[0], stranger}
	devchain.SortAccounts(signers)
	wantRevert(t, attest(e, buyer, artist, devchain.Superfan, now, exp, signers...), "NotOracle")
	wantRevert(t, attest(e, buyer, artist, devchain.Superfan, now, exp, c.Oracles[0], c.Oracles[0]), "DuplicateSigner")
	other := devchain.HubDomain(big.NewInt(10), c.Hub)
	od := devchain.CategoryDigest(other, buyer, artist, devchain.Superfan, now, exp)
	_, err = c.Transact(c.Deployer, c.Hub, hub.PackAttestCategory(buyer, artist, devchain.Superfan, now, exp, devchain.SignDigest(od, c.Quorum()...)), nil)
	wantRevert(t, err, "NotOracle") // recovers to some other address
	wantRevert(t, attest(e, buyer, artist, devchain.Superfan, now-100, now-1), "AttestationExpired")
	wantRevert(t, attest(e, buyer, artist, devchain.Superfan, now+3600, exp), "AttestationExpired")
	wantRevert(t, attest(e, buyer, artist, 5, now, exp), "InvalidCategory")

	// k members: recorded, readable; the same or an older one again is stale.
	if err := attest(e, buyer, artist, devchain.Superfan, now, exp); err != nil {
		t.Fatalf("attest: %s %v", errName(err), err)
	}
	got := hubView(e, hub.PackCategoryFor(buyer, artist), hub.UnpackCategoryFor)
	if got.Category != devchain.Superfan || got.Expiry != exp {
		t.Fatalf("categoryFor %+v", got)
	}
	wantRevert(t, attest(e, buyer, artist, devchain.Fan, now, exp), "StaleAttestation")
	wantRevert(t, attest(e, buyer, artist, devchain.Fan, now-10, exp), "StaleAttestation")
	// It expires.
	c.Warp(31 * 24 * time.Hour)
	if got := hubView(e, hub.PackCategoryFor(buyer, artist), hub.UnpackCategoryFor); got.Category != devchain.Unclassified {
		t.Fatalf("expired attestation still read as %d", got.Category)
	}

	// Issuer domains.
	now = c.Now()
	sigs := devchain.SignDigest(devchain.IssuerDigest(c.OracleDomain(), e.issuer.Address, "tickets.example.org", now, now+86400), c.Quorum()...)
	c.MustTransact(c.Deployer, c.Hub, hub.PackAttestIssuer(e.issuer.Address, "tickets.example.org", now, now+86400, sigs), nil)
	dom := hubView(e, hub.PackIssuerDomain(e.issuer.Address), hub.UnpackIssuerDomain)
	if dom.Domain != "tickets.example.org" {
		t.Fatalf("issuer domain %+v", dom)
	}
	// A signature over one domain does not verify another.
	_, err = c.Transact(c.Deployer, c.Hub, hub.PackAttestIssuer(e.issuer.Address, "evil.example", now+1, now+86400, sigs), nil)
	wantRevert(t, err, "NotOracle")
}

// TestCategoryPresaleAndQuotas: an event that reads categories from the hub. Before the
// superfan presale ends only superfans buy; then fans too; then everyone. Bots have a quota
// of 0 and scalpers of one ticket; a bot or scalper attestation applies for every artist;
// fan categories only for the event's own artist. The card path checks the presale at
// request time.
func TestCategoryPresaleAndQuotas(t *testing.T) {
	var superEnd, fanEnd uint64
	e := newEnv(t, func(e *env, cfg *events.EventConfig) {
		now := e.c.Now()
		superEnd, fanEnd = now+3600, now+7200
		cfg.CategoryRegistry = e.c.Hub
		cfg.Rules.PresaleEndsAt = new(big.Int).SetUint64(fanEnd)
		cfg.Rules.SuperfanPresaleEndsAt = new(big.Int).SetUint64(superEnd)
		cfg.Rules.CategoryQuotaBps = [5]uint16{10000, 10000, 10000, 10, 0} // scalpers 0.1% of 1000 = 1
	})
	c := e.c
	super, fan, otherFan, scalper, bot, nobody := e.fans[0], e.fans[1], e.fans[2], e.fans[3], e.fans[4], e.fans[5]
	now, exp := c.Now(), c.Now()+90*86400
	otherArtist := devchain.NewAccount("another artist", 0).Address

	// Before registerEvent the hub does not know the event's artist: fans read as unclassified.
	for _, a := range []struct {
		who    *devchain.Account
		artist common.Address
		cat    uint8
	}{
		{super, e.artist.Address, devchain.Superfan}, {fan, e.artist.Address, devchain.Fan},
		{otherFan, otherArtist, devchain.Superfan}, {scalper, common.Address{}, devchain.Scalper}, {bot, common.Address{}, devchain.Bot},
	} {
		if err := attest(e, a.who.Address, a.artist, a.cat, now, exp); err != nil {
			t.Fatalf("attest: %s %v", errName(err), err)
		}
	}
	wantRevert(t, e.tx(super, devchain.Ticket.PackBuy(big.NewInt(0), big.NewInt(1), devchain.USDC(100)), nil), "PresaleOnly")
	_, err := c.Transact(e.fans[6], c.Hub, hub.PackRegisterEvent(e.fans[6].Address), nil)
	wantRevert(t, err, "NotGenuineEvent")
	c.MustTransact(e.fans[6], c.Hub, hub.PackRegisterEvent(e.ev), nil)
	if a := hubView(e, hub.PackEventArtist(e.ev), hub.UnpackEventArtist); a != e.artist.Address {
		t.Fatalf("event artist %s, want the artist split %s", a.Hex(), e.artist.Address.Hex())
	}

	buy := func(f *devchain.Account) error {
		return e.tx(f, devchain.Ticket.PackBuy(big.NewInt(0), big.NewInt(1), devchain.USDC(100)), nil)
	}
	// Superfan presale.
	if err := buy(super); err != nil {
		t.Fatalf("superfan in the superfan presale: %s %v", errName(err), err)
	}
	wantRevert(t, buy(fan), "PresaleOnly")
	wantRevert(t, buy(otherFan), "PresaleOnly") // a superfan of another artist is nobody here
	wantRevert(t, buy(nobody), "PresaleOnly")
	_, _, err = c.RequestPurchase(nobody, e.ev, devchain.PaymentID("pi_presale_nobody"), 0, 1)
	wantRevert(t, err, "PresaleOnly")
	// Fan presale.
	c.Warp(time.Hour)
	if err := buy(fan); err != nil {
		t.Fatalf("fan in the fan presale: %s %v", errName(err), err)
	}
	wantRevert(t, buy(nobody), "PresaleOnly")
	// Public sale: quotas still hold.
	c.Warp(time.Hour)
	for _, f := range []*devchain.Account{nobody, otherFan, scalper} {
		if err := buy(f); err != nil {
			t.Fatalf("public sale: %s %v", errName(err), err)
		}
	}
	wantRevert(t, buy(scalper), "CategoryQuotaReached")
	wantRevert(t, buy(bot), "CategoryQuotaReached")
	for cat, want := range map[uint8]int64{devchain.Unclassified: 2, devchain.Fan: 1, devchain.Superfan: 1, devchain.Scalper: 1, devchain.Bot: 0} {
		got := new(big.Int).SetBytes(e.view(devchain.Ticket.PackCategoryCount(cat)))
		if got.Int64() != want {
			t.Fatalf("category %d holds %s tickets, want %d", cat, got, want)
		}
	}
	// Clearing: the scalper is re-attested unclassified and may buy again.
	if err := attest(e, scalper.Address, common.Address{}, devchain.Unclassified, c.Now(), c.Now()+86400); err != nil {
		t.Fatal(errName(err), err)
	}
	if err := buy(scalper); err != nil {
		t.Fatalf("cleared scalper: %s %v", errName(err), err)
	}
}
