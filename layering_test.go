package nodal

import (
	"os/exec"
	"strings"
	"testing"
)

// layers is ARCHITECTURE.md's layering, lowest first: a package may import
// packages of its own layer's family (p2p/p2ptest imports p2p) and of lower
// layers only, never one above.
var layers = [][]string{
	{"crdt", "internal"},
	{"p2p"},
	{""}, // the module root, package nodal
	{"internal/replica", "internal/echo", "internal/exitwatch"}, // the replication engine; the echo behaviour of cmd/node and integration; the exit watcher of registry and groups
	{"supervisor", "registry", "groups", "rpc"},
	{"heal"},
	{"integration"},
	{"cmd"},
}

const module = "github.com/nodal-go/nodal"

// layerOf returns the layer of a package path of this module (-1 if none)
// and its family (the first path element below the module).
func layerOf(pkg string) (int, string) {
	rel, ok := strings.CutPrefix(pkg, module)
	if !ok {
		return -1, ""
	}
	rel = strings.TrimPrefix(rel, "/")
	family, _, _ := strings.Cut(rel, "/")
	for _, above := range []string{"internal/replica", "internal/echo", "internal/exitwatch"} { // above the root, unlike the rest of internal/
		if rel == above || strings.HasPrefix(rel, above+"/") {
			family = above
		}
	}
	for i, l := range layers {
		for _, f := range l {
			if f == family {
				return i, family
			}
		}
	}
	return -2, family
}

// TestImportLayering keeps imports pointing down the layering: nothing
// below imports what is above it, and within a layer, packages of different
// families do not import each other (registry does not import rpc).
func TestImportLayering(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not in PATH")
	}
	out, err := exec.Command("go", "list", "-f", `{{.ImportPath}} {{join .Imports " "}}`, module+"/...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	checked := 0
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Fields(line)
		pkg := f[0]
		pl, pfam := layerOf(pkg)
		if pl == -2 {
			t.Errorf("package %s is in no layer of ARCHITECTURE.md: add its family %q to the layering", pkg, pfam)
			continue
		}
		for _, imp := range f[1:] {
			il, ifam := layerOf(imp)
			switch {
			case il < 0 || ifam == pfam:
			case il > pl:
				t.Errorf("%s (layer %d) imports %s (layer %d): imports only point down", pkg, pl, imp, il)
			case il == pl:
				t.Errorf("%s imports %s: packages of one layer do not import each other", pkg, imp)
			}
		}
		checked++
	}
	if checked < 5 {
		t.Fatalf("only %d packages listed", checked)
	}
}
