package signing

import (
	"encoding/hex"
	"errors"
	"math/big"
	"strings"
	"testing"

	"github.com/ethereum/go-ethereum/accounts"
	gethcommon "github.com/ethereum/go-ethereum/common"
	"github.com/ethereum/go-ethereum/core/types"
	gethcrypto "github.com/ethereum/go-ethereum/crypto"

	"github.com/stagepass/stagepass/wasm/eip712"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/keys"
	"github.com/stagepass/stagepass/wasm/protocol"
)

func devKey(t testing.TB, i uint32) *ethcrypto.PrivateKey {
	t.Helper()
	k, err := keys.DevAccount(i)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func unhex(t testing.TB, s string) []byte {
	b, err := hex.DecodeString(strings.TrimPrefix(s, "0x"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func recoverSig(t *testing.T, digest []byte, sigHex string) gethcommon.Address {
	t.Helper()
	sig := unhex(t, sigHex)
	if sig[64] != 27 && sig[64] != 28 {
		t.Fatalf("v = %d, want 27/28", sig[64])
	}
	sig[64] -= 27
	pub, err := gethcrypto.SigToPub(digest, sig)
	if err != nil {
		t.Fatal(err)
	}
	return gethcrypto.PubkeyToAddress(*pub)
}

func TestPersonalMessageMatchesGoEthereum(t *testing.T) {
	k := devKey(t, 0)
	for _, msg := range []string{"Hello Stagepass", "", "line1\nline2", "\x00\x01binary"} {
		p := PersonalMessage(k.Address(), []byte(msg))
		if want := accounts.TextHash([]byte(msg)); hex.EncodeToString(p.Digest[:]) != hex.EncodeToString(want) {
			t.Fatalf("digest %x, go-ethereum %x", p.Digest, want)
		}
		res, err := p.Sign(k)
		if err != nil {
			t.Fatal(err)
		}
		if got := recoverSig(t, p.Digest[:], res.Signature); ethcrypto.Address(got) != k.Address() {
			t.Fatalf("recovered %s", got.Hex())
		}
	}
	bin := PersonalMessage(k.Address(), make([]byte, 32))
	if len(bin.Summary.Warnings) == 0 || bin.Summary.Lines[0].Label != "Message (hex)" {
		t.Fatalf("32 binary bytes not flagged: %+v", bin.Summary)
	}
}

func TestForwardSignatureVerifies(t *testing.T) {
	k := devKey(t, 0)
	fwd := ethcrypto.MustParseAddress("0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0")
	ticket := ethcrypto.MustParseAddress("0x5FbDB2315678afecb367f032d93F642f64180aa3")
	to := devKey(t, 1).Address()
	data := append(ethcrypto.Keccak256([]byte("safeTransferFrom(address,address,uint256)"))[:4], make([]byte, 96)...)
	copy(data[4+12:], k.Address().Bytes())
	copy(data[36+12:], to.Bytes())
	data[4+95] = 42
	req := &protocol.ForwardRequest{From: k.Address(), To: ticket, Value: big.NewInt(0), Gas: big.NewInt(200000), Nonce: big.NewInt(3), Deadline: 1_900_000_000, Data: data}
	d := protocol.ForwarderDomain(84532, fwd)
	p, err := Forward(k.Address(), req, d)
	if err != nil {
		t.Fatal(err)
	}
	text := summaryText(p.Summary)
	for _, want := range []string{"Transfer ticket", to.Hex(), "42", "Base Sepolia", "2030-03-17"} {
		if !strings.Contains(text, want) {
			t.Errorf("summary lacks %q:\n%s", want, text)
		}
	}
	res, err := p.Sign(k)
	if err != nil {
		t.Fatal(err)
	}
	if err := protocol.VerifyForwardRequest(req, d, unhex(t, res.Signature)); err != nil {
		t.Fatal(err)
	}
	// The same request through signTypedData gives the same digest.
	tp, err := TypedData(k.Address(), req.TypedData(d))
	if err != nil {
		t.Fatal(err)
	}
	if tp.Digest != p.Digest || !strings.Contains(summaryText(tp.Summary), "Transfer ticket") {
		t.Fatalf("typed-data path differs: %x vs %x\n%s", tp.Digest, p.Digest, summaryText(tp.Summary))
	}
	if _, err := Forward(to, req, d); !errors.Is(err, ErrWrongAccount) {
		t.Fatalf("other account: %v", err)
	}
	if _, err := TypedData(to, req.TypedData(d)); !errors.Is(err, ErrWrongAccount) {
		t.Fatalf("typed data other account: %v", err)
	}
}

func summaryText(s Summary) string {
	var b strings.Builder
	b.WriteString(s.Title + "\n")
	for _, l := range s.Lines {
		b.WriteString(l.Label + ": " + l.Value + "\n")
	}
	for _, w := range s.Warnings {
		b.WriteString("! " + w + "\n")
	}
	return b.String()
}

// What is shown must change whenever what is signed changes.
func TestTypedDataSummaryFollowsSignedValues(t *testing.T) {
	k := devKey(t, 0)
	mk := func(value string) *Prepared {
		td, err := eip712.Parse([]byte(`{"types":{"EIP712Domain":[{"name":"name","type":"string"},{"name":"chainId","type":"uint256"}],
		"Permit":[{"name":"owner","type":"address"},{"name":"spender","type":"address"},{"name":"value","type":"uint256"},{"name":"nonce","type":"uint256"},{"name":"deadline","type":"uint256"}]},
		"primaryType":"Permit","domain":{"name":"USD Coin","chainId":8453},
		"message":{"owner":"0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266","spender":"0x70997970C51812dc3A010C7d01b50e0d17dc79C8","value":"` + value + `","nonce":0,"deadline":1893456000}}`))
		if err != nil {
			t.Fatal(err)
		}
		p, err := TypedData(k.Address(), td)
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	a, b := mk("1000000"), mk("2000000")
	if a.Digest == b.Digest {
		t.Fatal("digest ignores value")
	}
	if !strings.Contains(summaryText(a.Summary), "message.value: 1000000") || !strings.Contains(summaryText(b.Summary), "message.value: 2000000") {
		t.Fatalf("summary does not show the signed value:\n%s", summaryText(a.Summary))
	}
	if len(a.Summary.Warnings) == 0 {
		t.Fatal("permit without warning")
	}
}

func TestTransactionMatchesGoEthereum(t *testing.T) {
	k := devKey(t, 0)
	to := devKey(t, 1).Address()
	tests := []struct {
		name string
		tx   Transaction
	}{
		{"plain transfer", Transaction{ChainID: 84532, Nonce: 0, MaxPriorityFeePerGas: big.NewInt(1e9), MaxFeePerGas: big.NewInt(3e9), Gas: 21000, To: &to, Value: big.NewInt(5e16)}},
		{"call with access list", Transaction{ChainID: 8453, Nonce: 300, MaxPriorityFeePerGas: big.NewInt(0), MaxFeePerGas: big.NewInt(1e8), Gas: 90000, To: &to, Value: big.NewInt(0),
			Data:       unhex(t, "a9059cbb000000000000000000000000f39fd6e51aad88f6f4ce6ab8827279cfffb922660000000000000000000000000000000000000000000000000000000000000064"),
			AccessList: []AccessTuple{{Address: to, StorageKeys: [][32]byte{{1}, {2}}}}}},
		{"contract creation", Transaction{ChainID: 1, Nonce: 1, MaxPriorityFeePerGas: big.NewInt(2), MaxFeePerGas: big.NewInt(2), Gas: 1_000_000, Value: big.NewInt(0), Data: make([]byte, 100)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Transaction1559(k.Address(), &tt.tx)
			if err != nil {
				t.Fatal(err)
			}
			res, err := p.Sign(k)
			if err != nil {
				t.Fatal(err)
			}
			var gtx types.Transaction
			if err := gtx.UnmarshalBinary(unhex(t, res.Raw)); err != nil {
				t.Fatalf("go-ethereum cannot decode: %v", err)
			}
			signer := types.LatestSignerForChainID(new(big.Int).SetUint64(tt.tx.ChainID))
			from, err := types.Sender(signer, &gtx)
			if err != nil || ethcrypto.Address(from) != k.Address() {
				t.Fatalf("sender %s, %v", from.Hex(), err)
			}
			if gtx.Hash().Hex() != res.TxHash {
				t.Fatalf("hash %s, go-ethereum %s", res.TxHash, gtx.Hash().Hex())
			}
			if hex.EncodeToString(signer.Hash(&gtx).Bytes()) != hex.EncodeToString(p.Digest[:]) {
				t.Fatal("signing hash differs from go-ethereum")
			}
			if gtx.Nonce() != tt.tx.Nonce || gtx.Gas() != tt.tx.Gas || gtx.Value().Cmp(tt.tx.Value) != 0 || len(gtx.AccessList()) != len(tt.tx.AccessList) {
				t.Fatal("decoded fields differ")
			}
			if (gtx.To() == nil) != (tt.tx.To == nil) {
				t.Fatal("to differs")
			}
		})
	}
}

func TestTransactionRejects(t *testing.T) {
	k := devKey(t, 0)
	to := devKey(t, 1).Address()
	for name, tx := range map[string]Transaction{
		"tip above max fee": {ChainID: 1, MaxPriorityFeePerGas: big.NewInt(5), MaxFeePerGas: big.NewInt(4), Gas: 21000, To: &to, Value: big.NewInt(0)},
		"no chain id":       {MaxPriorityFeePerGas: big.NewInt(1), MaxFeePerGas: big.NewInt(4), Gas: 21000, To: &to, Value: big.NewInt(0)},
		"negative value":    {ChainID: 1, MaxPriorityFeePerGas: big.NewInt(1), MaxFeePerGas: big.NewInt(4), Gas: 21000, To: &to, Value: big.NewInt(-1)},
		"nil fee":           {ChainID: 1, Gas: 21000, To: &to, Value: big.NewInt(0)},
	} {
		if _, err := Transaction1559(k.Address(), &tx); !errors.Is(err, ErrInvalidTx) {
			t.Errorf("%s: err = %v", name, err)
		}
	}
}

func TestFormatEther(t *testing.T) {
	for _, tt := range []struct {
		wei  string
		want string
	}{
		{"0", "0 ETH"}, {"1", "0.000000000000000001 ETH"}, {"50000000000000000", "0.05 ETH"},
		{"1000000000000000000", "1 ETH"}, {"123456789000000000000", "123.456789 ETH"}, {"-1500000000000000000", "-1.5 ETH"},
	} {
		w, _ := new(big.Int).SetString(tt.wei, 10)
		if got := FormatEther(w); got != tt.want {
			t.Errorf("FormatEther(%s) = %s, want %s", tt.wei, got, tt.want)
		}
	}
}

func TestUnknownCallWarns(t *testing.T) {
	k := devKey(t, 0)
	to := devKey(t, 1).Address()
	p, err := Transaction1559(k.Address(), &Transaction{ChainID: 1, MaxPriorityFeePerGas: big.NewInt(1), MaxFeePerGas: big.NewInt(1), Gas: 50000, To: &to, Value: big.NewInt(0), Data: []byte{1, 2, 3, 4, 5}})
	if err != nil {
		t.Fatal(err)
	}
	if len(p.Summary.Warnings) == 0 || !strings.Contains(summaryText(p.Summary), "unknown function 0x01020304") {
		t.Fatalf("unknown call not flagged:\n%s", summaryText(p.Summary))
	}
}

func BenchmarkSignForwardRequest(b *testing.B) {
	k := devKey(b, 0)
	req := &protocol.ForwardRequest{From: k.Address(), To: ethcrypto.MustParseAddress("0x5FbDB2315678afecb367f032d93F642f64180aa3"),
		Value: big.NewInt(0), Gas: big.NewInt(200000), Nonce: big.NewInt(3), Deadline: 1_900_000_000, Data: make([]byte, 100)}
	d := protocol.ForwarderDomain(84532, ethcrypto.MustParseAddress("0x9fE46736679d2D9a65F0992F2272dE9f3c7fa6e0"))
	for i := 0; i < b.N; i++ {
		p, err := Forward(k.Address(), req, d)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.Sign(k); err != nil {
			b.Fatal(err)
		}
	}
}
