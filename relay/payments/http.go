package payments

import (
	"context"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Handler serves the sandbox over HTTP in Stripe's API shape, so the relay, oracle nodes in
// other processes and the Stripe adapter all speak one protocol:
//
//	POST /v1/payment_intents                          amount, currency, metadata[k]
//	GET  /v1/payment_intents/{id}
//	POST /v1/payment_intents/{id}/confirm             payment_method_data[card][number|exp_month|exp_year|cvc]
//	POST /v1/refunds                                  payment_intent
//	POST /v1/test_helpers/payment_intents/{id}/dispute   (sandbox: the bank charges it back)
//	POST /v1/transfers                                amount, currency, destination, transfer_group, metadata[party]; Idempotency-Key
//	GET  /v1/transfers?destination=acct_…            the payouts ledger (with amount_reversed)
//	POST /v1/transfers/{id}/reversals                 amount; Idempotency-Key
//	GET  /checkout/{id}?client_secret=…&return_url=/…    the hosted checkout page a fan pays on
//
// The /v1 API needs `Authorization: Bearer <apiKey>`; the checkout page needs the intent's
// client secret instead, as Stripe's does.
func (s *Sandbox) Handler(apiKey string) http.Handler {
	mux := http.NewServeMux()
	auth := func(h http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			got := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
			if subtle.ConstantTimeCompare([]byte(got), []byte(apiKey)) != 1 {
				writeError(w, http.StatusUnauthorized, "invalid_request_error", "", "Invalid API key provided.")
				return
			}
			r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
			h(w, r)
		}
	}
	mux.HandleFunc("POST /v1/payment_intents", auth(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "", "The request body is not a form: "+err.Error())
			return
		}
		amount, err := strconv.ParseInt(r.PostForm.Get("amount"), 10, 64)
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "amount", "amount must be an integer number of minor units")
			return
		}
		md := map[string]string{}
		for k, v := range r.PostForm {
			if strings.HasPrefix(k, "metadata[") && strings.HasSuffix(k, "]") && len(v) > 0 {
				md[k[len("metadata["):len(k)-1]] = v[0]
			}
		}
		in, err := s.CreateIntent(r.Context(), amount, r.PostForm.Get("currency"), md)
		respond(w, in, err)
	}))
	mux.HandleFunc("GET /v1/payment_intents/{id}", auth(func(w http.ResponseWriter, r *http.Request) {
		in, err := s.Retrieve(r.Context(), r.PathValue("id"))
		respond(w, in, err)
	}))
	mux.HandleFunc("POST /v1/payment_intents/{id}/confirm", auth(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "", "The request body is not a form: "+err.Error())
			return
		}
		card := cardFrom(r.PostForm, "payment_method_data[card][%s]")
		in, err := s.Confirm(r.Context(), r.PathValue("id"), card)
		respond(w, in, err)
	}))
	mux.HandleFunc("POST /v1/refunds", auth(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "", "The request body is not a form: "+err.Error())
			return
		}
		in, err := s.Refund(r.Context(), r.PostForm.Get("payment_intent"))
		if err != nil {
			respond(w, in, err)
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"id": randomID("re_"), "object": "refund", "payment_intent": in.ID, "amount": in.AmountRefunded,
			"currency": in.Currency, "status": "succeeded",
		})
	}))
	mux.HandleFunc("POST /v1/test_helpers/payment_intents/{id}/dispute", auth(func(w http.ResponseWriter, r *http.Request) {
		in, err := s.Chargeback(r.Context(), r.PathValue("id"))
		respond(w, in, err)
	}))
	mux.HandleFunc("POST /v1/transfers", auth(func(w http.ResponseWriter, r *http.Request) {
		amount, key, ok := amountAndKey(w, r, "transfers")
		if !ok {
			return
		}
		p, err := s.Pay(r.Context(), Payout{
			Key: key, Amount: amount, Currency: r.PostForm.Get("currency"), Destination: r.PostForm.Get("destination"),
			Party: r.PostForm.Get("metadata[party]"), Group: r.PostForm.Get("transfer_group"),
		})
		if err != nil {
			writeError(w, http.StatusBadRequest, "invalid_request_error", "", err.Error())
			return
		}
		writeJSON(w, http.StatusOK, transferJSON(p))
	}))
	mux.HandleFunc("POST /v1/transfers/{id}/reversals", auth(func(w http.ResponseWriter, r *http.Request) {
		amount, key, ok := amountAndKey(w, r, "transfer reversals")
		if !ok {
			return
		}
		rev, err := s.Reverse(r.Context(), Reversal{Key: key, Transfer: r.PathValue("id"), Amount: amount})
		switch {
		case errors.Is(err, ErrNotFound):
			writeError(w, http.StatusNotFound, "invalid_request_error", "", err.Error())
		case err != nil:
			writeError(w, http.StatusBadRequest, "invalid_request_error", "amount", err.Error())
		default:
			writeJSON(w, http.StatusOK, map[string]any{
				"id": rev.ID, "object": "transfer_reversal", "amount": rev.Amount, "transfer": rev.Transfer,
				"created": rev.Created, "metadata": map[string]string{"key": rev.Key},
			})
		}
	}))
	mux.HandleFunc("GET /v1/transfers", auth(func(w http.ResponseWriter, r *http.Request) {
		ps, err := s.Payouts()
		if err != nil {
			writeError(w, http.StatusInternalServerError, "api_error", "", err.Error())
			return
		}
		data := make([]map[string]any, 0, len(ps))
		for _, p := range ps {
			if d := r.URL.Query().Get("destination"); d == "" || d == p.Destination {
				data = append(data, transferJSON(p))
			}
		}
		writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data, "has_more": false})
	}))
	mux.HandleFunc("GET /checkout/{id}", s.checkoutPage)
	mux.HandleFunc("POST /checkout/{id}", s.checkoutPay)
	return mux
}

