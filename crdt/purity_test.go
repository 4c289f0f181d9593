package crdt_test

import (
	"os"
	"os/exec"
	"slices"
	"strings"
	"testing"
)

// allowed is the standard-library allow-list of package crdt: pure packages
// with no I/O, clocks, randomness, goroutines or sync.
var allowed = []string{
	"cmp", "slices", "maps", "sort", "errors", "fmt", "strconv", "encoding/binary",
	"math", "bytes", "strings", "unicode/utf8",
}

// testAllowed is what crdttest may import on top of allowed and crdt itself.
var testAllowed = []string{"testing", "pgregory.net/rapid", "github.com/nodal-go/nodal/crdt"}

func goList(t *testing.T, args ...string) []string {
	t.Helper()
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("go command not in PATH")
	}
	out, err := exec.Command("go", append([]string{"list"}, args...)...).CombinedOutput()
	if err != nil {
		t.Fatalf("go list %v: %v\n%s", args, err, out)
	}
	return strings.Fields(string(out))
}

func TestPurityImports(t *testing.T) {
	for _, imp := range goList(t, "-f", `{{join .Imports " "}}`, "github.com/nodal-go/nodal/crdt") {
		if !slices.Contains(allowed, imp) {
			t.Errorf("crdt imports %q, which is not on the allow-list %v", imp, allowed)
		}
	}
	for _, imp := range goList(t, "-f", `{{join .Imports " "}}`, "github.com/nodal-go/nodal/crdt/crdttest") {
		if !slices.Contains(allowed, imp) && !slices.Contains(testAllowed, imp) {
			t.Errorf("crdttest imports %q, which is not allowed", imp)
		}
	}
}

func TestPurityDeps(t *testing.T) {
	// Every dependency, transitively, must be in the standard library.
	lines := goList(t, "-deps", "-f", `{{if not .Standard}}{{.ImportPath}}{{end}}`, "github.com/nodal-go/nodal/crdt")
	for _, p := range lines {
		if p != "github.com/nodal-go/nodal/crdt" {
			t.Errorf("crdt depends on non-standard package %q", p)
		}
	}
	// and no standard package that does I/O, concurrency, time or randomness
	forbidden := []string{"os", "net", "time", "sync", "math/rand", "math/rand/v2", "crypto/rand", "syscall", "io/fs", "unsafe", "reflect"}
	// fmt itself pulls os, sync and reflect in for printing; only direct
	// imports are policed for these.
	for _, imp := range goList(t, "-f", `{{join .Imports " "}}`, "github.com/nodal-go/nodal/crdt") {
		if slices.Contains(forbidden, imp) {
			t.Errorf("crdt imports forbidden package %q", imp)
		}
	}
}

// TestNoGoroutines checks the source has no go statements or channel types.
func TestNoGoroutines(t *testing.T) {
	files := goList(t, "-f", `{{range .GoFiles}}{{$.Dir}}/{{.}} {{end}}`, "github.com/nodal-go/nodal/crdt", "github.com/nodal-go/nodal/crdt/crdttest")
	for _, f := range files {
		src, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for i, line := range strings.Split(string(src), "\n") {
			l := strings.TrimSpace(line)
			if strings.HasPrefix(l, "//") {
				continue
			}
			if strings.HasPrefix(l, "go ") || strings.Contains(l, " go func") || strings.Contains(l, "chan ") {
				t.Errorf("%s:%d: goroutine or channel in a pure package: %s", f, i+1, l)
			}
		}
	}
}
