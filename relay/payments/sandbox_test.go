package payments_test

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stagepass/stagepass/relay/payments"
)

const apiKey = "sk_test_sandbox"

// server runs a sandbox over HTTP; tests drive it through the Stripe-shaped client, the way
// the relay and oracle nodes in other processes do.
func server(t *testing.T, path string) (*payments.Sandbox, *payments.Client, *httptest.Server) {
	t.Helper()
	sb, err := payments.OpenSandbox(path)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(sb.Handler(apiKey))
	t.Cleanup(func() { srv.Close(); sb.Close() })
	return sb, &payments.Client{BaseURL: srv.URL, APIKey: apiKey}, srv
}

var binding = payments.Binding{ChainID: 1337, Event: "0x9cb12fbf0188a410f75fcbe25f32714c001d011d", Buyer: "0x70997970C51812dc3A010C7d01b50e0d17dc79C8", Tier: 0, Quantity: 2, Amount: 9000}

func TestTestCards(t *testing.T) {
	_, c, _ := server(t, filepath.Join(t.TempDir(), "sandbox.db"))
	ctx := context.Background()
	for _, tc := range []struct {
		number      string
		exp         [2]int
		cvc         string
		decline     string // "" succeeds
		disputed    bool
		fingerprint bool
	}{
		{"4242 4242 4242 4242", [2]int{12, 2034}, "123", "", false, true},
		{"5555555555554444", [2]int{1, 2031}, "999", "", false, true},
		{"4000000000000002", [2]int{12, 2034}, "123", "generic_decline", false, false},
		{"4000000000009995", [2]int{12, 2034}, "123", "insufficient_funds", false, false},
		{"4000000000000069", [2]int{12, 2034}, "123", "expired_card", false, false},
		{"4000000000000127", [2]int{12, 2034}, "123", "incorrect_cvc", false, false},
		{"4000000000000259", [2]int{12, 2034}, "123", "", true, true},
		{"4242424242424242", [2]int{1, 2020}, "123", "expired_card", false, false},
		{"4242424242424242", [2]int{12, 2034}, "1", "incorrect_cvc", false, false},
		{"4111111111111111", [2]int{12, 2034}, "123", "test_mode_live_card", false, false},
	} {
		t.Run(tc.number, func(t *testing.T) {
			in, err := c.CreateIntent(ctx, binding.Amount, "usd", binding.Metadata())
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(in.ID, "pi_") || in.Status != payments.StatusRequiresPaymentMethod {
				t.Fatalf("created %+v", in)
			}
			paid, err := c.Confirm(ctx, in.ID, payments.Card{Number: tc.number, ExpMonth: tc.exp[0], ExpYear: tc.exp[1], CVC: tc.cvc})
			var ce *payments.CardError
			if tc.decline != "" {
				if !errors.As(err, &ce) || ce.DeclineCode != tc.decline || ce.Message == "" {
					t.Fatalf("err %v, want decline %s", err, tc.decline)
				}
				got, _ := c.Retrieve(ctx, in.ID)
				if got.Status != payments.StatusRequiresPaymentMethod || got.LastError == nil {
					t.Fatalf("after a decline: %+v", got)
				}
				if err := binding.Verify(got); err == nil {
					t.Fatal("a declined payment verified")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if paid.Status != payments.StatusSucceeded || paid.Disputed != tc.disputed || (paid.Card == nil) != !tc.fingerprint {
				t.Fatalf("paid %+v", paid)
			}
			verr := binding.Verify(paid)
			if tc.disputed != (verr != nil) {
				t.Fatalf("verify: %v (disputed %v)", verr, tc.disputed)
			}
		})
	}
}

func TestBindingAndLifecycle(t *testing.T) {
	path := filepath.Join(t.TempDir(), "sandbox.db")
	sb, c, _ := server(t, path)
	ctx := context.Background()
	pay := func() payments.Intent {
		in, err := c.CreateIntent(ctx, binding.Amount, "usd", binding.Metadata())
		if err != nil {
			t.Fatal(err)
		}
		in, err = c.Confirm(ctx, in.ID, payments.Card{Number: "4242424242424242", ExpMonth: 12, ExpYear: 2034, CVC: "123"})
		if err != nil {
			t.Fatal(err)
		}
		return in
	}
	a, b := pay(), pay()
	if err := binding.Verify(a); err != nil {
		t.Fatal(err)
	}
	if a.Card.Fingerprint != b.Card.Fingerprint {
		t.Fatal("the same card got two fingerprints")
	}
	// Someone else's payment, or another event's, or a different amount, is not this purchase.
	for name, edit := range map[string]func(*payments.Binding){
		"other buyer":    func(x *payments.Binding) { x.Buyer = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266" },
		"other event":    func(x *payments.Binding) { x.Event = "0x0000000000000000000000000000000000000001" },
		"other chain":    func(x *payments.Binding) { x.ChainID = 1 },
		"more tickets":   func(x *payments.Binding) { x.Quantity = 3 },
		"another amount": func(x *payments.Binding) { x.Amount = 100 },
	} {
		x := binding
		edit(&x)
		if err := x.Verify(a); err == nil {
			t.Errorf("%s: verified", name)
		}
	}
	if _, err := c.Confirm(ctx, a.ID, payments.Card{Number: "4242424242424242", ExpMonth: 12, ExpYear: 2034, CVC: "123"}); err == nil {
		t.Fatal("paid twice")
	}
	if in, err := c.Refund(ctx, a.ID); err != nil || in.AmountRefunded != a.Amount || binding.Verify(in) == nil {
		t.Fatalf("refund: %+v %v", in, err)
	}
	if _, err := c.Refund(ctx, a.ID); err == nil {
		t.Fatal("refunded twice")
	}
	if in, err := sb.Chargeback(ctx, b.ID); err != nil || !in.Disputed || binding.Verify(in) == nil {
		t.Fatalf("chargeback: %+v %v", in, err)
	}
	if _, err := c.Retrieve(ctx, "pi_nope"); !errors.Is(err, payments.ErrNotFound) {
		t.Fatalf("unknown intent: %v", err)
	}
	if _, err := c.CreateIntent(ctx, 0, "usd", nil); !errors.Is(err, payments.ErrInvalid) {
		t.Fatalf("zero amount: %v", err)
	}
	bad := &payments.Client{BaseURL: c.BaseURL, APIKey: "sk_test_wrong"}
	if _, err := bad.Retrieve(ctx, a.ID); err == nil || !strings.Contains(err.Error(), "Invalid API key") {
		t.Fatalf("wrong key: %v", err)
	}

	// Transfers over HTTP: the Idempotency-Key makes a retry return the first transfer.
	t1, err := c.Pay(ctx, payments.Payout{Key: "0xdef/2", Party: "0xB2", Amount: 1500, Currency: "usd", Group: "0xdef"})
	if err != nil || !strings.HasPrefix(t1.ID, "tr_") || t1.Destination != "acct_b2" {
		t.Fatalf("transfer %+v %v", t1, err)
	}
	if t2, err := c.Pay(ctx, payments.Payout{Key: "0xdef/2", Party: "0xB2", Amount: 1500, Currency: "usd"}); err != nil || t2.ID != t1.ID {
		t.Fatalf("retried transfer %+v %v", t2, err)
	}
	if _, err := c.Pay(ctx, payments.Payout{Key: "0xdef/3", Party: "0xB2", Amount: 0, Currency: "usd"}); !errors.Is(err, payments.ErrInvalid) {
		t.Fatalf("zero transfer: %v", err)
	}

	// Payouts are recorded once per key, however often the worker retries.
	for range 3 {
		if _, err := sb.Pay(ctx, payments.Payout{Key: "0xabc/1", Party: "0xA1", Amount: 2700, Group: "0xabc"}); err != nil {
			t.Fatal(err)
		}
	}
	// Everything survives a restart of the sandbox.
	sb.Close()
	sb2, err := payments.OpenSandbox(path)
	if err != nil {
		t.Fatal(err)
	}
	defer sb2.Close()
	got, err := sb2.Retrieve(ctx, b.ID)
	if err != nil || !got.Disputed || got.Card.Fingerprint != b.Card.Fingerprint {
		t.Fatalf("after reopening: %+v %v", got, err)
	}
	if p, _ := sb2.Payouts(); len(p) != 2 || p[0].Amount != 2700 || p[0].Destination != "acct_a1" || !strings.HasPrefix(p[0].ID, "tr_") || p[1].Amount != 1500 {
		t.Fatalf("payouts %+v", p)
	}
}

func TestHostedCheckout(t *testing.T) {
	_, c, srv := server(t, filepath.Join(t.TempDir(), "sandbox.db"))
	ctx := context.Background()
	in, err := c.CreateIntent(ctx, 4500, "usd", binding.Metadata())
	if err != nil {
		t.Fatal(err)
	}
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	page := func(res *http.Response, err error) (int, string) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		return res.StatusCode, string(b)
	}
	q := url.Values{"client_secret": {in.ClientSecret}, "return_url": {"/#/paid"}}
	code, body := page(noRedirect.Get(srv.URL + "/checkout/" + in.ID + "?" + q.Encode()))
	if code != 200 || !strings.Contains(body, "USD 45.00") || !strings.Contains(body, `name="number"`) {
		t.Fatalf("checkout page %d:\n%s", code, body)
	}
	if code, _ := page(noRedirect.Get(srv.URL + "/checkout/" + in.ID + "?client_secret=wrong")); code != 404 {
		t.Fatalf("wrong client secret: %d", code)
	}
	form := func(number, ret string) url.Values {
		return url.Values{"client_secret": {in.ClientSecret}, "return_url": {ret}, "number": {number}, "exp": {"12/34"}, "cvc": {"123"}}
	}
	code, body = page(noRedirect.PostForm(srv.URL+"/checkout/"+in.ID, form("4000000000000002", "/#/paid")))
	if code != http.StatusPaymentRequired || !strings.Contains(body, "Your card was declined.") {
		t.Fatalf("declined card %d:\n%s", code, body)
	}
	res, err := noRedirect.PostForm(srv.URL+"/checkout/"+in.ID, form("4242 4242 4242 4242", "/#/paid"))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	loc := res.Header.Get("Location")
	if res.StatusCode != http.StatusSeeOther || !strings.HasPrefix(loc, "/#/paid?") || !strings.Contains(loc, "payment_intent="+in.ID) {
		t.Fatalf("after paying: %d %q", res.StatusCode, loc)
	}
	if got, _ := c.Retrieve(ctx, in.ID); got.Status != payments.StatusSucceeded {
		t.Fatalf("status %s", got.Status)
	}
	// Another site as the return address is dropped, not followed.
	in2, _ := c.CreateIntent(ctx, 4500, "usd", nil)
	f := form("4242424242424242", "https://elsewhere.example/steal")
	f.Set("client_secret", in2.ClientSecret)
	code, _ = page(noRedirect.PostForm(srv.URL+"/checkout/"+in2.ID, f))
	if code != 200 {
		t.Fatalf("foreign return url: %d", code)
	}
}
