package protocol

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/stagepass/stagepass/wasm/ethcrypto"
)

// The door pass: a QR payload the holder's phone makes with no network every
// 15 seconds, and a scanner verifies offline.
//
// It is the holder's EIP-712 signature over
//
//	domain  {name: "Stagepass Pass", version: "1", chainId, verifyingContract: event}
//	message Pass(address holder, uint256 tokenId, uint64 window)
//
// EIP-712 gives domain separation for free: a pass can never be mistaken for
// a forward request, a permit or a pass of another event or chain, and a
// hardware or other wallet could show it readably. The holder address is in
// the payload (20 bytes) so a scanner detects any altered byte as a forgery
// without needing ownership data; ownership itself is checked by the caller
// against the freshest owner data.
const (
	PassName    = "Stagepass Pass"
	PassVersion = "1"
	PassType    = "Pass(address holder,uint256 tokenId,uint64 window)"

	// PassWindow is how long one window lasts; the QR rotates this often.
	PassWindow = 15 * time.Second

	passFormatV1 = 0x01
)

// Rejection reasons a scanner shows; branch with errors.Is.
var (
	ErrPassMalformed   = errors.New("pass: malformed")
	ErrPassExpired     = errors.New("pass: expired")
	ErrPassFuture      = errors.New("pass: from a future window (check the clocks)")
	ErrPassForged      = errors.New("pass: signature does not match the holder")
	ErrPassWrongChain  = errors.New("pass: wrong chain")
	ErrPassWrongEvent  = errors.New("pass: wrong event")
	ErrPassNotOwner    = errors.New("pass: holder does not own the ticket")
	ErrPassInvalidArgs = errors.New("pass: invalid arguments")
)

// Pass is the signed content of a door pass.
type Pass struct {
	ChainID uint64
	Event   ethcrypto.Address // the event's ticket contract
	Holder  ethcrypto.Address
	TokenID *big.Int
	Window  uint64 // unix time / 15 s
}

// WindowAt is the pass window containing t.
func WindowAt(t time.Time) uint64 {
	return uint64(t.Unix()) / uint64(PassWindow/time.Second)
}

// WindowStart is when window w begins.
func WindowStart(w uint64) time.Time {
	return time.Unix(int64(w*uint64(PassWindow/time.Second)), 0)
}

var (
	passTypeHash   = ethcrypto.Keccak256Hash([]byte(PassType))
	domainTypeHash = ethcrypto.Keccak256Hash([]byte("EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)"))
	passNameHash   = ethcrypto.Keccak256Hash([]byte(PassName))
	passVerHash    = ethcrypto.Keccak256Hash([]byte(PassVersion))
)

// Digest is the EIP-712 hash the holder signs. It is encoded directly (not
// through the generic eip712 engine) because a scanner runs it for every
// guest; the tests check it equals the generic engine and go-ethereum.
func (p *Pass) Digest() ([32]byte, error) {
	if p.TokenID == nil || p.TokenID.Sign() < 0 || p.TokenID.BitLen() > 256 {
		return [32]byte{}, fmt.Errorf("%w: token id out of uint256 range", ErrPassInvalidArgs)
	}
	var buf [5 * 32]byte
	copy(buf[0:], domainTypeHash[:])
	copy(buf[32:], passNameHash[:])
	copy(buf[64:], passVerHash[:])
	binary.BigEndian.PutUint64(buf[96+24:], p.ChainID)
	copy(buf[128+12:], p.Event[:])
	domain := ethcrypto.Keccak256Hash(buf[:])

	var msg [4 * 32]byte
	copy(msg[0:], passTypeHash[:])
	copy(msg[32+12:], p.Holder[:])
	p.TokenID.FillBytes(msg[64:96])
	binary.BigEndian.PutUint64(msg[96+24:], p.Window)
	structHash := ethcrypto.Keccak256Hash(msg[:])
	return ethcrypto.Keccak256Hash([]byte{0x19, 0x01}, domain[:], structHash[:]), nil
}

// Signer is what MakePass needs from a key (ethcrypto.PrivateKey fits).
type Signer interface {
	Address() ethcrypto.Address
	Sign(digest []byte) ([]byte, error)
}

// MakePass signs a pass for the window containing now and returns the QR
// payload (base45 text). It needs no network.
func MakePass(s Signer, chainID uint64, event ethcrypto.Address, tokenID *big.Int, now time.Time) (string, Pass, error) {
	p := Pass{ChainID: chainID, Event: event, Holder: s.Address(), TokenID: tokenID, Window: WindowAt(now)}
	if event.IsZero() {
		return "", p, fmt.Errorf("%w: event contract is zero", ErrPassInvalidArgs)
	}
	digest, err := p.Digest()
	if err != nil {
		return "", p, err
	}
	sig, err := s.Sign(digest[:])
	if err != nil {
		return "", p, fmt.Errorf("pass: sign: %w", err)
	}
	raw, err := EncodePass(&p, sig)
	if err != nil {
		return "", p, err
	}
	return Base45Encode(raw), p, nil
}