// transferJSON is a payout as Stripe shapes a transfer.
func transferJSON(p Payout) map[string]any {
	return map[string]any{
		"id": p.ID, "object": "transfer", "amount": p.Amount, "currency": p.Currency, "destination": p.Destination,
		"transfer_group": p.Group, "created": p.Created, "metadata": map[string]string{"party": p.Party, "key": p.Key},
		"amount_reversed": p.AmountReversed,
	}
}

func cardFrom(form url.Values, pattern string) Card {
	atoi := func(s string) int { n, _ := strconv.Atoi(strings.TrimSpace(s)); return n }
	c := Card{
		Number:   form.Get(fmt.Sprintf(pattern, "number")),
		ExpMonth: atoi(form.Get(fmt.Sprintf(pattern, "exp_month"))),
		ExpYear:  atoi(form.Get(fmt.Sprintf(pattern, "exp_year"))),
		CVC:      strings.TrimSpace(form.Get(fmt.Sprintf(pattern, "cvc"))),
	}
	if c.ExpYear > 0 && c.ExpYear < 100 {
		c.ExpYear += 2000
	}
	return c
}

func respond(w http.ResponseWriter, in Intent, err error) {
	var ce *CardError
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, in)
	case errors.As(err, &ce):
		writeJSON(w, http.StatusPaymentRequired, map[string]any{"error": map[string]any{
			"type": "card_error", "code": ce.Code, "decline_code": ce.DeclineCode, "message": ce.Message, "payment_intent": in,
		}})
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, "invalid_request_error", "resource_missing", err.Error())
	default:
		writeError(w, http.StatusBadRequest, "invalid_request_error", "", err.Error())
	}
}

