// Package wallet is the wallet's API as JSON in, JSON out: one method per
// call the page can make. The js/wasm entry (cmd/wallet) only moves JSON
// between JavaScript promises and Service.Call, so all behaviour, including
// parameter parsing and error codes, is tested natively here.
package wallet

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"time"

	"github.com/stagepass/stagepass/wasm/actions"
	"github.com/stagepass/stagepass/wasm/eip712"
	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/keys"
	"github.com/stagepass/stagepass/wasm/keystore"
	"github.com/stagepass/stagepass/wasm/protocol"
	"github.com/stagepass/stagepass/wasm/relayclient"
	"github.com/stagepass/stagepass/wasm/signing"
	"github.com/stagepass/stagepass/wasm/tickets"
	"github.com/stagepass/stagepass/wasm/vault"
)

// Error is what a rejected call carries to JavaScript: a stable code the
// page branches on and a message for logs.
type Error struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	err     error
}

func (e *Error) Error() string { return e.Code + ": " + e.Message }
func (e *Error) Unwrap() error { return e.err }

var (
	ErrUnknownMethod  = errors.New("wallet: unknown method")
	ErrBadParams      = errors.New("wallet: bad parameters")
	ErrUnknownRequest = errors.New("wallet: no pending request with that id")
	ErrTooManyPending = errors.New("wallet: too many requests awaiting approval")
)

// codes maps sentinel errors to the codes the page sees.
var codes = []struct {
	err  error
	code string
}{
	{vault.ErrWrongPassword, "WRONG_PASSWORD"}, {keystore.ErrWrongPassword, "WRONG_PASSWORD"},
	{vault.ErrTampered, "VAULT_TAMPERED"}, {vault.ErrLocked, "LOCKED"}, {vault.ErrNoVault, "NO_WALLET"},
	{vault.ErrExists, "WALLET_EXISTS"}, {vault.ErrWeakPassword, "WEAK_PASSWORD"}, {vault.ErrUnknownAccount, "UNKNOWN_ACCOUNT"},
	{keys.ErrInvalidMnemonic, "INVALID_MNEMONIC"},
	{protocol.ErrPassExpired, "PASS_EXPIRED"}, {protocol.ErrPassFuture, "PASS_FUTURE"},
	{protocol.ErrPassMalformed, "PASS_MALFORMED"}, {protocol.ErrPassForged, "PASS_FORGED"},
	{protocol.ErrPassWrongChain, "PASS_WRONG_CHAIN"}, {protocol.ErrPassWrongEvent, "PASS_WRONG_EVENT"},
	{protocol.ErrPassNotOwner, "PASS_NOT_OWNER"},
	{signing.ErrWrongAccount, "WRONG_ACCOUNT"}, {ErrUnknownRequest, "UNKNOWN_REQUEST"},
	{ErrUnknownMethod, "UNKNOWN_METHOD"},
	{ErrNotConnected, "NOT_CONNECTED"}, {ErrNoScanner, "NO_SCANNER"},
	{actions.ErrPriceOutOfRange, "PRICE_OUT_OF_RANGE"}, {actions.ErrNotAllowed, "NOT_ALLOWED"},
	{actions.ErrNoGateway, "NO_GATEWAY"}, {actions.ErrInsufficientBalance, "INSUFFICIENT_BALANCE"},
	{actions.ErrBelowMinimum, "BELOW_MINIMUM"},
	{relayclient.ErrOffline, "OFFLINE"},
}

func toError(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		return e
	}
	for _, c := range codes {
		if errors.Is(err, c.err) {
			return &Error{Code: c.code, Message: err.Error(), err: err}
		}
	}
	return &Error{Code: "INVALID_REQUEST", Message: err.Error(), err: err}
}

const maxPending = 16

// Service holds one vault and the requests awaiting approval.
type Service struct {
	Vault *vault.Vault
	// Now is the clock for passes (tests pin it).
	Now func() time.Time
	// Scrypt sets keystore export cost.
	Scrypt keystore.ScryptParams
	// Dial opens the relay's websocket (the browser's WebSocket in the js layer).
	Dial relayclient.Dialer
	// Cache keeps tickets and scanner state for offline use (IndexedDB in the page).
	Cache tickets.Store
	// Notify tells the page about pushes: "tickets", "request", "connection", "scanner",
	// "payment" (card.go).
	Notify func(kind string, data any)
	// CallTimeout bounds each relay call (default 20 s).
	CallTimeout time.Duration

	mu      sync.Mutex
	pending map[string]*pendingEntry
	on      online
}

