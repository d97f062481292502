package site

import (
	"bytes"
	"encoding/json"
	"fmt"
	"image"
	"image/png"
	"io/fs"
	"regexp"
	"strings"
	"testing"

	"github.com/stagepass/stagepass/site/internal/icons"
)

// The manifest makes the site installable: names, start URL and scope, standalone display,
// colours, and icons that exist with the sizes and types it says — 192 and 512 for "any",
// a 512 "maskable" (full-bleed: the platform cuts its own shape).
func TestManifestIcons(t *testing.T) {
	fsys := FS()
	raw, err := fs.ReadFile(fsys, "manifest.webmanifest")
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Name            string `json:"name"`
		ShortName       string `json:"short_name"`
		StartURL        string `json:"start_url"`
		Scope           string `json:"scope"`
		Display         string `json:"display"`
		BackgroundColor string `json:"background_color"`
		ThemeColor      string `json:"theme_color"`
		Icons           []struct{ Src, Sizes, Type, Purpose string }
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("manifest.webmanifest: %v", err)
	}
	colour := regexp.MustCompile(`^#[0-9a-f]{6}$`)
	if m.Name == "" || m.ShortName == "" || len(m.ShortName) > 12 || m.StartURL == "" || m.Scope == "" ||
		m.Display != "standalone" || !colour.MatchString(m.BackgroundColor) || !colour.MatchString(m.ThemeColor) {
		t.Errorf("manifest incomplete: %+v", m)
	}
	purposes := map[string]bool{}
	for _, ic := range m.Icons {
		b, err := fs.ReadFile(fsys, ic.Src)
		if err != nil {
			t.Errorf("icon %s: %v", ic.Src, err)
			continue
		}
		for _, p := range strings.Fields(ic.Purpose) {
			purposes[p+" "+ic.Sizes] = true
		}
		switch ic.Type {
		case "image/png":
			cfg, format, err := image.DecodeConfig(bytes.NewReader(b))
			if err != nil || format != "png" {
				t.Errorf("icon %s is not a PNG: %v", ic.Src, err)
				continue
			}
			if got := fmt.Sprintf("%dx%d", cfg.Width, cfg.Height); got != ic.Sizes {
				t.Errorf("icon %s is %s, the manifest says %s", ic.Src, got, ic.Sizes)
			}
		case "image/svg+xml":
			if !bytes.HasPrefix(b, []byte("<svg")) || ic.Sizes != "any" {
				t.Errorf("icon %s: not an SVG, or sizes %q (want any)", ic.Src, ic.Sizes)
			}
		default:
			t.Errorf("icon %s: type %q", ic.Src, ic.Type)
		}
	}
	for _, want := range []string{"any 192x192", "any 512x512", "maskable 512x512"} {
		if !purposes[want] {
			t.Errorf("manifest has no %s icon", want)
		}
	}
	// A maskable icon is opaque to its corners.
	if img := decodePNG(t, fsys, "icons/maskable-512.png"); img != nil {
		if _, _, _, a := img.At(0, 0).RGBA(); a != 0xffff {
			t.Error("the maskable icon's corner is transparent")
		}
	}
}

// Every page links the icons (and the app pages the manifest); the service worker keeps them.
func TestPagesLinkIcons(t *testing.T) {
	fsys := FS()
	sw, err := fs.ReadFile(fsys, "sw.js")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range icons.Files() {
		if !bytes.Contains(sw, []byte("'"+f.Path+"'")) {
			t.Errorf("sw.js does not cache %s", f.Path)
		}
	}
	for _, page := range []string{"index.html", "scanner.html", "issuer.html"} {
		b, err := fs.ReadFile(fsys, page)
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{`<link rel="manifest" href="manifest.webmanifest">`,
			`<link rel="icon" href="icons/icon.svg" type="image/svg+xml">`,
			`<link rel="apple-touch-icon" href="icons/apple-touch-icon.png">`} {
			if !bytes.Contains(b, []byte(want)) {
				t.Errorf("%s lacks %s", page, want)
			}
		}
	}
}

// The committed icons are what site/internal/icons draws (regenerate them with
// `go run ./site/internal/genicons`). PNGs are compared pixel by pixel, not byte by byte, so
// another Go release's PNG encoder does not fail this.
func TestIconsMatchGenerator(t *testing.T) {
	fsys := FS()
	for _, f := range icons.Files() {
		want, err := f.Make()
		if err != nil {
			t.Fatal(err)
		}
		got, err := fs.ReadFile(fsys, f.Path)
		if err != nil {
			t.Errorf("%s: %v (run go run ./site/internal/genicons)", f.Path, err)
			continue
		}
		if !strings.HasSuffix(f.Path, ".png") {
			if !bytes.Equal(got, want) {
				t.Errorf("%s differs from what genicons draws: run go run ./site/internal/genicons", f.Path)
			}
			continue
		}
		a, errA := png.Decode(bytes.NewReader(got))
		b, errB := png.Decode(bytes.NewReader(want))
		if errA != nil || errB != nil {
			t.Errorf("%s: %v %v", f.Path, errA, errB)
			continue
		}
		if !samePixels(a, b) {
			t.Errorf("%s differs from what genicons draws: run go run ./site/internal/genicons", f.Path)
		}
	}
}

func decodePNG(t *testing.T, fsys fs.FS, name string) image.Image {
	t.Helper()
	b, err := fs.ReadFile(fsys, name)
	if err != nil {
		t.Error(err)
		return nil
	}
	img, err := png.Decode(bytes.NewReader(b))
	if err != nil {
		t.Errorf("%s: %v", name, err)
		return nil
	}
	return img
}

func samePixels(a, b image.Image) bool {
	if a.Bounds() != b.Bounds() {
		return false
	}
	for y := a.Bounds().Min.Y; y < a.Bounds().Max.Y; y++ {
		for x := a.Bounds().Min.X; x < a.Bounds().Max.X; x++ {
			r1, g1, b1, a1 := a.At(x, y).RGBA()
			r2, g2, b2, a2 := b.At(x, y).RGBA()
			if r1 != r2 || g1 != g2 || b1 != b2 || a1 != a2 {
				return false
			}
		}
	}
	return true
}
