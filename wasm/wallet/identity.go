package wallet

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"

	"github.com/stagepass/stagepass/wasm/ethcrypto"
	"github.com/stagepass/stagepass/wasm/protocol"
	"github.com/stagepass/stagepass/wasm/signing"
)

// Buyer categories and issuer identity (relay/README.md, "Categories and identity"): a
// buyer's category and why (sp_category), and an issuer's proof that it controls a web
// domain — the signed stagepass.json made here, the verification asked of the oracles.

var identityMethods = []string{"category", "prepareIssuerFile", "requestIssuerVerification"}

func init() { Methods = append(Methods, identityMethods...) }

func (s *Service) callIdentity(ctx context.Context, method string, params []byte) (any, error) {
	var p struct {
		Account ethcrypto.Address `json:"account"`
		Domain  string            `json:"domain"`
	}
	if err := decode(params, &p); err != nil {
		return nil, err
	}
	// The relay's answers pass through as they are (protocol.CategoryView, IssuerRequest):
	// decoding them here would only add to the wasm.
	var out json.RawMessage
	if method == "category" {
		err := s.rpc(ctx, protocol.MethodCategory, []any{p.Account.Hex()}, &out)
		return out, err
	}
	domain := strings.ToLower(strings.TrimSpace(p.Domain))
	if domain == "" || strings.ContainsAny(domain, "/\\?#@ ") {
		return nil, fmt.Errorf("%w: domain must be a host name like tickets.example.com (no https://, no path)", ErrBadParams)
	}
	if method == "requestIssuerVerification" {
		err := s.rpc(ctx, protocol.MethodRequestIssuerVerification, []any{p.Account.Hex(), domain}, &out)
		return out, err
	}
	// prepareIssuerFile: EIP-191 over IssuerClaim, the signMessage path; approve returns the
	// file with the signature.
	prep := signing.PersonalMessage(p.Account, []byte(protocol.IssuerClaim(p.Account.Hex(), domain)))
	prep.Summary.Title = "Prove you publish tickets for " + domain
	prep.Summary.Warnings = append(prep.Summary.Warnings, "This proves that "+p.Account.Hex()+" publishes Stagepass tickets for "+domain+
		": anyone who reads https://"+domain+"/.well-known/stagepass.json can check it. It moves no money and signs no transaction.")
	if err := s.checkAccount(p.Account); err != nil {
		return nil, err
	}
	return s.holdEntry(&pendingEntry{account: p.Account, summary: prep.Summary, prep: prep,
		file: &protocol.IssuerFile{Address: strings.ToLower(p.Account.Hex()), Domain: domain}})
}