// pendingEntry is a request awaiting approval: a plain signature (prep) or a gasless
// action that is signed and then sent to the relay (action).
type pendingEntry struct {
	account ethcrypto.Address
	summary signing.Summary
	prep    *signing.Prepared
	action  *actions.Action
	deposit *actions.DepositAction // prepareDeposit: approve signs its permit (deposit.go)
	claim   *actions.ClaimAction   // prepareClaimWithdrawal: approve signs and sends it (claim.go)
	file    *protocol.IssuerFile   // prepareIssuerFile: approve returns it signed (identity.go)
}

// New returns a service over store; kdf nil means pure-Go PBKDF2.
func New(store vault.Store, kdf vault.KDF) *Service {
	return &Service{
		Vault: vault.New(store, kdf, vault.MinIterations), Now: time.Now,
		Scrypt: keystore.StandardScrypt, pending: map[string]*pendingEntry{},
		CallTimeout: 20 * time.Second, on: online{trackers: map[string]*tickets.Tracker{}},
	}
}

// Methods lists the names Call accepts (the js layer exposes each one).
var Methods = []string{
	"create", "restore", "unlock", "lock", "accounts", "addAccount",
	"signMessage", "signTypedData", "signForward", "signTransaction", "approve", "reject",
	"makePass", "verifyPass", "exportKeystore", "exportMnemonic",
}

func init() { Methods = append(Methods, onlineMethods...) }

// Call runs method with JSON params and returns a JSON-encodable result or
// an *Error.
func (s *Service) Call(ctx context.Context, method string, params []byte) (any, error) {
	res, err := s.call(ctx, method, params)
	if err != nil {
		return nil, toError(err)
	}
	return res, nil
}

func decode(params []byte, v any) error {
	if len(bytes.TrimSpace(params)) == 0 {
		params = []byte("{}")
	}
	dec := json.NewDecoder(bytes.NewReader(params))
	dec.UseNumber()
	dec.DisallowUnknownFields() // a misspelt field must not be silently ignored
	if err := dec.Decode(v); err != nil {
		return fmt.Errorf("%w: %v", ErrBadParams, err)
	}
	return nil
}

// Quantity is an unsigned integer given as a JSON number, a decimal string
// or a 0x-hex string.
type Quantity struct{ big.Int }

func (q *Quantity) UnmarshalJSON(b []byte) error {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return err
	}
	x, err := eip712.Int(v)
	if err != nil {
		return err
	}
	if x.Sign() < 0 {
		return fmt.Errorf("%w: negative quantity", ErrBadParams)
	}
	q.Int = *x
	return nil
}

func (q *Quantity) big() *big.Int {
	if q == nil {
		return new(big.Int)
	}
	return new(big.Int).Set(&q.Int)
}

func (q *Quantity) uint64() (uint64, error) {
	if q == nil {
		return 0, nil
	}
	if !q.IsUint64() {
		return 0, fmt.Errorf("%w: %s does not fit in 64 bits", ErrBadParams, q.String())
	}
	return q.Uint64(), nil
}

// HexData is 0x-hex bytes.
type HexData []byte

func (h *HexData) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	d, err := eip712.Bytes(s)
	if err != nil {
		return err
	}
	*h = d
	return nil
}

type accountsResult struct {
	Accounts []ethcrypto.Address `json:"accounts"`
	Unlocked bool                `json:"unlocked"`
}

type pendingResult struct {
	ID      string          `json:"id"`
	Summary signing.Summary `json:"summary"`
}

