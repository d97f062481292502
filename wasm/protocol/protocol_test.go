package protocol

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/ethereum/go-ethereum/signer/core/apitypes"

	"github.com/stagepass/stagepass/wasm/eip712"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/keys"
)

func devKey(t testing.TB, i uint32) *ethcrypto.PrivateKey {
	t.Helper()
	k, err := keys.DevAccount(i)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var (
	event     = ethcrypto.MustParseAddress("0x5FbDB2315678afecb367f032d93F642f64180aa3")
	otherEvt  = ethcrypto.MustParseAddress("0xe7f1725E7734CE288F8367e1Bb143E90bb3F0512")
	forwarder = ethcrypto.MustParseAddress("0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0")
)

func TestKnownAnswerBase45(t *testing.T) {
	// RFC 9285 section 4.
	for _, v := range []struct{ in, out string }{
		{"AB", "BB8"}, {"Hello!!", "%69 VD92EX0"}, {"base-45", "UJCLQE7W581"}, {"ietf!", "QED8WEX0"}, {"", ""},
	} {
		if got := Base45Encode([]byte(v.in)); got != v.out {
			t.Errorf("encode %q = %q, want %q", v.in, got, v.out)
		}
		back, err := Base45Decode(v.out)
		if err != nil || string(back) != v.in {
			t.Errorf("decode %q = %q, %v", v.out, back, err)
		}
	}
	for _, bad := range []string{"GGW", "A", "ab", "AB\n"} {
		if _, err := Base45Decode(bad); err == nil {
			t.Errorf("decode %q: no error", bad)
		}
	}
}

func gethDigest(t *testing.T, td *eip712.TypedData) []byte {
	t.Helper()
	// Round-trip through JSON so go-ethereum sees what a dapp would send.
	b, err := json.Marshal(td)
	if err != nil {
		t.Fatal(err)
	}
	var gtd apitypes.TypedData
	if err := json.Unmarshal(b, &gtd); err != nil {
		t.Fatal(err)
	}
	h, _, err := apitypes.TypedDataAndHash(gtd)
	if err != nil {
		t.Fatalf("go-ethereum: %v (%s)", err, b)
	}
	return h
}

func sampleRequest(t *testing.T) *ForwardRequest {
	return &ForwardRequest{
		From: devKey(t, 0).Address(), To: event,
		Value: big.NewInt(0), Gas: big.NewInt(150_000), Nonce: big.NewInt(7),
		Deadline: 1_900_000_000, Data: []byte{0xa9, 0x05, 0x9c, 0xbb, 1, 2, 3},
	}
}

func TestForwardRequestMatchesGoEthereum(t *testing.T) {
	r := sampleRequest(t)
	d := ForwarderDomain(84532, forwarder)
	td := r.TypedData(d)
	if got := td.EncodeType("ForwardRequest"); got != ForwardRequestType {
		t.Fatalf("EncodeType = %s", got)
	}
	ours, err := r.Digest(d)
	if err != nil {
		t.Fatal(err)
	}
	if theirs := gethDigest(t, td); hex.EncodeToString(ours[:]) != hex.EncodeToString(theirs) {
		t.Fatalf("digest %x, go-ethereum %x", ours, theirs)
	}
	// Changing any signed field must change the digest.
	r2 := *r
	r2.Nonce = big.NewInt(8)
	other, _ := r2.Digest(d)
	if other == ours {
		t.Fatal("nonce not covered by digest")
	}
	d2 := ForwarderDomain(8453, forwarder)
	if other, _ := r.Digest(d2); other == ours {
		t.Fatal("chain id not covered by digest")
	}
}

func TestVerifyForwardRequest(t *testing.T) {
	k := devKey(t, 0)
	r := sampleRequest(t)
	d := ForwarderDomain(84532, forwarder)
	digest, _ := r.Digest(d)
	sig, _ := k.Sign(digest[:])
	if err := VerifyForwardRequest(r, d, sig); err != nil {
		t.Fatal(err)
	}
	other := *r
	other.From = devKey(t, 1).Address()
	tooLate := *r
	tooLate.Deadline = MaxUint48 + 1
	tests := []struct {
		name string
		r    *ForwardRequest
		d    Domain
		want error
	}{
		{"other signer", &other, d, ErrBadSignature},
		{"other domain", r, ForwarderDomain(1, forwarder), ErrBadSignature},
		{"deadline beyond uint48", &tooLate, d, ErrInvalidRequest},
		{"nil gas", &ForwardRequest{From: r.From, To: r.To, Value: r.Value, Nonce: r.Nonce}, d, ErrInvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := VerifyForwardRequest(tt.r, tt.d, sig); !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
}

func (p *Pass) typedData() *eip712.TypedData {
	return &eip712.TypedData{
		Types: eip712.Types{
			eip712.DomainType: domainFields,
			"Pass":            {{Name: "holder", Type: "address"}, {Name: "tokenId", Type: "uint256"}, {Name: "window", Type: "uint64"}},
		},
		PrimaryType: "Pass",
		Domain:      Domain{PassName, PassVersion, p.ChainID, p.Event}.values(),
		Message:     map[string]any{"holder": p.Holder, "tokenId": p.TokenID, "window": p.Window},
	}
}

// The hand-rolled pass digest must equal the generic engine and go-ethereum.
func TestPassDigestMatchesEIP712(t *testing.T) {
	for _, tid := range []*big.Int{big.NewInt(0), big.NewInt(42), new(big.Int).Sub(new(big.Int).Lsh(big.NewInt(1), 256), big.NewInt(1))} {
		p := Pass{ChainID: 84532, Event: event, Holder: devKey(t, 0).Address(), TokenID: tid, Window: 118_000_000}
		ours, err := p.Digest()
		if err != nil {
			t.Fatal(err)
		}
		td := p.typedData()
		if got := td.EncodeType("Pass"); got != PassType {
			t.Fatalf("EncodeType = %s", got)
		}
		generic, err := td.Digest()
		if err != nil {
			t.Fatal(err)
		}
		if generic != ours {
			t.Fatalf("generic %x, ours %x", generic, ours)
		}
		if theirs := gethDigest(t, td); hex.EncodeToString(ours[:]) != hex.EncodeToString(theirs) {
			t.Fatalf("go-ethereum %x, ours %x", theirs, ours)
		}
	}
}

func TestPassRoundTrip(t *testing.T) {
	k := devKey(t, 0)
	now := time.Unix(1_770_000_007, 0)
	payload, p, err := MakePass(k, 84532, event, big.NewInt(1234), now)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("payload %d chars: %s", len(payload), payload)
	if len(payload) > 180 {
		t.Errorf("payload is %d characters; keep the QR small", len(payload))
	}
	v := Verifier{ChainID: 84532, Events: []ethcrypto.Address{otherEvt, event}}
	for _, at := range []time.Time{now, now.Add(PassWindow)} { // current and previous window
		got, err := v.Verify(payload, at)
		if err != nil {
			t.Fatalf("verify at %v: %v", at, err)
		}
		if got.Holder != k.Address() || got.TokenID.Cmp(big.NewInt(1234)) != 0 || got.Window != p.Window || got.Event != event {
			t.Fatalf("verified %+v, want %+v", got, p)
		}
	}
}

func TestPassRejections(t *testing.T) {
	holder := devKey(t, 0)
	thief := devKey(t, 1)
	now := time.Unix(1_770_000_007, 0)
	good, _, err := MakePass(holder, 84532, event, big.NewInt(1234), now)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := Base45Decode(good)
	mutate := func(f func(b []byte) []byte) string {
		b := append([]byte(nil), raw...)
		return Base45Encode(f(b))
	}
	// The thief signs a pass but claims to be the holder.
	thiefPass := func() string {
		p := Pass{ChainID: 84532, Event: event, Holder: holder.Address(), TokenID: big.NewInt(1234), Window: WindowAt(now)}
		d, _ := p.Digest()
		sig, _ := thief.Sign(d[:])
		b, _ := EncodePass(&p, sig)
		return Base45Encode(b)
	}()
	otherChain, _, _ := MakePass(holder, 1, event, big.NewInt(1234), now)
	otherEvent, _, _ := MakePass(holder, 84532, ethcrypto.MustParseAddress("0x0000000000000000000000000000000000000001"), big.NewInt(1234), now)
	thiefOwnPass, _, _ := MakePass(thief, 84532, event, big.NewInt(1234), now)

	ownerIsHolder := func(ethcrypto.Address, *big.Int) (ethcrypto.Address, error) { return holder.Address(), nil }
	tests := []struct {
		name    string
		payload string
		at      time.Time
		owners  bool
		want    error
	}{
		{"expired two windows later", good, now.Add(2 * PassWindow), false, ErrPassExpired},
		{"expired an hour later", good, now.Add(time.Hour), false, ErrPassExpired},
		{"future window", good, now.Add(-PassWindow), false, ErrPassFuture},
		{"not base45", "hello world", now, false, ErrPassMalformed},
		{"empty", "", now, false, ErrPassMalformed},
		{"truncated", mutate(func(b []byte) []byte { return b[:len(b)-1] }), now, false, ErrPassMalformed},
		{"trailing byte", mutate(func(b []byte) []byte { return append(b, 0) }), now, false, ErrPassMalformed},
		{"unknown version", mutate(func(b []byte) []byte { b[0] = 2; return b }), now, false, ErrPassMalformed},
		{"token id with leading zero", mutate(func(b []byte) []byte {
			i := 1 + 3 + 40 // version, 3-byte varint chain id 84532, addresses
			out := append([]byte{}, b[:i]...)
			out = append(out, b[i]+1, 0)
			return append(out, b[i+1:]...)
		}), now, false, ErrPassMalformed},
		{"token id changed", mutate(func(b []byte) []byte { b[len(b)-64-5] ^= 1; return b }), now, false, ErrPassForged},
		{"signature flipped", mutate(func(b []byte) []byte { b[len(b)-1] ^= 1; return b }), now, false, ErrPassForged},
		{"signed by someone else", thiefPass, now, false, ErrPassForged},
		{"wrong chain", otherChain, now, false, ErrPassWrongChain},
		{"wrong event", otherEvent, now, false, ErrPassWrongEvent},
		{"valid signature, not the owner", thiefOwnPass, now, true, ErrPassNotOwner},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := Verifier{ChainID: 84532, Events: []ethcrypto.Address{event}}
			if tt.owners {
				v.OwnerOf = ownerIsHolder
			}
			_, err := v.Verify(tt.payload, tt.at)
			if !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
		})
	}
	// The good pass still passes with the owner check on.
	v := Verifier{ChainID: 84532, Events: []ethcrypto.Address{event}, OwnerOf: ownerIsHolder}
	if _, err := v.Verify(good, now); err != nil {
		t.Fatal(err)
	}
}

func TestMakePassRejects(t *testing.T) {
	k := devKey(t, 0)
	for name, tid := range map[string]*big.Int{"nil": nil, "negative": big.NewInt(-1), "2^256": new(big.Int).Lsh(big.NewInt(1), 256)} {
		if _, _, err := MakePass(k, 1, event, tid, time.Now()); !errors.Is(err, ErrPassInvalidArgs) {
			t.Errorf("token id %s: err = %v", name, err)
		}
	}
	if _, _, err := MakePass(k, 1, ethcrypto.Address{}, big.NewInt(1), time.Now()); !errors.Is(err, ErrPassInvalidArgs) {
		t.Errorf("zero event: err = %v", err)
	}
	if !strings.Contains(ErrPassFuture.Error(), "clock") {
		t.Error("future-window error should hint at clocks")
	}
}

func BenchmarkMakePass(b *testing.B) {
	k := devKey(b, 0)
	now := time.Now()
	for i := 0; i < b.N; i++ {
		if _, _, err := MakePass(k, 84532, event, big.NewInt(int64(i)), now); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkVerifyPass(b *testing.B) {
	k := devKey(b, 0)
	now := time.Now()
	payload, _, _ := MakePass(k, 84532, event, big.NewInt(1234), now)
	v := Verifier{ChainID: 84532, Events: []ethcrypto.Address{event}}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		if _, err := v.Verify(payload, now); err != nil {
			b.Fatal(err)
		}
	}
}

func TestForwardRequestJSONRoundTrip(t *testing.T) {
	r := &ForwardRequest{
		From: ethcrypto.MustParseAddress("0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"), To: ethcrypto.MustParseAddress("0x70997970C51812dc3A010C7d01b50e0d17dc79C8"),
		Value: big.NewInt(0), Gas: big.NewInt(300000), Nonce: big.NewInt(7), Deadline: 1800000000, Data: []byte{0xde, 0xad},
	}
	back, err := r.JSON().Parse()
	if err != nil {
		t.Fatal(err)
	}
	if back.From != r.From || back.To != r.To || back.Gas.Cmp(r.Gas) != 0 || back.Nonce.Cmp(r.Nonce) != 0 || back.Deadline != r.Deadline || string(back.Data) != string(r.Data) {
		t.Fatalf("round trip: %+v", back)
	}
	for _, tc := range []struct {
		edit func(*ForwardRequestJSON)
		want string
	}{
		{func(j *ForwardRequestJSON) { j.From = "0x12" }, "from"},
		{func(j *ForwardRequestJSON) { j.Gas = "lots" }, "gas must be a decimal integer"},
		{func(j *ForwardRequestJSON) { j.Data = "dead" }, "0x-prefixed"},
		{func(j *ForwardRequestJSON) { j.Data = "0xzz" }, "data"},
		{func(j *ForwardRequestJSON) { j.Nonce = "-1" }, "nonce"},
	} {
		j := r.JSON()
		tc.edit(&j)
		if _, err := j.Parse(); err == nil || !errors.Is(err, ErrInvalidRequest) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: err %v, want one about %q", j, err, tc.want)
		}
	}
}