func writeError(w http.ResponseWriter, status int, typ, code, msg string) {
	writeJSON(w, status, map[string]any{"error": map[string]any{"type": typ, "code": code, "message": msg}})
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

var checkoutTmpl = template.Must(template.New("checkout").Parse(`<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Pay — Stagepass sandbox</title>
<style>
body{font:16px/1.5 system-ui,sans-serif;margin:0 auto;max-width:26rem;padding:1rem;color:#111}
label{display:block;margin:.8rem 0 .2rem;font-weight:600}
input{font:inherit;width:100%;box-sizing:border-box;padding:.7rem;border:1px solid #767676;border-radius:6px}
.row{display:flex;gap:.6rem}.row>div{flex:1}
button{font:inherit;font-weight:700;width:100%;margin-top:1.2rem;padding:.9rem;border:0;border-radius:8px;background:#0b57d0;color:#fff;min-height:48px}
.err{background:#fde7e9;color:#8a1020;padding:.6rem;border-radius:6px}
.note{color:#444;font-size:.9rem}
</style></head><body><main>
<h1>Pay {{.Amount}}</h1>
<p class="note">Sandbox checkout: no money moves. Test card 4242 4242 4242 4242, any future date, any CVC.</p>
{{if .Error}}<p class="err" role="alert">{{.Error}}</p>{{end}}
{{if .Paid}}<p>This payment is complete.</p>{{else}}
<form method="post" action="{{.ID}}">
<input type="hidden" name="client_secret" value="{{.Secret}}">
<input type="hidden" name="return_url" value="{{.Return}}">
<label for="number">Card number</label><input id="number" name="number" inputmode="numeric" autocomplete="cc-number" required>
<div class="row"><div><label for="exp">Expiry (MM/YY)</label><input id="exp" name="exp" autocomplete="cc-exp" placeholder="12/34" required></div>
<div><label for="cvc">CVC</label><input id="cvc" name="cvc" inputmode="numeric" autocomplete="cc-csc" required></div></div>
<button type="submit">Pay {{.Amount}}</button>
</form>{{end}}
</main></body></html>`))

type checkoutView struct {
	ID, Secret, Return, Amount, Error string
	Paid                              bool
}

// intentForSecret finds the intent and checks the client secret the page was given.
func (s *Sandbox) intentForSecret(ctx context.Context, id, secret string) (Intent, error) {
	in, err := s.Retrieve(ctx, id)
	if err != nil {
		return in, err
	}
	if subtle.ConstantTimeCompare([]byte(secret), []byte(in.ClientSecret)) != 1 {
		return in, fmt.Errorf("%w: wrong client secret", ErrNotFound)
	}
	return in, nil
}

func (s *Sandbox) checkoutPage(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	in, err := s.intentForSecret(r.Context(), r.PathValue("id"), q.Get("client_secret"))
	if err != nil {
		http.Error(w, "No such payment.", http.StatusNotFound)
		return
	}
	s.renderCheckout(w, http.StatusOK, in, safeReturn(q.Get("return_url")), "")
}

func (s *Sandbox) checkoutPay(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 16<<10)
	if err := r.ParseForm(); err != nil {
		http.Error(w, "Bad form.", http.StatusBadRequest)
		return
	}
	in, err := s.intentForSecret(r.Context(), r.PathValue("id"), r.PostForm.Get("client_secret"))
	if err != nil {
		http.Error(w, "No such payment.", http.StatusNotFound)
		return
	}
	ret := safeReturn(r.PostForm.Get("return_url"))
	month, year, _ := strings.Cut(r.PostForm.Get("exp"), "/")
	form := url.Values{"n": {r.PostForm.Get("number")}, "m": {month}, "y": {year}, "c": {r.PostForm.Get("cvc")}}
	card := cardFrom(url.Values{"number": form["n"], "exp_month": form["m"], "exp_year": form["y"], "cvc": form["c"]}, "%s")
	in, err = s.Confirm(r.Context(), in.ID, card)
	var ce *CardError
	switch {
	case err == nil || errors.Is(err, ErrAlreadyPaid):
		if ret == "" {
			s.renderCheckout(w, http.StatusOK, in, "", "")
			return
		}
		sep := "?"
		if strings.Contains(ret, "?") {
			sep = "&"
		}
		http.Redirect(w, r, ret+sep+url.Values{"payment_intent": {in.ID}, "redirect_status": {StatusSucceeded}}.Encode(), http.StatusSeeOther)
	case errors.As(err, &ce):
		s.renderCheckout(w, http.StatusPaymentRequired, in, ret, ce.Message)
	default:
		s.renderCheckout(w, http.StatusBadRequest, in, ret, err.Error())
	}
}