// EncodePass lays out the binary payload:
//
//	0x01 | uvarint chainId | event (20) | holder (20) | len(tokenId) (1) |
//	tokenId (minimal big-endian) | uvarint window | EIP-2098 signature (64)
//
// about 112 bytes (168 base45 characters) for a typical pass.
func EncodePass(p *Pass, sig []byte) ([]byte, error) {
	compact, err := ethcrypto.CompactSignature(sig)
	if err != nil {
		return nil, fmt.Errorf("pass: %w", err)
	}
	if p.TokenID == nil || p.TokenID.Sign() < 0 || p.TokenID.BitLen() > 256 {
		return nil, fmt.Errorf("%w: token id out of uint256 range", ErrPassInvalidArgs)
	}
	tid := p.TokenID.Bytes()
	b := make([]byte, 0, 1+10+40+1+len(tid)+10+64)
	b = append(b, passFormatV1)
	b = binary.AppendUvarint(b, p.ChainID)
	b = append(b, p.Event[:]...)
	b = append(b, p.Holder[:]...)
	b = append(b, byte(len(tid)))
	b = append(b, tid...)
	b = binary.AppendUvarint(b, p.Window)
	return append(b, compact...), nil
}

// DecodePass parses the binary payload. Encodings are strict (minimal
// varints and token id, no trailing bytes) so each pass has exactly one
// byte form, which keeps replay caches keyed on payload bytes honest.
func DecodePass(b []byte) (Pass, []byte, error) {
	var p Pass
	bad := func(what string) (Pass, []byte, error) {
		return Pass{}, nil, fmt.Errorf("%w: %s", ErrPassMalformed, what)
	}
	if len(b) < 1 || b[0] != passFormatV1 {
		return bad("unknown format version")
	}
	b = b[1:]
	var ok bool
	if p.ChainID, b, ok = uvarint(b); !ok {
		return bad("chain id")
	}
	if len(b) < 41 {
		return bad("truncated addresses")
	}
	copy(p.Event[:], b[:20])
	copy(p.Holder[:], b[20:40])
	n := int(b[40])
	b = b[41:]
	if n > 32 || len(b) < n || (n > 0 && b[0] == 0) {
		return bad("token id")
	}
	p.TokenID = new(big.Int).SetBytes(b[:n])
	b = b[n:]
	if p.Window, b, ok = uvarint(b); !ok {
		return bad("window")
	}
	if len(b) != 64 {
		return bad(fmt.Sprintf("signature is %d bytes, want 64", len(b)))
	}
	sig, err := ethcrypto.ExpandSignature(b)
	if err != nil {
		return bad("signature")
	}
	return p, sig, nil
}

func uvarint(b []byte) (uint64, []byte, bool) {
	v, n := binary.Uvarint(b)
	if n <= 0 || n != len(binary.AppendUvarint(nil, v)) {
		return 0, nil, false
	}
	return v, b[n:], true
}

// Verifier checks passes at one door: one chain, the given event contracts.
type Verifier struct {
	ChainID uint64
	Events  []ethcrypto.Address
	// OwnerOf, when set, returns the current owner of tokenID in event per
	// the freshest data the scanner has (relay online, or the snapshot taken
	// after resale closed). A pass whose holder is not the owner is
	// rejected with ErrPassNotOwner.
	OwnerOf func(event ethcrypto.Address, tokenID *big.Int) (ethcrypto.Address, error)
}

// Verify decodes a QR payload and returns the pass with its verified holder.
// Only the current and the previous window are accepted, so a screenshot is
// useless after at most 30 seconds.
func (v *Verifier) Verify(payload string, now time.Time) (Pass, error) {
	raw, err := Base45Decode(payload)
	if err != nil {
		return Pass{}, fmt.Errorf("%w: %v", ErrPassMalformed, err)
	}
	p, sig, err := DecodePass(raw)
	if err != nil {
		return Pass{}, err
	}
	if p.ChainID != v.ChainID {
		return p, fmt.Errorf("%w: pass is for chain %d, door is on %d", ErrPassWrongChain, p.ChainID, v.ChainID)
	}
	known := false
	for _, e := range v.Events {
		known = known || e == p.Event
	}
	if !known {
		return p, fmt.Errorf("%w: %s", ErrPassWrongEvent, p.Event)
	}
	cur := WindowAt(now)
	switch {
	case p.Window > cur:
		return p, fmt.Errorf("%w: window %d, now %d", ErrPassFuture, p.Window, cur)
	case p.Window+1 < cur:
		return p, fmt.Errorf("%w: window %d is %s old", ErrPassExpired, p.Window, now.Sub(WindowStart(p.Window)).Truncate(time.Second))
	}
	digest, err := p.Digest()
	if err != nil {
		return p, fmt.Errorf("%w: %v", ErrPassMalformed, err)
	}
	signer, err := ethcrypto.Recover(digest[:], sig)
	if err != nil {
		return p, fmt.Errorf("%w: %v", ErrPassForged, err)
	}
	if signer != p.Holder {
		return p, fmt.Errorf("%w: signed by %s, claims %s", ErrPassForged, signer, p.Holder)
	}
	if v.OwnerOf != nil {
		owner, err := v.OwnerOf(p.Event, p.TokenID)
		if err != nil {
			return p, fmt.Errorf("pass: owner lookup: %w", err)
		}
		if owner != p.Holder {
			return p, fmt.Errorf("%w: owner is %s", ErrPassNotOwner, owner)
		}
	}
	return p, nil
}