func (s *Service) call(ctx context.Context, method string, params []byte) (any, error) {
	switch method {
	case "create":
		var p struct {
			Password string `json:"password"`
			Words    int    `json:"words"`
		}
		if err := decode(params, &p); err != nil {
			return nil, err
		}
		bits := 128
		if p.Words != 0 {
			bits = p.Words / 3 * 32
		}
		a, err := s.Vault.Create(ctx, p.Password, bits)
		return accountsResult{a, err == nil}, err
	case "restore":
		var p struct {
			Mnemonic   string `json:"mnemonic"`
			Passphrase string `json:"passphrase"`
			Password   string `json:"password"`
		}
		if err := decode(params, &p); err != nil {
			return nil, err
		}
		a, err := s.Vault.Restore(ctx, p.Mnemonic, p.Passphrase, p.Password)
		return accountsResult{a, err == nil}, err
	case "unlock":
		var p struct {
			Password string `json:"password"`
		}
		if err := decode(params, &p); err != nil {
			return nil, err
		}
		a, err := s.Vault.Unlock(ctx, p.Password)
		return accountsResult{a, err == nil}, err
	case "lock":
		s.Vault.Lock()
		s.mu.Lock()
		s.pending = map[string]*pendingEntry{}
		s.mu.Unlock()
		return struct{}{}, nil
	case "accounts":
		// imported: which of them came from a keystore file (the fan app marks them); names:
		// what the fan named them (accounts.go).
		return s.accountsView(ctx)
	case "addAccount":
		a, err := s.Vault.AddAccount(ctx)
		return map[string]any{"address": a}, err
	case "signMessage":
		var p struct {
			Account    ethcrypto.Address `json:"account"`
			Message    *string           `json:"message"`
			MessageHex *HexData          `json:"messageHex"`
		}
		if err := decode(params, &p); err != nil {
			return nil, err
		}
		var msg []byte
		switch {
		case p.Message != nil && p.MessageHex == nil:
			msg = []byte(*p.Message)
		case p.MessageHex != nil && p.Message == nil:
			msg = *p.MessageHex
		default:
			return nil, fmt.Errorf("%w: give exactly one of message, messageHex", ErrBadParams)
		}
		return s.hold(signing.PersonalMessage(p.Account, msg), nil)
	case "signTypedData":
		var p struct {
			Account   ethcrypto.Address `json:"account"`
			TypedData json.RawMessage   `json:"typedData"`
		}
		if err := decode(params, &p); err != nil {
			return nil, err
		}
		raw := p.TypedData
		// eth_signTypedData_v4 passes the data as a JSON string.
		var asString string
		if json.Unmarshal(raw, &asString) == nil {
			raw = []byte(asString)
		}
		td, err := eip712.Parse(raw)
		if err != nil {
			return nil, err
		}
		return s.hold(signing.TypedData(p.Account, td))
	case "signForward":
		var p struct {
			Account   ethcrypto.Address `json:"account"`
			ChainID   Quantity          `json:"chainId"`
			Forwarder ethcrypto.Address `json:"forwarder"`
			Request   struct {
				To       ethcrypto.Address `json:"to"`
				Value    *Quantity         `json:"value"`
				Gas      Quantity          `json:"gas"`
				Nonce    Quantity          `json:"nonce"`
				Deadline Quantity          `json:"deadline"`
				Data     HexData           `json:"data"`
			} `json:"request"`
		}
		if err := decode(params, &p); err != nil {
			return nil, err
		}
		chain, err := p.ChainID.uint64()
		if err != nil {
			return nil, err
		}
		deadline, err := p.Request.Deadline.uint64()
		if err != nil {
			return nil, err
		}
		req := &protocol.ForwardRequest{
			From: p.Account, To: p.Request.To, Value: p.Request.Value.big(), Gas: p.Request.Gas.big(),
			Nonce: p.Request.Nonce.big(), Deadline: deadline, Data: p.Request.Data,
		}
		return s.hold(signing.Forward(p.Account, req, protocol.ForwarderDomain(chain, p.Forwarder)))
	case "signTransaction":
		var p struct {
			Account ethcrypto.Address `json:"account"`
			Tx      struct {
				ChainID              Quantity           `json:"chainId"`
				Nonce                Quantity           `json:"nonce"`
				MaxPriorityFeePerGas Quantity           `json:"maxPriorityFeePerGas"`
				MaxFeePerGas         Quantity           `json:"maxFeePerGas"`
				Gas                  Quantity           `json:"gas"`
				To                   *ethcrypto.Address `json:"to"`
				Value                *Quantity          `json:"value"`
				Data                 HexData            `json:"data"`
			} `json:"tx"`
		}
		if err := decode(params, &p); err != nil {
			return nil, err
		}
		chain, err1 := p.Tx.ChainID.uint64()
		nonce, err2 := p.Tx.Nonce.uint64()
		gas, err3 := p.Tx.Gas.uint64()
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, err
		}
		tx := &signing.Transaction{
			ChainID: chain, Nonce: nonce, MaxPriorityFeePerGas: p.Tx.MaxPriorityFeePerGas.big(),
			MaxFeePerGas: p.Tx.MaxFeePerGas.big(), Gas: gas, To: p.Tx.To, Value: p.Tx.Value.big(), Data: p.Tx.Data,
		}
		return s.hold(signing.Transaction1559(p.Account, tx))
	case "approve", "reject":
		var p struct {
			ID string `json:"id"`
		}
		if err := decode(params, &p); err != nil {
			return nil, err
		}
		s.mu.Lock()
		e, ok := s.pending[p.ID]
		delete(s.pending, p.ID)
		s.mu.Unlock()
		if !ok {
			return nil, ErrUnknownRequest
		}
		if method == "reject" {
			return struct{}{}, nil
		}
		if e.claim != nil {
			return s.sendClaim(ctx, e.claim)
		}
		if e.deposit != nil {
			sent, err := s.sendDeposit(ctx, e.deposit)
			if err != nil {
				return nil, err
			}
			return map[string]any{"deposit": sent}, nil
		}
		if e.action != nil {
			st, err := s.submit(ctx, e.action)
			if err != nil {
				return nil, err
			}
			return map[string]any{"request": st}, nil
		}
		var res signing.Result
		err := s.Vault.WithKey(e.prep.Account, func(k *ethcrypto.PrivateKey) error {
			var err error
			res, err = e.prep.Sign(k)
			return err
		})
		if err == nil && e.file != nil {
			f := *e.file
			f.Signature = res.Signature
			return map[string]any{"signature": res.Signature, "digest": res.Digest, "file": f}, nil
		}
		return res, err
	case "makePass":
		var p struct {
			Account ethcrypto.Address `json:"account"`
			ChainID Quantity          `json:"chainId"`
			Event   ethcrypto.Address `json:"event"`
			TokenID Quantity          `json:"tokenId"`
		}
		if err := decode(params, &p); err != nil {
			return nil, err
		}
		chain, err := p.ChainID.uint64()
		if err != nil {
			return nil, err
		}
		var payload string
		var pass protocol.Pass
		err = s.Vault.WithKey(p.Account, func(k *ethcrypto.PrivateKey) error {
			var err error
			payload, pass, err = protocol.MakePass(k, chain, p.Event, p.TokenID.big(), s.Now())
			return err
		})
		if err != nil {
			return nil, err
		}
		return map[string]any{
			"payload": payload, "window": pass.Window,
			"refreshAt": protocol.WindowStart(pass.Window + 1).UnixMilli(),
		}, nil
	case "verifyPass":
		var p struct {
			Payload string              `json:"payload"`
			ChainID Quantity            `json:"chainId"`
			Events  []ethcrypto.Address `json:"events"`
		}
		if err := decode(params, &p); err != nil {
			return nil, err
		}
		chain, err := p.ChainID.uint64()
		if err != nil {
			return nil, err
		}
		v := protocol.Verifier{ChainID: chain, Events: p.Events}
		pass, err := v.Verify(p.Payload, s.Now())
		if err != nil {
			return nil, err
		}
		return map[string]any{
			"holder": pass.Holder, "event": pass.Event, "tokenId": pass.TokenID.String(),
			"chainId": pass.ChainID, "window": pass.Window,
		}, nil
	case "exportKeystore":
		var p struct {
			Account        ethcrypto.Address `json:"account"`
			Password       string            `json:"password"`
			ExportPassword string            `json:"exportPassword"`
		}
		if err := decode(params, &p); err != nil {
			return nil, err
		}
		if p.ExportPassword == "" {
			p.ExportPassword = p.Password
		}
		ks, err := s.Vault.ExportKeystore(ctx, p.Account, p.Password, p.ExportPassword, s.Scrypt)
		if err != nil {
			return nil, err
		}
		return map[string]any{"keystore": string(ks)}, nil
	case "exportMnemonic":
		var p struct {
			Password string `json:"password"`
		}
		if err := decode(params, &p); err != nil {
			return nil, err
		}
		m, err := s.Vault.ExportMnemonic(ctx, p.Password)
		if err != nil {
			return nil, err
		}
		return map[string]any{"mnemonic": m}, nil
	}
	if slices.Contains(vaultMethods, method) {
		return s.callVault(ctx, method, params) // passkey.go
	}
	if slices.Contains(accountMethods, method) {
		return s.callAccounts(ctx, method, params) // accounts.go
	}
	return s.callOnline(ctx, method, params)
}

// hold stores a prepared request until the user approves or rejects it.
func (s *Service) hold(p *signing.Prepared, err error) (any, error) {
	if err != nil {
		return nil, err
	}
	if err := s.checkAccount(p.Account); err != nil {
		return nil, err
	}
	return s.holdEntry(&pendingEntry{account: p.Account, summary: p.Summary, prep: p})
}

// checkAccount fails unless the vault is unlocked and holds account.
func (s *Service) checkAccount(a ethcrypto.Address) error {
	if !s.Vault.Unlocked() {
		return vault.ErrLocked
	}
	return s.Vault.WithKey(a, func(*ethcrypto.PrivateKey) error { return nil })
}

func (s *Service) holdEntry(p *pendingEntry) (any, error) {
	id := make([]byte, 12)
	if _, err := rand.Read(id); err != nil {
		return nil, fmt.Errorf("wallet: random: %w", err)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.pending) >= maxPending {
		return nil, ErrTooManyPending
	}
	key := hex.EncodeToString(id)
	s.pending[key] = p
	return pendingResult{ID: key, Summary: p.summary}, nil
}
