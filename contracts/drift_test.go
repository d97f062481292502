package contracts_test

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"testing"

	"github.com/stagepass/stagepass/contracts"
)

// TestArtifactsInSync recompiles the Solidity sources with the pinned solc and regenerates the
// Go bindings, and fails when either differs from what is committed: run
// `go generate ./contracts/...` after changing a contract.
func TestArtifactsInSync(t *testing.T) {
	if _, err := os.Stat("node_modules/solc"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("contracts/node_modules is missing: ./build.sh test installs it (npm ci)")
		}
		t.Skip("contracts/node_modules is missing; run ./build.sh test (or npm ci in contracts/)")
	}
	tmp := t.TempDir()
	cmd := exec.Command("node", "compile.js", tmp)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("compile: %v\n%s", err, out)
	}
	committed := listJSON(t, "artifacts")
	fresh := listJSON(t, tmp)
	if len(committed) != len(fresh) {
		t.Fatalf("artifacts: committed %v, compiled %v; run go generate ./contracts/...", committed, fresh)
	}
	for i, name := range fresh {
		if committed[i] != name {
			t.Fatalf("artifacts: committed %v, compiled %v; run go generate ./contracts/...", committed, fresh)
		}
		a, _ := os.ReadFile(filepath.Join("artifacts", name))
		b, _ := os.ReadFile(filepath.Join(tmp, name))
		if !bytes.Equal(a, b) {
			t.Errorf("artifacts/%s differs from a fresh compile; run go generate ./contracts/...", name)
		}
	}

	files, err := contracts.GenerateBindings(os.DirFS("artifacts"))
	if err != nil {
		t.Fatal(err)
	}
	for name, src := range files {
		have, err := os.ReadFile(filepath.Join("bindings", name))
		if err != nil || !bytes.Equal(have, src) {
			t.Errorf("bindings/%s is stale; run go generate ./contracts/...", name)
		}
	}
	dirs, _ := os.ReadDir("bindings")
	if len(dirs) != len(files) {
		t.Errorf("bindings/ has %d packages, the artifacts make %d", len(dirs), len(files))
	}
}

func listJSON(t *testing.T, dir string) []string {
	m, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	sort.Strings(m)
	return m
}
