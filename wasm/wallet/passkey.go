package wallet

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/stagepass/stagepass/wasm/keystore"
	"github.com/stagepass/stagepass/wasm/vault"
)

// Passkey unlock and keystore import. WebAuthn is not available in a Web Worker: the
// page runs navigator.credentials.get with the prf extension on the salt `passkeys`
// returns and passes the 32-byte PRF output in; the wallet derives the wrapping key
// from it (vault.EnablePasskey / UnlockWithPasskey). The page never sees the data key.

var vaultMethods = []string{"passkeys", "enablePasskey", "unlockWithPasskey", "removePasskey", "importKeystore"}

func init() {
	Methods = append(Methods, vaultMethods...)
	codes = append(codes, []struct {
		err  error
		code string
	}{
		{vault.ErrWrongPasskey, "WRONG_PASSKEY"}, {vault.ErrUnknownPasskey, "UNKNOWN_PASSKEY"},
		{vault.ErrKeystorePassword, "WRONG_KEYSTORE_PASSWORD"}, {vault.ErrAccountExists, "ACCOUNT_EXISTS"},
		{keystore.ErrInvalidFormat, "INVALID_KEYSTORE"}, {keystore.ErrAddressMismatch, "INVALID_KEYSTORE"},
		{keystore.ErrUnsafeParams, "INVALID_KEYSTORE"},
	}...)
}

// Bytes64 is bytes given as 0x hex or base64 (standard or URL alphabet, padded or not:
// what the page gets from a WebAuthn ArrayBuffer).
type Bytes64 []byte

func (b *Bytes64) UnmarshalJSON(data []byte) error {
	var s string
	if err := json.Unmarshal(data, &s); err != nil {
		return err
	}
	var d []byte
	var err error
	if strings.HasPrefix(s, "0x") {
		d, err = hex.DecodeString(s[2:])
	} else {
		enc := base64.RawURLEncoding
		if strings.ContainsAny(s, "+/") {
			enc = base64.RawStdEncoding
		}
		d, err = enc.DecodeString(strings.TrimRight(s, "="))
	}
	if err != nil {
		return fmt.Errorf("%w: not 0x hex or base64: %v", ErrBadParams, err)
	}
	*b = d
	return nil
}

func (s *Service) callVault(ctx context.Context, method string, params []byte) (any, error) {
	var p struct {
		Password         string          `json:"password"`
		CredentialID     string          `json:"credentialId"`
		PRFOutput        Bytes64         `json:"prfOutput"`
		Keystore         json.RawMessage `json:"keystore"`
		KeystorePassword string          `json:"keystorePassword"`
	}
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	switch method {
	case "passkeys":
		info, err := s.Vault.Passkeys(ctx)
		if err != nil {
			return nil, err
		}
		salt := ""
		if info.Salt != nil {
			salt = "0x" + hex.EncodeToString(info.Salt)
		}
		return map[string]any{"salt": salt, "passkeys": info.Passkeys}, nil
	case "enablePasskey":
		if err := s.Vault.EnablePasskey(ctx, p.Password, p.CredentialID, p.PRFOutput); err != nil {
			return nil, err
		}
		return s.Call(ctx, "passkeys", nil)
	case "unlockWithPasskey":
		a, err := s.Vault.UnlockWithPasskey(ctx, p.CredentialID, p.PRFOutput)
		return accountsResult{a, err == nil}, err
	case "removePasskey":
		if err := s.Vault.RemovePasskey(ctx, p.CredentialID); err != nil {
			return nil, err
		}
		return s.Call(ctx, "passkeys", nil)
	case "importKeystore":
		file := []byte(p.Keystore)
		var asString string
		if json.Unmarshal(file, &asString) == nil {
			file = []byte(asString) // the file's text, as read by the page
		}
		addr, err := s.Vault.ImportKeystore(ctx, file, p.KeystorePassword, p.Password)
		if err != nil {
			return nil, err
		}
		a, err := s.Vault.Accounts(ctx)
		return map[string]any{"address": addr, "accounts": a, "unlocked": s.Vault.Unlocked()}, err
	}
	return nil, ErrUnknownMethod
}