func (s *Sandbox) renderCheckout(w http.ResponseWriter, status int, in Intent, ret, msg string) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	_ = checkoutTmpl.Execute(w, checkoutView{
		ID: in.ID, Secret: in.ClientSecret, Return: ret, Error: msg, Paid: in.Status == StatusSucceeded,
		Amount: fmt.Sprintf("%s %d.%02d", strings.ToUpper(in.Currency), in.Amount/100, in.Amount%100),
	})
}

// safeReturn accepts only same-site paths, so the checkout page cannot be used to send a
// fan to another site.
func safeReturn(u string) string {
	if !strings.HasPrefix(u, "/") || strings.HasPrefix(u, "//") || strings.HasPrefix(u, "/\\") {
		return ""
	}
	return u
}

// Client speaks the Stripe-shaped API to a processor over HTTP: the sandbox served by
// Handler, from another process (oracle nodes), or any compatible server.
type Client struct {
	BaseURL string
	APIKey  string
	HTTP    *http.Client
}

var _ Processor = (*Client)(nil)

// send makes one API call and returns the answer's body and status.
func (c *Client) send(ctx context.Context, method, path string, form url.Values, idempotencyKey string) ([]byte, int, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, body)
	if err != nil {
		return nil, 0, err
	}
	req.Header.Set("Authorization", "Bearer "+c.APIKey)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if idempotencyKey != "" {
		req.Header.Set("Idempotency-Key", idempotencyKey)
	}
	hc := c.HTTP
	if hc == nil {
		hc = &http.Client{Timeout: 15 * time.Second}
	}
	res, err := hc.Do(req)
	if err != nil {
		return nil, 0, fmt.Errorf("payments %s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(res.Body, 1<<20))
	if err != nil {
		return nil, 0, fmt.Errorf("payments %s %s: %w", method, path, err)
	}
	return raw, res.StatusCode, nil
}

func (c *Client) do(ctx context.Context, method, path string, form url.Values) (Intent, error) {
	raw, status, err := c.send(ctx, method, path, form, "")
	if err != nil {
		return Intent{}, err
	}
	if status == http.StatusOK {
		var in Intent
		if err := json.Unmarshal(raw, &in); err != nil {
			return Intent{}, fmt.Errorf("payments %s %s: bad answer: %w", method, path, err)
		}
		return in, nil
	}
	return apiError(raw, status)
}

// apiError reads a Stripe-shaped error answer (a decline carries the intent).
func apiError(raw []byte, status int) (Intent, error) {
	var e struct {
		Error struct {
			Type        string `json:"type"`
			Code        string `json:"code"`
			DeclineCode string `json:"decline_code"`
			Message     string `json:"message"`
			Intent      Intent `json:"payment_intent"`
		} `json:"error"`
	}
	_ = json.Unmarshal(raw, &e)
	switch {
	case e.Error.Type == "card_error":
		return e.Error.Intent, &CardError{Code: e.Error.Code, DeclineCode: e.Error.DeclineCode, Message: e.Error.Message}
	case status == http.StatusNotFound:
		return Intent{}, fmt.Errorf("%w: %s", ErrNotFound, e.Error.Message)
	default:
		return Intent{}, fmt.Errorf("%w: %s (HTTP %d)", ErrInvalid, e.Error.Message, status)
	}
}

// CreateIntent implements Processor.
func (c *Client) CreateIntent(ctx context.Context, amount int64, currency string, metadata map[string]string) (Intent, error) {
	form := url.Values{"amount": {strconv.FormatInt(amount, 10)}, "currency": {currency}}
	for k, v := range metadata {
		form.Set("metadata["+k+"]", v)
	}
	return c.do(ctx, http.MethodPost, "/v1/payment_intents", form)
}

// Confirm implements Processor.
func (c *Client) Confirm(ctx context.Context, id string, card Card) (Intent, error) {
	form := url.Values{
		"payment_method_data[card][number]":    {card.Number},
		"payment_method_data[card][exp_month]": {strconv.Itoa(card.ExpMonth)},
		"payment_method_data[card][exp_year]":  {strconv.Itoa(card.ExpYear)},
		"payment_method_data[card][cvc]":       {card.CVC},
	}
	return c.do(ctx, http.MethodPost, "/v1/payment_intents/"+url.PathEscape(id)+"/confirm", form)
}

// Retrieve implements Processor.
func (c *Client) Retrieve(ctx context.Context, id string) (Intent, error) {
	return c.do(ctx, http.MethodGet, "/v1/payment_intents/"+url.PathEscape(id), nil)
}

// Refund implements Processor. The answer is the refunded intent.
func (c *Client) Refund(ctx context.Context, id string) (Intent, error) {
	// The answer is a refund object, not an intent: only its success matters here.
	if _, err := c.do(ctx, http.MethodPost, "/v1/refunds", url.Values{"payment_intent": {id}}); err != nil {
		return Intent{}, err
	}
	return c.Retrieve(ctx, id)
}

// Chargeback raises a chargeback on a succeeded payment through the sandbox's test helper
// (Stripe's test mode raises disputes with test cards instead).
func (c *Client) Chargeback(ctx context.Context, id string) (Intent, error) {
	return c.do(ctx, http.MethodPost, "/v1/test_helpers/payment_intents/"+url.PathEscape(id)+"/dispute", nil)
}

var _ Payer = (*Client)(nil)

// Pay implements Payer with a transfer whose Idempotency-Key is the payout's key: the
// processor makes it once, however often it is sent.
func (c *Client) Pay(ctx context.Context, p Payout) (Payout, error) {
	if p.Destination == "" {
		p.Destination = SandboxAccount(p.Party)
	}
	form := url.Values{
		"amount": {strconv.FormatInt(p.Amount, 10)}, "currency": {p.Currency}, "destination": {p.Destination},
		"transfer_group": {p.Group}, "metadata[party]": {p.Party},
	}
	raw, status, err := c.send(ctx, http.MethodPost, "/v1/transfers", form, p.Key)
	if err != nil {
		return p, err
	}
	if status != http.StatusOK {
		_, err := apiError(raw, status)
		return p, err
	}
	var t struct {
		ID      string `json:"id"`
		Created int64  `json:"created"`
	}
	if err := json.Unmarshal(raw, &t); err != nil {
		return p, fmt.Errorf("payments: bad transfer answer: %w", err)
	}
	p.ID, p.Created = t.ID, t.Created
	return p, nil
}

// Reverse implements Payer with a transfer reversal whose Idempotency-Key is the reversal's
// key: the processor makes it once, however often it is sent.
func (c *Client) Reverse(ctx context.Context, r Reversal) (Reversal, error) {
	form := url.Values{"amount": {strconv.FormatInt(r.Amount, 10)}}
	raw, status, err := c.send(ctx, http.MethodPost, "/v1/transfers/"+url.PathEscape(r.Transfer)+"/reversals", form, r.Key)
	if err != nil {
		return r, err
	}
	if status != http.StatusOK {
		_, err := apiError(raw, status)
		return r, err
	}
	var t struct {
		ID      string `json:"id"`
		Amount  int64  `json:"amount"`
		Created int64  `json:"created"`
	}
	if err := json.Unmarshal(raw, &t); err != nil {
		return r, fmt.Errorf("payments: bad transfer reversal answer: %w", err)
	}
	r.ID, r.Amount, r.Created = t.ID, t.Amount, t.Created
	return r, nil
}

// amountAndKey reads a money-moving request's form amount (minor units) and its
// Idempotency-Key, which the sandbox requires on `what`; on failure it has answered 400.
func amountAndKey(w http.ResponseWriter, r *http.Request, what string) (int64, string, bool) {
	if err := r.ParseForm(); err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "", "The request body is not a form: "+err.Error())
		return 0, "", false
	}
	amount, err := strconv.ParseInt(r.PostForm.Get("amount"), 10, 64)
	if err != nil {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "amount", "amount must be an integer number of minor units")
		return 0, "", false
	}
	key := r.Header.Get("Idempotency-Key")
	if key == "" {
		writeError(w, http.StatusBadRequest, "invalid_request_error", "", "The sandbox needs an Idempotency-Key header on "+what+".")
		return 0, "", false
	}
	return amount, key, true
}
