// Package browsertest drives the Stagepass site in Debian's Chromium (headless, through
// github.com/chromedp/chromedp) against a real `stagepass dev` that the tests build and
// start, with wallet.wasm built into it. Run: go test ./site/... -run Browser
package browsertest
