// Package icons draws Stagepass's app icons — a ticket on the brand's navy — as PNG (any
// size; rounded for "any", full-bleed for "maskable" and Apple's home screen), as SVG and as
// favicon.ico, all from one description, so the site's committed icons can be regenerated
// (go run ./site/internal/genicons) and checked (go test ./site).
package icons

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"image"
	"image/color"
	"image/png"
	"math"
	"strings"
)

// The icon on a 1×1 canvas. The ticket sits well inside the maskable safe zone (a circle of
// radius 0.4 around the centre): its farthest corner is 0.38 away.
var (
	navy  = color.NRGBA{0x14, 0x21, 0x3d, 0xff} // --brand in app.css, the manifest's theme_color
	amber = color.NRGBA{0xfc, 0xa3, 0x11, 0xff}
)

const (
	bgRadius     = 0.22 // corner radius of the "any" icon's background
	ticketW      = 0.64
	ticketH      = 0.40
	ticketRadius = 0.05
	notchR       = 0.065 // the half-circles cut into the ticket's short sides
	tilt         = -12.0 // degrees, the ticket's rotation about the centre
	perfX        = 0.62  // the perforation's x on the unrotated ticket
	perfW        = 0.024
	perfDashes   = 5
)

// Kind is which icon a PNG is.
type Kind int

const (
	Any      Kind = iota // rounded background, transparent corners
	Maskable             // background to the edges; the platform cuts its own shape
)

// shape is one painted layer: inside reports whether the point (x, y) of the 1×1 canvas is
// covered.
type shape struct {
	fill   color.NRGBA
	inside func(x, y float64) bool
}

func roundRect(x0, y0, x1, y1, r float64) func(x, y float64) bool {
	return func(x, y float64) bool {
		if x < x0 || x > x1 || y < y0 || y > y1 {
			return false
		}
		cx := math.Max(x0+r, math.Min(x, x1-r))
		cy := math.Max(y0+r, math.Min(y, y1-r))
		return (x-cx)*(x-cx)+(y-cy)*(y-cy) <= r*r
	}
}

func circle(cx, cy, r float64) func(x, y float64) bool {
	return func(x, y float64) bool { return (x-cx)*(x-cx)+(y-cy)*(y-cy) <= r*r }
}

// dash is the perforation's i-th dash on the unrotated ticket.
func dash(i int) (x0, y0, x1, y1 float64) {
	top, h := 0.5-ticketH/2+0.06, ticketH-0.12
	step := h / (2*perfDashes - 1)
	y0 = top + float64(2*i)*step
	return perfX - perfW/2, y0, perfX + perfW/2, y0 + step
}

// layers lists what is painted, in order, for kind.
func layers(kind Kind) []shape {
	r := bgRadius
	if kind == Maskable {
		r = 0
	}
	// The ticket's shapes are tested in its own (unrotated) frame.
	sin, cos := math.Sincos(-tilt * math.Pi / 180)
	unrotate := func(f func(x, y float64) bool) func(x, y float64) bool {
		return func(x, y float64) bool {
			dx, dy := x-0.5, y-0.5
			return f(0.5+dx*cos-dy*sin, 0.5+dx*sin+dy*cos)
		}
	}
	l := []shape{
		{navy, roundRect(0, 0, 1, 1, r)},
		{amber, unrotate(roundRect(0.5-ticketW/2, 0.5-ticketH/2, 0.5+ticketW/2, 0.5+ticketH/2, ticketRadius))},
		{navy, unrotate(circle(0.5-ticketW/2, 0.5, notchR))},
		{navy, unrotate(circle(0.5+ticketW/2, 0.5, notchR))},
	}
	for i := range perfDashes {
		x0, y0, x1, y1 := dash(i)
		l = append(l, shape{navy, unrotate(roundRect(x0, y0, x1, y1, 0))})
	}
	return l
}

// Image draws the icon at size×size pixels, each pixel from 4×4 samples (anti-aliased).
func Image(size int, kind Kind) *image.NRGBA {
	const ss = 4
	img := image.NewNRGBA(image.Rect(0, 0, size, size))
	ls := layers(kind)
	for py := range size {
		for px := range size {
			var r, g, b, a float64 // premultiplied sums over the samples
			for sy := range ss {
				for sx := range ss {
					x := (float64(px) + (float64(sx)+0.5)/ss) / float64(size)
					y := (float64(py) + (float64(sy)+0.5)/ss) / float64(size)
					var c *color.NRGBA
					for i := range ls {
						if ls[i].inside(x, y) {
							c = &ls[i].fill
						}
					}
					if c != nil {
						r, g, b, a = r+float64(c.R), g+float64(c.G), b+float64(c.B), a+1
					}
				}
			}
			if a > 0 {
				img.SetNRGBA(px, py, color.NRGBA{
					R: uint8(math.Round(r / a)), G: uint8(math.Round(g / a)), B: uint8(math.Round(b / a)),
					A: uint8(math.Round(a * 255 / ss / ss)),
				})
			}
		}
	}
	return img
}

