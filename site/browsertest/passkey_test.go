package browsertest

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	gethkeystore "github.com/ethereum/go-ethereum/accounts/keystore"
	"github.com/ethereum/go-ethereum/common"
	gethcrypto "github.com/ethereum/go-ethereum/crypto"
	"github.com/google/uuid"
)

// A fan adds a passkey (a WebAuthn virtual authenticator with the PRF extension stands in
// for the phone's), reloads and unlocks with it — no password typed — and sees the same
// account; then imports a keystore file made by go-ethereum through the page's file input;
// the same passkey then unlocks the door scanner and the issuer console.
// WebAuthn refuses IP addresses, so the page is opened as localhost.
func TestBrowserPasskeyUnlockAndKeystoreImport(t *testing.T) {
	setup(t)
	ctx, done := browser(t)
	defer done()
	url := strings.Replace(env.url, "127.0.0.1", "localhost", 1)

	if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatalf("WebAuthn.enable: %v", err)
	}
	if _, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{
		Options: &webauthn.VirtualAuthenticatorOptions{
			Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21,
			Transport: webauthn.AuthenticatorTransportInternal, HasResidentKey: true,
			HasUserVerification: true, IsUserVerified: true, HasPrf: true, AutomaticPresenceSimulation: true,
		},
	}); err != nil {
		t.Fatalf("WebAuthn.addVirtualAuthenticator: %v", err)
	}

	const password = "correct horse battery"
	step(t, ctx, "open the site as localhost", 60*time.Second,
		chromedp.Navigate(url),
		waitFor(`document.body.dataset.view === 'onboard'`, 45*time.Second))
	step(t, ctx, "create a wallet", 60*time.Second,
		chromedp.SendKeys(css("#create-password"), password),
		chromedp.Click(css("#btn-create")),
		waitFor(`document.body.dataset.view === 'app' && document.getElementById('btn-add-passkey')`, 45*time.Second))
	account := eval[string](t, ctx, `document.getElementById('account').textContent`)

	step(t, ctx, "add a passkey, wrong password first", 60*time.Second,
		clickSettled("#wallet-settings summary"),
		clickSettled("#btn-add-passkey"),
		chromedp.SendKeys(css("#passkey-password"), "not my password"),
		chromedp.Click(css("#btn-passkey-create")),
		waitFor(`!document.getElementById('sheet-error').hidden && /not right/.test(document.getElementById('sheet-error').textContent)`, 30*time.Second))
	step(t, ctx, "add a passkey", 60*time.Second,
		typeInto("passkey-password", password),
		chromedp.Click(css("#btn-passkey-create")),
		waitFor(`document.body.dataset.passkey === 'added' && document.querySelectorAll('#passkey-list li').length === 1`, 30*time.Second))
	shot(t, ctx, "passkey-added")

	step(t, ctx, "reload: Use a passkey offered", 60*time.Second,
		chromedp.Reload(),
		waitFor(`document.body.dataset.view === 'unlock' && document.getElementById('btn-passkey-unlock')`, 45*time.Second))
	shot(t, ctx, "passkey-unlock")
	step(t, ctx, "unlock with the passkey", 60*time.Second,
		chromedp.Click(css("#btn-passkey-unlock")),
		waitFor(`document.body.dataset.view === 'app' && document.getElementById('account').textContent === `+strconv.Quote(account), 30*time.Second))
	if typed := eval[string](t, ctx, `document.getElementById('unlock-password').value`); typed != "" {
		t.Fatalf("a password was typed: %q", typed)
	}

	// A keystore file from go-ethereum, through the file input.
	addr, path := keystoreFile(t, "file password")
	step(t, ctx, "keystore file, wrong file password", 60*time.Second,
		clickSettled("#wallet-settings summary"),
		clickSettled("#btn-import-keystore"),
		chromedp.SetUploadFiles(css("#keystore-file"), []string{path}),
		waitFor(`document.getElementById('keystore-text').value.includes('"version":3')`, 10*time.Second),
		chromedp.SendKeys(css("#keystore-password"), "wrong one"),
		chromedp.SendKeys(css("#import-password"), password),
		chromedp.Click(css("#btn-import")),
		waitFor(`!document.getElementById('sheet-error').hidden && /keystore file's password/.test(document.getElementById('sheet-error').textContent)`, 60*time.Second))
	step(t, ctx, "import the keystore file", 60*time.Second,
		typeInto("keystore-password", "file password"),
		typeInto("import-password", password),
		chromedp.Click(css("#btn-import")),
		waitFor(`document.body.dataset.imported === `+strconv.Quote(addr.Hex()), 60*time.Second))
	if got := eval[string](t, ctx, `document.getElementById('import-result').textContent`); !strings.Contains(got, addr.Hex()) || !strings.Contains(got, "2.") {
		t.Fatalf("import result: %q", got)
	}
	shot(t, ctx, "keystore-imported")

	// The door scanner and the issuer console share the vault: the passkey opens them too.
	for _, page := range []string{"scanner.html", "issuer.html"} {
		step(t, ctx, "passkey unlock in "+page, 60*time.Second,
			chromedp.Navigate(url+page),
			waitFor(`document.body.dataset.view === 'unlock' && document.getElementById('btn-passkey-unlock')`, 45*time.Second),
			chromedp.Click(css("#btn-passkey-unlock")),
			waitFor(`document.body.dataset.view !== 'unlock' && document.getElementById('error').hidden`, 30*time.Second))
	}
}

// keystoreFile writes a fresh key as go-ethereum's keystore v3 file (light scrypt) under
// the password, for the import tests; its address and path.
func keystoreFile(t *testing.T, password string) (common.Address, string) {
	t.Helper()
	k, err := gethcrypto.GenerateKey()
	if err != nil {
		t.Fatal(err)
	}
	addr := gethcrypto.PubkeyToAddress(k.PublicKey)
	file, err := gethkeystore.EncryptKey(&gethkeystore.Key{Id: uuid.New(), Address: addr, PrivateKey: k}, password, gethkeystore.LightScryptN, gethkeystore.LightScryptP)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "UTC--keystore.json")
	if err := os.WriteFile(path, file, 0o600); err != nil {
		t.Fatal(err)
	}
	return addr, path
}