// PNG is Image encoded as PNG.
func PNG(size int, kind Kind) ([]byte, error) {
	var buf bytes.Buffer
	if err := png.Encode(&buf, Image(size, kind)); err != nil {
		return nil, fmt.Errorf("encode %d px icon: %w", size, err)
	}
	return buf.Bytes(), nil
}

// ICO is favicon.ico holding one PNG of size×size (an ICO may carry PNG images; every
// browser in use reads them).
func ICO(size int) ([]byte, error) {
	p, err := PNG(size, Any)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	// ICONDIR, then one ICONDIRENTRY (a width or height of 0 means 256), then the image.
	_ = binary.Write(&buf, binary.LittleEndian, [3]uint16{0, 1, 1})
	_ = binary.Write(&buf, binary.LittleEndian, struct {
		W, H, Colours, Reserved uint8
		Planes, BitCount        uint16
		Size, Offset            uint32
	}{uint8(size % 256), uint8(size % 256), 0, 0, 1, 32, uint32(len(p)), 6 + 16})
	buf.Write(p)
	return buf.Bytes(), nil
}

// SVG is the "any" icon as SVG (the same shapes, in a 512×512 view box).
func SVG() []byte {
	const u = 512.0
	n := func(v float64) string {
		return strings.TrimSuffix(strings.TrimRight(fmt.Sprintf("%.2f", v*u), "0"), ".")
	}
	hex := func(c color.NRGBA) string { return fmt.Sprintf("#%02x%02x%02x", c.R, c.G, c.B) }
	var b strings.Builder
	fmt.Fprintf(&b, "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 512 512\" role=\"img\" aria-label=\"Stagepass\">\n")
	fmt.Fprintf(&b, "<rect width=\"512\" height=\"512\" rx=\"%s\" fill=\"%s\"/>\n", n(bgRadius), hex(navy))
	fmt.Fprintf(&b, "<g transform=\"rotate(%g 256 256)\">\n", tilt)
	fmt.Fprintf(&b, "<rect x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\" rx=\"%s\" fill=\"%s\"/>\n",
		n(0.5-ticketW/2), n(0.5-ticketH/2), n(ticketW), n(ticketH), n(ticketRadius), hex(amber))
	fmt.Fprintf(&b, "<circle cx=\"%s\" cy=\"256\" r=\"%s\" fill=\"%s\"/>\n", n(0.5-ticketW/2), n(notchR), hex(navy))
	fmt.Fprintf(&b, "<circle cx=\"%s\" cy=\"256\" r=\"%s\" fill=\"%s\"/>\n", n(0.5+ticketW/2), n(notchR), hex(navy))
	for i := range perfDashes {
		x0, y0, x1, y1 := dash(i)
		fmt.Fprintf(&b, "<rect x=\"%s\" y=\"%s\" width=\"%s\" height=\"%s\" fill=\"%s\"/>\n", n(x0), n(y0), n(x1-x0), n(y1-y0), hex(navy))
	}
	b.WriteString("</g>\n</svg>\n")
	return []byte(b.String())
}

// File is one icon file the site serves, under site/static/.
type File struct {
	Path string
	Make func() ([]byte, error)
}

// Files are every icon the site serves: the manifest's (192 and 512 "any", 512 "maskable"),
// Apple's home-screen icon (180, full-bleed: iOS rounds it), the SVG favicon and
// favicon.ico (32) for browsers and pages that ask for /favicon.ico.
func Files() []File {
	p := func(size int, kind Kind) func() ([]byte, error) {
		return func() ([]byte, error) { return PNG(size, kind) }
	}
	return []File{
		{"icons/icon-192.png", p(192, Any)},
		{"icons/icon-512.png", p(512, Any)},
		{"icons/maskable-512.png", p(512, Maskable)},
		{"icons/apple-touch-icon.png", p(180, Maskable)},
		{"icons/icon.svg", func() ([]byte, error) { return SVG(), nil }},
		{"favicon.ico", func() ([]byte, error) { return ICO(32) }},
	}
}
